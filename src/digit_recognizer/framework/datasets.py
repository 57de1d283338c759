"""Project datasets: the raw Kaggle CSV reader and the versioned PyTorch model store."""

from __future__ import annotations

import hashlib
import io
import json
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError
from kedro_datasets._typing import HTMLPreview, JSONPreview, TablePreview

from digit_recognizer.errors import UserError
from digit_recognizer.runstore.locations import is_url


class InputFileError(UserError, DatasetError):
    """An input file (a raw CSV, a model file) is missing or not what it should be; the message names it."""


# A Kaggle row is at most 784 pixels of "255," plus a label: about 3,200 characters.
MAX_LINE_LENGTH = 8192
QUOTE_LIMIT = 200
CHUNK = 1 << 20
MAGIC = {
    b"\x1f\x8b": "gzip-compressed",
    b"PK\x03\x04": "a zip archive",
    b"BZh": "bzip2-compressed",
    b"\xfd7zXZ\x00": "xz-compressed",
    b"\x28\xb5\x2f\xfd": "zstd-compressed",
    b"PAR1": "a Parquet file",
}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:QUOTE_LIMIT] if text else type(error).__name__


def _quote(data: bytes) -> str:
    shown = data[:QUOTE_LIMIT].decode("ascii", errors="backslashreplace")
    return repr(shown) + (f" ... ({len(data):,} bytes in all)" if len(data) > QUOTE_LIMIT else "")


def check_csv_text(handle: BinaryIO, path: str | Path) -> tuple[int, str]:
    """Checks that the open file ``path`` is a plain ASCII text file of reasonable lines; returns its size and sha256.

    Reads the file once, a megabyte at a time, so a huge or binary file is refused in bounded
    memory: compressed or binary content, non-ASCII bytes (another encoding) and overlong
    lines are named with their line and column before any CSV parser sees them.
    """
    digest = hashlib.sha256()
    size = 0
    line, line_length = 1, 0  # the line being read and its length so far
    name = PurePosixPath(str(path)).name
    head = handle.read(8)
    for magic, what in MAGIC.items():
        if head.startswith(magic):
            raise InputFileError(
                f"{path}: the file is {what}, not a CSV text file; unpack it first "
                f"(Kaggle's download is a zip archive holding {name})."
            )
    if not head:
        raise InputFileError(f"{path}: the file is empty; expected a CSV header and data rows.")
    handle.seek(0)
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if b"\0" in chunk or not chunk.isascii():
            at = next(i for i, byte in enumerate(chunk) if byte == 0 or byte > 127)
            before = chunk[:at]
            bad_line = line + before.count(b"\n")
            column = at - (before.rfind(b"\n") + 1) + 1 + (line_length if b"\n" not in before else 0)
            kind = "a NUL byte: binary content" if chunk[at] == 0 else "not ASCII: another text encoding?"
            raise InputFileError(
                f"{path}, line {bad_line}, character {column}: byte 0x{chunk[at]:02x} is {kind}. "
                "Expected a plain-text CSV of digits and commas."
            )
        pieces = chunk.split(b"\n")
        lengths = [line_length + len(pieces[0]), *map(len, pieces[1:])]
        longest = max(lengths[:-1], default=0) if len(pieces) > 1 else 0
        if max(longest, lengths[-1]) > MAX_LINE_LENGTH:
            index = next(i for i, n in enumerate(lengths) if n > MAX_LINE_LENGTH)
            start = pieces[index] if index else pieces[0]
            raise InputFileError(
                f"{path}, line {line + index}: longer than {MAX_LINE_LENGTH:,} characters, more than "
                f"any Kaggle row; it starts {_quote(start)}. Expected one image per line."
            )
        line += len(pieces) - 1
        line_length = lengths[-1]
    return size, digest.hexdigest()


ARCHIVES = {".zip": "unzip -o {archive} -d {folder}", ".gz": "gunzip -k {archive}"}


def _missing(path: Path | str, fs: Any, prefix: str = "") -> str:
    """Why ``path`` is not there (on ``fs``: a local disk, or a bucket whose URLs start with ``prefix``).

    Names the one command away where an archive of it lies next to it.
    """
    folder, name = str(path).rsplit("/", 1)
    path, shown = f"{prefix}{path}", f"{prefix}{folder}"
    how = "Pass the folder that holds Kaggle's train.csv, test.csv and sample_submission.csv with --params raw_dir=/path/to/folder."
    if fs.isfile(folder):
        return f"{path}: raw_dir '{shown}' is a file, not a folder. {how}"
    if not fs.isdir(folder):
        return f"{path}: the raw folder '{shown}' does not exist. {how}"
    archives = sorted(str(p) for p in fs.ls(folder, detail=False) if Path(str(p)).suffix in ARCHIVES and fs.isfile(p))
    if archives:
        names = [a.rsplit("/", 1)[-1] for a in archives]
        commands = "; ".join(ARCHIVES[Path(a).suffix].format(archive=f"{prefix}{a}", folder=shown) for a in archives)
        return f"{path}: file not found, but '{shown}' holds {', '.join(names)}: unpack it first ({commands})."
    return (
        f"{path}: file not found. Expected Kaggle's '{name}' in the raw folder "
        f"'{shown}'; pass the folder that holds train.csv, test.csv and "
        "sample_submission.csv with --params raw_dir=/path/to/folder."
    )


class KaggleCSVDataset(AbstractDataset[None, pd.DataFrame]):
    """Reads one of Kaggle's digit-recognizer CSV files, failing with a message that names it.

    The file is a local path or any fsspec URL (``s3://bucket/raw/train.csv``, with
    ``credentials`` its storage options), read, checked and hashed the same way. The loaded frame
    records its source in ``frame.attrs["source"]`` so that the validation node can name the file
    in its own messages. With ``optional: true`` a missing file loads as ``None`` (used for
    ``solution.csv``, which only the sample ships).
    """

    def __init__(
        self,
        *,
        filepath: str,
        optional: bool = False,
        load_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._url = is_url(filepath)
        self._filepath: Path | str = filepath if self._url else Path(filepath)
        self._options = dict(credentials or {}) if self._url else {}
        self._optional = optional
        self._load_args = dict(load_args or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "optional": self._optional}

    def _fs(self) -> tuple[Any, str]:
        """The file's filesystem (the local one, or a bucket's) and its path there."""
        from digit_recognizer.runstore.locations import filesystem

        return filesystem(str(self._filepath), **self._options)

    def load(self) -> pd.DataFrame | None:
        path = self._filepath
        fs, where = self._fs()
        if not fs.isfile(where):
            if self._optional:
                return None
            prefix = str(path).removesuffix(where) if self._url else ""
            raise InputFileError(_missing(where if self._url else path, fs, prefix))
        with fs.open(where, "rb") as handle:
            size, digest = check_csv_text(handle, path)
        try:
            frame = self._read(path)
        except Exception as exc:  # the CSV parser's own message says which line is wrong
            raise InputFileError(f"{path}: not a readable CSV file: {_first_line(exc)}") from exc
        frame.attrs.update(source=str(path), bytes=size, sha256=digest)
        if "label" in frame.columns:  # what the run record keeps of the classes
            counts = frame["label"].value_counts()
            frame.attrs["labels"] = {str(d): int(counts.get(d, 0)) for d in range(10)}
        return frame

    def _read(self, path: Path) -> pd.DataFrame:
        """Parses with the configured ``dtype`` (compact); without it if a cell does not fit.

        A value that is not a number, is missing or overflows the compact type then reaches
        the validation node as it is, and that node names its row and column.
        """
        options = {"storage_options": self._options} if self._url and self._options else {}
        try:
            return pd.read_csv(path, **options, **self._load_args)
        except (ValueError, OverflowError):
            if "dtype" not in self._load_args:
                raise
        return pd.read_csv(path, **options, **{k: v for k, v in self._load_args.items() if k != "dtype"})

    def save(self, data: None) -> None:
        raise InputFileError(f"{self._filepath}: raw input files are read-only.")

    def preview(self, nrows: int = 5) -> TablePreview:
        """The first rows, for kedro-viz."""
        if not self._exists():
            return TablePreview({"index": [], "columns": [], "data": []})
        options = {"storage_options": self._options} if self._url and self._options else {}
        return TablePreview(pd.read_csv(self._filepath, nrows=nrows, **options).to_dict(orient="split"))

    def _exists(self) -> bool:
        fs, where = self._fs()
        return bool(fs.isfile(where))


MODEL_FORMAT = "digit-recognizer-model"
MODEL_FORMAT_VERSION = 2  # 2: the preprocessing travels with the model


class TorchModelDataset(AbstractDataset[Any, Any]):
    """A trained model: its architecture, options, preprocessing and weights in one file.

    The file holds the model's :class:`~digit_recognizer.ml.model_config.ModelConfig` (its
    architecture, options and preprocessing: how raw pixels become its input) beside the
    weights; loading rebuilds the model from it with :func:`digit_recognizer.ml.models.build_model`,
    so a model file is usable without knowing how it was made. Versions come from wrapping it in a
    :class:`~digit_recognizer.framework.run_dataset.RunDataset`:

    .. code-block:: yaml

        conv.model:
          type: digit_recognizer.framework.RunDataset
          filepath: data/06_models/conv/model.pt
          dataset: digit_recognizer.framework.datasets.TorchModelDataset
    """

    def __init__(
        self, *, filepath: str, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._location, self._credentials = filepath, credentials or {}
        self._filepath = filepath if is_url(filepath) else Path(filepath)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def load(self) -> Any:
        import torch

        from digit_recognizer.ml.models import ModelConfig, build_model

        path = self._filepath
        try:
            if is_url(self._location):
                with _open(self._location, "rb", self._credentials) as handle:
                    payload = torch.load(io.BytesIO(handle.read()), map_location="cpu", weights_only=True)
            else:
                payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise InputFileError(f"{path}: not a readable model file (corrupt or truncated?): {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
            raise InputFileError(f"{path}: not a model saved by digit-recognizer (no '{MODEL_FORMAT}' header).")
        if payload.get("format_version") != MODEL_FORMAT_VERSION:
            raise InputFileError(
                f"{path}: model format version {payload.get('format_version')}, this code reads "
                f"version {MODEL_FORMAT_VERSION}."
            )
        architecture, options = payload["architecture"], payload["options"]
        try:
            config = ModelConfig.from_dict(payload)
            model = build_model(config.architecture, **config.options)
            model.load_state_dict(deepcopy(payload["state_dict"]))
            model.config = config
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise InputFileError(
                f"{path}: the weights do not fit architecture '{architecture}' with options {options}: {exc}"
            ) from exc
        return model.eval()

    def save(self, data: Any) -> None:
        import torch

        path = self._filepath
        config = getattr(data, "config", None)
        if config is None or config.preprocessing is None:
            raise InputFileError(
                f"{path}: the model has no preprocessing (model.config.preprocessing); without it "
                "nobody could feed it images the way it was trained."
            )
        payload = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            **config.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in data.state_dict().items()},
        }
        if not is_url(self._location):
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(payload, path)
            return
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        with _open(self._location, "wb", self._credentials) as handle:  # one PUT
            handle.write(buffer.getvalue())

    def preview(self) -> JSONPreview:
        """Architecture, options and size of the model, for kedro-viz."""
        from digit_recognizer.ml.models import count_parameters

        model = self.load()
        summary = {**model.config.to_dict(), "parameters": count_parameters(model)}
        return JSONPreview(json.dumps(summary))

    def _exists(self) -> bool:
        return self._filepath.is_file()


class HTMLDataset(AbstractDataset[str, str]):
    """One HTML page (the run report); kedro-viz shows it in the dataset's preview."""

    def __init__(
        self, *, filepath: str, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._location, self._credentials = filepath, credentials or {}
        self.metadata = metadata

    def load(self) -> str:
        with _open(self._location, "rb", self._credentials) as handle:
            return handle.read().decode("utf-8")

    def save(self, data: str) -> None:
        with _open(self._location, "wb", self._credentials) as handle:
            handle.write(data.encode("utf-8"))

    def preview(self) -> HTMLPreview:
        """The page itself, for kedro-viz."""
        return HTMLPreview(self.load() if self._exists() else "<p>No report yet: run the pipeline.</p>")

    def _exists(self) -> bool:
        if is_url(self._location):
            import fsspec

            fs, path = fsspec.core.url_to_fs(self._location, **self._credentials)
            return fs.exists(path)
        return Path(self._location).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._location}


def _open(location: str, mode: str, credentials: dict[str, Any] | None = None):
    """A local file (its folder made for a write) or an object through fsspec (one PUT on close)."""
    if not is_url(location):
        if "w" in mode:
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        return open(location, mode)
    import fsspec

    return fsspec.open(location, mode, **(credentials or {}))

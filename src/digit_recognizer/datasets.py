"""Project datasets: the raw Kaggle CSV reader and the versioned PyTorch model store."""

from __future__ import annotations

import json
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
import pandas as pd
from kedro.io.core import (
    AbstractDataset,
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)
from kedro_datasets._typing import JSONPreview, TablePreview


class KaggleCSVDataset(AbstractDataset[None, pd.DataFrame]):
    """Reads one of Kaggle's digit-recognizer CSV files, failing with a message that names it.

    The loaded frame records its source path in ``frame.attrs["source"]`` so that the
    validation node can name the file in its own messages. With ``optional: true`` a
    missing file loads as ``None`` (used for ``solution.csv``, which only the sample ships).
    """

    def __init__(
        self,
        *,
        filepath: str,
        optional: bool = False,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = Path(filepath)
        self._optional = optional
        self._load_args = dict(load_args or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "optional": self._optional}

    def load(self) -> pd.DataFrame | None:
        path = self._filepath
        if not path.is_file():
            if self._optional:
                return None
            raise DatasetError(
                f"{path}: file not found. Expected Kaggle's '{path.name}' in the raw folder "
                f"'{path.parent}'; pass the folder that holds train.csv, test.csv and "
                "sample_submission.csv with --params raw_dir=/path/to/folder."
            )
        if path.stat().st_size == 0:
            raise DatasetError(f"{path}: the file is empty; expected a CSV header and data rows.")
        try:
            frame = self._read(path)
        except Exception as exc:  # the CSV parser's own message says which line is wrong
            raise DatasetError(f"{path}: not a readable CSV file: {exc}") from exc
        frame.attrs["source"] = str(path)
        return frame

    def _read(self, path: Path) -> pd.DataFrame:
        """Parses with the configured ``dtype`` (compact); without it if a cell does not fit.

        A value that is not a number, is missing or overflows the compact type then reaches
        the validation node as it is, and that node names its row and column.
        """
        try:
            return pd.read_csv(path, **self._load_args)
        except (ValueError, OverflowError):
            if "dtype" not in self._load_args:
                raise
        return pd.read_csv(path, **{k: v for k, v in self._load_args.items() if k != "dtype"})

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._filepath}: raw input files are read-only.")

    def preview(self, nrows: int = 5) -> TablePreview:
        """The first rows, for kedro-viz."""
        if not self._filepath.is_file():
            return TablePreview({"index": [], "columns": [], "data": []})
        return TablePreview(pd.read_csv(self._filepath, nrows=nrows).to_dict(orient="split"))

    def _exists(self) -> bool:
        return self._filepath.is_file()


MODEL_FORMAT = "digit-recognizer-model"
MODEL_FORMAT_VERSION = 1


class TorchModelDataset(AbstractVersionedDataset[Any, Any]):
    """A trained model, stored as its architecture, its options and its weights in one file.

    Loading rebuilds the model with :func:`digit_recognizer.models.build_model` and loads the
    weights, so a model file is usable without knowing how it was made. The file is written
    to a temporary name and renamed into place, so a crash never leaves a half-written model
    where the next run would load it.
    """

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        if protocol != "file":
            raise DatasetError(f"TorchModelDataset stores models on the local disk only, not '{protocol}://'.")
        self._fs = fsspec.filesystem("file")
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "version": self._version}

    def load(self) -> Any:
        import torch

        from digit_recognizer.models import build_model

        path = Path(get_filepath_str(self._get_load_path(), "file"))
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise DatasetError(f"{path}: not a readable model file (corrupt or truncated?): {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
            raise DatasetError(f"{path}: not a model saved by digit-recognizer (no '{MODEL_FORMAT}' header).")
        if payload.get("format_version") != MODEL_FORMAT_VERSION:
            raise DatasetError(
                f"{path}: model format version {payload.get('format_version')}, this code reads "
                f"version {MODEL_FORMAT_VERSION}."
            )
        architecture, options = payload["architecture"], payload["options"]
        try:
            model = build_model(architecture, **options)
            model.load_state_dict(deepcopy(payload["state_dict"]))
        except (ValueError, RuntimeError, KeyError) as exc:
            raise DatasetError(
                f"{path}: the weights do not fit architecture '{architecture}' with options {options}: {exc}"
            ) from exc
        return model.eval()

    def save(self, data: Any) -> None:
        import torch

        path = Path(get_filepath_str(self._get_save_path(), "file"))
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "architecture": data.architecture,
            "options": dict(data.options),
            "state_dict": {k: v.detach().cpu() for k, v in data.state_dict().items()},
        }
        partial = path.with_name(f".{path.name}.partial")
        torch.save(payload, partial)
        partial.replace(path)

    def preview(self) -> JSONPreview:
        """Architecture, options and size of the latest model, for kedro-viz."""
        from digit_recognizer.models import count_parameters

        model = self.load()
        summary = {"architecture": model.architecture, "options": model.options, "parameters": count_parameters(model)}
        return JSONPreview(json.dumps(summary))

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), "file")
        except DatasetError:
            return False
        return self._fs.exists(path)

"""Project datasets: the raw Kaggle CSV reader and the versioned PyTorch model store."""

from __future__ import annotations

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
        self._load_args = {"engine": "pyarrow", **(load_args or {})}
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
            frame = pd.read_csv(path, **self._load_args)
        except Exception as exc:  # the CSV parser's own message says which line is wrong
            raise DatasetError(f"{path}: not a readable CSV file: {exc}") from exc
        frame.attrs["source"] = str(path)
        return frame

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._filepath}: raw input files are read-only.")

    def _exists(self) -> bool:
        return self._filepath.is_file()

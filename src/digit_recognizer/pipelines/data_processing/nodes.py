"""Nodes that turn Kaggle's raw CSV files into the tensors that training consumes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch.utils.data import TensorDataset

from digit_recognizer.config import NormalisationConfig, ParameterError, SplitConfig
from digit_recognizer.errors import UserError
from digit_recognizer.ml import plots
from digit_recognizer.ml.model_config import IMAGE_SIZE, N_PIXELS, Preprocessing

PIXEL_COLUMNS = [f"pixel{i}" for i in range(N_PIXELS)]
TRAIN_COLUMNS = ["label", *PIXEL_COLUMNS]
SUBMISSION_COLUMNS = ["ImageId", "Label"]


class RawDataError(UserError, ValueError):
    """Raised when a raw input file does not have Kaggle's digit-recognizer format."""


def _source(frame: pd.DataFrame, default: str) -> str:
    return frame.attrs.get("source", default)


def _where(row: int) -> str:
    """Position of a 0-based data row, as a user finds it in the file (the header is line 1)."""
    return f"line {row + 2} (data row {row + 1})"


def _check_columns(frame: pd.DataFrame, expected: list[str], source: str, what: str) -> None:
    columns = [str(c) for c in frame.columns]
    if columns == expected:
        return
    missing = [c for c in expected if c not in columns]
    unexpected = [c for c in columns if c not in expected]
    details = []
    if missing:
        details.append(f"missing {_shorten(missing)}")
    if unexpected:
        details.append(f"unexpected {_shorten(unexpected)}")
    if not details:
        first = next(i for i, (a, b) in enumerate(zip(columns, expected, strict=False)) if a != b)
        details.append(f"column {first + 1} is '{columns[first]}' where '{expected[first]}' belongs")
    hint = ""
    if "label" in unexpected:
        hint = " (Kaggle's test.csv has no label column)"
    elif "label" in missing:
        hint = " (the first column of train.csv must be the label)"
    raise RawDataError(
        f"{source}: expected {what} ({len(expected)} columns), found {len(columns)} columns: "
        f"{'; '.join(details)}{hint}."
    )


def _shorten(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_values(frame: pd.DataFrame, low: int, high: int, source: str, what: str) -> None:
    """Every cell is an integer in [low, high]; otherwise name the first bad cell."""
    if frame.empty:
        raise RawDataError(f"{source}: the file has a header but no data rows.")
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        bad = numeric.isna().to_numpy() | (numeric.to_numpy() % 1 != 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            got = values.iloc[row]
            shown = "an empty value (NaN)" if pd.isna(got) else repr(got) if isinstance(got, str) else str(got)
            raise RawDataError(
                f"{source}, {_where(row)}, column '{column}': expected an integer {what} {low}..{high}, got {shown}."
            )
    array = frame.to_numpy()
    out_of_range = (array < low) | (array > high)
    if out_of_range.any():
        row, col = np.argwhere(out_of_range)[0]
        raise RawDataError(
            f"{source}, {_where(int(row))}, column '{frame.columns[col]}': expected {what} "
            f"{low}..{high}, got {array[row, col]}."
        )


def validate_raw_data(
    train: pd.DataFrame,
    test: pd.DataFrame,
    sample_submission: pd.DataFrame,
    solution: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Checks Kaggle's raw files (and the optional solution.csv); returns the labelled and test digits as uint8."""
    train_source = _source(train, "train.csv")
    test_source = _source(test, "test.csv")
    submission_source = _source(sample_submission, "sample_submission.csv")

    _check_columns(train, TRAIN_COLUMNS, train_source, "'label' then pixel0..pixel783")
    _check_columns(test, PIXEL_COLUMNS, test_source, "pixel0..pixel783")
    _check_columns(sample_submission, SUBMISSION_COLUMNS, submission_source, "ImageId,Label")
    _check_values(train[["label"]], 0, 9, train_source, "label")
    _check_values(train[PIXEL_COLUMNS], 0, 255, train_source, "pixel value")
    _check_values(test, 0, 255, test_source, "pixel value")
    _check_image_ids(sample_submission, len(test), submission_source, test_source)
    _check_every_digit(train["label"].to_numpy(), train_source)
    if solution is not None:
        solution_source = _source(solution, "solution.csv")
        _check_columns(solution, SUBMISSION_COLUMNS, solution_source, "ImageId,Label")
        _check_image_ids(solution, len(test), solution_source, test_source)
        _check_values(solution[["Label"]], 0, 9, solution_source, "label")
    return train.astype(np.uint8), test.astype(np.uint8)


def _check_image_ids(table: pd.DataFrame, test_rows: int, source: str, test_source: str) -> None:
    """ImageId runs 1..N, one row per test image, in test.csv's row order."""
    _check_values(table[["ImageId"]], 1, max(test_rows, 1), source, "ImageId")
    if len(table) != test_rows:
        raise RawDataError(
            f"{source}: has {len(table)} rows but {test_source} has {test_rows}; expected one row per test image."
        )
    mismatch = np.flatnonzero(table["ImageId"].to_numpy() != np.arange(1, test_rows + 1))
    if mismatch.size:
        row = int(mismatch[0])
        raise RawDataError(
            f"{source}, {_where(row)}: ImageId is {table['ImageId'].iloc[row]}, expected {row + 1} "
            f"(ImageIds run 1..{test_rows} in {test_source}'s row order)."
        )


MIN_ROWS_PER_DIGIT = 2  # one to train on and one to validate with, at the least


def _check_every_digit(labels: np.ndarray, source: str) -> None:
    counts = np.bincount(labels.astype(np.int64), minlength=10)
    scarce = [f"{digit} ({count} rows)" for digit, count in enumerate(counts) if count < MIN_ROWS_PER_DIGIT]
    if scarce:
        raise RawDataError(
            f"{source}: too few rows of digit(s) {', '.join(scarce)}; every digit 0-9 needs at least "
            f"{MIN_ROWS_PER_DIGIT} labelled rows, or the model can never learn to predict it."
        )


def plot_sample_digits(validated_train: pd.DataFrame) -> Figure:
    """A grid of the first few training images of every digit."""
    return plots.sample_digits(validated_train[PIXEL_COLUMNS].to_numpy(), validated_train["label"].to_numpy())


def stratified_split(validated_train: pd.DataFrame, split: SplitConfig) -> pd.DataFrame:
    """Assigns each labelled row to 'train' or 'validation', keeping class proportions."""
    labels = validated_train["label"].to_numpy()
    rows = np.arange(len(labels))
    counts = np.bincount(labels, minlength=10)
    validation_rows_per_digit = counts * split.validation_fraction
    if (validation_rows_per_digit < 1).any() or (counts - validation_rows_per_digit < 1).any():
        digit = int(np.argmin(counts))
        raise ParameterError(
            f"split.validation_fraction={split.validation_fraction} cannot hold out a share of each digit: "
            f"digit {digit} has only {counts[digit]} labelled rows. Use more data or another fraction."
        )
    # Imported here: scikit-learn (with SciPy) takes 0.9 s to import, paid only by the runs that split.
    from sklearn.model_selection import train_test_split

    _, validation_rows = train_test_split(
        rows, test_size=split.validation_fraction, stratify=labels, random_state=split.seed
    )
    subset = np.full(len(labels), "train", dtype=object)
    subset[validation_rows] = "validation"
    return pd.DataFrame({"row": rows.astype(np.int32), "subset": subset})


def normalise_images(
    validated_train: pd.DataFrame, split: pd.DataFrame, normalisation: NormalisationConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Scales the train and validation pixels to [0, 1]; standardises with train-split statistics."""
    # pandas stores a frame column by column; one uint8 copy into row order makes every
    # later step (row selection, scaling, the N×1×28×28 view) fast and copy-free.
    pixels = np.ascontiguousarray(validated_train[PIXEL_COLUMNS].to_numpy())
    is_validation = is_validation_row(split)
    train_pixels = pixels[~is_validation]
    preprocessing = Preprocessing.fit(train_pixels, normalisation.standardise)
    stats = {**preprocessing.to_dict(), "standardise": normalisation.standardise}
    return preprocessing.apply(train_pixels), preprocessing.apply(pixels[is_validation]), stats


def is_validation_row(split: pd.DataFrame) -> np.ndarray:
    """The split as a boolean mask over the labelled rows: True where a row is held out."""
    return split["subset"].to_numpy() == "validation"


def _as_images(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)


def build_tensor_datasets(
    normalised_train: np.ndarray,
    normalised_validation: np.ndarray,
    validated_train: pd.DataFrame,
    split: pd.DataFrame,
) -> tuple[TensorDataset, TensorDataset]:
    """Wraps the pixels as N×1×28×28 float32 images (no copy) with their int64 labels."""
    labels = validated_train["label"].to_numpy().astype(np.int64)
    is_validation = is_validation_row(split)
    train_set = TensorDataset(_as_images(normalised_train), torch.from_numpy(labels[~is_validation]))
    validation_set = TensorDataset(_as_images(normalised_validation), torch.from_numpy(labels[is_validation]))
    return train_set, validation_set

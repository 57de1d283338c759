"""Nodes that turn Kaggle's raw CSV files into the tensors that training consumes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from digit_recognizer import plots

IMAGE_SIZE = 28
PIXEL_COLUMNS = [f"pixel{i}" for i in range(IMAGE_SIZE * IMAGE_SIZE)]
TRAIN_COLUMNS = ["label", *PIXEL_COLUMNS]
SUBMISSION_COLUMNS = ["ImageId", "Label"]


class RawDataError(ValueError):
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
    train: pd.DataFrame, test: pd.DataFrame, sample_submission: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Checks Kaggle's three raw files and returns the labelled and test digits as uint8."""
    train_source = _source(train, "train.csv")
    test_source = _source(test, "test.csv")
    submission_source = _source(sample_submission, "sample_submission.csv")

    _check_columns(train, TRAIN_COLUMNS, train_source, "'label' then pixel0..pixel783")
    _check_columns(test, PIXEL_COLUMNS, test_source, "pixel0..pixel783")
    _check_columns(sample_submission, SUBMISSION_COLUMNS, submission_source, "ImageId,Label")
    _check_values(train[["label"]], 0, 9, train_source, "label")
    _check_values(train[PIXEL_COLUMNS], 0, 255, train_source, "pixel value")
    _check_values(test, 0, 255, test_source, "pixel value")
    _check_values(sample_submission[["ImageId"]], 1, max(len(test), 1), submission_source, "ImageId")

    if len(sample_submission) != len(test):
        raise RawDataError(
            f"{submission_source}: has {len(sample_submission)} rows but {test_source} has "
            f"{len(test)}; expected one row per test image."
        )
    expected_ids = np.arange(1, len(test) + 1)
    mismatch = np.flatnonzero(sample_submission["ImageId"].to_numpy() != expected_ids)
    if mismatch.size:
        row = int(mismatch[0])
        raise RawDataError(
            f"{submission_source}, {_where(row)}: ImageId is "
            f"{sample_submission['ImageId'].iloc[row]}, expected {row + 1} "
            f"(ImageIds run 1..{len(test)} in {test_source}'s row order)."
        )
    return train.astype(np.uint8), test.astype(np.uint8)


def plot_sample_digits(validated_train: pd.DataFrame) -> Figure:
    """A grid of the first few training images of every digit."""
    return plots.sample_digits(validated_train[PIXEL_COLUMNS].to_numpy(), validated_train["label"].to_numpy())


def stratified_split(validated_train: pd.DataFrame, validation_fraction: float, seed: int) -> pd.DataFrame:
    """Assigns each labelled row to 'train' or 'validation', keeping class proportions."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"split.validation_fraction must lie strictly between 0 and 1, got {validation_fraction}.")
    labels = validated_train["label"].to_numpy()
    rows = np.arange(len(labels))
    try:
        _, validation_rows = train_test_split(rows, test_size=validation_fraction, stratify=labels, random_state=seed)
    except ValueError as exc:
        raise ValueError(
            f"Cannot split {len(labels)} labelled rows with validation_fraction="
            f"{validation_fraction} keeping class proportions: {exc}"
        ) from exc
    subset = np.full(len(labels), "train", dtype=object)
    subset[validation_rows] = "validation"
    return pd.DataFrame({"row": rows.astype(np.int32), "subset": subset})


def normalise_images(
    validated_train: pd.DataFrame,
    validated_test: pd.DataFrame,
    split: pd.DataFrame,
    standardise: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """Scales the train, validation and test pixels to [0, 1]; standardises with train-split statistics."""
    # pandas stores a frame column by column; one uint8 copy into row order makes every
    # later step (row selection, scaling, the N×1×28×28 view) fast and copy-free.
    pixels = np.ascontiguousarray(validated_train[PIXEL_COLUMNS].to_numpy())
    is_validation = _is_validation(split)
    subsets = [
        pixels[~is_validation],
        pixels[is_validation],
        np.ascontiguousarray(validated_test[PIXEL_COLUMNS].to_numpy()),
    ]
    train, validation, test = (subset.astype(np.float32) for subset in subsets)
    for array in (train, validation, test):
        array /= np.float32(255)  # in place: ten times faster than a mixed uint8/float32 divide
    mean, std = 0.0, 1.0
    if standardise:
        mean, std = float(train.mean(dtype=np.float64)), float(train.std(dtype=np.float64))
        for array in (train, validation, test):
            array -= mean
            array /= std
    stats = {"scale": 255.0, "mean": mean, "std": std, "standardise": bool(standardise)}
    return train, validation, test, stats


def _is_validation(split: pd.DataFrame) -> np.ndarray:
    return split["subset"].to_numpy() == "validation"


def _as_images(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)


def build_tensor_datasets(
    normalised_train: np.ndarray,
    normalised_validation: np.ndarray,
    normalised_test: np.ndarray,
    validated_train: pd.DataFrame,
    split: pd.DataFrame,
) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    """Wraps the pixels as N×1×28×28 float32 images (no copy) with their int64 labels."""
    labels = validated_train["label"].to_numpy().astype(np.int64)
    is_validation = _is_validation(split)
    train_set = TensorDataset(_as_images(normalised_train), torch.from_numpy(labels[~is_validation]))
    validation_set = TensorDataset(_as_images(normalised_validation), torch.from_numpy(labels[is_validation]))
    test_set = TensorDataset(_as_images(normalised_test))
    return train_set, validation_set, test_set

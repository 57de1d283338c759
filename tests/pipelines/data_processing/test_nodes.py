from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from digit_recognizer.config import NormalisationConfig, SplitConfig
from digit_recognizer.pipelines.data_processing.nodes import (
    PIXEL_COLUMNS,
    RawDataError,
    build_tensor_datasets,
    normalise_images,
    stratified_split,
    validate_raw_data,
)


def _validate(frames):
    return validate_raw_data(frames["train"], frames["test"], frames["sample_submission"], frames.get("solution"))


def _split(train, fraction=0.2, seed=0):
    return stratified_split(train, SplitConfig(validation_fraction=fraction, seed=seed))


def _named(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    frame.attrs["source"] = source
    return frame


class TestValidateRawData:
    def test_valid_files_become_uint8(self, raw_frames):
        train, test = _validate(raw_frames)
        assert train.shape == (300, 785) and test.shape == (100, 784)
        assert set(train.dtypes) == {np.dtype(np.uint8)} and set(test.dtypes) == {np.dtype(np.uint8)}
        np.testing.assert_array_equal(train.to_numpy(), raw_frames["train"].to_numpy())

    def test_messages_name_the_source_file(self, raw_frames):
        raw_frames["train"].loc[3, "pixel7"] = 300
        _named(raw_frames["train"], "/data/kaggle/train.csv")
        with pytest.raises(RawDataError, match=r"^/data/kaggle/train\.csv, line 5 \(data row 4\)"):
            _validate(raw_frames)

    def test_header_only(self, raw_frames):
        raw_frames["train"] = raw_frames["train"].iloc[:0]
        with pytest.raises(RawDataError, match=r"train\.csv: the file has a header but no data rows"):
            _validate(raw_frames)

    def test_missing_pixel_column(self, raw_frames):
        raw_frames["test"] = raw_frames["test"].drop(columns="pixel783")
        with pytest.raises(
            RawDataError,
            match=r"test\.csv: expected pixel0\.\.pixel783 \(784 columns\), found 783 columns: missing 'pixel783'",
        ):
            _validate(raw_frames)

    def test_label_column_in_test(self, raw_frames):
        raw_frames["test"].insert(0, "label", 1)
        with pytest.raises(
            RawDataError, match=r"test\.csv: .*unexpected 'label' \(Kaggle's test\.csv has no label column\)"
        ):
            _validate(raw_frames)

    def test_no_label_column_in_train(self, raw_frames):
        raw_frames["train"] = raw_frames["train"].drop(columns="label")
        with pytest.raises(
            RawDataError, match=r"train\.csv: .*missing 'label' \(the first column of train\.csv must be the label\)"
        ):
            _validate(raw_frames)

    def test_columns_out_of_order(self, raw_frames):
        columns = list(raw_frames["test"].columns)
        columns[0], columns[1] = columns[1], columns[0]
        raw_frames["test"] = raw_frames["test"][columns]
        with pytest.raises(RawDataError, match=r"column 1 is 'pixel1' where 'pixel0' belongs"):
            _validate(raw_frames)

    def test_non_numeric_value(self, raw_frames):
        train = raw_frames["train"].astype(object)
        train.loc[10, "pixel100"] = "abc"
        raw_frames["train"] = train
        with pytest.raises(
            RawDataError,
            match=r"train\.csv, line 12 \(data row 11\), column 'pixel100': expected an integer pixel value 0\.\.255, got 'abc'",
        ):
            _validate(raw_frames)

    def test_nan_value(self, raw_frames):
        test = raw_frames["test"].astype(float)
        test.loc[0, "pixel5"] = np.nan
        raw_frames["test"] = test
        with pytest.raises(
            RawDataError, match=r"test\.csv, line 2 \(data row 1\), column 'pixel5': .*got an empty value \(NaN\)"
        ):
            _validate(raw_frames)

    def test_fractional_value(self, raw_frames):
        test = raw_frames["test"].astype(float)
        test.loc[2, "pixel9"] = 0.5
        raw_frames["test"] = test
        with pytest.raises(RawDataError, match=r"column 'pixel9': expected an integer pixel value 0\.\.255, got 0\.5"):
            _validate(raw_frames)

    @pytest.mark.parametrize("value", [256, -1])
    def test_pixel_out_of_range(self, raw_frames, value):
        raw_frames["test"].loc[7, "pixel400"] = value
        with pytest.raises(
            RawDataError,
            match=rf"test\.csv, line 9 \(data row 8\), column 'pixel400': expected pixel value 0\.\.255, got {value}",
        ):
            _validate(raw_frames)

    @pytest.mark.parametrize(
        ("frame", "row", "column", "value"), [("train", 0, "label", 10), ("solution", 3, "Label", 12)]
    )
    def test_label_out_of_range(self, raw_frames, frame, row, column, value):
        raw_frames[frame].loc[row, column] = value
        where = rf"{frame}\.csv, line {row + 2} \(data row {row + 1}\), column '{column}'"
        with pytest.raises(RawDataError, match=rf"{where}: expected label 0\.\.9, got {value}"):
            _validate(raw_frames)

    def test_sample_submission_length_mismatch(self, raw_frames):
        raw_frames["sample_submission"] = raw_frames["sample_submission"].head(99)
        with pytest.raises(
            RawDataError,
            match=r"sample_submission\.csv: has 99 rows but test\.csv has 100; expected one row per test image",
        ):
            _validate(raw_frames)

    def test_sample_submission_ids_out_of_order(self, raw_frames):
        ids = raw_frames["sample_submission"]["ImageId"].to_numpy().copy()
        ids[[4, 5]] = ids[[5, 4]]
        raw_frames["sample_submission"]["ImageId"] = ids
        with pytest.raises(
            RawDataError, match=r"sample_submission\.csv, line 6 \(data row 5\): ImageId is 6, expected 5"
        ):
            _validate(raw_frames)

    def test_sample_submission_columns(self, raw_frames):
        raw_frames["sample_submission"] = raw_frames["sample_submission"].rename(columns={"Label": "label"})
        with pytest.raises(RawDataError, match=r"sample_submission\.csv: expected ImageId,Label"):
            _validate(raw_frames)

    def test_solution_is_checked_up_front(self, raw_frames):
        raw_frames["solution"] = _named(raw_frames["solution"].rename(columns={"ImageId": "Id"}), "/k/solution.csv")
        with pytest.raises(RawDataError, match=r"/k/solution\.csv: expected ImageId,Label .*missing 'ImageId'"):
            _validate(raw_frames)

    def test_every_digit_needs_rows(self, raw_frames):
        train = raw_frames["train"]
        raw_frames["train"] = _named(train[train["label"] != 7].reset_index(drop=True), "/k/train.csv")
        with pytest.raises(
            RawDataError, match=r"/k/train\.csv: too few rows of digit\(s\) 7 \(0 rows\); every digit 0-9"
        ):
            _validate(raw_frames)


def test_stratified_split_keeps_class_proportions(raw_frames):
    train, _ = _validate(raw_frames)
    split = _split(train, 0.2, seed=1)
    assert list(split.columns) == ["row", "subset"] and len(split) == 300
    assert (split["subset"] == "validation").sum() == 60
    counts = pd.crosstab(train["label"], split["subset"])
    share = counts["validation"] / counts.sum(axis=1)
    assert share.between(0.1, 0.3).all()
    assert split.equals(_split(train, 0.2, seed=1))
    assert not split.equals(_split(train, 0.2, seed=2))


def test_stratified_split_needs_rows_of_each_digit_on_both_sides(raw_frames):
    train, _ = _validate(raw_frames)
    with pytest.raises(ValueError, match=r"split.validation_fraction=0.01 cannot hold out a share of each digit"):
        _split(train, 0.01)


def test_normalise_scales_each_subset_to_unit_range(raw_frames):
    train, _ = _validate(raw_frames)
    split = _split(train)
    train_x, valid_x, stats = normalise_images(train, split, NormalisationConfig(standardise=False))
    assert train_x.dtype == valid_x.dtype == np.float32
    assert train_x.shape == (240, 784) and valid_x.shape == (60, 784)
    assert train_x.min() == 0.0 and train_x.max() == 1.0
    is_validation = split["subset"].to_numpy() == "validation"
    pixels = train[PIXEL_COLUMNS].to_numpy()
    np.testing.assert_allclose(valid_x, pixels[is_validation] / 255, rtol=1e-6)
    assert stats == {"scale": 255.0, "mean": 0.0, "std": 1.0, "standardise": False}


def test_standardise_uses_training_split_only(raw_frames):
    train, _ = _validate(raw_frames)
    split = _split(train)
    train_x, valid_x, stats = normalise_images(train, split, NormalisationConfig(standardise=True))
    assert abs(train_x.mean()) < 1e-4 and abs(train_x.std() - 1) < 1e-3
    train_only = train[PIXEL_COLUMNS].to_numpy()[split["subset"].to_numpy() == "train"] / 255
    assert stats["mean"] == pytest.approx(train_only.mean(), rel=1e-5)
    assert abs(valid_x.mean()) > 1e-4  # validation rows were scaled with the train statistics, not their own


def test_build_tensor_datasets(raw_frames):
    train, _ = _validate(raw_frames)
    split = _split(train)
    train_x, valid_x, _ = normalise_images(train, split, NormalisationConfig())
    train_set, validation_set = build_tensor_datasets(train_x, valid_x, train, split)
    images, labels = train_set.tensors
    assert images.shape == (240, 1, 28, 28) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and validation_set.tensors[0].shape == (60, 1, 28, 28)
    first_validation_row = int(split.loc[split["subset"] == "validation", "row"].iloc[0])
    assert validation_set.tensors[1][0] == train["label"].iloc[first_validation_row]
    np.testing.assert_allclose(
        validation_set.tensors[0][0].flatten().numpy(), train[PIXEL_COLUMNS].iloc[first_validation_row] / 255, rtol=1e-6
    )
    assert images.data_ptr() == torch.from_numpy(train_x).data_ptr()  # wrapped, not copied

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
import torch
from kedro.io import DatasetError

from digit_recognizer.framework import RunDataset
from digit_recognizer.framework.datasets import KaggleCSVDataset, TorchModelDataset
from digit_recognizer.ml.models import Preprocessing, build_model


def _model(architecture: str, **options) -> torch.nn.Module:
    """A model as training leaves it: with the preprocessing it was trained with."""
    model = build_model(architecture, **options)
    model.config = model.config.trained_with(Preprocessing(mean=0.13, std=0.31))
    return model


class TestKaggleCSVDataset:
    def test_loads_and_records_its_source(self, tmp_path):
        path = tmp_path / "test.csv"
        path.write_text("pixel0,pixel1\n0,255\n")
        frame = KaggleCSVDataset(filepath=str(path)).load()
        assert frame.to_dict("list") == {"pixel0": [0], "pixel1": [255]}
        assert frame.attrs["source"] == str(path)

    def test_missing_file_names_it_and_says_how_to_fix(self, tmp_path):
        path = tmp_path / "train.csv"
        with pytest.raises(DatasetError, match=rf"{path}: file not found\. Expected Kaggle's 'train\.csv'.*raw_dir="):
            KaggleCSVDataset(filepath=str(path)).load()

    def test_optional_missing_file_loads_as_none(self, tmp_path):
        assert KaggleCSVDataset(filepath=str(tmp_path / "solution.csv"), optional=True).load() is None

    def test_empty_file(self, tmp_path):
        path = tmp_path / "test.csv"
        path.write_text("")
        with pytest.raises(DatasetError, match=rf"{path}: the file is empty"):
            KaggleCSVDataset(filepath=str(path)).load()

    def test_ragged_rows(self, tmp_path):
        path = tmp_path / "test.csv"
        path.write_text("pixel0,pixel1\n0,1\n2,3,4\n")
        with pytest.raises(DatasetError, match=rf"{path}: not a readable CSV file: .*line 3"):
            KaggleCSVDataset(filepath=str(path)).load()

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"\x1f\x8b\x08\x00" + bytes(100), r"the file is gzip-compressed, not a CSV text file; unpack it first"),
            (b"PK\x03\x04" + bytes(100), r"the file is a zip archive"),
            (b"pixel0,pixel1\n0,1\n\x00\x00\x00", r"line 3, character 1: byte 0x00 is a NUL byte: binary content"),
            (b"pixel0,pixel1\n0,1\n2,\xe9\n", r"line 3, character 3: byte 0xe9 is not ASCII: another text encoding\?"),
            (
                b"pixel0,pixel1\n0," + b"7" * 20_000 + b"\n",
                r"line 2: longer than 8,192 characters, more than any Kaggle row",
            ),
        ],
    )
    def test_binary_compressed_and_overlong_content(self, tmp_path, content, message):
        path = tmp_path / "train.csv"
        path.write_bytes(content)
        with pytest.raises(DatasetError, match=rf"{path}.*{message}") as error:
            KaggleCSVDataset(filepath=str(path)).load()
        assert len(str(error.value)) < 600  # quotes at most ~200 characters of the file

    def test_a_huge_binary_file_is_refused_at_once(self, tmp_path):
        path = tmp_path / "train.csv"
        with open(path, "wb") as handle:  # 2 GB of NUL bytes, sparse on disk
            handle.truncate(2 << 30)
        with pytest.raises(DatasetError, match="NUL byte"):
            KaggleCSVDataset(filepath=str(path)).load()

    def test_records_size_and_digest(self, tmp_path):
        path = tmp_path / "test.csv"
        path.write_bytes(b"pixel0\n7\n")
        frame = KaggleCSVDataset(filepath=str(path)).load()
        assert frame.attrs["bytes"] == 9
        assert frame.attrs["sha256"] == hashlib.sha256(b"pixel0\n7\n").hexdigest()

    def test_is_read_only(self, tmp_path):
        with pytest.raises(DatasetError, match="read-only"):
            KaggleCSVDataset(filepath=str(tmp_path / "x.csv")).save(pd.DataFrame({"a": [1]}))


class TestTorchModelDataset:
    @pytest.mark.parametrize(
        ("architecture", "options"),
        [("linear", {"head": "regression"}), ("mlp", {"hidden": 7}), ("conv", {"batchnorm": True}), ("centroid", {})],
    )
    def test_round_trip_rebuilds_the_model(self, tmp_path, architecture, options):
        torch.manual_seed(0)
        model = _model(architecture, **options)
        dataset = TorchModelDataset(filepath=str(tmp_path / "model.pt"))
        dataset.save(model)
        loaded = dataset.load()
        assert type(loaded) is type(model) and loaded.config.options == model.config.options and not loaded.training
        assert options.items() <= loaded.config.options.items()  # given options kept, the defaults filled in
        assert loaded.config.preprocessing == Preprocessing(mean=0.13, std=0.31)
        for (name, expected), (_, actual) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
            assert torch.equal(expected, actual), name
        images = torch.rand(3, 1, 28, 28)
        model.eval()
        assert torch.equal(model(images), loaded(images))

    def test_versions_are_kept_by_the_run_dataset_around_it(self, tmp_path):
        def versioned(load=None, save=None) -> RunDataset:
            dataset = RunDataset(
                filepath=str(tmp_path / "model.pt"), dataset=f"{TorchModelDataset.__module__}.TorchModelDataset"
            )
            if save:
                dataset.bind("conv.model", load, save, journal=None)
            return dataset

        versioned(save="2026-01-01T00.00.00.000Z").save(_model("linear"))
        versioned(save="2026-01-02T00.00.00.000Z").save(_model("mlp"))
        assert versioned().load().config.architecture == "mlp"
        assert versioned("2026-01-01T00.00.00.000Z", "2026-01-03T00.00.00.000Z").load().config.architecture == "linear"

    def test_truncated_file_gives_a_clear_error(self, tmp_path):
        path = tmp_path / "model.pt"
        TorchModelDataset(filepath=str(path)).save(_model("conv"))
        path.write_bytes(path.read_bytes()[:500])
        with pytest.raises(DatasetError, match=rf"{path}: not a readable model file \(corrupt or truncated\?\)"):
            TorchModelDataset(filepath=str(path)).load()

    def test_foreign_file_gives_a_clear_error(self, tmp_path):
        path = tmp_path / "model.pt"
        torch.save(build_model("linear").state_dict(), path)
        with pytest.raises(DatasetError, match="not a model saved by digit-recognizer"):
            TorchModelDataset(filepath=str(path)).load()

    def test_mismatched_weights_give_a_clear_error(self, tmp_path):
        path = tmp_path / "model.pt"
        dataset = TorchModelDataset(filepath=str(path))
        dataset.save(_model("mlp", hidden=30))
        payload = torch.load(path, weights_only=True)
        payload["options"] = {"hidden": 31}
        torch.save(payload, path)
        with pytest.raises(
            DatasetError, match=r"the weights do not fit architecture 'mlp' with options \{'hidden': 31\}"
        ):
            dataset.load()

    def test_a_model_without_preprocessing_is_not_saved(self, tmp_path):
        with pytest.raises(DatasetError, match="the model has no preprocessing"):
            TorchModelDataset(filepath=str(tmp_path / "model.pt")).save(build_model("linear"))
        assert not (tmp_path / "model.pt").exists()

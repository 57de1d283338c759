from __future__ import annotations

import pandas as pd
import pytest
import torch
from kedro.io import DatasetError, Version

from digit_recognizer.datasets import KaggleCSVDataset, TorchModelDataset
from digit_recognizer.models import build_model


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
        model = build_model(architecture, **options)
        dataset = TorchModelDataset(filepath=str(tmp_path / "model.pt"))
        dataset.save(model)
        loaded = dataset.load()
        assert type(loaded) is type(model) and loaded.options == options and not loaded.training
        for (name, expected), (_, actual) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
            assert torch.equal(expected, actual), name
        images = torch.rand(3, 1, 28, 28)
        model.eval()
        assert torch.equal(model(images), loaded(images))

    def test_versions_are_kept(self, tmp_path):
        path = str(tmp_path / "model.pt")
        first = TorchModelDataset(filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z"))
        first.save(build_model("linear"))
        TorchModelDataset(filepath=path, version=Version(None, "2026-01-02T00.00.00.000Z")).save(build_model("mlp"))
        assert TorchModelDataset(filepath=path, version=Version(None, None)).load().architecture == "mlp"
        assert (
            TorchModelDataset(filepath=path, version=Version("2026-01-01T00.00.00.000Z", None)).load().architecture
            == "linear"
        )
        assert not list(tmp_path.rglob("*.partial"))

    def test_truncated_file_gives_a_clear_error(self, tmp_path):
        path = tmp_path / "model.pt"
        TorchModelDataset(filepath=str(path)).save(build_model("conv"))
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
        dataset.save(build_model("mlp", hidden=30))
        payload = torch.load(path, weights_only=True)
        payload["options"] = {"hidden": 31}
        torch.save(payload, path)
        with pytest.raises(
            DatasetError, match=r"the weights do not fit architecture 'mlp' with options \{'hidden': 31\}"
        ):
            dataset.load()

"""The registered pipelines, run on an in-memory catalog with a few hundred real digits."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro.validation.parameter_validator import ParameterValidator

from digit_recognizer.pipeline_registry import register_pipelines

from ..conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def parameters() -> dict:
    params = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")["parameters"]
    for name in ("linear", "mlp", "conv", "cnn", "fast", "cnn_seed1", "cnn_seed2"):
        params[name].update(epochs=1, progress_bar=False)
    return params


class KeptDataset(MemoryDataset):
    """An in-memory dataset that keeps its data after the runner releases it."""

    def _release(self) -> None:
        pass


def _catalog(raw_frames: dict, parameters: dict, keep: tuple[str, ...] = ()) -> DataCatalog:
    """The raw frames and the parameters, typed as a Kedro session types them (kedro.validation)."""
    parameters = ParameterValidator(register_pipelines()).validate_raw_params(parameters)
    catalog = DataCatalog()
    catalog["run"] = {"run_id": "test-run"}
    catalog["cpu_share"] = 1
    for name in keep:
        catalog[name] = KeptDataset()
    for name, frame in raw_frames.items():
        catalog[f"raw_{name}"] = frame
    for key, value in parameters.items():
        catalog[f"params:{key}"] = MemoryDataset(value, copy_mode="assign")
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                catalog[f"params:{key}.{inner}"] = MemoryDataset(inner_value, copy_mode="assign")
    return catalog


def test_registry_names():
    pipelines = register_pipelines()
    assert set(pipelines) == {
        "data_processing",
        "linear",
        "mlp",
        "conv",
        "cnn",
        "fast",
        "centroid",
        "ensemble",
        "lr_finder",
        "reporting",
        "__default__",
    }
    conv_nodes = {n.name for n in pipelines["conv"].nodes}
    assert {"validate_raw_data", "conv.train_model", "conv.make_submission"} <= conv_nodes
    assert not any(name.startswith(("linear.", "mlp.")) for name in conv_nodes)
    assert "conv.find_learning_rate" not in conv_nodes  # the finder runs only when asked for
    assert "conv.find_learning_rate" in {n.name for n in pipelines["lr_finder"].nodes}
    assert pipelines["conv"].inputs() >= {
        "raw_train",
        "raw_test",
        "raw_sample_submission",
        "raw_solution",
        "params:conv",
    }


def test_data_processing_pipeline(raw_frames, parameters):
    outputs = SequentialRunner().run(register_pipelines()["data_processing"], _catalog(raw_frames, parameters))
    train_set, validation_set = outputs["train_set"].load(), outputs["validation_set"].load()
    assert len(train_set) == 240 and len(validation_set) == 60
    assert train_set.tensors[0].shape == (240, 1, 28, 28)
    assert set(train_set.tensors[1].tolist()) == set(range(10))


def test_conv_pipeline_writes_a_scored_submission(raw_frames, parameters):
    catalog = _catalog(raw_frames, parameters, keep=("conv.submission", "conv.model"))
    outputs = SequentialRunner().run(register_pipelines()["conv"], catalog)
    submission = catalog["conv.submission"].load()
    assert list(submission.columns) == ["ImageId", "Label"] and len(submission) == 100
    assert submission["ImageId"].tolist() == list(range(1, 101))
    summary = outputs["conv_summary"].load()
    assert summary["architecture"] == "conv" and summary["epochs"] == 1
    assert 0 <= summary["test_score"] <= 1
    model = catalog["conv.model"].load()
    assert model.config.architecture == "conv" and model.config.preprocessing.scale == 255.0


def test_full_pipeline_builds_the_leaderboard(raw_frames, parameters):
    catalog = _catalog(raw_frames, parameters, keep=("leaderboard",))
    SequentialRunner().run(register_pipelines()["__default__"], catalog)
    leaderboard = catalog["leaderboard"].load()
    assert sorted(leaderboard["architecture"]) == ["centroid", "cnn", "conv", "fast", "linear", "mlp"]
    assert leaderboard["validation_accuracy"].is_monotonic_decreasing
    assert set(leaderboard.columns) >= {"validation_accuracy", "test_score", "parameters", "training_seconds", "run"}
    assert set(leaderboard["run"]) == {"test-run"}


def test_ensemble_trains_its_members_and_averages_them(raw_frames, parameters):
    members = ("cnn", "cnn_seed1", "cnn_seed2")
    keep = ("ensemble_test_probabilities", "ensemble.leaderboard", *(f"{m}_test_probabilities" for m in members))
    catalog = _catalog(raw_frames, parameters, keep=keep)
    outputs = SequentialRunner().run(register_pipelines()["ensemble"], catalog)
    mean = sum(catalog[f"{m}_test_probabilities"].load().to_numpy() for m in members) / 3
    assert np.allclose(catalog["ensemble_test_probabilities"].load().to_numpy(), mean, atol=1e-6)
    leaderboard = catalog["ensemble.leaderboard"].load()
    assert sorted(leaderboard["member"]) == ["cnn", "cnn_seed1", "cnn_seed2", "ensemble"]
    summary = outputs["ensemble_summary"].load()
    assert summary["architecture"] == "ensemble" and summary["parameters"] == 3 * 72_666

"""Adding an architecture is one registry entry: the config, the pipelines and the leaderboard follow."""

from __future__ import annotations

import pytest
from kedro.runner import SequentialRunner
from torch import nn

from digit_recognizer.config import ParameterError, TrainingConfig, check_parameters
from digit_recognizer.ml.model_config import N_PIXELS
from digit_recognizer.ml.models import N_CLASSES
from digit_recognizer.ml.registry import ARCHITECTURES, Options, build_model, register
from digit_recognizer.pipeline_registry import register_pipelines

from .pipelines.test_pipelines import _catalog


class ToyOptions(Options):
    width: int = 8


@pytest.fixture
def toy():
    """The README's example: an options model and a decorated class; removed again afterwards."""

    @register("toy", options=ToyOptions)
    class ToyNet(nn.Sequential):
        def __init__(self, width: int = 8) -> None:
            super().__init__(nn.Flatten(), nn.Linear(N_PIXELS, width), nn.ReLU(), nn.Linear(width, N_CLASSES))

    yield ToyNet
    del ARCHITECTURES["toy"]


def test_a_registered_architecture_gets_config_pipelines_and_a_leaderboard_row(toy, raw_frames):
    model = build_model("toy", width=4)
    assert isinstance(model, toy) and model.config.options == {"width": 4} and model.config.architecture == "toy"

    block = {"architecture": "toy", "model": {"width": 3}, "epochs": 1, "progress_bar": False}
    assert TrainingConfig.model_validate(block).options() == ToyOptions(width=3)
    with pytest.raises(ParameterError, match=r"toy\.model\.widht: unknown key"):
        check_parameters({"toy": {**block, "model": {"widht": 3}}})

    pipelines = register_pipelines()
    assert "toy.train_model" in {n.name for n in pipelines["toy"].nodes}
    assert "toy.find_learning_rate" in {n.name for n in pipelines["lr_finder"].nodes}
    assert "toy_summary" in pipelines["reporting"].inputs()

    from kedro.config import OmegaConfigLoader

    from .conftest import PROJECT_ROOT

    parameters = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")["parameters"]
    parameters["toy"] = block
    catalog = _catalog(raw_frames, parameters, keep=("toy.model",))
    outputs = SequentialRunner().run(pipelines["toy"], catalog)
    assert outputs["toy_summary"].load()["architecture"] == "toy"
    assert catalog["toy.model"].load().config.options == {"width": 3}


def test_an_unknown_architecture_is_named_with_the_registered_ones():
    with pytest.raises(ParameterError, match=r"conv\.architecture = 'resnet': unknown architecture 'resnet'; expected"):
        check_parameters({"conv": {"architecture": "resnet"}})


def test_registering_another_class_under_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="'conv' is already registered"):
        register("conv", options=Options)(type("Other", (nn.Module,), {}))

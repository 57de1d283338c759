"""Parameters are typed, and a bad one is named in full before anything runs."""

from __future__ import annotations

import copy

import pytest
import yaml

from digit_recognizer.config import ParameterError, TrainingConfig, check_parameters

from .conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def shipped() -> dict:
    params = {}
    for name in ("parameters_data_processing.yml", "parameters_training.yml"):
        params.update(yaml.safe_load((PROJECT_ROOT / "conf" / "base" / name).read_text()))
    return params


def test_the_shipped_parameters_are_valid(shipped):
    check_parameters(shipped)
    conv = TrainingConfig.model_validate(shipped["conv"])
    assert conv.model == {"batchnorm": True} and conv.augment.max_rotation == 10.0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("conv.epoch", 3, r"conv\.epoch: unknown key \(value 3\)"),
        ("conv.epochs", 2.5, r"conv\.epochs = 2\.5: Input should be a valid integer"),
        ("conv.epochs", 0, r"conv\.epochs = 0: Input should be greater than 0"),
        ("conv.device", "banana", r"conv\.device = 'banana': expected auto, cpu, mps, cuda or cuda:N"),
        ("split.validation_fraction", 1.5, r"split\.validation_fraction = 1\.5: Input should be less than 1"),
        ("conv.model.batchnorm", "maybe", r"conv\.model\.batchnorm = 'maybe': Input should be a valid boolean"),
        ("mlp.model.hidden", -3, r"mlp\.model\.hidden = -3: Input should be greater than 0"),
        (
            "linear.model.head",
            "ordinal",
            r"linear\.model\.head = 'ordinal': Input should be 'classification' or 'regression'",
        ),
        ("conv.schedule", "cosine", r"conv\.schedule = 'cosine': Input should be 'one_cycle' or 'constant'"),
        ("conv.augment.max_shift", 0.7, r"conv\.augment\.max_shift = 0\.7: Input should be less than 0\.5"),
        ("normalisation.standardise", "yes", r"normalisation\.standardise = 'yes': Input should be a valid boolean"),
        ("conv.model.width", 8, r"conv\.model\.width: unknown key"),
    ],
)
def test_a_bad_value_is_named_by_its_full_key(shipped, key, value, message):
    params = copy.deepcopy(shipped)
    *path, last = key.split(".")
    block = params
    for part in path:
        block = block.setdefault(part, {})
    block[last] = value
    with pytest.raises(ParameterError, match=message):
        check_parameters(params)


def test_every_problem_is_listed_at_once(shipped):
    params = copy.deepcopy(shipped)
    params["conv"]["epochs"] = "ten"
    params["mlp"]["lr"] = -1
    with pytest.raises(ParameterError) as error:
        check_parameters(params)
    assert "conv.epochs" in str(error.value) and "mlp.lr" in str(error.value)


@pytest.mark.parametrize("env", sorted(p.name for p in (PROJECT_ROOT / "conf").iterdir() if p.is_dir()))
def test_every_environment_gives_valid_parameters(env):
    from kedro.config import OmegaConfigLoader

    from digit_recognizer.settings import CONFIG_LOADER_ARGS

    params = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env})[
        "parameters"
    ]
    check_parameters(params)
    if env == "kaggle":
        assert [params[m]["refit_full"] for m in ("cnn", "cnn_seed1", "cnn_seed2")] == [True] * 3
        assert params["cnn"]["label_smoothing"] == 0.1  # the rest of the block still comes from base


def _repeated_defaults(model, given: dict, prefix: str) -> list[str]:
    """Keys of ``given`` whose value is the typed model's default (nested blocks too)."""
    from pydantic import BaseModel

    repeated = []
    for key, value in given.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        annotation = field.annotation
        nested = next(
            (
                t
                for t in getattr(annotation, "__args__", (annotation,))
                if isinstance(t, type) and issubclass(t, BaseModel)
            ),
            None,
        )
        if nested is not None and isinstance(value, dict):
            repeated += _repeated_defaults(nested, value, f"{prefix}{key}.")
        elif not field.is_required() and value == field.get_default(call_default_factory=True):
            repeated.append(f"{prefix}{key}")
    return repeated


@pytest.mark.parametrize(
    "path", sorted((PROJECT_ROOT / "conf").glob("*/parameters*.yml")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_conf_never_repeats_a_default_of_config_py(path):
    from digit_recognizer.config import BLOCKS
    from digit_recognizer.ml.models import ARCHITECTURES

    repeated = []
    for key, block in (yaml.safe_load(path.read_text()) or {}).items():
        if not isinstance(block, dict):
            continue
        model = BLOCKS.get(key, TrainingConfig)
        repeated += _repeated_defaults(model, block, f"{key}.")
        architecture = block.get("architecture")
        if model is TrainingConfig and architecture in ARCHITECTURES:
            repeated += _repeated_defaults(ARCHITECTURES[architecture].options, block.get("model", {}), f"{key}.model.")
    assert not repeated, f"{path}: these values repeat their defaults (keep each value once): {repeated}"


def test_the_repeated_default_check_can_fail():
    assert _repeated_defaults(TrainingConfig, {"epochs": 10, "lr": 0.4, "lr_finder": {"num_steps": 100}}, "x.") == [
        "x.epochs",
        "x.lr_finder.num_steps",
    ]


def test_the_effective_parameters_fill_in_every_default(shipped):
    effective = check_parameters(shipped)
    assert effective["conv"]["momentum"] == 0.9 and effective["conv"]["model"] == {"batchnorm": True}
    assert effective["split"] == {"validation_fraction": 0.2, "seed": 42}
    assert effective["cnn"]["lr"] == 0.4 and effective["ensemble"]["members"] == ["cnn", "cnn_seed1", "cnn_seed2"]

"""Typed parameters: one model per block of conf/base/parameters*.yml, and the one home of their defaults.

Each value lives once. The defaults are here (and, for a model's options, beside the model in
``ml/models.py``) because the same types are used where no ``conf/`` is read: a model rebuilt
from its file, a notebook, a scheduler's close step. ``conf/`` holds each value that differs
from its default; a test refuses a YAML value that repeats one.

Nodes take these types as their ``params:`` arguments, so Kedro turns each block into its model
when the run starts (``kedro.validation``). :func:`check_parameters` runs the same models a step
earlier, from a hook, to name every bad key in full (``conv.model.batchnorm``) before anything
is loaded or written.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from digit_recognizer.errors import UserError
from digit_recognizer.ml.models import ARCHITECTURES
from digit_recognizer.ml.registry import Options, architecture, ensemble_candidates, member_outputs

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class Block(BaseModel):
    """Strict: no unknown keys, no '2.5' for an integer, no 'maybe' for a boolean."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SplitConfig(Block):
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = Field(42, ge=0)


class NormalisationConfig(Block):
    standardise: bool = False


class AugmentConfig(Block):
    """Random distortions of training batches; no defaults: a block that augments says how much."""

    max_rotation: float = Field(ge=0, le=180)  # degrees
    max_shift: float = Field(ge=0, lt=0.5)  # fraction of the image size
    max_scale: float = Field(ge=0, lt=1)


class LRFinderConfig(Block):
    start_lr: PositiveFloat = 1e-5
    end_lr: PositiveFloat = 10.0
    num_steps: int = Field(100, ge=2)

    @model_validator(mode="after")
    def _rising(self) -> LRFinderConfig:
        if self.end_lr <= self.start_lr:
            raise ValueError(f"end_lr ({self.end_lr}) must be above start_lr ({self.start_lr})")
        return self


class TrainingConfig(Block):
    """One architecture's block: its model options and how it is trained."""

    architecture: str
    model: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(0, ge=0)
    device: str = "auto"
    threads: PositiveInt | Literal["auto"] = "auto"
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    epochs: PositiveInt = 10
    validate_every: PositiveInt = 1  # epochs between validation passes; the last epoch is always validated
    lr: PositiveFloat = 0.1
    use_lr_finder: bool = False
    batch_size: PositiveInt = 256
    optimizer: Literal["sgd", "adamw"] = "sgd"
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    schedule: Literal["one_cycle", "constant"] = "one_cycle"
    augment: AugmentConfig | None = None
    refit_full: bool = False
    test_time_shifts: bool = False
    lr_finder: LRFinderConfig = Field(default_factory=LRFinderConfig)
    progress_bar: bool | None = None

    @field_validator("architecture")
    @classmethod
    def _registered(cls, value: str) -> str:
        architecture(value)  # a ValueError naming the registered ones
        return value

    @field_validator("threads", mode="before")
    @classmethod
    def _auto_or_positive(cls, value: Any) -> Any:
        if value == "auto" or (type(value) is int and value > 0):
            return value
        raise ValueError(f"expected auto or a positive number of threads, got {value!r}")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not DEVICE.match(value):
            raise ValueError(f"expected auto, cpu, mps, cuda or cuda:N, got {value!r}")
        return value

    @model_validator(mode="after")
    def _options_fit_architecture(self) -> TrainingConfig:
        object.__setattr__(self, "model", self.options().model_dump())  # defaults filled in
        return self

    def options(self) -> Options:
        """The ``model`` block, checked against the architecture's own options."""
        return architecture(self.architecture).options.model_validate(self.model)


class EnsembleConfig(Block):
    """Which trained members to average, by namespace."""

    @classmethod
    def unused_inputs(cls, parameters: dict[str, Any]) -> set[str]:
        """What the ensemble's nodes take but do not use: the outputs of candidates that are not members.

        The nodes take every candidate's outputs by name and average the members the parameters
        choose; a run reads (and needs) only those members' outputs.
        """
        members = set((parameters.get("ensemble") or {}).get("members") or ensemble_candidates())
        return {name for c in ensemble_candidates() if c not in members for name in member_outputs(c)}

    members: list[str] = Field(min_length=2)

    @field_validator("members", mode="before")
    @classmethod
    def _from_the_command_line(cls, value: Any) -> Any:
        """``--params ensemble.members=cnn+cnn_seed2`` (Kedro's --params splits at commas)."""
        return value.split("+") if isinstance(value, str) else value

    @field_validator("members")
    @classmethod
    def _known_and_distinct(cls, members: list[str]) -> list[str]:
        candidates = list(ensemble_candidates())
        unknown = [m for m in members if m not in candidates]
        if unknown:
            raise ValueError(f"expected some of {candidates}, got {unknown}")
        if len(set(members)) != len(members):
            raise ValueError(f"members must be distinct, got {members}")
        return members


# Which model checks which top-level block. A block of parameters_training.yml is an
# architecture's when it names one.
BLOCKS: dict[str, type[Block]] = {
    "split": SplitConfig,
    "normalisation": NormalisationConfig,
    "ensemble": EnsembleConfig,
}


class ParameterError(UserError, ValueError):
    """Raised before a run starts when a parameter is unknown or has a bad value."""


def check_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Checks every known block of ``params``; raises one error that lists each bad key in full.

    Returns the parameters as they take effect: every known block with its defaults filled in
    (what a run record keeps), other keys as they are.
    """
    problems: list[str] = []
    effective = dict(params)
    for key, value in params.items():
        model = BLOCKS.get(key)
        if model is None and isinstance(value, dict) and "architecture" in value:
            model = TrainingConfig
        if model is None:
            continue
        if not isinstance(value, dict):
            problems.append(f"{key}: expected a block of settings, got {value!r}")
            continue
        if model is TrainingConfig:
            options = value.get("model", {})
            architecture = value.get("architecture")
            value = {k: v for k, v in value.items() if k != "model"}
            if architecture in ARCHITECTURES:
                problems += _problems(f"{key}.model", ARCHITECTURES[architecture].options, options)
        found = _problems(key, model, value)
        if not found and model is not TrainingConfig:
            effective[key] = model.model_validate(value).model_dump()
        problems += found
    if problems:
        raise ParameterError("Invalid parameters (nothing was run):\n" + "\n".join(f"  - {p}" for p in problems))
    for key, value in params.items():
        if isinstance(value, dict) and "architecture" in value and key not in BLOCKS:
            effective[key] = TrainingConfig.model_validate(value).model_dump()
    return effective


def _problems(prefix: str, model: type[Block], value: Any) -> list[str]:
    try:
        model.model_validate(value)
    except ValidationError as exc:
        return [_describe(prefix, error) for error in exc.errors()]
    return []


def _describe(prefix: str, error: dict[str, Any]) -> str:
    key = ".".join([prefix, *(str(part) for part in error["loc"])])
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (value {error['input']!r}); check its spelling"
    message = error["msg"].removeprefix("Value error, ")
    allowed = (error.get("ctx") or {}).get("expected")
    shown = f"; allowed: {allowed}" if allowed and allowed not in message else ""
    return f"{key} = {error['input']!r}: {message}{shown}"


def parameter_defaults(parameters: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Each block's defaults (None for a block that has none), to tell what a run changed (the run's page).

    An architecture's block gets its architecture's defaults; a block without defaults of its
    own (the ensemble names its members) gets None.
    """
    defaults: dict[str, dict[str, Any] | None] = {}
    for name, block in parameters.items():
        if isinstance(block, dict) and "architecture" in block:
            defaults[name] = TrainingConfig.model_validate({"architecture": block["architecture"]}).model_dump()
        elif name in BLOCKS:
            try:
                defaults[name] = BLOCKS[name]().model_dump()
            except ValueError:  # a block that has no defaults
                defaults[name] = None
    return defaults

"""The one place to add an architecture: its class, its options and what it can do.

An entry is made by decorating the model class::

    class ToyOptions(Options):
        width: int = 8

    @register("toy", options=ToyOptions)
    class ToyNet(nn.Sequential): ...

From the registry follow the typed parameters (``config.TrainingConfig`` checks a block's
``architecture`` and ``model`` against it), the pipelines (one training namespace each, in
``kedro run`` and the leaderboard; the learning-rate finder for those that learn) and the
ensemble's candidates. The parameter block (``toy:`` in ``conf/base/parameters_training.yml``)
holds its values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from digit_recognizer.ml.model_config import ModelConfig


class Options(BaseModel):
    """An architecture's ``model`` options. Strict: no unknown keys, no '2.5' for an integer."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass(frozen=True)
class Architecture:
    """One registered architecture.

    ``learns``: trained by gradient descent (epochs, learning rate, training curves, the
    learning-rate finder); otherwise fitted in one pass by ``model.fit(images, labels)``.
    ``probabilities``: outputs class probabilities, so it can be an ensemble member.
    ``ensemble``: the training namespaces (parameter blocks) that ``--pipeline ensemble``
    trains with this architecture, e.g. the same net under three seeds.
    ``bf16``: ``precision: auto`` may train it under bf16 autocast (its validation accuracy
    held under bf16 on two splits; docs/models.md has the figures).
    """

    name: str
    model: type[nn.Module]
    options: type[Options]
    learns: bool = True
    probabilities: bool = True
    ensemble: tuple[str, ...] = ()
    bf16: bool = False


ARCHITECTURES: dict[str, Architecture] = {}


def register(
    name: str,
    *,
    options: type[Options],
    learns: bool = True,
    probabilities: bool = True,
    ensemble: tuple[str, ...] = (),
    bf16: bool = False,
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: adds the class to :data:`ARCHITECTURES` under ``name``."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        if name in ARCHITECTURES and ARCHITECTURES[name].model is not cls:
            raise ValueError(f"architecture {name!r} is already registered ({ARCHITECTURES[name].model.__name__})")
        ARCHITECTURES[name] = Architecture(name, cls, options, learns, probabilities, ensemble, bf16)
        return cls

    return add


def architecture(name: str) -> Architecture:
    """The registry entry; a ValueError naming the known ones otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; expected one of {sorted(ARCHITECTURES)}") from None


def ensemble_candidates() -> dict[str, str]:
    """The namespaces the ensemble pipeline trains, each with its architecture, in registry order."""
    return {namespace: entry.name for entry in ARCHITECTURES.values() for namespace in entry.ensemble}


def member_outputs(namespace: str) -> list[str]:
    """What the ensemble reads of one candidate: its probabilities on the validation split and the test set, its summary."""
    return [f"{namespace}_validation_probabilities", f"{namespace}_test_probabilities", f"{namespace}_summary"]


def build_model(name: str, **options: Any) -> nn.Module:
    """A freshly initialised model of the named architecture, its options checked and defaults filled in."""
    entry = architecture(name)
    try:
        checked = entry.options.model_validate(options).model_dump()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: " * bool(e["loc"]) + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ValueError(f"bad options {options} for architecture {name!r}: {problems}") from None
    model = entry.model(**checked)
    model.config = ModelConfig(name, dict(checked))  # what a saved model needs to be rebuilt
    return model

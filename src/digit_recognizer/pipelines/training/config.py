"""One architecture's parameters (its block in parameters_training.yml), checked up front."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from digit_recognizer.models import ARCHITECTURES
from digit_recognizer.training import SCHEDULES


@dataclass(frozen=True)
class TrainingConfig:
    architecture: str
    model: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    epochs: int = 10
    lr: float = 0.1
    use_lr_finder: bool = False
    batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "one_cycle"
    augment: dict[str, float] | None = None
    lr_finder: dict[str, Any] = field(default_factory=dict)
    progress_bar: bool | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown training parameter(s) {unknown}; expected some of {sorted(known)}")
        config = cls(**params)
        if config.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {config.architecture!r}")
        if config.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {config.schedule!r}")
        if config.epochs < 1 or config.batch_size < 1 or config.lr <= 0:
            raise ValueError(
                f"epochs, batch_size and lr must be positive, got {config.epochs}, {config.batch_size}, {config.lr}"
            )
        return config

"""What a model is, saved with its weights: its architecture, its options and its preprocessing (nanoGPT's ``GPTConfig``).

:func:`~digit_recognizer.ml.registry.build_model` gives every model its :class:`ModelConfig` as
``model.config``; training adds the preprocessing it was trained with; the model file stores
``config.to_dict()`` beside the weights and :func:`ModelConfig.from_dict` reads it back by name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

IMAGE_SIZE = 28
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE


@dataclass(frozen=True)
class Preprocessing:
    """How raw 0..255 pixels become a model's input: ``(pixels / scale - mean) / std``.

    Fitted on the training split, stored in the model file, and applied by whoever feeds the
    model raw images, so a model is always used the way it was trained.
    """

    scale: float = 255.0
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, train_pixels: np.ndarray, standardise: bool) -> Preprocessing:
        """Plain scaling to [0, 1]; with ``standardise``, also the training pixels' mean and std."""
        if not standardise:
            return cls()
        mean = float(train_pixels.mean(dtype=np.float64)) / 255.0
        std = float(train_pixels.std(dtype=np.float64)) / 255.0
        return cls(mean=mean, std=std if std > 0 else 1.0)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """float32 model input from uint8 pixel rows, in one copy and in-place arithmetic."""
        scaled = np.ascontiguousarray(pixels).astype(np.float32)
        scaled /= np.float32(self.scale)  # in place: far faster than a mixed uint8/float32 divide
        if self.mean != 0.0 or self.std != 1.0:
            scaled -= np.float32(self.mean)
            scaled /= np.float32(self.std)
        return scaled

    def images(self, pixels: np.ndarray) -> torch.Tensor:
        """N×1×28×28 float32 images from N rows of 784 raw pixels."""
        return torch.from_numpy(self.apply(pixels)).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class ModelConfig:
    """A model's architecture (its registry name), its options (defaults filled in) and its preprocessing."""

    architecture: str
    options: dict[str, Any] = field(default_factory=dict)
    preprocessing: Preprocessing | None = None  # set once the model is trained

    @property
    def regression(self) -> bool:
        """Whether the model outputs one digit value (the notebook's framing) instead of 10 logits."""
        return self.options.get("head") == "regression"

    def trained_with(self, preprocessing: Preprocessing) -> ModelConfig:
        return replace(self, preprocessing=preprocessing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "options": dict(self.options),
            "preprocessing": None if self.preprocessing is None else self.preprocessing.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        found = data.get("preprocessing")
        return cls(
            data["architecture"], dict(data.get("options") or {}), None if found is None else Preprocessing(**found)
        )

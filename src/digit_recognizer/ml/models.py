"""The digit classifiers, in plain PyTorch: linear, mlp, conv, cnn, fast and the nearest-centroid baseline.

Each is registered (:func:`~digit_recognizer.ml.registry.register`) with its options.

Every model maps a batch of N×1×28×28 images to N×10 logits, or to N×1 digit values when built
with ``head="regression"`` (the original notebook's framing, kept for comparison).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.nn import functional as F

from digit_recognizer.ml.model_config import N_PIXELS, ModelConfig, Preprocessing
from digit_recognizer.ml.registry import ARCHITECTURES, Options, build_model, register

__all__ = ["ARCHITECTURES", "ModelConfig", "Preprocessing", "build_model", "count_parameters"]

N_CLASSES = 10
HEADS = ("classification", "regression")
Head = Literal["classification", "regression"]
PositiveInt = Annotated[int, Field(gt=0)]


def _outputs(head: str) -> int:
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    return N_CLASSES if head == "classification" else 1


class LinearOptions(Options):
    head: Head = "classification"


@register("linear", options=LinearOptions, bf16=True)
class LinearNet(nn.Sequential):
    """y = x·w + b on the flattened image."""

    def __init__(self, head: str = "classification") -> None:
        super().__init__(nn.Flatten(), nn.Linear(N_PIXELS, _outputs(head)))


class MLPOptions(Options):
    hidden: PositiveInt = 30
    head: Head = "classification"


@register("mlp", options=MLPOptions, bf16=True)
class MLP(nn.Sequential):
    """One hidden ReLU layer (the notebook's "simple_net": 784 → 30 → ReLU → out)."""

    def __init__(self, hidden: int = 30, head: str = "classification") -> None:
        super().__init__(
            nn.Flatten(),
            nn.Linear(N_PIXELS, hidden),
            nn.ReLU(),
            nn.Linear(hidden, _outputs(head)),
        )


def _conv(ni: int, nf: int, batchnorm: bool, activation: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(ni, nf, kernel_size=3, stride=2, padding=1)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(nf))
    if activation:
        layers.append(nn.ReLU())
    return layers


class ConvOptions(Options):
    batchnorm: bool = True


@register("conv", options=ConvOptions)
class ConvNet(nn.Sequential):
    """Five stride-2 3×3 convolutions, 28→14→7→4→2→1 pixels, channels 1→4→16→32→64→10.

    ``batchnorm=True`` (the default) adds BatchNorm after every convolution but the last, which
    lets plain SGD train at high learning rates; ``batchnorm=False`` is the notebook's exact net.
    """

    CHANNELS = (1, 4, 16, 32, 64, N_CLASSES)

    def __init__(self, batchnorm: bool = True) -> None:
        pairs = list(itertools.pairwise(self.CHANNELS))
        layers: list[nn.Module] = []
        for i, (ni, nf) in enumerate(pairs):
            last = i == len(pairs) - 1
            layers += _conv(ni, nf, batchnorm=batchnorm and not last, activation=not last)
        super().__init__(*layers, nn.Flatten())


def _conv_bn_relu(ni: int, nf: int) -> list[nn.Module]:
    return [nn.Conv2d(ni, nf, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(nf), nn.ReLU(inplace=True)]


class CNNOptions(Options):
    widths: list[PositiveInt] = Field(default_factory=lambda: [16, 32, 64], min_length=1, max_length=4)
    dropout: float = Field(0.0, ge=0, lt=1)


@register("cnn", options=CNNOptions, ensemble=("cnn", "cnn_seed1", "cnn_seed2"), bf16=True)
class VGGNet(nn.Sequential):
    """A small VGG-style net: per stage two 3×3 conv + BatchNorm + ReLU, 2×2 max-pool between stages.

    28×28 → 14×14 → 7×7 with the default three stages of 16, 32 and 64 channels, then a global
    average pool, dropout and one linear layer to the 10 logits: about 73,000 parameters.
    """

    def __init__(
        self,
        widths: tuple[int, ...] | list[int] = (16, 32, 64),
        dropout: float = 0.0,
        convs: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        layers: list[nn.Module] = []
        channels = 1
        for stage, width in enumerate(widths):
            count = 2 if convs is None else convs[stage]  # 3x3 convs in this stage
            for _ in range(count):
                layers += _conv_bn_relu(channels, width)
                channels = width
            if stage < len(widths) - 1:
                # Max-pooling commutes with ReLU: pooling first runs the ReLU (and its backward) on a
                # quarter of the values, the same function and the same parameter names, 5 % off a step.
                layers.insert(len(layers) - 1, nn.MaxPool2d(2))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, N_CLASSES)]
        super().__init__(*layers)
        self.to(memory_format=torch.channels_last)  # about 30 % faster convolutions on a CPU

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return super().forward(images.contiguous(memory_format=torch.channels_last))


class FastOptions(Options):
    widths: list[PositiveInt] = Field(default_factory=lambda: [16, 32, 64], min_length=1, max_length=4)
    convs: list[PositiveInt] = Field(default_factory=lambda: [2, 1, 2], min_length=1, max_length=4)

    @model_validator(mode="after")
    def _one_count_per_stage(self) -> FastOptions:
        if len(self.convs) != len(self.widths):
            raise ValueError(f"convs needs one count per stage of widths ({len(self.widths)}), got {len(self.convs)}")
        return self


@register("fast", options=FastOptions, bf16=True)
class FastNet(VGGNet):
    """The ``cnn``'s design with one conv fewer, for the fast recipe: 0.99 on unseen digits in two epochs.

    Two, one and two 3×3 conv + BatchNorm + ReLU in the stages of 16, 32 and 64 channels
    (``convs``), max-pool between, a global average pool and one linear layer: 63,386 parameters,
    a training step 0.85× the cnn's on a CPU. The rest is its training (the ``fast`` block in
    conf/base and conf/kaggle): AdamW on a two-epoch one-cycle to 0.02 on Kaggle's rows, bf16
    autocast where the CPU or GPU runs it fast, label smoothing, the cnn's augmentation and
    test-time shifts. Chosen on validation splits by source digit over five seeds; dropping a
    conv of the first or last stage instead, or a single epoch, fell below 0.99 on some seeds
    (benchmarks/README.md, ``time_to_accuracy.py --arch fast``).
    """

    def __init__(
        self, widths: tuple[int, ...] | list[int] = (16, 32, 64), convs: tuple[int, ...] | list[int] = (2, 1, 2)
    ) -> None:
        super().__init__(widths, dropout=0.0, convs=convs)


DISTANCES = ("euclidean", "cosine")


class CentroidOptions(Options):
    distance: Literal["cosine", "euclidean"] = "cosine"


@register("centroid", options=CentroidOptions, learns=False)
class NearestCentroid(nn.Module):
    """Distance to the mean image of each digit; the logits are negative squared distances.

    ``distance="euclidean"`` compares images as they are (the original notebook's baseline);
    ``"cosine"`` first scales every image, and so every centroid, to unit length, which
    discounts stroke thickness and is a point or two more accurate on MNIST.
    """

    def __init__(self, distance: str = "cosine") -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        self.distance = distance
        self.centroids = nn.Parameter(torch.zeros(N_CLASSES, N_PIXELS), requires_grad=False)

    def _flatten(self, images: torch.Tensor) -> torch.Tensor:
        flat = images.reshape(len(images), -1)
        return F.normalize(flat, dim=1) if self.distance == "cosine" else flat

    @torch.no_grad()
    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> NearestCentroid:
        flat = self._flatten(images.to(self.centroids))
        sums = torch.zeros_like(self.centroids).index_add_(0, labels.to(flat.device), flat)
        counts = torch.bincount(labels, minlength=N_CLASSES).to(flat)
        if (counts == 0).any():
            missing = (counts == 0).nonzero().flatten().tolist()
            raise ValueError(f"cannot fit a centroid for digits with no training images: {missing}")
        self.centroids.copy_(sums / counts[:, None])
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(self._flatten(images), self.centroids).square()


def count_parameters(model: nn.Module) -> int:
    """Number of learned values (weights, biases; the centroids of the baseline)."""
    return sum(p.numel() for p in model.parameters())

"""Training in plain PyTorch: the fit loop, evaluation, prediction and the learning-rate finder.

Batches are drawn by indexing tensors that sit on the training device, so an epoch costs no
more than the same loop written by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from digit_recognizer.errors import UserError
from digit_recognizer.ml.models import N_CLASSES
from digit_recognizer.ml.precision import autocast

SCHEDULES = ("constant", "one_cycle")
EVAL_BATCH_SIZE = 2048


class TrainingDivergedError(UserError, RuntimeError):
    """The training loss became infinite or NaN."""


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA when it is available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _regression(model: nn.Module) -> bool:
    """The one rule for a model's head: its config says ``head: regression`` (one digit value), else 10 logits."""
    return model.config.regression


def loss_function(
    model: nn.Module,
    outputs: torch.Tensor,
    labels: torch.Tensor,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy on logits (optionally label-smoothed), or MSE against the digit value for a regression head."""
    if _regression(model):
        return F.mse_loss(outputs.squeeze(1), labels.to(outputs.dtype), reduction=reduction)
    return F.cross_entropy(outputs, labels, reduction=reduction, label_smoothing=label_smoothing)


def to_labels(model: nn.Module, outputs: torch.Tensor) -> torch.Tensor:
    """Predicted digits: argmax of the logits, or the regression output rounded into 0..9."""
    if _regression(model):
        return outputs.squeeze(1).round().clamp(0, 9).long()
    return outputs.argmax(dim=1)


def to_probabilities(model: nn.Module, outputs: torch.Tensor) -> torch.Tensor:
    """N×10 class probabilities: the softmax of the logits; a regression head's rounded digit counts as certain."""
    if _regression(model):
        return F.one_hot(to_labels(model, outputs), N_CLASSES).float()
    return torch.softmax(outputs.float(), dim=1)


def batch_indices(
    n: int, batch_size: int, generator: torch.Generator | None = None, device: torch.device | None = None
) -> Iterator[torch.Tensor]:
    """Index tensors covering range(n) in batches; shuffled when a generator is given.

    The order is drawn on the CPU (so it is the same on every device) and moved to ``device``
    in one copy per epoch.
    """
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    yield from order.to(device).split(batch_size) if device is not None else order.split(batch_size)


def random_affine(
    images: torch.Tensor,
    generator: torch.Generator,
    *,
    max_rotation: float = 10.0,
    max_shift: float = 0.1,
    max_scale: float = 0.1,
) -> torch.Tensor:
    """Each image rotated, shifted and scaled at random (degrees; fractions of its size).

    One batched ``grid_sample`` call, so augmentation stays cheap on the CPU and on a GPU;
    ``generator`` lives on the images' device, so no random numbers cross the bus.
    """
    n = len(images)
    draws = torch.rand(n, 4, generator=generator, device=generator.device) * 2 - 1
    angle = draws[:, 0] * math.radians(max_rotation)
    scale = 1 + draws[:, 1] * max_scale
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid works in [-1, 1] coordinates, so a shift of f image sizes is 2f.
    theta = torch.stack(
        [
            torch.stack([cos, -sin, draws[:, 2] * 2 * max_shift], 1),
            torch.stack([sin, cos, draws[:, 3] * 2 * max_shift], 1),
        ],
        1,
    ).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    valid_loss: float
    accuracy: float
    time: float
    lr: float


def format_epoch(stats: EpochStats | None = None, epochs: int = 0, left: float = 0.0) -> str:
    """One line of the training table (the header when no stats are given).

    ``epoch k/N`` counts from 1; ``left`` is the time this training still needs, at the mean
    pace of its epochs so far.
    """
    if stats is None:
        return f"{'epoch':>7}  {'train_loss':>10}  {'valid_loss':>10}  {'accuracy':>8}  {'time':>6}  {'left':>7}"
    return (
        f"{f'{stats.epoch + 1}/{epochs}':>7}  {stats.train_loss:>10.4f}  {_figure(stats.valid_loss, 10)}  "
        f"{_figure(stats.accuracy, 8)}  {stats.time:>5.1f}s  {duration(left):>7}"
    )


def _figure(value: float, width: int) -> str:
    """A loss or accuracy in the table; ``-`` for an epoch without a validation pass (NaN)."""
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:>{width}.4f}"


def duration(seconds: float) -> str:
    """``42.0s``, ``3m 05s``, ``1h 02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m {seconds:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


OPTIMIZERS = ("sgd", "adamw")


def make_optimizer(model: nn.Module, settings: FitSettings) -> torch.optim.Optimizer:
    """SGD with momentum, or AdamW (``momentum`` is then its beta1)."""
    lr, momentum, weight_decay = settings.lr, settings.momentum, settings.weight_decay
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, betas=(momentum, 0.999), weight_decay=weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = EVAL_BATCH_SIZE,
    precision: str = "fp32",
) -> tuple[float, torch.Tensor]:
    """Mean loss over the set and the predicted digit for every image (under bf16 autocast when asked)."""
    model.eval()
    total, predictions = 0.0, []
    for idx in batch_indices(len(images), batch_size, device=images.device):
        with autocast(precision, images.device):
            outputs = model(images[idx])
        outputs = outputs.float()
        total += loss_function(model, outputs, labels[idx]).item() * len(idx)
        predictions.append(to_labels(model, outputs))
    return total / max(len(images), 1), torch.cat(predictions)


@torch.inference_mode()
def predict(
    model: nn.Module, images: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE, precision: str = "fp32"
) -> torch.Tensor:
    """The predicted digit for every image (under bf16 autocast when asked)."""
    model.eval()
    predictions = []
    for idx in batch_indices(len(images), batch_size, device=images.device):
        with autocast(precision, images.device):
            outputs = model(images[idx])
        predictions.append(to_labels(model, outputs.float()))
    return torch.cat(predictions)


SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # the image, then one pixel down, up, right, left


def shifted(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Images moved by (dy, dx) pixels, the uncovered border filled with the background (zeros)."""
    if dy == dx == 0:
        return images
    padded = F.pad(images, (1, 1, 1, 1))
    height, width = images.shape[-2:]
    return padded[..., 1 - dy : 1 - dy + height, 1 - dx : 1 - dx + width]


@torch.inference_mode()
def class_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    test_time_shifts: bool = False,
    batch_size: int = EVAL_BATCH_SIZE,
    precision: str = "fp32",
) -> torch.Tensor:
    """N×10 class probabilities; with ``test_time_shifts`` the mean over the image and its four one-pixel shifts.

    ``precision="bf16"`` runs the model under bf16 autocast (half the time on a CPU with AMX); the
    softmax and the mean stay float32. A regression head has no probabilities: its rounded digit
    counts as certain (one-hot).
    """
    model.eval()
    views = SHIFTS if test_time_shifts else SHIFTS[:1]
    parts = []
    for idx in batch_indices(len(images), batch_size, device=images.device):
        batch = images[idx]
        total = torch.zeros(len(idx), N_CLASSES, device=images.device)
        for dy, dx in views:
            with autocast(precision, images.device):
                outputs = model(shifted(batch, dy, dx))
            total += to_probabilities(model, outputs.float())
        parts.append(total / len(views))
    return torch.cat(parts)


@dataclass(frozen=True)
class FitSettings:
    """How a model is trained: one object, built from a parameter block with :meth:`from_block`.

    ``schedule="one_cycle"`` warms the rate up to ``lr`` and anneals it (fastai's
    ``fit_one_cycle``); ``"constant"`` keeps it fixed (fastai's ``fit``). ``precision="bf16"``
    computes the forward pass and the loss under bfloat16 autocast; the weights and the
    optimizer's state stay float32 (:mod:`digit_recognizer.ml.precision`). ``augment`` (the
    keyword arguments of :func:`random_affine`) distorts every training batch at random.
    ``validate_every`` epochs a validation pass runs (and after the last epoch, always): a short
    recipe saves the passes whose figures nobody reads. ``progress_bar=None`` shows a progress bar
    only when the output is a terminal.
    """

    epochs: int = 10
    validate_every: int = 1
    lr: float = 0.1
    batch_size: int = 256
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    schedule: str = "one_cycle"
    seed: int = 0
    augment: dict[str, float] | None = None
    precision: str = "fp32"
    progress_bar: bool | None = None

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.validate_every < 1:
            raise ValueError(f"validate_every must be a positive number of epochs, got {self.validate_every!r}")

    @classmethod
    def from_block(cls, block: Mapping[str, Any], **given: Any) -> FitSettings:
        """The settings a parameter block (a dict of it) names, ``given`` values winning (the lr found, say)."""
        values = {**block, **given}
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    valid: tuple[torch.Tensor, torch.Tensor] | None,
    settings: FitSettings,
    *,
    log: Callable[[str], None] = print,
    on_epoch: Callable[[EpochStats], bool | None] | None = None,
) -> list[EpochStats]:
    """Trains ``model`` on tensors already on its device; returns one record per epoch.

    ``valid=None`` trains without a validation pass (a final refit on every labelled row); the
    epoch records then have no validation loss or accuracy (NaN), nor have the epochs that
    ``settings.validate_every`` skips. ``on_epoch`` is called with
    each epoch's record; when it returns True, training stops there (the learning-rate schedule
    is not shortened: a benchmark's "time to an accuracy" uses it).
    """
    optimizer = make_optimizer(model, settings)
    steps = math.ceil(len(train[0]) / settings.batch_size)
    scheduler = None
    if settings.schedule == "one_cycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=settings.lr, epochs=settings.epochs, steps_per_epoch=steps
        )
    order = torch.Generator().manual_seed(settings.seed)  # batch order: drawn on the CPU
    distortions = torch.Generator(device=train[0].device).manual_seed(settings.seed)
    history: list[EpochStats] = []
    log(format_epoch())
    started = time.perf_counter()
    for epoch in range(settings.epochs):
        epoch_started = time.perf_counter()
        train_loss = _train_epoch(model, train, optimizer, scheduler, settings, (order, distortions), epoch)
        if not math.isfinite(train_loss):
            raise TrainingDivergedError(
                f"training diverged in epoch {epoch} (train loss {train_loss}) at lr={settings.lr:g}; "
                "lower the learning rate (the learning-rate finder's plot shows where the loss blows up)"
            )
        valid_loss, accuracy = math.nan, math.nan
        last = epoch == settings.epochs - 1
        if valid is not None and (last or (epoch + 1) % settings.validate_every == 0):
            # A bf16 training validates in bf16 too, as its model predicts: the pass costs half.
            valid_loss, predictions = evaluate(model, *valid, precision=settings.precision)
            accuracy = (predictions == valid[1]).float().mean().item()
        lr = optimizer.param_groups[0]["lr"]  # the rate the epoch ended with
        stats = EpochStats(epoch, train_loss, valid_loss, accuracy, time.perf_counter() - epoch_started, lr)
        history.append(stats)
        pace = (time.perf_counter() - started) / (epoch + 1)
        log(format_epoch(stats, settings.epochs, pace * (settings.epochs - epoch - 1)))
        if on_epoch is not None and on_epoch(stats):
            break
    return history


def _train_epoch(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    settings: FitSettings,
    generators: tuple[torch.Generator, torch.Generator],
    epoch: int,
) -> float:
    """One pass over the shuffled training set; the mean training loss."""
    images, labels = train
    order, distortions = generators
    model.train()
    running = torch.zeros((), device=images.device)
    batches = tqdm(
        batch_indices(len(images), settings.batch_size, order, device=images.device),
        total=math.ceil(len(images) / settings.batch_size),
        leave=False,
        disable=None if settings.progress_bar is None else not settings.progress_bar,
        desc=f"epoch {epoch + 1}/{settings.epochs}",
    )
    for idx in batches:
        inputs = images[idx]
        if settings.augment is not None:
            inputs = random_affine(inputs, distortions, **settings.augment)
        with autocast(settings.precision, images.device):
            loss = loss_function(model, model(inputs), labels[idx], label_smoothing=settings.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        running += loss.detach() * len(idx)
    return running.item() / len(images)


def _endless_batches(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> Iterator[torch.Tensor]:
    """Shuffled batches, epoch after epoch, for as long as the caller wants them."""
    while True:
        yield from batch_indices(n, batch_size, generator, device=device)


@dataclass
class LRFinderResult:
    rates: list[float]
    losses: list[float]
    suggestion: float

    def to_dict(self) -> dict:
        return asdict(self)


def lr_find(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    settings: FitSettings = FitSettings(),
    *,
    start_lr: float = 1e-5,
    end_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.98,
    divergence: float = 4.0,
) -> LRFinderResult:
    """Exponential learning-rate sweep (Smith's range test, as in fastai's ``lr_find``).

    Trains ``model`` (a throw-away copy) with ``settings``' batch size, optimizer and seed for up
    to ``num_steps`` batches while the rate grows from ``start_lr`` to ``end_lr``; stops once the
    smoothed loss exceeds ``divergence`` times its minimum. Suggests a tenth of the rate at the
    minimum smoothed loss.
    """
    train_x, train_y = train
    optimizer = make_optimizer(model, replace(settings, lr=start_lr))
    gamma = (end_lr / start_lr) ** (1 / max(num_steps - 1, 1))
    generator = torch.Generator().manual_seed(settings.seed)
    rates: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    model.train()
    batches = _endless_batches(len(train_x), settings.batch_size, generator, train_x.device)
    for step, idx in enumerate(batches):
        lr = start_lr * gamma**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_function(model, model(train_x[idx]), train_y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            break
        average = smoothing * average + (1 - smoothing) * value
        smoothed = average / (1 - smoothing ** (step + 1))
        rates.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > divergence * best or step + 1 >= num_steps:
            break
    if not losses:
        raise RuntimeError("the learning-rate finder diverged at its first step; lower start_lr")
    minimum = min(range(len(losses)), key=losses.__getitem__)
    return LRFinderResult(rates=rates, losses=losses, suggestion=rates[minimum] / 10)

"""Nodes of the per-architecture template: train, validate, predict, submit, score."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import TensorDataset

from digit_recognizer import plots
from digit_recognizer.models import N_CLASSES, build_model, count_parameters
from digit_recognizer.training import evaluate, fit, lr_find, predict, resolve_device, to_labels

from .config import TrainingConfig

logger = logging.getLogger(__name__)


def _fresh_model(config: TrainingConfig) -> nn.Module:
    torch.manual_seed(config.seed)  # a new, identically initialised model on every run
    return build_model(config.architecture, **config.model)


def _on(device: torch.device, dataset: TensorDataset) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device) for t in dataset.tensors)


def find_learning_rate(train_set: TensorDataset, params: dict[str, Any]) -> dict[str, Any]:
    """Sweeps the learning rate exponentially on a throw-away model and suggests one."""
    config = TrainingConfig.from_params(params)
    device = resolve_device(config.device)
    result = lr_find(
        _fresh_model(config).to(device),
        _on(device, train_set),
        batch_size=config.batch_size,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        seed=config.seed,
        **config.lr_finder,
    )
    logger.info("%s: the learning-rate finder suggests lr=%.3g", config.architecture, result.suggestion)
    return result.to_dict()


def train_model(
    train_set: TensorDataset,
    validation_set: TensorDataset,
    lr_finder: dict[str, Any],
    params: dict[str, Any],
) -> tuple[nn.Module, dict[str, Any]]:
    """Trains a fresh model with SGD and returns it with its per-epoch history."""
    config = TrainingConfig.from_params(params)
    device = resolve_device(config.device)
    lr = lr_finder["suggestion"] if config.use_lr_finder else config.lr
    model = _fresh_model(config).to(device)
    logger.info(
        "Training %s (%d parameters) on %s: %d epochs, lr=%.3g, %s schedule",
        config.architecture,
        count_parameters(model),
        device,
        config.epochs,
        lr,
        config.schedule,
    )
    start = time.perf_counter()
    history = fit(
        model,
        _on(device, train_set),
        _on(device, validation_set),
        epochs=config.epochs,
        lr=lr,
        batch_size=config.batch_size,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        schedule=config.schedule,
        seed=config.seed,
        augment=config.augment,
        log=logger.info,
        progress=config.progress_bar,
    )
    return model.cpu(), _history(config, device, lr, time.perf_counter() - start, [vars(h) for h in history])


def fit_centroid(
    train_set: TensorDataset, validation_set: TensorDataset, params: dict[str, Any]
) -> tuple[nn.Module, dict[str, Any]]:
    """Computes the mean image of each digit (the non-learning baseline)."""
    config = TrainingConfig.from_params(params)
    start = time.perf_counter()
    model = build_model(config.architecture, **config.model).fit(*train_set.tensors)
    valid_x, valid_y = validation_set.tensors
    valid_loss, predictions = evaluate(model, valid_x, valid_y)
    seconds = time.perf_counter() - start
    epoch = {
        "epoch": 0,
        "train_loss": float("nan"),
        "valid_loss": valid_loss,
        "accuracy": (predictions == valid_y).float().mean().item(),
        "time": seconds,
        "lr": 0.0,
    }
    logger.info("centroid: validation accuracy %.4f", epoch["accuracy"])
    return model, _history(config, torch.device("cpu"), 0.0, seconds, [epoch])


def _history(
    config: TrainingConfig, device: torch.device, lr: float, seconds: float, epochs: list[dict]
) -> dict[str, Any]:
    return {
        "architecture": config.architecture,
        "device": str(device),
        "lr": lr,
        "training_seconds": seconds,
        "epochs": epochs,
    }


def evaluate_model(model: nn.Module, validation_set: TensorDataset) -> dict[str, Any]:
    """Validation accuracy, loss, per-class accuracy and confusion matrix."""
    images, labels = validation_set.tensors
    loss, predictions = evaluate(model, images, labels)
    confusion = torch.zeros(N_CLASSES, N_CLASSES, dtype=torch.int64)
    confusion.index_put_((labels, predictions), torch.ones_like(labels), accumulate=True)
    per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
    accuracy = (predictions == labels).float().mean().item()
    logger.info("%s: validation accuracy %.4f, loss %.4f", model.architecture, accuracy, loss)
    return {
        "architecture": model.architecture,
        "options": model.options,
        "parameters": count_parameters(model),
        "accuracy": accuracy,
        "loss": loss,
        "per_class_accuracy": {str(d): round(a, 6) for d, a in enumerate(per_class.tolist())},
        "confusion_matrix": confusion.tolist(),
        "validation_rows": len(labels),
    }


def predict_test(model: nn.Module, test_set: TensorDataset) -> np.ndarray:
    """The predicted digit for every test image, in test.csv's row order."""
    (images,) = test_set.tensors
    return predict(model, images).numpy()


def make_submission(predictions: np.ndarray, sample_submission: pd.DataFrame) -> pd.DataFrame:
    """Kaggle's ImageId,Label table, checked against sample_submission before it is written."""
    if len(predictions) != len(sample_submission):
        raise ValueError(
            f"{len(predictions)} predictions for {len(sample_submission)} rows of "
            "sample_submission.csv; expected one prediction per test image."
        )
    labels = np.asarray(predictions)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"predicted labels must lie in 0..9, got {labels.min()}..{labels.max()}.")
    submission = pd.DataFrame({"ImageId": sample_submission["ImageId"].to_numpy(), "Label": labels.astype(np.int64)})
    if list(submission.columns) != list(sample_submission.columns):
        raise ValueError(f"submission columns {list(submission.columns)} differ from sample_submission.csv's")
    return submission


def score_submission(submission: pd.DataFrame, solution: pd.DataFrame | None) -> dict[str, Any]:
    """Accuracy of the submission against solution.csv, as Kaggle's leaderboard scores it."""
    if solution is None:
        logger.info("No solution.csv in the raw folder: the submission is not scored locally.")
        return {"scored": False, "accuracy": None, "rows": len(submission)}
    merged = submission.merge(solution, on="ImageId", how="left", suffixes=("", "_true"))
    if merged["Label_true"].isna().any() or len(solution) != len(submission):
        raise ValueError(
            f"solution.csv ({len(solution)} rows) does not cover the submission's {len(submission)} ImageIds."
        )
    accuracy = float((merged["Label"] == merged["Label_true"]).mean())
    logger.info("Submission scores %.5f against solution.csv", accuracy)
    return {"scored": True, "accuracy": accuracy, "rows": len(submission)}


def plot_lr_finder(lr_finder: dict[str, Any], params: dict[str, Any]) -> Figure:
    """Loss against learning rate on a log axis, with the suggested rate."""
    return plots.lr_finder_curve(lr_finder, f"{params['architecture']}: learning-rate finder")


def plot_training_curves(history: dict[str, Any]) -> Figure:
    """Train and validation loss and validation accuracy per epoch."""
    return plots.training_curves(history)


def plot_confusion_matrix(metrics: dict[str, Any]) -> Figure:
    """The validation confusion matrix as a heat map."""
    return plots.confusion_matrix(metrics)


@torch.inference_mode()
def plot_misclassified(model: nn.Module, validation_set: TensorDataset, count: int = 18) -> Figure:
    """The validation digits the model misclassified with the highest loss."""
    images, labels = validation_set.tensors
    model.eval()
    outputs = model(images)
    predicted = to_labels(model, outputs)
    if model.head == "regression":
        losses = (outputs.squeeze(1) - labels).abs()
    else:
        losses = torch.nn.functional.cross_entropy(outputs, labels, reduction="none")
    wrong = (predicted != labels).nonzero().flatten()
    worst = wrong[losses[wrong].argsort(descending=True)[:count]]
    return plots.misclassified(
        images[worst].numpy(), labels[worst].numpy(), predicted[worst].numpy(), model.architecture
    )


def summarise_run(metrics: dict[str, Any], history: dict[str, Any], test_score: dict[str, Any]) -> dict[str, Any]:
    """One leaderboard row: validation accuracy, test score, size and training time."""
    return {
        "architecture": metrics["architecture"],
        "validation_accuracy": metrics["accuracy"],
        "validation_loss": metrics["loss"],
        "test_score": test_score["accuracy"],
        "parameters": metrics["parameters"],
        "epochs": len(history["epochs"]),
        "training_seconds": round(history["training_seconds"], 3),
        "device": history["device"],
    }

"""Nodes of the per-architecture template: train, validate, predict, submit, score."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score
from torch import nn
from torch.utils.data import TensorDataset

from digit_recognizer import plots
from digit_recognizer.config import TrainingConfig
from digit_recognizer.models import N_CLASSES, Preprocessing, build_model, count_parameters
from digit_recognizer.pipelines.data_processing.nodes import PIXEL_COLUMNS
from digit_recognizer.training import evaluate, fit, loss_function, lr_find, predict, resolve_device, to_labels

logger = logging.getLogger(__name__)


def _fresh_model(config: TrainingConfig) -> nn.Module:
    torch.manual_seed(config.seed)  # a new, identically initialised model on every run
    return build_model(config.architecture, **config.model)


def _on(device: torch.device, dataset: TensorDataset) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device) for t in dataset.tensors)


def _sweep(config: TrainingConfig, train: tuple[torch.Tensor, ...], device: torch.device) -> dict[str, Any]:
    result = lr_find(
        _fresh_model(config).to(device),
        train,
        batch_size=config.batch_size,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        seed=config.seed,
        **config.lr_finder.model_dump(),
    )
    logger.info("%s: the learning-rate finder suggests lr=%.3g", config.architecture, result.suggestion)
    return result.to_dict()


def find_learning_rate(train_set: TensorDataset, config: TrainingConfig) -> dict[str, Any]:
    """Sweeps the learning rate exponentially on a throw-away model and suggests one."""
    device = resolve_device(config.device)
    return _sweep(config, _on(device, train_set), device)


def train_model(
    train_set: TensorDataset,
    validation_set: TensorDataset,
    normalisation_stats: dict[str, Any],
    config: TrainingConfig,
) -> tuple[nn.Module, dict[str, Any]]:
    """Trains a fresh model with SGD and returns it, carrying its preprocessing, with its per-epoch history."""
    device = resolve_device(config.device)
    train = _on(device, train_set)
    lr = _sweep(config, train, device)["suggestion"] if config.use_lr_finder else config.lr
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
        train,
        _on(device, validation_set),
        epochs=config.epochs,
        lr=lr,
        batch_size=config.batch_size,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        schedule=config.schedule,
        seed=config.seed,
        augment=config.augment.model_dump() if config.augment else None,
        log=logger.info,
        progress=config.progress_bar,
    )
    model = model.cpu()
    model.preprocessing = _preprocessing(normalisation_stats)
    return model, _history(config, device, lr, time.perf_counter() - start, [vars(h) for h in history])


def fit_centroid(
    train_set: TensorDataset,
    validation_set: TensorDataset,
    normalisation_stats: dict[str, Any],
    config: TrainingConfig,
) -> tuple[nn.Module, dict[str, Any]]:
    """Computes the mean image of each digit (the non-learning baseline)."""
    start = time.perf_counter()
    model = build_model(config.architecture, **config.model).fit(*train_set.tensors)
    model.preprocessing = _preprocessing(normalisation_stats)
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


def _preprocessing(normalisation_stats: dict[str, Any]) -> Preprocessing:
    return Preprocessing(**{k: normalisation_stats[k] for k in ("scale", "mean", "std")})


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
    digits = list(range(N_CLASSES))
    confusion = confusion_matrix(labels.numpy(), predictions.numpy(), labels=digits)
    per_class = recall_score(labels.numpy(), predictions.numpy(), labels=digits, average=None, zero_division=0)
    accuracy = accuracy_score(labels.numpy(), predictions.numpy())
    logger.info("%s: validation accuracy %.4f, loss %.4f", model.architecture, accuracy, loss)
    return {
        "architecture": model.architecture,
        "options": model.options,
        "parameters": count_parameters(model),
        "accuracy": float(accuracy),
        "loss": loss,
        "per_class_accuracy": {str(d): round(float(a), 6) for d, a in enumerate(per_class)},
        "confusion_matrix": confusion.tolist(),
        "validation_rows": len(labels),
    }


def predict_test(model: nn.Module, validated_test: pd.DataFrame) -> np.ndarray:
    """The predicted digit for every test image, in test.csv's row order, with the model's own preprocessing."""
    images = model.preprocessing.images(validated_test[PIXEL_COLUMNS].to_numpy())
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
    return pd.DataFrame({"ImageId": sample_submission["ImageId"].to_numpy(), "Label": labels.astype(np.int64)})


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


def plot_lr_finder(lr_finder: dict[str, Any], config: TrainingConfig) -> Figure:
    """Loss against learning rate on a log axis, with the suggested rate."""
    return plots.lr_finder_curve(lr_finder, f"{config.architecture}: learning-rate finder")


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
    losses = loss_function(model, outputs, labels, reduction="none")
    wrong = (predicted != labels).nonzero().flatten()
    worst = wrong[losses[wrong].argsort(descending=True)[:count]]
    return plots.misclassified(
        images[worst].numpy(), labels[worst].numpy(), predicted[worst].numpy(), model.architecture
    )


def summarise_run(
    metrics: dict[str, Any], history: dict[str, Any], test_score: dict[str, Any], run: dict[str, Any]
) -> dict[str, Any]:
    """One leaderboard row: validation accuracy, test score, size, training time and the run it came from."""
    return {
        "architecture": metrics["architecture"],
        "validation_accuracy": round(metrics["accuracy"], 4),
        "validation_loss": round(metrics["loss"], 4),
        "test_score": None if test_score["accuracy"] is None else round(test_score["accuracy"], 4),
        "parameters": metrics["parameters"],
        "epochs": len(history["epochs"]),
        "training_seconds": round(history["training_seconds"], 1),
        "device": history["device"],
        "run": run["run_id"],
    }

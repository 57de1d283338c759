"""Nodes of the per-architecture template: train, validate, predict, submit, score."""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import TensorDataset

from digit_recognizer.config import TrainingConfig
from digit_recognizer.ml import plots
from digit_recognizer.ml.metrics import PROBABILITY_COLUMNS, classification_metrics, probability_table
from digit_recognizer.ml.models import ARCHITECTURES, Preprocessing, build_model, count_parameters
from digit_recognizer.ml.precision import resolve_precision
from digit_recognizer.ml.threads import resolve_threads, torch_threads
from digit_recognizer.ml.training import (
    SHIFTS,
    FitSettings,
    class_probabilities,
    duration,
    evaluate,
    fit,
    lr_find,
    resolve_device,
)
from digit_recognizer.pipelines.data_processing.nodes import PIXEL_COLUMNS, RawDataError

logger = logging.getLogger(__name__)


def _threads(config: TrainingConfig, cpu_share: int) -> AbstractContextManager[None]:
    """torch's threads for this node: ``threads`` (``auto``: the CPUs this process may run on, over ``cpu_share``)."""
    return torch_threads(resolve_threads(config.threads, cpu_share))


def _fresh_model(config: TrainingConfig) -> nn.Module:
    torch.manual_seed(config.seed)  # a new, identically initialised model on every run
    return build_model(config.architecture, **config.model)


def _on(device: torch.device, dataset: TensorDataset) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device) for t in dataset.tensors)


def _sweep(config: TrainingConfig, train: tuple[torch.Tensor, ...], device: torch.device) -> dict[str, Any]:
    settings = FitSettings.from_block(config.model_dump())
    result = lr_find(_fresh_model(config).to(device), train, settings, **config.lr_finder.model_dump())
    logger.info("%s: the learning-rate finder suggests lr=%.3g", config.architecture, result.suggestion)
    return result.to_dict()


def find_learning_rate(train_set: TensorDataset, config: TrainingConfig, cpu_share: int = 1) -> dict[str, Any]:
    """Sweeps the learning rate exponentially on a throw-away model and suggests one."""
    device = resolve_device(config.device)
    with _threads(config, cpu_share):
        return _sweep(config, _on(device, train_set), device)


def _train(
    config: TrainingConfig,
    train: tuple[torch.Tensor, torch.Tensor],
    valid: tuple[torch.Tensor, torch.Tensor] | None,
    normalisation_stats: dict[str, Any],
) -> tuple[nn.Module, dict[str, Any]]:
    """A fresh model trained on ``train`` (validated on ``valid`` when given), with its history."""
    device = resolve_device(config.device)
    start = time.perf_counter()
    if not ARCHITECTURES[config.architecture].learns:  # fitted in one pass (the centroid baseline)
        model = _fresh_model(config).fit(*train)
        epochs = [{"epoch": 0, "train_loss": float("nan"), "valid_loss": float("nan"), "accuracy": float("nan")}]
        if valid is not None:
            loss, predictions = evaluate(model, *valid)
            epochs[0].update(valid_loss=loss, accuracy=(predictions == valid[1]).float().mean().item())
        lr, device = 0.0, torch.device("cpu")
        precision, why = "fp32", "fitted in one pass"
        epochs[0].update(time=time.perf_counter() - start, lr=lr)
    else:
        train = tuple(t.to(device) for t in train)
        lr = _sweep(config, train, device)["suggestion"] if config.use_lr_finder else config.lr
        precision, why = resolve_precision(config.precision, device, allowed=ARCHITECTURES[config.architecture].bf16)
        model = _fresh_model(config).to(device)
        logger.info(
            "Training %s (%d parameters) on %s in %s (%s), %d rows: %d epochs, %s, lr=%.3g, %s schedule",
            config.architecture,
            count_parameters(model),
            device,
            precision,
            why,
            len(train[0]),
            config.epochs,
            config.optimizer,
            lr,
            config.schedule,
        )
        settings = FitSettings.from_block(config.model_dump(), lr=lr, precision=precision)
        on_device = None if valid is None else tuple(t.to(device) for t in valid)
        history = fit(model, train, on_device, settings, log=logger.info)
        epochs = [vars(h) for h in history]
        model = model.cpu()
    model.config = model.config.trained_with(
        Preprocessing(**{k: normalisation_stats[k] for k in ("scale", "mean", "std")})
    )
    history = {
        "architecture": config.architecture,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "precision": precision,
        "precision_why": why,
        "lr": lr,
        "rows": len(train[0]),
        "training_seconds": time.perf_counter() - start,
        "epochs": epochs,
    }
    return model, history


def train_model(
    train_set: TensorDataset,
    validation_set: TensorDataset,
    normalisation_stats: dict[str, Any],
    config: TrainingConfig,
    cpu_share: int = 1,
) -> tuple[nn.Module, dict[str, Any]]:
    """Trains a fresh model on the train split, validating every epoch; it carries its preprocessing."""
    with _threads(config, cpu_share):
        return _train(config, train_set.tensors, validation_set.tensors, normalisation_stats)


def refit_on_all_rows(
    split_model: nn.Module,
    train_set: TensorDataset,
    validation_set: TensorDataset,
    normalisation_stats: dict[str, Any],
    config: TrainingConfig,
    cpu_share: int = 1,
) -> tuple[nn.Module, dict[str, Any]]:
    """The model to submit: with ``refit_full``, a fresh one trained on every labelled row; else the split model."""
    if not config.refit_full:
        return split_model, {"refit_full": False, "rows": len(train_set), "training_seconds": 0.0}
    images = torch.cat([train_set.tensors[0], validation_set.tensors[0]])
    labels = torch.cat([train_set.tensors[1], validation_set.tensors[1]])
    logger.info("%s: refitting on all %d labelled rows, same settings", config.architecture, len(labels))
    with _threads(config, cpu_share):
        model, history = _train(config, (images, labels), None, normalisation_stats)
    return model, {"refit_full": True, **history}


def _inference_precision(config: TrainingConfig) -> str:
    """The precision a trained model predicts in on the CPU: its block's, as its training resolved it.

    bf16 halves the time of a prediction on a CPU with AMX; it agreed with float32 on all but one
    or two of 8,443 validation digits for fast and the cnn (benchmarks/README.md).
    """
    allowed = ARCHITECTURES[config.architecture].bf16 and ARCHITECTURES[config.architecture].learns
    return resolve_precision(config.precision, torch.device("cpu"), allowed=allowed)[0]


def evaluate_model(
    split_model: nn.Module, validation_set: TensorDataset, config: TrainingConfig, cpu_share: int = 1
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Validation accuracy, loss, per-class accuracy, confusion matrix, and the class probabilities."""
    images, labels = validation_set.tensors
    precision = _inference_precision(config)
    with _threads(config, cpu_share):
        loss, _ = evaluate(split_model, images, labels, precision=precision)
        probabilities = class_probabilities(split_model, images, config.test_time_shifts, precision=precision)
    metrics = classification_metrics(labels.numpy(), probabilities.numpy())
    logger.info("%s: validation accuracy %.4f, loss %.4f", config.architecture, metrics["accuracy"], loss)
    metrics = {
        "architecture": config.architecture,
        "options": split_model.config.options,
        "parameters": count_parameters(split_model),
        "loss": loss,
        "test_time_shifts": config.test_time_shifts,
        **metrics,
    }
    return metrics, probability_table(probabilities.numpy(), labels.numpy())


def predict_test(
    model: nn.Module, validated_test: pd.DataFrame, config: TrainingConfig, cpu_share: int = 1
) -> pd.DataFrame:
    """Class probabilities for every test image, in test.csv's row order, with the model's own preprocessing."""
    images = model.config.preprocessing.images(validated_test[PIXEL_COLUMNS].to_numpy())
    views = len(SHIFTS) if config.test_time_shifts else 1
    precision = _inference_precision(config)
    logger.info(
        "%s: predicting %s test digits in %s%s",
        config.architecture,
        f"{len(images):,}",
        precision,
        f", {views} views each (test-time shifts)" if views > 1 else "",
    )
    start = time.perf_counter()
    with _threads(config, cpu_share):
        probabilities = class_probabilities(model, images, config.test_time_shifts, precision=precision).numpy()
    logger.info("%s: predicted in %s", config.architecture, duration(time.perf_counter() - start))
    return probability_table(probabilities)


def make_submission(test_probabilities: pd.DataFrame, sample_submission: pd.DataFrame) -> pd.DataFrame:
    """Kaggle's ImageId,Label table (the most probable digit), checked against sample_submission."""
    if len(test_probabilities) != len(sample_submission):
        raise RawDataError(
            f"{len(test_probabilities)} predictions for {len(sample_submission)} rows of "
            "sample_submission.csv; expected one prediction per test image."
        )
    labels = test_probabilities[PROBABILITY_COLUMNS].to_numpy().argmax(axis=1)
    return pd.DataFrame({"ImageId": sample_submission["ImageId"].to_numpy(), "Label": labels.astype(np.int64)})


def score_submission(submission: pd.DataFrame, solution: pd.DataFrame | None) -> dict[str, Any]:
    """Accuracy of the submission against solution.csv, as Kaggle's leaderboard scores it."""
    if solution is None:
        logger.info("No solution.csv in the raw folder: the submission is not scored locally.")
        return {"scored": False, "accuracy": None, "rows": len(submission)}
    merged = submission.merge(solution, on="ImageId", how="left", suffixes=("", "_true"))
    if merged["Label_true"].isna().any() or len(solution) != len(submission):
        raise RawDataError(
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
def plot_misclassified(split_model: nn.Module, validation_set: TensorDataset, count: int = 18) -> Figure:
    """The validation digits the model got wrong most confidently, with the probability it gave its wrong answer."""
    images, labels = validation_set.tensors
    probabilities = class_probabilities(split_model, images)
    confidence, predicted = probabilities.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    worst = wrong[confidence[wrong].argsort(descending=True, stable=True)[:count]]
    return plots.misclassified(
        images[worst].numpy(),
        labels[worst].numpy(),
        predicted[worst].numpy(),
        confidence[worst].numpy(),
        split_model.config.architecture,
    )


def summarise_run(
    metrics: dict[str, Any],
    history: dict[str, Any],
    submission_training: dict[str, Any],
    test_score: dict[str, Any],
    run: dict[str, Any],
) -> dict[str, Any]:
    """One leaderboard row: validation accuracy, test score, size, training time, which model was submitted."""
    return {
        "architecture": metrics["architecture"],
        "validation_accuracy": round(metrics["accuracy"], 4),
        "validation_loss": round(metrics["loss"], 4),
        "test_score": None if test_score["accuracy"] is None else round(test_score["accuracy"], 4),
        "parameters": metrics["parameters"],
        "epochs": len(history["epochs"]),
        "training_seconds": round(history["training_seconds"] + submission_training["training_seconds"], 1),
        "submitted": f"refit on all {submission_training['rows']:,} rows"
        if submission_training["refit_full"]
        else f"trained on {history['rows']:,} split rows",
        "device": history["device"],
        "precision": history.get("precision", "fp32"),
        "run": run["run_id"],
    }

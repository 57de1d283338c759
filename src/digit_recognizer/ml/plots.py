"""Figures for the catalog's plot datasets (matplotlib, no Kedro imports)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

# Figures are built without pyplot: no global state, no display needed, and nothing to close.


def digit_grid(images: np.ndarray, titles: list[str], columns: int, suptitle: str) -> Figure:
    """Digits tiled into one image (one axes, so it draws fast), each captioned underneath."""
    rows = max(1, -(-len(images) // columns))
    cell, pad = 28, 12  # pixels per digit, pixels of caption space under it
    mosaic = np.zeros((rows * (cell + pad), columns * (cell + 4)), dtype=np.float32)
    fig = Figure(figsize=(max(columns * 0.95, 3.0), rows * 1.2 + 0.5))
    ax = fig.add_axes((0, 0, 1, 1 - 0.45 / (rows * 1.2 + 0.5)))
    for i, (image, title) in enumerate(zip(images, titles, strict=True)):
        top, left = (i // columns) * (cell + pad), (i % columns) * (cell + 4) + 2
        mosaic[top : top + cell, left : left + cell] = image.reshape(cell, cell)
        ax.text(left + cell / 2, top + cell + pad / 2, title, ha="center", va="center", fontsize=7)
    ax.imshow(mosaic, cmap="gray_r", vmin=float(mosaic.min()), vmax=float(mosaic.max()) or 1.0, interpolation="nearest")
    ax.axis("off")
    fig.suptitle(suptitle, fontsize=10)
    return fig


def sample_digits(images: np.ndarray, labels: np.ndarray, per_class: int = 4) -> Figure:
    """The first few training images of every digit."""
    chosen = [i for d in range(10) for i in np.flatnonzero(labels == d)[:per_class]]
    return digit_grid(images[chosen], [str(labels[i]) for i in chosen], per_class * 2, "Sample training digits")


def lr_finder_curve(result: dict[str, Any], title: str) -> Figure:
    """Smoothed loss against learning rate on a log axis, with the suggested rate marked."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(result["rates"], result["losses"])
    ax.axvline(
        result["suggestion"], color="tab:red", linestyle="--", label=f"suggested lr = {result['suggestion']:.3g}"
    )
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss", title=title)
    ax.legend()
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.13, top=0.92)
    return fig


def training_curves(history: dict[str, Any]) -> Figure:
    """Train and validation loss, validation accuracy and the learning rate, per epoch."""
    epochs = pd.DataFrame(history["epochs"])
    fig = Figure(figsize=(13, 3.8))
    loss_ax, acc_ax, lr_ax = fig.subplots(1, 3)
    validated = epochs.dropna(subset=["accuracy"])  # the epochs a validation pass followed (validate_every)
    loss_ax.plot(epochs["epoch"], epochs["train_loss"], marker=".", label="train")
    loss_ax.plot(validated["epoch"], validated["valid_loss"], marker=".", label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss", title=f"{history['architecture']}: loss")
    loss_ax.legend()
    acc_ax.plot(validated["epoch"], validated["accuracy"], marker=".", color="tab:green")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title=f"{history['architecture']}: validation accuracy")
    if "lr" in epochs:
        lr_ax.plot(epochs["epoch"], epochs["lr"], marker=".", color="tab:purple")
    lr_ax.set(xlabel="epoch", ylabel="learning rate (end of epoch)", title=f"{history['architecture']}: learning rate")
    fig.tight_layout()
    return fig


def confusion_matrix(metrics: dict[str, Any]) -> Figure:
    """Counts of true against predicted digits on the validation split."""
    matrix = np.asarray(metrics["confusion_matrix"])
    fig = Figure(figsize=(6, 5.5))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    for (true, pred), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(pred, true, count, ha="center", va="center", fontsize=8, color=colour)
    ax.set(
        xticks=range(10),
        yticks=range(10),
        xlabel="predicted",
        ylabel="true",
        title=f"{metrics['architecture']}: validation accuracy {metrics['accuracy']:.4f}",
    )
    fig.tight_layout()
    return fig


def misclassified(
    images: np.ndarray, true: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, architecture: str
) -> Figure:
    """Validation digits the model got wrong, most confident first: true label, prediction, its probability."""
    titles = [f"true {t} / pred {p}\np={c:.2f}" for t, p, c in zip(true, predicted, confidence, strict=True)]
    return digit_grid(images, titles, 6, f"{architecture}: the most confidently wrong validation digits")


def leaderboard_bars(leaderboard: pd.DataFrame) -> Figure:
    """Validation accuracy and sample test score per architecture."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    x = np.arange(len(leaderboard))
    ax.bar(x - 0.2, leaderboard["validation_accuracy"], width=0.4, label="validation accuracy")
    ax.bar(x + 0.2, leaderboard["test_score"].fillna(0), width=0.4, label="test score (solution.csv)")
    for xi, value in zip(x, leaderboard["validation_accuracy"], strict=True):
        ax.text(xi - 0.2, value + 0.01, f"{value:.3f}", ha="center", fontsize=8)
    ax.set(xticks=x, xticklabels=leaderboard["architecture"], ylim=(0, 1.08), ylabel="accuracy", title="Leaderboard")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig

"""Nodes that combine trained members into one submission."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from digit_recognizer.config import ENSEMBLE_CANDIDATES, EnsembleConfig
from digit_recognizer.pipelines.training.nodes import PROBABILITY_COLUMNS, classification_metrics, probability_table

logger = logging.getLogger(__name__)


def average_members(config: EnsembleConfig, *member_outputs: Any) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Averages the chosen members' class probabilities, on the validation split and on the test set.

    ``member_outputs`` holds, for each of ``ENSEMBLE_CANDIDATES`` in turn, its validation
    probabilities, test probabilities and leaderboard row.
    """
    outputs = dict(zip(ENSEMBLE_CANDIDATES, zip(*[iter(member_outputs)] * 3, strict=True), strict=True))
    chosen = {name: outputs[name] for name in config.members}
    validations = [validation for validation, _, _ in chosen.values()]
    labels = validations[0]["label"].to_numpy()
    for name, validation in zip(chosen, validations, strict=True):
        if len(validation) != len(labels) or (validation["label"].to_numpy() != labels).any():
            raise ValueError(
                f"ensemble.members: {name} was validated on other rows than {config.members[0]}; "
                "train every member with the same split parameters (one run of --pipeline ensemble does)."
            )
    validation = np.mean([v[PROBABILITY_COLUMNS].to_numpy() for v in validations], axis=0)
    test = np.mean([t[PROBABILITY_COLUMNS].to_numpy() for _, t, _ in chosen.values()], axis=0)
    rows = [row for _, _, row in chosen.values()]
    metrics = {
        "architecture": "ensemble",
        "members": list(config.members),
        "options": {"members": [f"{r['architecture']} ({r['run']})" for r in rows]},
        "parameters": sum(r["parameters"] for r in rows),
        "training_seconds": sum(r["training_seconds"] for r in rows),
        "loss": float(-np.log(np.clip(validation[np.arange(len(labels)), labels], 1e-12, None)).mean()),
        **classification_metrics(labels, validation),
    }
    members = pd.DataFrame([{"member": name, **row} for name, row in zip(chosen, rows, strict=True)])
    logger.info(
        "ensemble of %s: validation accuracy %.4f (members: %s)",
        ", ".join(config.members),
        metrics["accuracy"],
        ", ".join(f"{r['validation_accuracy']:.4f}" for r in rows),
    )
    return metrics, probability_table(test), members


def summarise_ensemble(
    metrics: dict[str, Any], test_score: dict[str, Any], members: pd.DataFrame, run: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The ensemble's leaderboard row, and its leaderboard: the members and the ensemble, best first."""
    row = {
        "architecture": "ensemble",
        "validation_accuracy": round(metrics["accuracy"], 4),
        "validation_loss": round(metrics["loss"], 4),
        "test_score": None if test_score["accuracy"] is None else round(test_score["accuracy"], 4),
        "parameters": metrics["parameters"],
        "epochs": None,
        "training_seconds": round(metrics["training_seconds"], 1),
        "submitted": f"mean of {len(members)} members",
        "device": None,
        "run": run["run_id"],
    }
    table = pd.concat([members, pd.DataFrame([{"member": "ensemble", **row}])], ignore_index=True)
    return row, table.sort_values("validation_accuracy", ascending=False, ignore_index=True)

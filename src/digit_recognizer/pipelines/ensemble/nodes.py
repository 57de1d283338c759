"""Nodes that combine trained members into one submission."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from digit_recognizer.config import EnsembleConfig, ParameterError
from digit_recognizer.ml.metrics import PROBABILITY_COLUMNS, classification_metrics, probability_table

logger = logging.getLogger(__name__)


def average_members(config: EnsembleConfig, **probabilities: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """The mean of the chosen members' class probabilities, on the validation split and on the test set.

    ``probabilities`` holds every candidate's ``<member>_validation_probabilities`` and
    ``<member>_test_probabilities``, by those names.
    """
    chosen = {
        name: (probabilities[f"{name}_validation_probabilities"], probabilities[f"{name}_test_probabilities"])
        for name in config.members
    }
    labels = next(iter(chosen.values()))[0]["label"].to_numpy()
    for name, (validation, _) in chosen.items():
        if len(validation) != len(labels) or (validation["label"].to_numpy() != labels).any():
            raise ParameterError(
                f"ensemble.members: {name} was validated on other rows than {config.members[0]}; "
                "train every member with the same split parameters (one run of --pipeline ensemble does)."
            )
    validation = np.mean([v[PROBABILITY_COLUMNS].to_numpy() for v, _ in chosen.values()], axis=0)
    test = np.mean([t[PROBABILITY_COLUMNS].to_numpy() for _, t in chosen.values()], axis=0)
    metrics = {
        "architecture": "ensemble",
        "members": list(config.members),
        "loss": float(-np.log(np.clip(validation[np.arange(len(labels)), labels], 1e-12, None)).mean()),
        **classification_metrics(labels, validation),
    }
    logger.info("ensemble of %s: validation accuracy %.4f", ", ".join(config.members), metrics["accuracy"])
    return metrics, probability_table(test)


def summarise_ensemble(
    metrics: dict[str, Any],
    test_score: dict[str, Any],
    run: dict[str, Any],
    config: EnsembleConfig,
    **summaries: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The ensemble's leaderboard row, and its leaderboard: the members and the ensemble, best first.

    ``summaries`` holds every candidate's ``<member>_summary``, by that name.
    """
    members = {name: summaries[f"{name}_summary"] for name in config.members}
    row = {
        "architecture": "ensemble",
        "validation_accuracy": round(metrics["accuracy"], 4),
        "validation_loss": round(metrics["loss"], 4),
        "test_score": None if test_score["accuracy"] is None else round(test_score["accuracy"], 4),
        "parameters": sum(member["parameters"] for member in members.values()),
        "epochs": None,
        "training_seconds": round(sum(member["training_seconds"] for member in members.values()), 1),
        "submitted": f"mean of {', '.join(members)}",
        "device": None,
        "precision": None,
        "run": run["run_id"],
    }
    table = pd.DataFrame([{"member": name, **member} for name, member in {**members, "ensemble": row}.items()])
    return row, table.sort_values("validation_accuracy", ascending=False, ignore_index=True)

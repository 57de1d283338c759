from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from digit_recognizer.config import EnsembleConfig, ParameterError, check_parameters
from digit_recognizer.ml.metrics import PROBABILITY_COLUMNS, probability_table
from digit_recognizer.pipelines.ensemble.nodes import average_members, summarise_ensemble


def _member(seed: int, labels: np.ndarray, test_rows: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    validation = rng.dirichlet(np.ones(10), size=len(labels))
    test = rng.dirichlet(np.ones(10), size=test_rows)
    return probability_table(validation, labels), probability_table(test)


def _by_name(outputs: dict) -> dict:
    """Each member's validation and test probabilities under their dataset names."""
    return {
        f"{name}_{split}_probabilities": frame
        for name, member in outputs.items()
        for split, frame in zip(("validation", "test"), member, strict=True)
    }


LABELS = np.arange(20) % 10
ROW = {"architecture": "cnn", "validation_accuracy": 0.9, "parameters": 100, "training_seconds": 2.0, "run": "R"}


def test_the_ensemble_is_the_mean_of_the_chosen_members():
    outputs = {name: _member(seed, LABELS) for seed, name in enumerate(("cnn", "cnn_seed1", "cnn_seed2"))}
    config = EnsembleConfig(members=["cnn", "cnn_seed2"])
    metrics, test = average_members(config, **_by_name(outputs))
    expected = (outputs["cnn"][1].to_numpy() + outputs["cnn_seed2"][1].to_numpy()) / 2
    assert np.allclose(test[PROBABILITY_COLUMNS].to_numpy(), expected, atol=1e-6)
    validation = (
        outputs["cnn"][0][PROBABILITY_COLUMNS].to_numpy() + outputs["cnn_seed2"][0][PROBABILITY_COLUMNS].to_numpy()
    ) / 2
    assert metrics["accuracy"] == pytest.approx((validation.argmax(1) == LABELS).mean())
    summaries = {f"{name}_summary": ROW for name in outputs}
    row, table = summarise_ensemble(metrics, {"accuracy": 0.5}, {"run_id": "R2"}, config, **summaries)
    assert row["run"] == "R2" and row["test_score"] == 0.5 and row["parameters"] == 200
    assert sorted(table["member"]) == ["cnn", "cnn_seed2", "ensemble"]


def test_members_validated_on_other_rows_are_refused():
    outputs = {"cnn": _member(0, LABELS), "cnn_seed1": _member(1, LABELS[::-1]), "cnn_seed2": _member(2, LABELS)}
    with pytest.raises(ValueError, match="ensemble.members: cnn_seed1 was validated on other rows than cnn"):
        average_members(EnsembleConfig(members=["cnn", "cnn_seed1"]), **_by_name(outputs))


def test_members_must_be_known():
    with pytest.raises(ParameterError, match=r"ensemble.members = \['cnn', 'resnet'\]: expected some of"):
        check_parameters({"ensemble": {"members": ["cnn", "resnet"]}})


def test_members_can_be_given_on_the_command_line():
    assert EnsembleConfig.model_validate({"members": "cnn+cnn_seed2"}).members == ["cnn", "cnn_seed2"]

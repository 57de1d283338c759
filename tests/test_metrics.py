from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

from digit_recognizer.ml.metrics import classification_metrics


@pytest.mark.parametrize("absent", [[], [3, 7]])
def test_metrics_match_scikit_learns(absent):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    labels = labels[~np.isin(labels, absent)]  # digits with no validation rows: recall 0, as scikit-learn says
    probabilities = rng.random((len(labels), 10))
    probabilities[np.arange(len(labels)), labels] += rng.random(len(labels)) * 0.8  # mostly right
    predictions = probabilities.argmax(1)
    metrics = classification_metrics(labels, probabilities)
    digits = list(range(10))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, predictions))
    assert metrics["confusion_matrix"] == confusion_matrix(labels, predictions, labels=digits).tolist()
    expected = recall_score(labels, predictions, labels=digits, average=None, zero_division=0)
    assert list(metrics["per_class_accuracy"].values()) == pytest.approx(list(np.round(expected, 6)))
    assert all(metrics["per_class_accuracy"][str(d)] == 0 for d in absent)
    assert metrics["validation_rows"] == len(labels) and 0.5 < metrics["accuracy"] < 1

"""Classification metrics and probability tables, from labels and class probabilities (numpy, scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

from digit_recognizer.ml.models import N_CLASSES


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix of the most probable digits."""
    predictions = probabilities.argmax(axis=1)
    digits = list(range(N_CLASSES))
    per_class = recall_score(labels, predictions, labels=digits, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "per_class_accuracy": {str(d): round(float(a), 6) for d, a in enumerate(per_class)},
        "confusion_matrix": confusion_matrix(labels, predictions, labels=digits).tolist(),
        "validation_rows": len(labels),
    }


PROBABILITY_COLUMNS = [f"p{d}" for d in range(N_CLASSES)]


def probability_table(probabilities: np.ndarray, labels: np.ndarray | None = None) -> pd.DataFrame:
    """Class probabilities as a table, one column per digit (and the true label, when known)."""
    table = pd.DataFrame(probabilities.astype(np.float32), columns=PROBABILITY_COLUMNS)
    if labels is not None:
        table.insert(0, "label", labels.astype(np.int64))
    return table

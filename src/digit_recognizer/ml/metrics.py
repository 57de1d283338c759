"""Classification metrics and probability tables, from labels and class probabilities (numpy).

The three metrics are a few lines of numpy (they match scikit-learn's ``accuracy_score``,
``recall_score`` and ``confusion_matrix``, tests/test_metrics.py): importing scikit-learn, with
SciPy, would add 0.9 s to the start of every run that trains.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from digit_recognizer.ml.models import N_CLASSES


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix of the most probable digits."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = probabilities.argmax(axis=1)
    # matrix[true, predicted]: how many digits of each true class were read as each digit
    matrix = np.bincount(labels * N_CLASSES + predictions, minlength=N_CLASSES**2).reshape(N_CLASSES, N_CLASSES)
    rows = matrix.sum(axis=1)
    per_class = np.divide(np.diag(matrix), rows, out=np.zeros(N_CLASSES), where=rows > 0)  # recall; 0 if absent
    return {
        "accuracy": float((predictions == labels).mean()) if len(labels) else 0.0,
        "per_class_accuracy": {str(d): round(float(a), 6) for d, a in enumerate(per_class)},
        "confusion_matrix": matrix.tolist(),
        "validation_rows": len(labels),
    }


PROBABILITY_COLUMNS = [f"p{d}" for d in range(N_CLASSES)]


def probability_table(probabilities: np.ndarray, labels: np.ndarray | None = None) -> pd.DataFrame:
    """Class probabilities as a table, one column per digit (and the true label, when known)."""
    table = pd.DataFrame(probabilities.astype(np.float32), columns=PROBABILITY_COLUMNS)
    if labels is not None:
        table.insert(0, "label", labels.astype(np.int64))
    return table

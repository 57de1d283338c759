"""Nodes that compare the architectures."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from digit_recognizer.ml import plots


def build_leaderboard(*summaries: dict[str, Any]) -> pd.DataFrame:
    """One row per architecture, best validation accuracy first."""
    table = pd.DataFrame(list(summaries))
    return table.sort_values("validation_accuracy", ascending=False, ignore_index=True)


def plot_leaderboard(leaderboard: pd.DataFrame) -> Figure:
    """Validation accuracy and test score per architecture as bars."""
    return plots.leaderboard_bars(leaderboard)

"""Shared fixtures: small slices of the embedded real-MNIST sample."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RAW_DIR = PROJECT_ROOT / "data" / "01_raw"

os.environ.setdefault("DO_NOT_TRACK", "1")  # no telemetry from tests
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def sample_files() -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(RAW_DIR / f"{name}.csv") for name in ("train", "test", "sample_submission", "solution")}


@pytest.fixture
def raw_frames(sample_files) -> dict[str, pd.DataFrame]:
    """300 labelled rows, 100 test rows and the matching sample submission and solution."""
    return {
        "train": sample_files["train"].head(300).copy(),
        "test": sample_files["test"].head(100).copy(),
        "sample_submission": sample_files["sample_submission"].head(100).copy(),
        "solution": sample_files["solution"].head(100).copy(),
    }

"""The benchmark script's tiny case, so that it keeps working (its figures are not checked)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .conftest import PROJECT_ROOT, copy_project

pytestmark = pytest.mark.slow  # whole `kedro run`s: left out by `pytest -m "not slow"`


def test_benchmark_runs_its_tiny_case(tmp_path):
    root = copy_project(tmp_path / "project")
    shutil.copytree(
        PROJECT_ROOT / "benchmarks", root / "benchmarks", ignore=shutil.ignore_patterns("out", "__pycache__")
    )
    result = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--tiny"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "DO_NOT_TRACK": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for heading in ("1. whole process", "2. the fastest kedro run", "3. training seconds per epoch", "4. disk written"):
        assert heading in result.stdout
    assert "conv.train_model" in result.stdout and "ratio (target <= 1.10)" in result.stdout


def test_gpu_script_runs_on_the_cpu(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu_epoch.py",
            "--device",
            "cpu",
            "--rows",
            "1500",
            "--seeds",
            "1",
            "--epochs",
            "1",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1. seconds per epoch" in result.stdout and "2. the fast recipe to 0.99" in result.stdout
    lines = result.stdout.splitlines()
    assert sum(line.startswith(" cpu fast, ") for line in lines) == 3  # the block and two larger batches
    assert all(f" cpu {arch} " in result.stdout for arch in ("linear", "mlp", "conv"))

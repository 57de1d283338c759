"""Shared fixtures: small slices of the embedded real-MNIST sample."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RAW_DIR = PROJECT_ROOT / "data" / "01_raw"

os.environ.setdefault("DO_NOT_TRACK", "1")  # no telemetry from tests
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _no_lease_left_beating():
    """A test that starts a run on a bucket ends it: a lease still renewed after the test would write
    to the store (and log) through the tests that follow. Such a test fails, its heartbeat stopped."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t.name.startswith("lease ") and t not in before and t.is_alive()]
    for thread in left:
        for cell in thread._target.__closure__ or ():  # the heartbeat's Lease: stop renewing
            if hasattr(cell.cell_contents, "abandon"):
                cell.cell_contents.abandon()
    assert not left, f"a run's lease is still renewed after the test: {[t.name for t in left]}"


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


FAST = "linear.epochs=1,mlp.epochs=1,conv.epochs=2,cnn.epochs=1,fast.epochs=1"


def copy_project(root: Path) -> Path:
    """A fresh copy of the project at ``root``, with only the raw sample under data/."""
    root.mkdir(parents=True)
    for name in ("pyproject.toml", ".telemetry", "conf", "src", "notebooks", "templates"):
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, root / name, ignore=shutil.ignore_patterns("__pycache__", "local", ".ipynb_checkpoints")
            )
        else:
            shutil.copy(source, root / name)
    (root / "conf" / "local").mkdir()
    shutil.copytree(PROJECT_ROOT / "data" / "01_raw", root / "data" / "01_raw")
    return root


def kedro(project: Path, *args: str) -> subprocess.CompletedProcess:
    """``kedro ARGS`` run in ``project``, output captured."""
    env = {**os.environ, "DO_NOT_TRACK": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_project(tmp_path / "project")


def run_record(run_id: str, **fields):
    """A run record with the fields a test cares about (the rest as a one-second conv run)."""
    from digit_recognizer.runstore import RunRecord

    base = {"started": "2026-11-27T00:00:00+00:00", "finished": "2026-11-27T00:00:01+00:00", "seconds": 1.0}
    return RunRecord(run_id=run_id, **{**base, "pipelines": ["conv"], "parameters": {}, **fields})


S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint():
    """An S3-compatible server (moto's server mode) on 127.0.0.1, started for the tests and stopped after them."""
    import socket

    moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    pytest.importorskip("s3fs", reason="the [s3] extra (s3fs) is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_bucket(endpoint: str, name: str) -> str:
    """A new bucket on ``endpoint``; its name."""
    import boto3

    bucket = re.sub(r"[^a-z0-9-]", "-", name.lower())[:50].strip("-")
    boto3.client("s3", endpoint_url=endpoint, **_boto_credentials()).create_bucket(Bucket=bucket)
    return bucket


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    }

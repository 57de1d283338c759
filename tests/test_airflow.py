"""The conv DAG on a real Airflow, where Airflow is installed beside the project (skipped elsewhere).

pip install -e ".[test]" "apache-airflow==3.3.2" torch==2.13.0
pytest tests/test_airflow.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PROJECT_ROOT, S3_CREDENTIALS, s3_bucket

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (Path(sys.executable).parent / "airflow").exists(), reason="Airflow is not installed beside this Python"
    ),
]


def test_the_check_script_runs_the_conv_dag_from_outside_the_project(project, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "check_airflow.py"),
            "--project",
            str(project),
            "--epochs",
            "1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert result.stdout.rstrip().endswith("OK")
    assert "12 tasks, all successful" in result.stdout
    runs = [run for run in (project / "data" / "runs").iterdir() if run.is_dir()]
    assert len(runs) == 1 and (runs[0] / "run.json").exists()  # one DAG run, one project run, nothing else


def test_the_check_script_runs_the_conv_dag_into_a_bucket(project, tmp_path, s3_endpoint, monkeypatch):
    """The DAG run's kedro_params name a bucket: outputs, run store and page there, nothing in the project's data/."""
    from digit_recognizer.runstore import RunStore

    root = f"s3://{s3_bucket(s3_endpoint, 'airflow-dag')}/project"
    env = {**os.environ, **S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "check_airflow.py")]
        + ["--project", str(project), "--epochs", "1", "--data-root", root],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert result.stdout.rstrip().endswith("OK") and "12 tasks, all successful" in result.stdout
    assert f"run record: {root}/runs/" in result.stdout
    assert not (project / "data" / "runs").exists()
    for name, value in {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)  # for this process's RunStore
    [record] = RunStore(f"{root}/runs").complete()
    assert record.scheduler["name"] == "airflow" and record.outputs["run_report"].startswith(f"{root}/")

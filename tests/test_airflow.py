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
    assert "13 tasks, all successful" in result.stdout
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
    assert result.stdout.rstrip().endswith("OK") and "13 tasks, all successful" in result.stdout
    assert f"run record: {root}/runs/" in result.stdout
    assert not (project / "data" / "runs").exists()
    for name, value in {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)  # for this process's RunStore
    [record] = RunStore(f"{root}/runs").complete()
    assert record.scheduler["name"] == "airflow" and record.outputs["run_report"].startswith(f"{root}/")


def _on_workers(tmp_path, s3_endpoint, name: str, *args: str) -> subprocess.CompletedProcess:
    """scripts/check_airflow.py on a CeleryExecutor deployment (Redis, PostgreSQL, workers on hosts of their own)."""
    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    from airflow_celery import missing

    lacking = missing()
    if lacking:
        pytest.skip(f"the Celery deployment needs {'; '.join(lacking)}")
    root = f"s3://{s3_bucket(s3_endpoint, name)}/project"
    env = {**os.environ, **S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}
    env.update(DIGIT_RECOGNIZER_LEASE_TTL="3", DIGIT_RECOGNIZER_CLOCK_SKEW="1")  # a killed task found dead in seconds
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "check_airflow.py"), "--data-root", root, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )


def test_a_dag_run_on_celery_workers_of_two_hosts_is_one_run_and_survives_a_killed_worker(tmp_path, s3_endpoint):
    result = _on_workers(tmp_path, s3_endpoint, "celery-hosts", "--workers", "2", "--epochs", "1")
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert result.stdout.rstrip().endswith("OK") and "executor CeleryExecutor" in result.stdout
    assert " on worker-1 " in result.stdout and " on worker-2 " in result.stdout  # parts on both hosts

    killed = _on_workers(
        tmp_path, s3_endpoint, "celery-retry", "--workers", "2", "--epochs", "60", "--kill-worker", "--retries", "1"
    )
    assert killed.returncode == 0, (killed.stdout + killed.stderr)[-5000:]
    assert "was killed while it trained; Airflow ran the task again on another worker" in killed.stdout


def test_a_worker_killed_with_no_retry_left_aborts_the_dag_run_and_leaves_nothing(tmp_path, s3_endpoint):
    result = _on_workers(
        tmp_path, s3_endpoint, "celery-abort", "--workers", "2", "--epochs", "60", "--kill-worker", "--retries", "0"
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert "died with no retry left; close-run aborted the run" in result.stdout

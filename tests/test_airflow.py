"""The conv DAG on a real Airflow, where Airflow is installed beside the project (skipped elsewhere).

pip install -e ".[test]" "apache-airflow==3.3.2" torch==2.13.0
pytest tests/test_airflow.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PROJECT_ROOT

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

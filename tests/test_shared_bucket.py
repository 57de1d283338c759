"""A conv DAG run whose tasks run on hosts that share only a bucket (scripts/check_shared_bucket.py, moto's S3).

Each "host" is a process with its own hostname (``unshare -u``, as root) and its own folders; the
run store and every output are in the bucket. Leases live 3 s here (30 s by default) so that a
killed task is found dead within seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from digit_recognizer.runstore import RunState, RunStore

from .conftest import PROJECT_ROOT, S3_CREDENTIALS, s3_bucket

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("unshare") is None, reason="hosts of their own need root and unshare"
    ),
]
SCRIPT = PROJECT_ROOT / "scripts" / "check_shared_bucket.py"


def check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=1200, cwd=PROJECT_ROOT
    )


def test_a_dag_run_across_hosts_is_one_run_and_a_killed_task_aborts_it(s3_endpoint, monkeypatch):
    for name, value in {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    root = f"s3://{s3_bucket(s3_endpoint, 'shared-hosts')}/digit-recognizer"
    env = {**os.environ, "DIGIT_RECOGNIZER_LEASE_TTL": "3", "DIGIT_RECOGNIZER_CLOCK_SKEW": "1", "DO_NOT_TRACK": "1"}

    result = check(env, "--data-root", root, "--hosts", "2", "--epochs", "1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.rstrip().endswith("OK")
    assert "tasks on worker-1, worker-2" in result.stdout
    assert "(SIGKILL) while it held" in result.stdout and "; aborted it and deleted the" in result.stdout

    # what the script checked, seen from here: one complete run, its parts on both hosts, nothing else
    store = RunStore(f"{root}/runs")
    [(run_id, state)] = store.runs()
    record = store.record(run_id)
    assert state is RunState.COMPLETE and {part["host"] for part in record.parts} == {"worker-1", "worker-2"}
    assert all(path.startswith(f"{root}/") and f"/{run_id}/" in path for path in record.outputs.values())

    # a deployment's DAG run is checked the same way, from the bucket alone
    checked = check(env, "--data-root", root, "--dag-run", "latest")
    assert checked.returncode == 0 and f"run {run_id}: 15 nodes" in checked.stdout, checked.stdout + checked.stderr

    # and the check fails when an output is missing (it reads the bucket, not the record alone)
    import fsspec

    fs, path = fsspec.core.url_to_fs(record.outputs["conv.submission"])
    fs.rm_file(path)
    broken = check(env, "--data-root", root, "--dag-run", "latest")
    assert broken.returncode == 1 and "conv.submission is missing from the bucket" in broken.stderr

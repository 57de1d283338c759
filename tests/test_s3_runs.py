"""Runs whose outputs live on an object store (`data_root=s3://...`), against moto's S3 server on 127.0.0.1.

The run store (records, journals, leases) lives in the bucket too, under ``<data_root>/runs``;
every output goes to the bucket, one version per run, and the run's guarantees hold there:
"latest" is the newest complete run, a failed run deletes what it wrote, retention deletes whole
runs. Nothing but the raw files is on the project's disk.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from digit_recognizer.runstore import RunStore

from .conftest import S3_CREDENTIALS, s3_bucket

pytestmark = pytest.mark.slow


@pytest.fixture
def s3(s3_endpoint, request, monkeypatch):
    """The environment a `kedro run` needs to reach the test endpoint, and a fresh bucket's data root."""
    import s3fs

    for name, value in {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)  # for this process's RunStore too
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    bucket = s3_bucket(s3_endpoint, f"data-{request.node.name}")
    fs = s3fs.S3FileSystem(
        key=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": s3_endpoint, "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"]},
        skip_instance_cache=True,
    )
    return env, f"s3://{bucket}/project", fs


def run(project, env, *args):
    return subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )


def objects(fs, root: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(fs.find(root.removeprefix("s3://")))


def test_a_run_on_an_object_store_keeps_every_guarantee(project, s3):
    env, root, fs = s3
    first = run(project, env, "--pipeline", "conv", "--params", f"conv.epochs=1,data_root={root}")
    assert first.returncode == 0, first.stderr[-3000:]
    store = RunStore.at(project, root)
    assert store.root == f"{root}/runs"
    [record] = store.complete()
    assert record.outputs and all(path.startswith(f"{root}/") for path in record.outputs.values())
    assert all(f"/{record.run_id}/" in path for path in record.outputs.values())  # one version: the run's
    written = objects(fs, root)
    assert {path.removeprefix("s3://") for path in record.outputs.values()} <= set(written)
    assert f"{root}/runs/{record.run_id}/run.json".removeprefix("s3://") in written  # the record: in the bucket
    assert not (project / "data" / "07_model_output").exists()  # nothing of it on the local disk
    assert not (project / "data" / "runs").exists()
    page = fs.cat_file(record.outputs["run_report"].removeprefix("s3://")).decode()
    assert record.run_id in page and "data:image/png;base64," in page  # its images read back from the bucket

    # A predict-only run reads the model of the latest complete run, from the bucket.
    again = run(
        project, env, "--pipeline", "conv", "--tags", "data_processing,predict", "--params", f"data_root={root}"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    latest = store.latest()
    assert latest.reads == {"conv.model": record.run_id}

    # A run that fails after writing deletes what it wrote from the bucket; earlier results stay.
    before = objects(fs, root)
    failed = run(project, env, "--pipeline", "conv", "--params", f"conv.epochs=2,conv.lr=1e6,data_root={root}")
    assert failed.returncode == 1 and "Error: training diverged" in failed.stderr
    assert "deleted the" in failed.stderr and objects(fs, root) == before
    assert [r.run_id for r in store.complete()] == [latest.run_id, record.run_id]

    # Retention deletes whole runs, their objects included.
    newest = run(project, env, "--pipeline", "conv", "--params", f"conv.epochs=1,data_root={root}")
    assert newest.returncode == 0, newest.stderr[-3000:]
    retention = subprocess.run(
        [sys.executable, "-m", "digit_recognizer.retention", "--keep", "1", "--data-root", root],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert retention.returncode == 0, retention.stderr[-2000:]
    [kept] = store.complete()  # the newest run wrote every dataset the others did
    left = objects(fs, root)
    assert left and all(f"/{kept.run_id}/" in path for path in left), left

    # The runs command finds them in the bucket.
    listed = subprocess.run(
        [sys.executable, "-m", "digit_recognizer.runs", "--data-root", root, "list"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0 and listed.stdout.splitlines()[-1].split()[:4] == [
        kept.run_id,
        "complete",
        "conv",
        "conv",
    ], listed.stdout + listed.stderr


def test_the_data_root_and_its_credentials_per_environment_the_kedro_way(project, s3_endpoint):
    """No AWS variables: conf/local/globals.yml names the bucket, conf/local/credentials.yml its credentials."""
    secret = "s3cr3t-never-in-a-record"
    bucket = s3_bucket(s3_endpoint, "data-kedro-way")
    root = f"s3://{bucket}/project"
    (project / "conf" / "local" / "globals.yml").write_text(f"data_root: {root}\n")
    (project / "conf" / "local" / "credentials.yml").write_text(
        "data_root:\n"
        "  key: ${oc.env:BUCKET_KEY}\n"  # resolved as Kedro resolves credentials
        f"  secret: {secret}\n"
        f"  client_kwargs: {{endpoint_url: '{s3_endpoint}', region_name: us-east-1}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        BUCKET_KEY="testing",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        DO_NOT_TRACK="1",
    )
    result = run(project, env, "--pipeline", "conv", "--params", "conv.epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (project / "data" / "runs").exists()

    listed = subprocess.run(  # the runs command finds the bucket and its credentials in conf/local too
        [sys.executable, "-m", "digit_recognizer.runs", "latest"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    record = listed.stdout
    assert f'"conv.model": "{root}/06_models/conv/model.pt/' in record
    assert secret not in record and secret not in result.stderr  # neither in the record nor in the log
    import s3fs

    fs = s3fs.S3FileSystem(
        key="testing", secret=secret, client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True
    )
    assert not any(
        secret.encode() in fs.cat_file(path) for path in fs.find(bucket) if path.endswith((".json", ".html"))
    )

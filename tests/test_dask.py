"""``kedro run --runner ...DaskRunner`` on a Dask cluster of two "hosts" that share only a bucket (moto's S3).

A ``dask scheduler`` on 127.0.0.1 and two ``dask worker``s, each under ``unshare -u`` with a
hostname of its own (worker-1, worker-2) and its own empty working folder; the raw files, every
output and the run store are in the bucket. The processes are started and stopped here, by
process group, whatever the test does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digit_recognizer.runstore import RunStore, locations

from .conftest import FAST, RAW_DIR, S3_CREDENTIALS, copy_project, s3_bucket

pytest.importorskip("distributed", reason="the [dask] extra is not installed")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("unshare") is None, reason="hosts of their own need root and unshare"
    ),
]
RUNNER = "digit_recognizer.framework.dask_runner.DaskRunner"
DASK = str(Path(sys.executable).parent / "dask")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A scheduler and workers, each in a process group of its own."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env, self.port = root, env, _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, command: list[str]) -> None:
        folder = self.root / name  # its own, empty working folder
        folder.mkdir(parents=True)
        log = open(folder / "log", "w")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            command, cwd=folder, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self, workers: int) -> None:
        self._start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"])
        for k in range(1, workers + 1):
            name = f"worker-{k}"
            worker = f"exec {DASK} worker {self.address} --nthreads 1 --no-dashboard --name {name}"
            self._start(name, ["unshare", "-u", "sh", "-c", f"hostname {name} && {worker}"])
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)

    def kill(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    def running(self, key_prefix: str) -> str | None:
        """The worker (by name) that is running the task whose key starts with ``key_prefix``, if any."""
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
            for address, keys in client.processing().items():
                if any(str(key).startswith(key_prefix) for key in keys):
                    return str(names.get(address))
        return None


@pytest.fixture
def bucket_env(s3_endpoint, monkeypatch) -> dict[str, str]:
    for name, value in {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, "DO_NOT_TRACK": "1", "COLUMNS": "200"}


@pytest.fixture
def cluster(tmp_path, bucket_env):
    found = Cluster(tmp_path / "hosts", bucket_env)
    try:
        found.start(workers=2)
        yield found
    finally:
        found.stop()


def _bucket_with_raw_files(endpoint: str, name: str) -> str:
    import fsspec

    bucket = s3_bucket(endpoint, name)
    fs = fsspec.filesystem("s3")
    for path in RAW_DIR.glob("*.csv"):
        fs.put_file(str(path), f"{bucket}/raw/{path.name}")
    return f"s3://{bucket}"


def _kedro_run(project: Path, env: dict[str, str], params: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "kedro", "run", "--pipelines", "linear,mlp,conv", "--runner", RUNNER]
    return subprocess.Popen(
        [*command, "--params", params, *extra],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_run_on_a_dask_cluster_of_two_hosts_is_one_run_and_survives_a_killed_worker(
    cluster, bucket_env, s3_endpoint, tmp_path
):
    root = _bucket_with_raw_files(s3_endpoint, "dask-hosts")
    project = copy_project(tmp_path / "driver")
    env = {**bucket_env, "DASK_SCHEDULER_ADDRESS": cluster.address}
    params = f"data_root={root}/dr,raw_dir={root}/raw,{FAST}"
    run = _kedro_run(project, env, params)
    out = run.communicate(timeout=900)[0]
    assert run.returncode == 0, out[-4000:]

    store = RunStore.at(project, f"{root}/dr")
    [record] = store.complete()
    assert record.raw_dir == f"{root}/raw" and record.inputs["raw_train"]["path"] == f"{root}/raw/train.csv"
    hosts = {node["node"]: node["host"] for node in record.timings["nodes"]}
    assert set(hosts) == set(record.nodes) and set(hosts.values()) == {"worker-1", "worker-2"}, hosts
    assert all(f"/{record.run_id}/" in path and path.startswith(f"{root}/dr/") for path in record.outputs.values())
    assert sorted(p.name for p in (project / "data").iterdir()) == ["01_raw"]  # nothing on the driver's disk
    history = json.loads(locations.read_bytes(record.outputs[record.histories["conv"]]))
    assert history["threads"] == 1  # `threads: auto` took the worker's share, its one thread
    for host in ("worker-1", "worker-2"):  # nor on a worker's
        assert sorted(p.name for p in (cluster.root / host).iterdir()) == ["log"]

    # A worker dies (SIGKILL, its whole process group) while it trains conv: Dask runs the node again
    # on the other worker, and the run completes with every output of one version.
    run = _kedro_run(project, env, f"data_root={root}/dr,raw_dir={root}/raw,{FAST},conv.epochs=60")
    deadline, victim = time.time() + 300, None
    while victim is None and time.time() < deadline and run.poll() is None:
        victim = cluster.running("conv.train_model|")
        time.sleep(0.2)
    assert victim is not None, "conv.train_model never ran"
    time.sleep(1.0)  # into its epochs
    cluster.kill(victim)
    out = run.communicate(timeout=900)[0]
    assert run.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    latest = store.latest()
    assert latest.run_id != record.run_id and len(store.complete()) == 2
    survivor = {"worker-1", "worker-2"} - {victim}
    assert {n["host"] for n in latest.timings["nodes"] if n["node"] == "conv.train_model"} == survivor
    assert all(f"/{latest.run_id}/" in path for path in latest.outputs.values())
    import fsspec

    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    versions = {p.rsplit("/", 1)[-1] for p in fs.ls(f"{root}/dr/06_models/conv/model.pt".removeprefix("s3://"))}
    assert versions == {record.run_id, latest.run_id}  # no version of a dead attempt's

    # A node that fails on a worker fails the run: one message, everything it wrote deleted, "latest" unchanged.
    failing = _kedro_run(project, env, f"data_root={root}/dr,raw_dir={root}/raw,{FAST},linear.lr=1e9")
    out = failing.communicate(timeout=900)[0]
    assert failing.returncode == 1 and "Error: training diverged" in out and "Traceback" not in out, out[-4000:]
    assert store.latest().run_id == latest.run_id and len(store.complete()) == 2
    fs.invalidate_cache()
    written = {
        p.rsplit("/", 1)[-1] for p in fs.ls(f"{root}/dr/02_intermediate/validated_train.parquet".removeprefix("s3://"))
    }
    assert written == {record.run_id, latest.run_id}  # the failed run's versions were deleted
    assert [run_id for run_id, _ in store.runs()] == [latest.run_id, record.run_id]


def test_without_a_scheduler_address_the_runner_starts_a_local_cluster(project):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "kedro",
            "run",
            "--pipeline",
            "linear",
            "--runner",
            RUNNER,
            "--params",
            "linear.epochs=1",
        ],
        cwd=project,
        env={**env, "DO_NOT_TRACK": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "on a local Dask cluster of" in run.stdout + run.stderr
    [record] = RunStore.at(project).complete()
    assert {node["host"] for node in record.timings["nodes"]} == {socket.gethostname()}

"""One run store, two backends: the same assertions on a local folder (flock) and on S3 (leases).

The S3 backend runs against moto's server on 127.0.0.1 (see conftest), with leases of 1.5 s and
an allowed clock skew of 0.5 s so that a killed holder is found dead within seconds. Other
processes hold runs here (started with ``python -c``), killed with SIGKILL as a crash would.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from digit_recognizer.runstore import LiveRun, RunIncompleteError, RunPart, RunState, RunStore, WriteError, locations
from digit_recognizer.runstore.retention import prune

from .conftest import S3_CREDENTIALS, run_record, s3_bucket

RUN, OLD, NEW = "2026-11-27T02.30.00.000Z", "2026-11-26T02.30.00.000Z", "2026-11-28T02.30.00.000Z"
TTL, SKEW = 1.5, 0.5


class Where:
    """A run store and a data root on one backend, and how to write and look at outputs there."""

    def __init__(self, kind: str, store: RunStore, data: str | Path) -> None:
        self.kind, self.store = kind, store
        self.data = str(data) if locations.is_url(data) else Path(data)

    def output(self, run_id: str, name: str = "conv/model.pt") -> locations.Location:
        """The version folder of a dataset for a run."""
        return f"{self.data}/06_models/{name}/{run_id}" if isinstance(self.data, str) else self.data / name / run_id

    def write(self, folder: locations.Location, data: bytes = b"weights") -> None:
        if isinstance(folder, Path):
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "model.pt").write_bytes(data)
        else:
            import fsspec

            fs, path = fsspec.core.url_to_fs(f"{folder}/model.pt")
            fs.pipe_file(path, data)

    def exists(self, folder: locations.Location) -> bool:
        return locations.exists(folder)

    def wait_dead(self, run_id: str) -> None:
        """A flock is let go at once; a lease is found dead once it expired by more than the skew."""
        deadline = time.monotonic() + self.store.backend.grace + 2
        while self.store.state(run_id) not in (RunState.DEAD, None) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path, monkeypatch) -> Where:
    monkeypatch.setenv("DIGIT_RECOGNIZER_LEASE_TTL", str(TTL))
    monkeypatch.setenv("DIGIT_RECOGNIZER_CLOCK_SKEW", str(SKEW))
    if request.param == "local":
        return Where("local", RunStore(tmp_path / "data" / "runs", tmp_path), tmp_path / "data")
    endpoint = request.getfixturevalue("s3_endpoint")
    for name, value in {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    bucket = s3_bucket(endpoint, f"store-{request.node.name}")
    return Where("s3", RunStore(f"s3://{bucket}/project/runs", tmp_path), f"s3://{bucket}/project")


def _begun(where: Where, run_id: str) -> tuple[LiveRun, locations.Location]:
    """A run in this process that has written one output (journalled first, as the hooks do)."""
    run = LiveRun(where.store, run_id)
    run.start({})
    folder = where.output(run_id)
    run.journal(folder)
    where.write(folder)
    return run, folder


def _committed(where: Where, run_id: str) -> locations.Location:
    run, folder = _begun(where, run_id)
    run.commit(run_record(run_id, outputs={"conv.model": f"{folder}/model.pt"}))
    return folder


def _holder(where: Where, run_id: str, hostname: str | None = None, part: str | None = None) -> subprocess.Popen:
    """Another process (on another "host" with ``hostname``: unshare -u) that starts a run, writes one output
    whole, notes a second and waits to be killed before it writes that one."""
    root = str(where.store.root)
    script = textwrap.dedent(
        f"""
        import socket, sys, time
        from pathlib import Path
        from digit_recognizer.runstore import LiveRun, RunPart, RunStore
        from tests.test_run_store_backends import Where
        where = Where({where.kind!r}, RunStore({root!r}), {str(where.data)!r})
        part = {part!r}
        run = RunPart(where.store, {run_id!r}, part) if part else LiveRun(where.store, {run_id!r})
        run.start({{"conv.model": "2026-11-26T02.30.00.000Z"}})
        first, second = where.output({run_id!r}), where.output({run_id!r}, "mlp/model.pt")
        run.journal(first)
        where.write(first)
        run.journal(second)
        print("holding", socket.gethostname(), flush=True)
        time.sleep(600)
        """
    )
    command = [sys.executable, "-c", script]
    if hostname:
        command = ["unshare", "-u", "sh", "-c", f'hostname {hostname} && exec "$0" "$@"', *command]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    line = child.stdout.readline().split()
    assert line[:1] == ["holding"], line
    return child


def _kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()


def test_states_records_and_latest(where):
    folder = _committed(where, OLD)
    store = where.store
    assert store.state(OLD) is RunState.COMPLETE and store.latest().run_id == OLD
    assert store.record(OLD).outputs["conv.model"] == f"{folder}/model.pt"
    store.open_run(NEW, {"pipelines": ["conv"], "nodes": ["a"]})
    assert store.state(NEW) is RunState.OPEN and store.state(RUN) is None
    assert store.runs() == [(NEW, RunState.OPEN), (OLD, RunState.COMPLETE)]
    assert store.latest().run_id == OLD  # an open run is never "latest"
    store.set_pinned(OLD, True)
    assert store.is_pinned(OLD)


def test_one_id_one_run_when_many_start_at_once(where):
    won, lost = [], []

    def start() -> None:
        try:
            run = LiveRun(where.store, RUN)
            run.start({})
            won.append(run)
        except FileExistsError as exc:
            lost.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(lost) == 5
    assert all(f"another run already has the id {RUN}" in message for message in lost)
    won[0].abort()


def test_concurrent_runs_keep_their_own_outputs(where):
    ids = [f"2026-11-27T02.30.00.00{n}Z" for n in range(4)]
    threads = [threading.Thread(target=_committed, args=(where, run_id)) for run_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [record.run_id for record in where.store.complete()] == sorted(ids, reverse=True)
    for run_id in ids:
        [path] = where.store.record(run_id).outputs.values()
        assert locations.read_bytes(path) == b"weights" and f"/{run_id}/" in path


def test_outputs_saved_at_once_by_threads_are_all_journalled(where):
    """ThreadRunner saves outputs from several threads: every version folder must reach the journal."""
    run = LiveRun(where.store, RUN)
    run.start({})
    folders = [where.output(RUN, f"arch{n}/model.pt") for n in range(8)]
    threads = [threading.Thread(target=run.journal, args=(folder,)) for folder in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, where.store.journal_entries(run.journal_key))) == sorted(map(str, folders))
    run.abort()


def test_a_failing_run_deletes_what_it_wrote_and_the_last_complete_run_stays_latest(where):
    _committed(where, OLD)
    run, folder = _begun(where, RUN)
    assert run.abort() == [folder]
    assert not where.exists(folder) and where.store.state(RUN) is None and where.store.latest().run_id == OLD


@pytest.mark.slow  # other processes, and leases left to expire
def test_a_live_run_on_another_host_is_left_alone_and_a_killed_one_is_cleaned(where):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("a second hostname needs root and unshare")
    child = _holder(where, RUN, hostname="worker-2")
    store = where.store
    try:
        assert store.state(RUN) is RunState.LIVE
        time.sleep(TTL + SKEW + 0.5)  # longer than a lease lives: the heartbeat keeps it
        assert store.state(RUN) is RunState.LIVE and store.remove_dead() == []
        assert [live["run_id"] for live in store.live()] == [RUN]
        assert store.live()[0]["reads"] == {"conv.model": OLD}  # retention keeps what it reads
        assert store.live()[0]["host"] == "worker-2"  # `runs list` says where it runs
        assert store.latest() is None and where.exists(where.output(RUN))
    finally:
        _kill(child)
    where.wait_dead(RUN)
    assert store.state(RUN) is RunState.DEAD
    [(run_id, removed)] = store.remove_dead()
    assert run_id == RUN and [str(p) for p in removed] == [str(where.output(RUN))]  # the unwritten one: nothing
    assert store.state(RUN) is None and not where.exists(where.output(RUN))


@pytest.mark.slow  # other processes, and leases left to expire
def test_retention_during_a_run_keeps_what_it_reads_and_never_touches_it(where, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGIT_RECOGNIZER_RUNS_DIR", str(where.store.root))
    for run_id in ("2026-11-24T02.30.00.000Z", "2026-11-25T02.30.00.000Z", OLD):
        _committed(where, run_id)
    (tmp_path / "data").mkdir(exist_ok=True)
    child = _holder(where, RUN)  # reads OLD's model
    try:
        result = prune(RunStore.at(tmp_path), keep=1)
        assert sorted(result.removed) == ["2026-11-24T02.30.00.000Z", "2026-11-25T02.30.00.000Z"]
        assert not where.exists(where.output("2026-11-24T02.30.00.000Z"))
        assert where.exists(where.output(OLD)) and where.store.state(RUN) is RunState.LIVE
    finally:
        _kill(child)


def test_a_full_store_fails_the_write_by_name_and_the_run_leaves_nothing(where, monkeypatch):
    _committed(where, OLD)
    run, folder = _begun(where, RUN)
    backend = where.store.backend
    write = type(backend).write

    def full(self, key, data, what):
        if key.endswith("run.json"):  # the store is full by the time of the record
            from digit_recognizer.runstore.files import os_reason

            error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise WriteError(f"Could not write {what} to {self.where(key)}: {os_reason(error)}") from error
        return write(self, key, data, what)

    monkeypatch.setattr(type(backend), "write", full)
    with pytest.raises(WriteError, match=r"Could not write the run record to .*run\.json: No space left on device"):
        run.commit(run_record(RUN))
    run.abort()
    monkeypatch.setattr(type(backend), "write", write)
    assert not where.exists(folder) and where.store.state(RUN) is None and where.store.latest().run_id == OLD


@pytest.mark.slow  # other processes, and leases left to expire
def test_an_open_run_whose_task_was_killed_is_aborted_at_close(where):
    store = where.store
    store.open_run(RUN, {"pipelines": ["conv"], "nodes": ["a", "b"]})
    done = RunPart(store, RUN, "a")
    done.start({})
    folder = where.output(RUN, "a/model.pt")
    done.journal(folder)
    where.write(folder)
    done.commit(
        run_record(RUN, nodes=["a"], outputs={"a": f"{folder}/model.pt"}, timings={"peak_rss_mb": 1.0, "nodes": []})
    )
    child = _holder(where, RUN, part="b")
    try:
        with pytest.raises(Exception, match="still has parts running: b"):
            store.close_run(RUN)  # a live task: nothing changes
        assert store.state(RUN) is RunState.OPEN
    finally:
        _kill(child)
    # the killed task is found dead (its lock let go, or its lease expired): the run is incomplete
    with pytest.raises(RunIncompleteError, match="no task has run b"):
        store.close_run(RUN, wait=store.backend.grace)
    removed = store.abort_run(RUN)
    assert sorted(map(str, removed)) == sorted(map(str, [folder, where.output(RUN)]))
    assert store.state(RUN) is None and not where.exists(folder)


@pytest.mark.slow  # other processes, and leases left to expire
def test_a_retried_task_deletes_what_its_killed_attempt_wrote(where):
    store = where.store
    store.open_run(RUN, {"pipelines": ["conv"], "nodes": ["b"]})
    child = _holder(where, RUN, part="b")
    _kill(child)
    retry = RunPart(store, RUN, "b")
    retry.start({})  # waits for the killed attempt's lease on an object store
    assert not where.exists(where.output(RUN))
    retry.commit(run_record(RUN, nodes=["b"], timings={"peak_rss_mb": 1.0, "nodes": []}))
    record, _ = store.close_run(RUN)
    assert store.state(RUN) is RunState.COMPLETE and record.nodes == ["b"]


@pytest.mark.slow  # other processes, and leases left to expire
def test_a_paused_process_whose_lease_expired_writes_nothing_more(where):
    if where.kind == "local":
        pytest.skip("a paused process keeps its flock: nobody declares it dead")
    from digit_recognizer.runstore.objects import LeaseLost

    run = LiveRun(where.store, RUN)
    run.start({})
    lease = run._claim.lease
    lease._stop.set()  # paused: no heartbeat
    lease._thread.join()
    where.wait_dead(RUN)
    assert [run_id for run_id, _ in where.store.remove_dead()] == [RUN]  # reaped and deleted
    with pytest.raises(LeaseLost, match="expired"):
        run.journal(where.output(RUN))  # it wakes: it must stop before writing
    with pytest.raises(LeaseLost):
        run.commit(run_record(RUN))
    assert where.store.state(RUN) is None


def test_a_store_that_ignores_conditional_writes_is_refused_before_a_run_is_claimed(where, monkeypatch):
    if where.kind == "local":
        pytest.skip("a local folder has flock and rename")
    from digit_recognizer.runstore import backends

    fs = where.store.backend.objects.fs
    put = fs._pipe_file  # the store's requests are s3fs's coroutines, each bounded as a whole

    async def ignoring(path, value, mode="overwrite", **kwargs):  # as an old S3-compatible server behaves
        kwargs.pop("IfMatch", None)
        return await put(path, value, **kwargs)

    monkeypatch.setattr(fs, "_pipe_file", ignoring)
    with pytest.raises(backends.StoreError, match=r"cannot hold runs: a second conditional create .* succeeded"):
        LiveRun(where.store, RUN).start({})
    monkeypatch.setattr(fs, "_pipe_file", put)
    assert where.store.runs() == []  # nothing was claimed; the probe left nothing either
    assert [key for key in where.store.backend.objects.keys() if not key.startswith(".probe")] == []
    assert where.store.backend.objects.keys(".probe") == []

"""RunStore.state names every state a run folder can be in; other processes hold the locks."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from digit_recognizer.runstore import LiveRun, RunState, RunStore
from digit_recognizer.runstore.layout import ABORTING, DELETING, LOCK, RECORD

from .conftest import run_record

RUN = "2026-11-27T02.30.00.000Z"


def _holding(lock: Path) -> subprocess.Popen:
    """Another process holding ``lock`` with flock, as a live run or a deleting retention does."""
    script = textwrap.dedent(
        f"""
        import fcntl, os, time
        fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("holding", flush=True)
        time.sleep(600)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "holding"
    return child


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "data" / "runs", tmp_path)


def test_complete_open_and_unknown(store):
    run = LiveRun(store, RUN)
    run.start({})
    run.commit(run_record(RUN))
    assert store.state(RUN) is RunState.COMPLETE
    store.open_run("2026-11-28T00.00.00.000Z", {"pipelines": ["conv"], "nodes": ["a"]})
    assert store.state("2026-11-28T00.00.00.000Z") is RunState.OPEN
    assert store.state("2020-01-01T00.00.00.000Z") is None
    assert store.runs() == [("2026-11-28T00.00.00.000Z", RunState.OPEN), (RUN, RunState.COMPLETE)]


@pytest.mark.parametrize(
    ("marker", "state"), [(None, RunState.LIVE), (ABORTING, RunState.ABORTING), (DELETING, RunState.DELETING)]
)
def test_a_held_lock_is_live_aborting_or_deleting_and_a_free_one_is_dead(store, marker, state):
    folder = store.root / RUN
    folder.mkdir(parents=True)
    if marker:
        (folder / marker).touch()
    holder = _holding(folder / LOCK)
    try:
        assert store.state(RUN) is state
        assert store.remove_dead() == []  # never touched while held
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert store.state(RUN) is RunState.DEAD  # the OS let go of the lock
    assert [run_id for run_id, _ in store.remove_dead()] == [RUN]
    assert store.state(RUN) is None


def test_a_deletion_killed_halfway_is_finished_by_the_next_cleanup(store, tmp_path):
    run = LiveRun(store, RUN)
    run.start({})
    output = tmp_path / "data" / "06_models" / "conv" / "model.pt" / RUN
    run.journal(output)
    output.mkdir(parents=True)
    (output / "model.pt").write_text("weights")
    run.commit(run_record(RUN, outputs={"conv.model": f"data/06_models/conv/model.pt/{RUN}/model.pt"}))
    (store.root / RUN / RECORD).replace(store.root / RUN / DELETING)  # as delete() does first, then "dies"
    assert store.state(RUN) is RunState.DEAD and store.latest() is None
    [(run_id, removed)] = store.remove_dead()
    assert run_id == RUN and removed == [output] and not output.exists()


def test_where_runs_live_is_one_setting(tmp_path, monkeypatch):
    assert RunStore.at(tmp_path).root == tmp_path / "data" / "runs"
    monkeypatch.setenv("DIGIT_RECOGNIZER_RUNS_DIR", "elsewhere/runs")
    assert RunStore.at(tmp_path).root == tmp_path / "elsewhere" / "runs" and RunStore.at(tmp_path).project == tmp_path

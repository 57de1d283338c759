"""The run hooks inside a real Kedro session (in this process), on a copy of the project."""

from __future__ import annotations

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from digit_recognizer.runstore import LiveRun, RunState, RunStore


@pytest.fixture
def session_in(project, monkeypatch):
    monkeypatch.chdir(project)
    bootstrap_project(project)
    return lambda: KedroSession.create(project_path=project)


def test_a_run_whose_id_is_taken_takes_the_next_one(project, session_in):
    with session_in() as session:
        taken = session.session_id  # the id Kedro gives this run: another run already holds it
        other = LiveRun(RunStore.at(project), taken)
        other.start({})
        session.run(pipeline_names=["data_processing"])
    store = RunStore.at(project)
    [record] = store.complete()
    assert record.run_id != taken and store.state(taken) is RunState.LIVE
    assert all(f"/{record.run_id}/" in path for path in record.outputs.values())
    other.abort()

"""Retention keeps and deletes whole runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from digit_recognizer.retention import retention_main as main
from digit_recognizer.runstore import LiveRun, RunStore, retention

from .conftest import run_record

RUNS = [f"2026-11-2{d}T01.00.00.000Z" for d in range(1, 6)]


def make_run(data: Path, run_id: str, outputs: dict[str, str], commit: bool = True) -> LiveRun:
    """A run that wrote ``outputs`` (dataset name → path under data/), as the run hooks do."""
    run = LiveRun(RunStore(data / "runs"), run_id)
    run.start({})
    written = {}
    for name, relative in outputs.items():
        path = data / relative / run_id / Path(relative).name
        run.journal(path.parent)
        path.parent.mkdir(parents=True)
        path.write_text(f"{name} of {run_id}")
        written[name] = str(path.relative_to(data.parent))
    if commit:
        run.commit(run_record(run_id, outputs=written))
    return run


CONV = {"conv.model": "06_models/conv/model.pt", "conv.submission": "07_model_output/conv/submission.csv"}


@pytest.fixture
def data(tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "01_raw").mkdir(parents=True)
    (root / "01_raw" / "train.csv").write_text("label,pixel0\n1,0\n")
    for run_id in RUNS:
        make_run(root, run_id, CONV)
    return root


def prune(data: Path, keep: int, dry_run: bool = False) -> retention.Pruned:
    """Retention on the run store under ``data`` (the data root of a project at its parent)."""
    return retention.prune(RunStore.at(data.parent), keep, dry_run)


def versions(data: Path, relative: str) -> list[str]:
    return sorted(p.name for p in (data / relative).iterdir())


def test_keeps_the_newest_runs_whole_and_deletes_older_ones_whole(data):
    result = prune(data, keep=2)
    assert result.removed == RUNS[:3][::-1] and result.kept == RUNS[3:][::-1]
    for relative in CONV.values():
        assert versions(data, relative) == RUNS[3:]
    assert sorted(p.name for p in (data / "runs").iterdir()) == RUNS[3:]
    assert result.freed_bytes > 3 * len("conv.model of " + RUNS[0])
    assert (data / "01_raw" / "train.csv").exists()


def test_keeps_the_run_that_holds_a_datasets_latest_version(data):
    make_run(data, "2026-11-26T01.00.00.000Z", {"centroid.model": "06_models/centroid/model.pt"})
    prune(data, keep=1)
    # the newest run trained centroid only; the newest conv run stays whole, with its submission
    assert versions(data, "06_models/conv/model.pt") == RUNS[-1:]
    assert versions(data, "07_model_output/conv/submission.csv") == RUNS[-1:]


def test_pinned_runs_and_runs_a_live_run_reads_stay(data):
    RunStore(data / "runs").set_pinned(RUNS[0], True)
    live = LiveRun(RunStore(data / "runs"), "2026-11-29T01.00.00.000Z")
    live.start({"conv.model": RUNS[1]})  # a run in progress that reads the second-oldest model
    live.journal(data / "06_models/conv/model.pt/2026-11-29T01.00.00.000Z")
    result = prune(data, keep=1)
    assert RUNS[0] in result.kept and RUNS[1] in result.kept and RUNS[-1] in result.kept
    assert versions(data, "06_models/conv/model.pt") == [RUNS[0], RUNS[1], RUNS[-1]]
    assert (data / "runs" / "2026-11-29T01.00.00.000Z").is_dir()  # the live run itself is untouched
    live.abort()


def test_what_a_killed_run_left_is_removed(data):
    killed = make_run(data, "2026-11-28T01.00.00.000Z", CONV, commit=False)
    killed._release()  # as the OS does when its process dies
    result = prune(data, keep=10)
    assert result.interrupted == ["2026-11-28T01.00.00.000Z"]
    assert versions(data, "06_models/conv/model.pt") == RUNS


def test_dry_run_deletes_nothing_and_says_what_would_go(data, capsys, monkeypatch):
    monkeypatch.chdir(data.parent)
    assert main(["--keep", "1", "--dry-run", "--runs-dir", str(data / "runs")]) == 0
    out = capsys.readouterr().out
    assert out.count("would delete run") == 4
    assert "kept 1 complete runs, would delete 4" in out
    assert versions(data, "06_models/conv/model.pt") == RUNS


def test_cli_deletes_and_reports_folders_of_no_run(data, capsys, monkeypatch):
    monkeypatch.chdir(data.parent)
    stray = data / "06_models/conv/model.pt/2025-01-01T00.00.00.000Z"
    stray.mkdir()
    (stray / "model.pt").write_text("from before run records")
    assert main(["--keep", "1", "--runs-dir", str(data / "runs")]) == 0
    out = capsys.readouterr().out
    assert "deleted 4" in out and "1 version folders belong to no recorded run" in out
    assert versions(data, "06_models/conv/model.pt") == [stray.name, RUNS[-1]]


def test_keep_must_be_positive(data, capsys):
    assert main(["--keep", "0", "--runs-dir", str(data / "runs")]) == 1
    assert "Error: --keep must be at least 1 (the newest run is always kept), got 0" in capsys.readouterr().err
    assert versions(data, "06_models/conv/model.pt") == RUNS

"""Runs: the unit of versioning, of "latest" and of retention.

Every dataset a ``kedro run`` writes shares the run's version (Kedro's save version, a
timestamp such as ``2026-11-27T02.30.04.512Z``), and the run keeps its own folder::

    data/runs/<run id>/
        lock        held with fcntl.flock while the run is alive; the OS lets go when it dies
        journal     every version folder the run has begun to write, one per line
        run.json    the run record, written last: a run is complete once it is there
        pinned      (optional) retention never deletes this run

A run can also be made of several processes, one per task of a scheduler such as Airflow (one
DAG run is one run): the scheduler opens it (:meth:`RunStore.open_run`), each task joins it as
a part (:class:`RunPart`, with ``DIGIT_RECOGNIZER_RUN_ID`` set) and the last step closes it
(:meth:`RunStore.close_run`), which writes one record for the whole run::

    data/runs/<run id>/
        open.json           who opened it, the nodes it must run; no record yet, so never "latest"
        parts/<part>.lock   held by each task while it runs
        parts/<part>.journal, parts/<part>.json   what each task wrote, and its record

A run that raises deletes what it wrote. A run that was killed leaves its folder without a
record and with its lock free; the next run (or retention) deletes what its journal lists. A
live run, on this host or another that shares the folder, holds its lock and is never touched.
"Latest" means the newest complete run that wrote the dataset. An open run is not removed by
the next run nor by retention: it is closed, or aborted with ``python -m digit_recognizer.runs
abort RUN_ID``.

    python -m digit_recognizer.runs list                # complete runs, newest first
    python -m digit_recognizer.runs latest              # the latest complete run's record
    python -m digit_recognizer.runs latest --submission conv   # path of its conv submission
    python -m digit_recognizer.runs pin RUN_ID          # keep it whatever retention says
    python -m digit_recognizer.runs close RUN_ID        # commit an open (scheduled) run
    python -m digit_recognizer.runs abort RUN_ID        # delete an open run and all it wrote
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any

from digit_recognizer.errors import UserError
from digit_recognizer.runstore import locations
from digit_recognizer.runstore.files import atomic_write, iso_time, read_json, try_lock
from digit_recognizer.runstore.record import RunRecord

logger = logging.getLogger(__name__)

RECORD, LOCK, JOURNAL, PINNED = "run.json", "lock", "journal", "pinned"
OPEN, PARTS, ABORTING, DELETING = "open.json", "parts", ".aborting", ".deleting"
DEFAULT_ROOT = Path("data") / "runs"
ROOT_VARIABLE = "DIGIT_RECOGNIZER_RUNS_DIR"  # set: the runs live there instead of <project>/data/runs
JOIN_VARIABLE = "DIGIT_RECOGNIZER_RUN_ID"  # set: this process is a part of that open run


class RunState(str, Enum):
    """What a run folder is now; :meth:`RunStore.state` tells it (docs/runs.md has the table)."""

    COMPLETE = "complete"  # run.json is there: its outputs are candidates for "latest"
    LIVE = "live"  # a process holds the run's lock and is writing
    OPEN = "open"  # a scheduler's run (open.json), between or during its tasks
    ABORTING = "aborting"  # an open run being aborted, by a process that holds its lock
    DELETING = "deleting"  # a complete run being deleted by retention, which holds its lock
    DEAD = "dead"  # no record and the lock free: killed; the next run or retention deletes it


class RunStateError(UserError, RuntimeError):
    """A run is not in the state an operation needs (not open, still running, incomplete)."""


class RunIncompleteError(RunStateError):
    """An open run cannot be committed: a node has not run, or its parts disagree."""


class RunStore:
    """The runs under one folder (by default ``<project>/data/runs``; see :meth:`at`).

    ``project`` is the folder that the paths in run records are relative to.
    """

    def __init__(self, root: Path, project: Path | None = None) -> None:
        self.root = Path(root)
        self.project = Path(project) if project is not None else Path.cwd()

    @classmethod
    def at(cls, project: Path | str | None = None) -> RunStore:
        """The project's run store: the one place that says where runs live.

        ``$DIGIT_RECOGNIZER_RUNS_DIR`` when set (relative to the project), else ``data/runs``.
        """
        project = Path(project) if project is not None else Path.cwd()
        return cls(project / os.environ.get(ROOT_VARIABLE, str(DEFAULT_ROOT)), project)

    # States ----------------------------------------------------------------------------

    def state(self, run_id: str) -> RunState | None:
        """The run's state, or None when there is no such run folder."""
        run_dir = self.root / run_id
        if (run_dir / RECORD).exists():
            return RunState.COMPLETE
        if (run_dir / OPEN).exists():
            return RunState.OPEN
        if not run_dir.is_dir():
            return None
        with self._claimed(run_dir) as claimed:
            if claimed:
                return RunState.DEAD
        if (run_dir / ABORTING).exists():
            return RunState.ABORTING
        if (run_dir / DELETING).exists():
            return RunState.DELETING
        return RunState.LIVE

    def runs(self) -> list[tuple[str, RunState]]:
        """Every run and its state, newest first."""
        found = ((run_dir.name, self.state(run_dir.name)) for run_dir in self._run_dirs())
        return [(run_id, state) for run_id, state in found if state is not None]

    @contextmanager
    def _claimed(self, run_dir: Path) -> Iterator[bool]:
        """Holds the run's lock for the block when no process holds it (True), else False."""
        fd = try_lock(run_dir / LOCK)
        try:
            yield fd is not None
        finally:
            if fd is not None:
                os.close(fd)

    def _run_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted((d for d in self.root.iterdir() if d.is_dir() and not d.name.startswith(".")), reverse=True)

    # Complete runs ---------------------------------------------------------------------

    def complete(self) -> list[RunRecord]:
        """The records of every complete run, newest first."""
        records = (RunRecord.read(d / RECORD) for d in self._run_dirs())
        return [r for r in records if r is not None]

    def latest(self, dataset: str | None = None) -> RunRecord | None:
        """The newest complete run (that wrote ``dataset``, when given)."""
        for record in self.complete():
            if dataset is None or dataset in record.outputs:
                return record
        return None

    def record(self, run_id: str) -> RunRecord | None:
        return RunRecord.read(self.root / run_id / RECORD)

    def folders(self, record: RunRecord) -> list[locations.Location]:
        """The version folders a complete run wrote (local paths, or URLs for outputs on an object store)."""
        return [locations.parent(locations.resolve(self.project, path)) for path in record.outputs.values()]

    def is_pinned(self, run_id: str) -> bool:
        return (self.root / run_id / PINNED).exists()

    def set_pinned(self, run_id: str, pinned: bool) -> None:
        if self.state(run_id) is not RunState.COMPLETE:
            raise ValueError(f"no complete run {run_id!r} under {self.root}")
        marker = self.root / run_id / PINNED
        marker.touch() if pinned else marker.unlink(missing_ok=True)

    def delete(self, record: RunRecord) -> int:
        """Deletes a complete run: its outputs' version folders, then its folder. Returns bytes freed."""
        run_dir = self.root / record.run_id
        freed = 0
        with self._claimed(run_dir) as claimed:
            if not claimed:
                raise RunStateError(f"run {record.run_id} is held by another process")
            (run_dir / RECORD).replace(run_dir / DELETING)  # no longer complete, even if we die now
            for path in journal_entries(run_dir) or self.folders(record):
                freed += locations.size(path)
                locations.remove(path)
            freed += locations.size(run_dir)
            shutil.rmtree(run_dir, ignore_errors=True)
        return freed

    # Runs in progress ------------------------------------------------------------------

    def live(self) -> list[dict[str, Any]]:
        """Runs in progress and open runs: id and the versions they read (retention keeps those)."""
        found = []
        for run_id, state in self.runs():
            if state is RunState.LIVE:
                found.append({"run_id": run_id, **(read_json(self.root / run_id / "reads.json") or {})})
            elif state is RunState.OPEN:
                reads: dict[str, str] = {}
                for part in self.parts(run_id).values():
                    reads.update(part.reads)
                found.append({"run_id": run_id, "reads": reads, "open": True})
        return found

    def remove_dead(self) -> list[tuple[str, list[Path]]]:
        """Deletes what dead runs left (their journals' folders, then the run folder); returns each run and its folders.

        A dead run may be a killed ``kedro run``, a killed abort or a killed deletion: each
        left a journal of what it wrote, and finishing the job is the same for all three.
        """
        removed = []
        for run_dir in self._run_dirs():
            if (run_dir / RECORD).exists() or (run_dir / OPEN).exists():
                continue
            with self._claimed(run_dir) as claimed:
                if not claimed:
                    continue  # alive, here or on another host
                folders = delete_journal(run_dir)
                for journal in (run_dir / PARTS).glob("*.journal"):
                    folders += delete_journal(run_dir / PARTS, journal.stem)
                removed.append((run_dir.name, folders))
                shutil.rmtree(run_dir, ignore_errors=True)
        return removed

    # Runs made of parts (one per scheduler task) ------------------------------------------

    def open_run(self, run_id: str, info: dict[str, Any]) -> Path:
        """Opens a run that parts will join; ``info`` must name the ``nodes`` the run is to run."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{run_id}.{os.getpid()}"
        staging.mkdir()
        (staging / PARTS).mkdir()
        info = {"run_id": run_id, "opened_at": time.time(), "host": socket.gethostname(), **info}
        (staging / OPEN).write_text(json.dumps(info, indent=2, default=str) + "\n")
        try:
            staging.rename(self.root / run_id)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise FileExistsError(f"another run already has the id {run_id} ({self.root / run_id} exists)") from exc
        return self.root / run_id

    def open_info(self, run_id: str) -> dict[str, Any]:
        """What :meth:`open_run` was told; raises :class:`RunStateError` unless the run is open."""
        run_dir = self.root / run_id
        state = self.state(run_id)
        if state is RunState.COMPLETE:
            raise RunStateError(f"run {run_id} is already complete ({run_dir / RECORD})")
        info = read_json(run_dir / OPEN) if state is RunState.OPEN else None
        if info is None:
            raise RunStateError(
                f"run {run_id} is not open (no {run_dir / OPEN}): it was never opened, or it was aborted "
                "after a failed task; start a new run (in Airflow: clear the whole DAG run)"
            )
        return info

    def open_runs(self) -> list[dict[str, Any]]:
        """The open runs' infos, newest first."""
        infos = (read_json(self.root / run_id / OPEN) for run_id, state in self.runs() if state is RunState.OPEN)
        return [info for info in infos if info is not None]

    def parts(self, run_id: str) -> dict[str, RunRecord]:
        """The records of an open run's finished parts, by part name."""
        folder = self.root / run_id / PARTS
        records = {path.stem: RunRecord.read(path) for path in sorted(folder.glob("*.json"))}
        return {name: record for name, record in records.items() if record is not None}

    def _running_parts(self, run_id: str) -> list[str]:
        running = []
        for lock in sorted((self.root / run_id / PARTS).glob("*.lock")):
            fd = try_lock(lock)
            if fd is None:
                running.append(lock.stem)
            else:
                os.close(fd)
        return running

    def close_run(
        self,
        run_id: str,
        before_record: Callable[[RunRecord, Callable[[Path], None]], dict[str, str]] | None = None,
    ) -> tuple[RunRecord, Path]:
        """Commits an open run: one record from its parts' records, once every node has run.

        Raises :class:`RunIncompleteError` when a node has not run or parts ran with different
        parameters, :class:`RunStateError` while a part runs or when the run is not open; the
        run is left as it was. ``before_record(record, journal)`` writes more outputs of the run
        (its page) before the record, noting each version folder with ``journal`` first, and
        returns them (dataset → file); when it raises, the run stays open (abort it).
        """
        info = self.open_info(run_id)
        running = self._running_parts(run_id)
        if running:
            raise RunStateError(f"run {run_id} still has parts running: {', '.join(running)}")
        parts = self.parts(run_id)
        done = {node for record in parts.values() for node in record.nodes}
        missing = sorted(set(info.get("nodes", [])) - done)
        if missing or not parts:
            named = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise RunIncompleteError(f"run {run_id} is incomplete: no task has run {named or 'any node'}")
        parameters = {json.dumps(record.parameters, sort_keys=True) for record in parts.values()}
        if len(parameters) > 1:
            raise RunIncompleteError(f"the parts of run {run_id} ran with different parameters; abort it and run again")
        record = RunRecord.merge(info, parts)
        run_dir = self.root / run_id
        if before_record is not None:
            closing = run_dir / PARTS / "close.journal"  # abort_run deletes what it lists, as for a part

            def note(folder: Path) -> None:
                with open(closing, "a") as handle:
                    handle.write(f"{folder}\n")
                    handle.flush()
                    os.fsync(handle.fileno())

            record.outputs = dict(sorted({**record.outputs, **before_record(record, note)}.items()))
        journal = sorted(
            {
                str(path)
                for part in (run_dir / PARTS).glob("*.journal")
                for path in journal_entries(part.parent, part.stem)
            }
        )
        with atomic_write(run_dir / JOURNAL, "the run's journal") as temporary:
            temporary.write_text("".join(f"{line}\n" for line in journal))
        record.write(run_dir / RECORD)
        (run_dir / OPEN).unlink(missing_ok=True)
        shutil.rmtree(run_dir / PARTS, ignore_errors=True)
        return record, run_dir / RECORD

    def add_outputs(
        self, run_id: str, write: Callable[[RunRecord, Callable[[Path], None]], dict[str, str]]
    ) -> RunRecord:
        """Adds outputs to a complete run (an old run's page): ``write`` as for :meth:`close_run`.

        The run's lock is held meanwhile; each folder goes into the run's journal before it is
        written, so retention deletes it with the run; the record is rewritten (atomically) last.
        """
        run_dir = self.root / run_id
        record = self.record(run_id)
        if record is None:
            raise RunStateError(f"no complete run {run_id!r} under {self.root}")
        with self._claimed(run_dir) as claimed:
            if not claimed:
                raise RunStateError(f"run {run_id} is held by another process (being deleted?)")
            has_journal = (run_dir / JOURNAL).exists()

            def note(folder: Path) -> None:
                if has_journal:
                    with open(run_dir / JOURNAL, "a") as handle:
                        handle.write(f"{folder}\n")

            record.outputs = dict(sorted({**record.outputs, **write(record, note)}.items()))
            record.write(run_dir / RECORD)
        return record

    def abort_run(self, run_id: str) -> list[Path]:
        """Deletes an open run and everything its parts wrote; refuses while a part runs."""
        self.open_info(run_id)
        running = self._running_parts(run_id)
        if running:
            raise RunStateError(f"run {run_id} still has parts running: {', '.join(running)}")
        run_dir = self.root / run_id
        removed = []
        with self._claimed(run_dir):
            (run_dir / OPEN).replace(run_dir / ABORTING)  # no part can join from now on
            for journal in (run_dir / PARTS).glob("*.journal"):
                removed += delete_journal(run_dir / PARTS, journal.stem)
            shutil.rmtree(run_dir, ignore_errors=True)
        return removed


def journal_entries(folder: Path, name: str = "") -> list[locations.Location]:
    path = folder / (f"{name}.journal" if name else JOURNAL)
    try:
        lines = [line for line in path.read_text().splitlines() if line]
    except OSError:
        return []
    return [line if locations.is_url(line) else Path(line) for line in lines]


def delete_journal(folder: Path, name: str = "") -> list[locations.Location]:
    removed = []
    for path in journal_entries(folder, name):
        if locations.exists(path):
            locations.remove(path)
            removed.append(path)
    return removed


def describe_open(store: RunStore, info: dict[str, Any]) -> str:
    """``open since …, N parts done (airflow DAG run …)``: enough to find who opened it."""
    scheduler = info.get("scheduler") or {}
    by = f" ({scheduler.get('name')} {scheduler.get('dag_id', '')} {scheduler.get('dag_run_id', '')})".replace(
        "  ", " "
    )
    since = iso_time(info["opened_at"])[:19] if "opened_at" in info else "?"
    return f"open since {since}, {len(store.parts(info['run_id']))} parts done{by if scheduler else ''}"


def part_name(nodes: Iterable[str]) -> str:
    """A part's name: its first node's (a run's parts run disjoint sets of nodes)."""
    return min(nodes)

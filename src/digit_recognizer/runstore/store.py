"""Runs: the unit of versioning, of "latest" and of retention.

Every dataset a ``kedro run`` writes shares the run's version (Kedro's save version, a
timestamp such as ``2026-11-27T02.30.04.512Z``), and the run keeps its own folder
(:mod:`digit_recognizer.runstore.layout` names its files): a lock held while it is alive, a
journal of the version folders it has begun to write, and its record, written last.

A run can also be made of several processes, one per task of a scheduler such as Airflow (one
DAG run is one run): the scheduler opens it (:meth:`RunStore.open_run`), each task joins it as
a part (:class:`RunPart`, with ``DIGIT_RECOGNIZER_RUN_ID`` set) and the last step closes it
(:meth:`RunStore.close_run`), which writes one record for the whole run.

The same layout lives in a local folder, where ``lock`` is held with ``flock``, or under a URL
of an object store (``s3://bucket/prefix/runs``), where ``lock`` is a lease its holder renews
and a run whose lease expired is dead (:mod:`digit_recognizer.runstore.backends`).

A run that raises deletes what it wrote. A run that was killed leaves its folder without a
record and with its lock free; the next run (or retention) deletes what its journal lists. A
live run, on this host or another that shares the folder, holds its lock and is never touched.
"Latest" means the newest complete run that wrote the dataset. An open run is not removed by
the next run nor by retention: it is closed, or aborted with ``kedro runs abort RUN_ID`` (the
commands are in :mod:`digit_recognizer.framework.commands`).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from digit_recognizer.runstore import locations
from digit_recognizer.runstore.backends import Backend, backend_for
from digit_recognizer.runstore.faults import explain
from digit_recognizer.runstore.files import iso_time
from digit_recognizer.runstore.layout import (
    ABORTING,
    DELETING,
    JOURNAL,
    LOCK,
    OPEN,
    PARTS,
    PINNED,
    READS,
    RECORD,
    RunIncompleteError,
    RunState,
    RunStateError,
    parse_json,
    run_key,
)
from digit_recognizer.runstore.record import RunRecord
from digit_recognizer.runstore.settings import RunStoreSettings

logger = logging.getLogger(__name__)


class RunStore:
    """The runs under one root: a folder (by default ``<project>/data/runs``) or a URL; see :meth:`at`.

    ``project`` is the folder that the paths in run records are relative to. The root's
    :class:`~digit_recognizer.runstore.backends.Backend` says how: a local folder claims runs
    with ``flock``, an object store (``s3://bucket/prefix/runs``) with leases.
    """

    def __init__(
        self, root: locations.Location, project: Path | None = None, settings: RunStoreSettings | None = None
    ) -> None:
        self.settings = settings or RunStoreSettings.build(project)
        self.backend: Backend = backend_for(root, self.settings)
        self.root = self.backend.root
        self.project = Path(project) if project is not None else self.settings.project

    @classmethod
    def from_settings(cls, settings: RunStoreSettings) -> RunStore:
        """The run store the settings say: ``<data_root>/runs``, or the operator's ``runs_dir``."""
        return cls(settings.runs_root, settings.project, settings)

    @classmethod
    def at(cls, project: Path | str | None = None, data_root: str | None = None) -> RunStore:
        """The run store under ``data_root`` (default ``data``) of ``project``, with the default settings.

        A Kedro project's own settings (``conf/<env>/runstore.yml``, its globals and credentials)
        come from :func:`digit_recognizer.framework.store_settings.store_settings`.
        """
        return cls.from_settings(RunStoreSettings.build(project, data_root))

    @property
    def data_root(self) -> str:
        return self.settings.data_root

    def options(self, location: locations.Location) -> dict[str, Any]:
        """The storage options to reach ``location`` (an output under the data root, say)."""
        return self.settings.options_for(str(location))

    def where(self, run_id: str, name: str = "") -> locations.Location:
        """A run's folder, or a file in it (for messages)."""
        return self.backend.where(run_key(run_id, name) if name else run_id)

    # States ----------------------------------------------------------------------------

    def state(self, run_id: str) -> RunState | None:
        """The run's state, or None when there is no such run folder."""
        backend = self.backend
        if backend.exists(run_key(run_id, RECORD)):
            return RunState.COMPLETE
        if backend.exists(run_key(run_id, OPEN)):
            return RunState.OPEN
        if not backend.names(run_id):
            return None
        if not backend.alive(run_key(run_id, LOCK)):
            return RunState.DEAD
        if backend.exists(run_key(run_id, ABORTING)):
            return RunState.ABORTING
        if backend.exists(run_key(run_id, DELETING)):
            return RunState.DELETING
        return RunState.LIVE

    def runs(self) -> list[tuple[str, RunState]]:
        """Every run and its state, newest first."""
        found = ((run_id, self.state(run_id)) for run_id in self._run_ids())
        return [(run_id, state) for run_id, state in found if state is not None]

    @contextmanager
    def _claimed(self, run_id: str) -> Iterator[bool]:
        """Holds the run's lock for the block when no process holds it (True), else False."""
        claim = self.backend.hold(run_key(run_id, LOCK))
        try:
            yield claim is not None
        finally:
            if claim is not None:
                claim.release()

    def _run_ids(self) -> list[str]:
        return sorted(self.backend.names(), reverse=True)

    # Complete runs ---------------------------------------------------------------------

    def complete(self) -> list[RunRecord]:
        """The records of every complete run, newest first."""
        records = (self.record(run_id) for run_id in self._run_ids())
        return [r for r in records if r is not None]

    def latest(self, dataset: str | None = None) -> RunRecord | None:
        """The newest complete run (that wrote ``dataset``, when given)."""
        for record in self.complete():
            if dataset is None or dataset in record.outputs:
                return record
        return None

    def record(self, run_id: str) -> RunRecord | None:
        return RunRecord.from_bytes(self.backend.read(run_key(run_id, RECORD)))

    def folders(self, record: RunRecord) -> list[locations.Location]:
        """The version folders a complete run wrote (local paths, or URLs for outputs on an object store)."""
        return [locations.parent(locations.resolve(self.project, path)) for path in record.outputs.values()]

    def is_pinned(self, run_id: str) -> bool:
        return self.backend.exists(run_key(run_id, PINNED))

    def set_pinned(self, run_id: str, pinned: bool) -> None:
        if self.state(run_id) is not RunState.COMPLETE:
            raise ValueError(f"no complete run {run_id!r} under {self.root}")
        if pinned:
            self.backend.write(run_key(run_id, PINNED), b"", "the pin")
        else:
            self.backend.delete(run_key(run_id, PINNED))

    def delete(self, record: RunRecord) -> int:
        """Deletes a complete run: its outputs' version folders, then its folder. Returns bytes freed."""
        run_id = record.run_id
        freed = 0
        with self._claimed(run_id) as claimed:
            if not claimed:
                raise RunStateError(f"run {run_id} is held by another process")
            self._rename(run_id, RECORD, DELETING)  # no longer complete, even if we die now
            for path in self.journal_entries(run_key(run_id, JOURNAL)) or self.folders(record):
                freed += locations.size(path, self.options(path))
                locations.remove(path, self.options(path))
            freed += self.backend.size(run_id)
            self.backend.delete_tree(run_id)
        return freed

    def _rename(self, run_id: str, source: str, target: str) -> None:
        """``source`` becomes ``target`` (a rename on a disk; a copy, then a delete, on an object store)."""
        data = self.backend.read(run_key(run_id, source))
        self.backend.write(run_key(run_id, target), data or b"", f"run {run_id}'s {target}")
        self.backend.delete(run_key(run_id, source))

    # Runs in progress ------------------------------------------------------------------

    def live(self) -> list[dict[str, Any]]:
        """Runs in progress and open runs: id and the versions they read (retention keeps those)."""
        found = []
        for run_id, state in self.runs():
            if state is RunState.LIVE:
                found.append({"run_id": run_id, **(parse_json(self.backend.read(run_key(run_id, READS))) or {})})
            elif state is RunState.OPEN:
                reads: dict[str, str] = {}
                for part in self.parts(run_id).values():
                    reads.update(part.reads)
                found.append({"run_id": run_id, "reads": reads, "open": True})
        return found

    def remove_dead(self) -> list[tuple[str, list[locations.Location]]]:
        """Deletes what dead runs left (their journals' folders, then the run folder); returns each run and its folders.

        A dead run may be a killed ``kedro run``, a killed abort or a killed deletion: each
        left a journal of what it wrote, and finishing the job is the same for all three.
        """
        removed = []
        for run_id in self._run_ids():
            if self.backend.exists(run_key(run_id, RECORD)) or self.backend.exists(run_key(run_id, OPEN)):
                continue
            with self._claimed(run_id) as claimed:
                if not claimed:
                    continue  # alive, here or on another host
                folders = self.delete_journal(run_key(run_id, JOURNAL))
                for name in self.backend.names(run_key(run_id, PARTS)):
                    if name.endswith(".journal"):
                        folders += self.delete_journal(run_key(run_id, PARTS, name))
                removed.append((run_id, folders))
                self.backend.delete_tree(run_id)
        return removed

    # Journals --------------------------------------------------------------------------

    def journal_entries(self, key: str) -> list[locations.Location]:
        """The version folders a journal lists (local paths, or URLs)."""
        data = self.backend.read(key)
        lines = [line for line in (data or b"").decode().splitlines() if line]
        return [line if locations.is_url(line) else Path(line) for line in lines]

    def delete_journal(self, key: str) -> list[locations.Location]:
        """Deletes the version folders a journal lists; returns those that were there."""
        removed, left, fault = self.delete_folders(self.journal_entries(key))
        if fault is not None:
            raise fault
        return removed

    def delete_folders(
        self, folders: list[locations.Location]
    ) -> tuple[list[locations.Location], list[locations.Location], Exception | None]:
        """Deletes version folders: (deleted, left, why). Once the store fails, the rest are left untried.

        A store that stopped answering would make each try wait the whole request limit, so the
        first failure the store is to blame for (:func:`~digit_recognizer.runstore.faults.explain`)
        ends the deleting; what is left is for the next run or retention.
        """
        removed: list[locations.Location] = []
        for index, path in enumerate(folders):
            try:
                limit = self.settings.request_limit
                if locations.exists(path, self.options(path), limit):
                    locations.remove(path, self.options(path), limit)
                    removed.append(path)
            except Exception as exc:
                context = self.settings.context_for(str(path)) if locations.is_url(path) else None
                return removed, folders[index:], explain(exc, context) or exc
        return removed, [], None

    # Runs made of parts (one per scheduler task) ------------------------------------------

    def open_run(self, run_id: str, info: dict[str, Any]) -> locations.Location:
        """Opens a run that parts will join; ``info`` must name the ``nodes`` the run is to run."""
        info = {"run_id": run_id, "opened_at": time.time(), "host": socket.gethostname(), **info}
        opened = (json.dumps(info, indent=2, default=str) + "\n").encode()
        self.backend.start(run_id, {OPEN: opened, f"{PARTS}/": b""}, hold=None)
        return self.where(run_id)

    def open_info(self, run_id: str) -> dict[str, Any]:
        """What :meth:`open_run` was told; raises :class:`RunStateError` unless the run is open."""
        state = self.state(run_id)
        if state is RunState.COMPLETE:
            raise RunStateError(f"run {run_id} is already complete ({self.where(run_id, RECORD)})")
        info = parse_json(self.backend.read(run_key(run_id, OPEN))) if state is RunState.OPEN else None
        if info is None:
            raise RunStateError(
                f"run {run_id} is not open (no {self.where(run_id, OPEN)}): it was never opened, or it was aborted "
                "after a failed task; start a new run (in Airflow: clear the whole DAG run)"
            )
        return info

    def open_runs(self) -> list[dict[str, Any]]:
        """The open runs' infos, newest first."""
        infos = (
            parse_json(self.backend.read(run_key(run_id, OPEN))) for run_id, s in self.runs() if s is RunState.OPEN
        )
        return [info for info in infos if info is not None]

    def parts(self, run_id: str) -> dict[str, RunRecord]:
        """The records of an open run's finished parts, by part name."""
        names = [name for name in self.backend.names(run_key(run_id, PARTS)) if name.endswith(".json")]
        records = {name.removesuffix(".json"): self.backend.read(run_key(run_id, PARTS, name)) for name in names}
        found = {name: RunRecord.from_bytes(data) for name, data in records.items()}
        return {name: record for name, record in found.items() if record is not None}

    def running_parts(self, run_id: str, wait: float = 0.0) -> list[str]:
        """The parts of an open run that a live process holds.

        ``wait``: seconds to wait for them to finish or for their claims to be found dead (on an
        object store a killed task's lease expires ``ttl + skew`` after its last renewal).
        """
        deadline = time.monotonic() + wait
        while True:
            locks = [name for name in self.backend.names(run_key(run_id, PARTS)) if name.endswith(".lock")]
            running = [name.removesuffix(".lock") for name in locks if self.backend.alive(run_key(run_id, PARTS, name))]
            if not running or time.monotonic() >= deadline:
                return running
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def close_run(
        self,
        run_id: str,
        before_record: Callable[[RunRecord, Callable[[locations.Location], None]], dict[str, str]] | None = None,
        wait: float = 0.0,
    ) -> tuple[RunRecord, locations.Location]:
        """Commits an open run: one record from its parts' records, once every node has run.

        Raises :class:`RunIncompleteError` when a node has not run or parts ran with different
        parameters, :class:`RunStateError` while a part runs (after waiting ``wait`` seconds for
        it, see :meth:`running_parts`) or when the run is not open; the run is left as it was.
        ``before_record(record, journal)`` writes more outputs of the run (its page) before the
        record, noting each version folder with ``journal`` first, and returns them (dataset →
        file); when it raises, the run stays open (abort it).
        """
        info = self.open_info(run_id)
        running = self.running_parts(run_id, wait)
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
        if before_record is not None:
            closing = run_key(run_id, PARTS, "close.journal")  # abort_run deletes what it lists, as for a part

            def note(folder: locations.Location) -> None:
                self.backend.append(closing, str(folder))

            record.outputs = dict(sorted({**record.outputs, **before_record(record, note)}.items()))
        journal = sorted(
            {
                str(path)
                for name in self.backend.names(run_key(run_id, PARTS))
                if name.endswith(".journal")
                for path in self.journal_entries(run_key(run_id, PARTS, name))
            }
        )
        self.backend.write(run_key(run_id, JOURNAL), "".join(f"{line}\n" for line in journal).encode(), "the journal")
        self.backend.write(run_key(run_id, RECORD), record.to_bytes(), "the run record")
        self.backend.delete(run_key(run_id, OPEN))
        self.backend.delete_tree(run_key(run_id, PARTS))
        return record, self.where(run_id, RECORD)

    def add_outputs(
        self, run_id: str, write: Callable[[RunRecord, Callable[[locations.Location], None]], dict[str, str]]
    ) -> RunRecord:
        """Adds outputs to a complete run (an old run's page): ``write`` as for :meth:`close_run`.

        The run's lock is held meanwhile; each folder goes into the run's journal before it is
        written, so retention deletes it with the run; the record is rewritten (atomically) last.
        """
        record = self.record(run_id)
        if record is None:
            raise RunStateError(f"no complete run {run_id!r} under {self.root}")
        with self._claimed(run_id) as claimed:
            if not claimed:
                raise RunStateError(f"run {run_id} is held by another process (being deleted?)")
            has_journal = self.backend.exists(run_key(run_id, JOURNAL))

            def note(folder: locations.Location) -> None:
                if has_journal:
                    self.backend.append(run_key(run_id, JOURNAL), str(folder))

            record.outputs = dict(sorted({**record.outputs, **write(record, note)}.items()))
            self.backend.write(run_key(run_id, RECORD), record.to_bytes(), "the run record")
        return record

    def abort_run(self, run_id: str, wait: float = 0.0) -> list[locations.Location]:
        """Deletes an open run and everything its parts wrote; refuses while a part runs."""
        self.open_info(run_id)
        running = self.running_parts(run_id, wait)
        if running:
            raise RunStateError(f"run {run_id} still has parts running: {', '.join(running)}")
        removed = []
        with self._claimed(run_id):
            self._rename(run_id, OPEN, ABORTING)  # no part can join from now on
            for name in self.backend.names(run_key(run_id, PARTS)):
                if name.endswith(".journal"):
                    removed += self.delete_journal(run_key(run_id, PARTS, name))
            self.backend.delete_tree(run_id)
        return removed


def describe_open(store: RunStore, info: dict[str, Any]) -> str:
    """``open since …, N parts done (airflow DAG run …)``: enough to find who opened it."""
    scheduler = info.get("scheduler") or {}
    by = f" ({scheduler.get('name')} {scheduler.get('dag_id', '')} {scheduler.get('dag_run_id', '')})".replace(
        "  ", " "
    )
    since = iso_time(info["opened_at"])[:19] if "opened_at" in info else "?"
    return f"open since {since}, {len(store.parts(info['run_id']))} parts done{by if scheduler else ''}"

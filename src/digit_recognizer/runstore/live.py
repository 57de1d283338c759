"""This process's run: :class:`LiveRun` for a whole ``kedro run``, :class:`RunPart` for one scheduler task."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable

from digit_recognizer.runstore import locations
from digit_recognizer.runstore.backends import Claim
from digit_recognizer.runstore.faults import explain
from digit_recognizer.runstore.layout import JOURNAL, LOCK, PARTS, READS, RECORD, RollbackIncomplete, RunStateError
from digit_recognizer.runstore.record import RunRecord
from digit_recognizer.runstore.store import RunStore

logger = logging.getLogger(__name__)


class LiveRun:
    """This process's run: its claim (lock or lease), its journal and, at the end, its record or its removal."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.lock_key, self.journal_key, self.record_key = (
            f"{run_id}/{LOCK}",
            f"{run_id}/{JOURNAL}",
            f"{run_id}/{RECORD}",
        )
        self._claim: Claim | None = None
        self._written: dict[str, locations.Location] = {}  # journalled by this process, in order

    @property
    def dir(self) -> locations.Location:
        return self.store.where(self.run_id)

    @property
    def record_path(self) -> locations.Location:
        return self.store.backend.where(self.record_key)

    def start(self, reads: dict[str, str]) -> None:
        """Claims the run before its folder becomes visible to others; FileExistsError when the id is taken."""
        reads_file = json.dumps({"reads": reads, "pid": os.getpid(), "host": socket.gethostname()}).encode()
        self._claim = self.store.backend.start(self.run_id, {READS: reads_file}, hold=LOCK)

    def check(self) -> None:
        """Raises :class:`~digit_recognizer.runstore.objects.LeaseLost` once this run may no longer write."""
        if self._claim is not None:
            self._claim.check()

    def journal(self, version_dir: locations.Location) -> None:
        """Notes a version folder before anything is written into it (and checks the run is still ours)."""
        self.check()
        if str(version_dir) in self._written:
            return
        self._written[str(version_dir)] = version_dir
        self.store.backend.append(self.journal_key, str(version_dir))

    def commit(self, record: RunRecord) -> locations.Location:
        """Writes the run record, the run's last write; the run is complete from then on."""
        self.check()
        self.store.backend.write(self.record_key, record.to_bytes(), "the run record")
        self.store.backend.delete(f"{self.run_id}/{READS}")
        self._release()
        self.store.backend.delete(self.lock_key)
        return self.record_path

    def abort(self) -> list[locations.Location]:
        """Deletes everything the run wrote, then its folder.

        When the store stops answering, the rollback still ends: it lets go of the claim (a lease
        then expires by itself) and raises :class:`RollbackIncomplete` naming what is left.
        """
        return self._roll_back(lambda: self.store.backend.delete_tree(self.run_id), f"run {self.run_id}")

    def _roll_back(self, finish: Callable[[], None], what: str) -> list[locations.Location]:
        folders = self._folders()
        removed, left, fault = self.store.delete_folders(folders)
        if fault is None:
            try:
                finish()
            except Exception as exc:
                fault = explain(exc, self.store.settings.context_for(str(self.dir))) or exc
        if fault is None:
            self._release()
            return removed
        if self._claim is not None:
            self._claim.abandon()
            self._claim = None
        backend = self.store.backend
        when = (
            f"once its lease expires ({backend.grace:.0f} s after its last renewal)"
            if backend.grace
            else "(this process no longer holds it)"
        )
        raise RollbackIncomplete(what, removed, left, str(fault).splitlines()[0], when) from fault

    def _folders(self) -> list[locations.Location]:
        """What the journal lists, as this process wrote it: known without asking a store that may not answer."""
        return list(self._written.values())

    def _release(self) -> None:
        if self._claim is not None:
            self._claim.release()
            self._claim = None


class RunPart(LiveRun):
    """This process's share of an open run (one scheduler task): its own claim, journal and record.

    Starting again after an earlier attempt of the same part (a retried or killed task) first
    deletes what that attempt wrote; on an object store it first waits for that attempt's lease
    to expire. Aborting deletes only what this part wrote; the run stays open for a retry, and
    whoever closes it finds out whether every node ran.
    """

    def __init__(self, store: RunStore, run_id: str, part: str) -> None:
        super().__init__(store, run_id)
        self.part = part
        folder = f"{run_id}/{PARTS}"
        self.lock_key, self.journal_key, self.record_key = (
            f"{folder}/{part}.lock",
            f"{folder}/{part}.journal",
            f"{folder}/{part}.json",
        )

    def start(self, reads: dict[str, str]) -> None:
        self.store.open_info(self.run_id)
        backend = self.store.backend
        deadline = time.monotonic() + backend.grace
        while (claim := backend.hold(self.lock_key)) is None and time.monotonic() < deadline:
            time.sleep(1.0)  # an earlier attempt's lease, not yet expired (never on a local disk)
        if claim is None:
            raise RunStateError(
                f"part {self.part} of run {self.run_id} is already running ({backend.where(self.lock_key)})"
            )
        self._claim = claim
        backend.delete(self.record_key)
        for path in self.store.delete_journal(self.journal_key):
            logger.warning("Removed %s, written by an earlier attempt of part %s", path, self.part)
        backend.delete(self.journal_key)

    def commit(self, record: RunRecord) -> locations.Location:
        self.check()
        self.store.backend.write(self.record_key, record.to_bytes(), f"the record of part {self.part}")
        self._release()
        return self.record_path

    def abort(self) -> list[locations.Location]:
        return self._roll_back(
            lambda: self.store.backend.delete(self.journal_key), f"part {self.part} of run {self.run_id}"
        )

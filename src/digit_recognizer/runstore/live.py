"""This process's run: :class:`LiveRun` for a whole ``kedro run``, :class:`RunPart` for one scheduler task."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from digit_recognizer.runstore.files import try_lock
from digit_recognizer.runstore.record import RunRecord
from digit_recognizer.runstore.store import JOURNAL, LOCK, PARTS, RECORD, RunStateError, RunStore, delete_journal

logger = logging.getLogger(__name__)


class LiveRun:
    """This process's run: its lock, its journal and, at the end, its record or its removal."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.dir = store.root / run_id
        self.lock_path, self.journal_path, self.record_path = self.dir / LOCK, self.dir / JOURNAL, self.dir / RECORD
        self._fd: int | None = None
        self._written: set[Path] = set()

    def start(self, reads: dict[str, str]) -> None:
        """Takes the run's lock before the run folder becomes visible to others."""
        self.store.root.mkdir(parents=True, exist_ok=True)
        staging = self.store.root / f".{self.run_id}.{os.getpid()}"
        staging.mkdir()
        fd = try_lock(staging / LOCK)
        assert fd is not None, "a fresh lock file is free"
        (staging / "reads.json").write_text(json.dumps({"reads": reads, "pid": os.getpid()}))
        try:
            staging.rename(self.dir)
        except OSError as exc:
            os.close(fd)
            shutil.rmtree(staging, ignore_errors=True)
            raise FileExistsError(f"another run already has the id {self.run_id} ({self.dir} exists)") from exc
        self._fd = fd

    def journal(self, version_dir: Path) -> None:
        """Notes a version folder before anything is written into it."""
        if version_dir in self._written:
            return
        self._written.add(version_dir)
        with open(self.journal_path, "a") as handle:
            handle.write(f"{version_dir}\n")
            handle.flush()
            os.fsync(handle.fileno())

    def commit(self, record: RunRecord) -> Path:
        """Writes the run record, the run's last write; the run is complete from then on."""
        record.write(self.record_path)
        (self.dir / "reads.json").unlink(missing_ok=True)
        self._release()
        self.lock_path.unlink(missing_ok=True)
        return self.record_path

    def abort(self) -> list[Path]:
        """Deletes everything the run wrote, then its folder."""
        removed = delete_journal(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        self._release()
        return removed

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class RunPart(LiveRun):
    """This process's share of an open run (one scheduler task): its own lock, journal and record.

    Starting again after an earlier attempt of the same part (a retried or killed task) first
    deletes what that attempt wrote. Aborting deletes only what this part wrote; the run stays
    open for a retry, and whoever closes it finds out whether every node ran.
    """

    def __init__(self, store: RunStore, run_id: str, part: str) -> None:
        super().__init__(store, run_id)
        self.part = part
        folder = self.dir / PARTS
        self.lock_path = folder / f"{part}.lock"
        self.journal_path = folder / f"{part}.journal"
        self.record_path = folder / f"{part}.json"

    def start(self, reads: dict[str, str]) -> None:
        self.store.open_info(self.run_id)
        fd = try_lock(self.lock_path)
        if fd is None:
            raise RunStateError(f"part {self.part} of run {self.run_id} is already running ({self.lock_path})")
        self._fd = fd
        self.record_path.unlink(missing_ok=True)
        for path in delete_journal(self.journal_path.parent, self.part):
            logger.warning("Removed %s, written by an earlier attempt of part %s", path, self.part)
        self.journal_path.unlink(missing_ok=True)

    def abort(self) -> list[Path]:
        removed = delete_journal(self.journal_path.parent, self.part)
        self.journal_path.unlink(missing_ok=True)
        self._release()
        return removed

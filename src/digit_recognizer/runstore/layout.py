"""A run folder's names, a run's states and ids: what every part of the run store agrees on.

<runs>/<run id>/
    lock        held while the run is alive (a flock, or a lease on an object store)
    journal     every version folder the run has begun to write, one per line
    reads.json  while it runs: the versions it reads
    run.json    the run record, written last: a run is complete once it is there
    pinned      (optional) retention never deletes this run
    open.json   a scheduler's run: who opened it, the nodes it must run
    parts/      a scheduler's run: each task's lock, journal and record
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from digit_recognizer.errors import UserError
from digit_recognizer.runstore.settings import RUNS_DIR_VARIABLE

T = TypeVar("T")

RECORD, LOCK, JOURNAL, PINNED = "run.json", "lock", "journal", "pinned"
OPEN, PARTS, ABORTING, DELETING = "open.json", "parts", ".aborting", ".deleting"
READS = "reads.json"
DEFAULT_ROOT = Path("data") / "runs"
ROOT_VARIABLE = RUNS_DIR_VARIABLE
JOIN_VARIABLE = "DIGIT_RECOGNIZER_RUN_ID"  # set: this process is a part of that open run
TASKS_VARIABLE = "DIGIT_RECOGNIZER_TASKS_AT_ONCE"  # a scheduler's word to its task: how many tasks share the machine


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


class RollbackIncomplete(UserError, RuntimeError):  # noqa: N818 (what happened to the rollback)
    """A rollback could not delete everything (the store stopped answering): it names what is left and who removes it."""

    def __init__(self, what: str, removed: list, left: list, reason: str, when: str) -> None:
        self.removed, self.left, self.reason = removed, left, reason
        shown = ", ".join(str(path) for path in left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
        super().__init__(
            f"{what} could not be rolled back whole: {reason}. Deleted {len(removed)} version folders; "
            f"could not delete {len(left)}{': ' + shown if left else ''}. It is not a complete run and never "
            f"'latest'; the next run or `kedro runs retention` removes what is left {when}"
        )


def run_key(*parts: str) -> str:
    return "/".join(parts)


def parse_json(data: bytes | None) -> dict[str, Any] | None:
    try:
        return None if data is None else json.loads(data)
    except ValueError:
        return None


def new_run_id() -> str:
    """A run id: the time to the millisecond, as Kedro writes a version (``2026-11-27T02.30.04.512Z``)."""
    return datetime.now(tz=timezone.utc).strftime("%Y-%m-%dT%H.%M.%S.%f")[:-3] + "Z"


def with_new_id(start: Callable[[str], T], first: str | None = None) -> tuple[str, T]:
    """``start(run_id)`` with ``first``, else a new id, and again with the next one while another run has taken it.

    Two runs that start in the same millisecond get the same id; ``start`` raises
    FileExistsError for the one that comes second, which then takes the next millisecond.
    """
    run_id = first or new_run_id()
    while True:
        try:
            return run_id, start(run_id)
        except FileExistsError:
            time.sleep(0.002)
            run_id = new_run_id()


def part_name(nodes: Iterable[str]) -> str:
    """A part's name: its first node's (a run's parts run disjoint sets of nodes)."""
    return min(nodes)

"""The run store: runs as the unit of versioning, of "latest" and of retention.

A library of its own (no Kedro import): :mod:`.files` writes atomically and locks,
:mod:`.store` knows the runs under one folder, :mod:`.live` is this process's run,
:mod:`.retention` prunes whole runs, :mod:`.settings` says how to reach the store. The
commands that show and prune runs (``kedro runs``) live above, with the page they compose.
"""

from digit_recognizer.runstore.files import WriteError, atomic_write, iso_time, os_reason
from digit_recognizer.runstore.layout import (
    DEFAULT_ROOT,
    JOIN_VARIABLE,
    ROOT_VARIABLE,
    RollbackIncomplete,
    RunIncompleteError,
    RunState,
    RunStateError,
    new_run_id,
    part_name,
    with_new_id,
)
from digit_recognizer.runstore.live import LiveRun, RunPart
from digit_recognizer.runstore.record import RunRecord
from digit_recognizer.runstore.settings import RunStoreSettings, SettingsError
from digit_recognizer.runstore.store import RunStore, describe_open

__all__ = [
    "DEFAULT_ROOT",
    "JOIN_VARIABLE",
    "ROOT_VARIABLE",
    "LiveRun",
    "RollbackIncomplete",
    "RunIncompleteError",
    "RunPart",
    "RunStateError",
    "RunStore",
    "WriteError",
    "atomic_write",
    "describe_open",
    "iso_time",
    "RunRecord",
    "RunStoreSettings",
    "SettingsError",
    "RunState",
    "os_reason",
    "new_run_id",
    "part_name",
    "with_new_id",
]

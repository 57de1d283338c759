"""Keeps the newest N complete runs and deletes older ones, whole.

    kedro runs retention --keep 30 --dry-run    # say what would go, and the space
    kedro runs retention --keep 30              # delete it (or: python -m digit_recognizer.retention --keep 30)

A run is everything one ``kedro run`` wrote; its record (``data/runs/<run id>/run.json``) lists
every file. Retention keeps the newest N complete runs, and also every run that still holds the
latest version of some dataset (so whatever "latest" loads survives), every pinned run
(``python -m digit_recognizer.runs pin RUN_ID``) and every run that a run in progress is
reading. It never touches a run in progress, nor an open run of a scheduler (an Airflow DAG run
between its tasks), and it removes what killed runs left behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from digit_recognizer.errors import UserError
from digit_recognizer.runstore.locations import is_url, size
from digit_recognizer.runstore.record import RunRecord
from digit_recognizer.runstore.store import RunStore


class RetentionError(UserError, ValueError):
    """Retention was asked for something it cannot do (keep fewer than one run)."""


VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z$")


@dataclass
class Pruned:
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    orphans: list[Path] = field(default_factory=list)


def prune(store: RunStore, keep: int, dry_run: bool = False) -> Pruned:
    """Deletes complete runs of ``store`` beyond the newest ``keep`` (see the module's docstring for what stays).

    Version folders under a local data root that no run recorded are reported as orphans.
    """
    if keep < 1:
        raise RetentionError(f"--keep must be at least 1 (the newest run is always kept), got {keep}")
    result = Pruned()
    if not dry_run:
        result.interrupted = [run_id for run_id, _ in store.remove_dead()]
    runs = store.complete()  # newest first
    in_use = {version for live in store.live() for version in live.get("reads", {}).values()}
    latest_of_some_dataset = set()
    seen: set[str] = set()
    for record in runs:
        fresh = set(record.outputs) - seen
        if fresh:
            latest_of_some_dataset.add(record.run_id)
        seen |= fresh
    for position, record in enumerate(runs):
        run_id = record.run_id
        if position < keep or run_id in latest_of_some_dataset or run_id in in_use or store.is_pinned(run_id):
            result.kept.append(run_id)
            continue
        result.removed.append(run_id)
        if dry_run:
            result.freed_bytes += sum(
                size(folder, store.options(folder)) for folder in store.folders(record)
            ) + store.backend.size(run_id)
        else:
            result.freed_bytes += store.delete(record)
    data_dir = store.settings.data_root_location
    result.orphans = [] if is_url(data_dir) else _orphans(Path(data_dir), runs, store)
    return result


def _orphans(data_dir: Path, runs: list[RunRecord], store: RunStore) -> list[Path]:
    """Version folders that belong to no run (written before runs were recorded, or by hand)."""
    known = {Path(folder).resolve() for record in runs for folder in store.folders(record) if not is_url(folder)}
    live = {live["run_id"] for live in store.live()}
    return (
        sorted(
            folder
            for folder in data_dir.rglob("*")
            if folder.is_dir()
            and VERSION.match(folder.name)
            and folder.parent != store.root
            and folder.name not in live
            and folder.resolve() not in known
        )
        if data_dir.is_dir()
        else []
    )

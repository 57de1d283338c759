"""Keeps the newest N complete runs and deletes older ones, whole.

    python -m digit_recognizer.retention --keep 30 --dry-run    # say what would go, and the space
    python -m digit_recognizer.retention --keep 30              # delete it

A run is everything one ``kedro run`` wrote; its record (``data/runs/<run id>/run.json``) lists
every file. Retention keeps the newest N complete runs, and also every run that still holds the
latest version of some dataset (so whatever "latest" loads survives), every pinned run
(``python -m digit_recognizer.runs pin RUN_ID``) and every run that a run in progress is
reading. It never touches a run in progress, nor an open run of a scheduler (an Airflow DAG run
between its tasks), and it removes what killed runs left behind.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from digit_recognizer.errors import exit_status
from digit_recognizer.runstore.locations import is_url, size
from digit_recognizer.runstore.record import RunRecord
from digit_recognizer.runstore.store import RunStore, describe_open

VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z$")


@dataclass
class Pruned:
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    orphans: list[Path] = field(default_factory=list)


def prune(data_dir: Path, keep: int, dry_run: bool = False, data_root: str | None = None) -> Pruned:
    """Deletes complete runs beyond the newest ``keep`` (see the module's docstring for what stays).

    ``data_dir`` is the project's data folder: version folders under it that no run recorded
    are reported as orphans. The runs are the project's run store (:meth:`RunStore.at`: under
    ``data_root`` when given, e.g. ``s3://bucket/prefix``, else the configured data root).
    """
    if keep < 1:
        raise ValueError(f"--keep must be at least 1 (the newest run is always kept), got {keep}")
    store = RunStore.at(data_dir.parent, data_root)
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
            result.freed_bytes += sum(size(folder) for folder in store.folders(record)) + store.backend.size(run_id)
        else:
            result.freed_bytes += store.delete(record)
    result.orphans = _orphans(data_dir, runs, store)
    return result


def _orphans(data_dir: Path, runs: list[RunRecord], store: RunStore) -> list[Path]:
    """Version folders that belong to no run (written before runs were recorded, or by hand)."""
    known = {Path(folder).resolve() for record in runs for folder in store.folders(record) if not is_url(folder)}
    live = {live["run_id"] for live in store.live()}
    return sorted(
        folder
        for folder in data_dir.rglob("*")
        if folder.is_dir()
        and VERSION.match(folder.name)
        and folder.parent != store.root
        and folder.name not in live
        and folder.resolve() not in known
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digit_recognizer.retention", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=int, required=True, help="complete runs to keep (at least 1)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="the project's data folder")
    parser.add_argument(
        "--data-root",
        help="where the runs and their outputs live when not the configured data_root (s3://bucket/prefix)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    args = parser.parse_args(argv)
    return exit_status(_prune, parser, args)  # a user's mistake (a missing package, say) ends in its message


def _prune(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not args.data_dir.is_dir():
        parser.error(f"{args.data_dir} is not a folder (run from the project root or pass --data-dir)")
    try:
        result = prune(args.data_dir, args.keep, args.dry_run, args.data_root)
    except ValueError as exc:
        parser.error(str(exc))
    verb = "would delete" if args.dry_run else "deleted"
    for run_id in result.interrupted:
        print(f"removed what the interrupted run {run_id} left")
    for run_id in result.removed:
        print(f"{verb} run {run_id}")
    print(f"kept {len(result.kept)} complete runs, {verb} {len(result.removed)} ({result.freed_bytes / 1e6:.1f} MB)")
    store = RunStore.at(args.data_dir.parent, args.data_root)
    for info in store.open_runs():
        print(
            f"left alone: run {info['run_id']}, {describe_open(store, info)}; "
            "python -m digit_recognizer.runs abort RUN_ID removes it if its scheduler is done with it"
        )
    if result.orphans:
        print(
            f"{len(result.orphans)} version folders belong to no recorded run (older than run records?) "
            f"and were left alone, e.g. {result.orphans[0]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

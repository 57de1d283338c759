"""Keeps the newest N versions of every versioned dataset under data/ and deletes the rest.

    python -m digit_recognizer.retention --keep 10 --dry-run    # say what would go
    python -m digit_recognizer.retention --keep 10              # delete it

A versioned dataset is Kedro's ``<name>/<version>/<name>`` layout (version like
``2026-11-26T18.24.30.059Z``); anything else under data/, the raw files included, is never
touched. Versions half-written by an interrupted run are removed too (unless their run is
still going).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from digit_recognizer.hooks import remove_partial_versions

VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z$")


@dataclass
class Pruned:
    datasets: int = 0
    kept: int = 0
    removed: list[Path] = field(default_factory=list)
    freed_bytes: int = 0


def versions(dataset_dir: Path) -> list[Path]:
    """The complete versions of one dataset, oldest first."""
    found = [
        d for d in dataset_dir.iterdir() if d.is_dir() and VERSION.match(d.name) and (d / dataset_dir.name).exists()
    ]
    return sorted(found, key=lambda d: d.name)


def versioned_datasets(root: Path) -> list[Path]:
    """Every ``<name>/<version>/<name>`` dataset folder under ``root``."""
    candidates = {version.parent for version in root.rglob("*") if version.is_dir() and VERSION.match(version.name)}
    return sorted(d for d in candidates if versions(d))


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def prune(root: Path, keep: int, dry_run: bool = False) -> Pruned:
    """Deletes all but the newest ``keep`` versions of each versioned dataset under ``root``."""
    if keep < 1:
        raise ValueError(f"--keep must be at least 1 (the newest version is always kept), got {keep}")
    result = Pruned()
    for dataset_dir in versioned_datasets(root):
        if not dry_run:
            remove_partial_versions(dataset_dir)
        found = versions(dataset_dir)
        result.datasets += 1
        result.kept += min(keep, len(found))
        for old in found[:-keep]:
            result.freed_bytes += _size(old)
            result.removed.append(old)
            if not dry_run:
                shutil.rmtree(old)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digit_recognizer.retention", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=int, required=True, help="versions to keep per dataset (at least 1)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where the versioned outputs live")
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    args = parser.parse_args(argv)
    if not args.data_dir.is_dir():
        parser.error(f"{args.data_dir} is not a folder (run from the project root or pass --data-dir)")
    try:
        result = prune(args.data_dir, args.keep, args.dry_run)
    except ValueError as exc:
        parser.error(str(exc))
    verb = "would delete" if args.dry_run else "deleted"
    for path in result.removed:
        print(f"{verb} {path}")
    print(
        f"{result.datasets} versioned datasets: kept {result.kept} versions, {verb} {len(result.removed)} "
        f"({result.freed_bytes / 1e6:.1f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m digit_recognizer.runs``: list, show, pin, close and abort runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from digit_recognizer.runstore import store as _store
from digit_recognizer.runstore.store import DEFAULT_ROOT, RunStateError, RunStore, describe_open


def _print_record(record: dict[str, Any], out: Callable[[str], None]) -> None:
    out(json.dumps(record, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digit_recognizer.runs", description=_store.__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_ROOT, help="where the run folders live")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="complete runs, newest first")
    latest = commands.add_parser("latest", help="the latest complete run's record")
    latest.add_argument("--submission", metavar="ARCH", help="print only the path of this architecture's submission")
    for name, text in (
        ("show", "a complete run's record"),
        ("pin", "keep a complete run whatever retention says"),
        ("unpin", "let retention delete it again"),
        ("close", "commit an open run (made of scheduler tasks) once every node has run"),
        ("abort", "delete an open run and everything it wrote"),
    ):
        commands.add_parser(name, help=text).add_argument("run_id")
    args = parser.parse_args(argv)
    store = RunStore(args.runs_dir)

    if args.command == "list":
        for record in store.complete():
            scores = ", ".join(
                f"{arch} {row.get('test_score') or row.get('validation_accuracy'):.4f}"
                for arch, row in record.get("metrics", {}).items()
            )
            pinned = " (pinned)" if store.is_pinned(record["run_id"]) else ""
            print(f"{record['run_id']}  {','.join(record.get('pipelines', []))}  {scores}{pinned}")
        for info in store.open_runs():
            print(f"{info['run_id']}  {','.join(info.get('pipelines', []))}  {describe_open(store, info)}")
        return 0
    if args.command == "latest":
        record = store.latest(f"{args.submission}.submission" if args.submission else None)
        if record is None:
            what = f" with a {args.submission} submission" if args.submission else ""
            print(f"no complete run{what} under {store.root}", file=sys.stderr)
            return 1
        if args.submission:
            print(record["outputs"][f"{args.submission}.submission"])
        else:
            _print_record(record, print)
        return 0
    if args.command == "show":
        record = store.record(args.run_id)
        if record is None:
            print(f"no complete run {args.run_id!r} under {store.root}", file=sys.stderr)
            return 1
        _print_record(record, print)
        return 0
    if args.command in ("close", "abort"):
        try:
            if args.command == "close":
                _, path = store.close_run(args.run_id)
                print(f"closed run {args.run_id}: {path}")
            else:
                removed = store.abort_run(args.run_id)
                print(f"aborted run {args.run_id}: deleted {len(removed)} version folders")
        except RunStateError as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    try:
        store.set_pinned(args.run_id, args.command == "pin")
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{args.command}ned {args.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

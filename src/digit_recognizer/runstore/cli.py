"""``python -m digit_recognizer.runs``: list, show, report, pin, close and abort runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from digit_recognizer.errors import exit_status
from digit_recognizer.runstore import locations
from digit_recognizer.runstore import store as _store
from digit_recognizer.runstore.record import RunRecord
from digit_recognizer.runstore.store import (
    DEFAULT_ROOT,
    ROOT_VARIABLE,
    RunState,
    RunStateError,
    RunStore,
    describe_open,
)


def _describe(store: RunStore, run_id: str, state: RunState) -> str:
    """One line of ``runs list``: a complete run's pipelines and scores, an open run's scheduler, else its state."""
    if state is RunState.COMPLETE:
        record = store.record(run_id)
        scores = ", ".join(f"{key} {record.score(key):.4f}" for key in record.metrics if record.score(key) is not None)
        pinned = " (pinned)" if store.is_pinned(run_id) else ""
        return f"{run_id}  {','.join(record.pipelines)}  {scores}{pinned}"
    if state is RunState.OPEN:
        info = next((i for i in store.open_runs() if i.get("run_id") == run_id), {"run_id": run_id})
        return f"{run_id}  {','.join(info.get('pipelines', []))}  {describe_open(store, info)}"
    if state is RunState.LIVE:
        live = next((found for found in store.live() if found["run_id"] == run_id), {})
        where = f" on {live['host']} (pid {live.get('pid')})" if live.get("host") else ""
        return f"{run_id}  live: running now{where}"
    notes = {
        RunState.DEAD: "dead (killed); the next run or retention deletes what it wrote",
    }
    return f"{run_id}  {state.value}" + (f": {notes[state]}" if state in notes else "")


def _print_record(record: RunRecord, out: Callable[[str], None]) -> None:
    out(json.dumps(record.to_dict(), indent=2))


def _report(store: RunStore, run_id: str | None, output: Path | None) -> int:
    from digit_recognizer.report import REPORT_DATASET, render_report, write_report

    record = store.record(run_id) if run_id else store.latest()
    if record is None:
        print(f"no complete run {run_id or ''} under {store.root}".replace("  ", " "), file=sys.stderr)
        return 1
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render_report(record, store.project, store.complete()), encoding="utf-8")
        print(output)
        return 0
    if REPORT_DATASET not in record.outputs:  # a run from before pages existed gets one now
        record = store.add_outputs(record.run_id, lambda r, journal: write_report(store, r, journal))
    print(locations.resolve(store.project, record.outputs[REPORT_DATASET]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m digit_recognizer.runs", description=_store.__doc__.splitlines()[0])
    parser.add_argument(
        "--runs-dir",
        help=f"where the run folders live, a folder or a URL (default: ${ROOT_VARIABLE}, else {DEFAULT_ROOT})",
    )
    parser.add_argument(
        "--data-root", help="the data root the runs live under, when not the configured one (s3://bucket/prefix)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every run, newest first: complete ones with their scores, and any other's state")
    latest = commands.add_parser("latest", help="the latest complete run's record")
    latest.add_argument("--submission", metavar="ARCH", help="print only the path of this architecture's submission")
    report = commands.add_parser(
        "report", help="the path of a complete run's page (made from its record and outputs when it has none)"
    )
    report.add_argument("run_id", nargs="?", help="default: the latest complete run")
    report.add_argument("--output", type=Path, help="write the page to this file instead (the run is not changed)")
    for name, text in (
        ("show", "a complete run's record"),
        ("pin", "keep a complete run whatever retention says"),
        ("unpin", "let retention delete it again"),
        ("close", "commit an open run (made of scheduler tasks) once every node has run"),
        ("abort", "delete an open run and everything it wrote"),
    ):
        commands.add_parser(name, help=text).add_argument("run_id")
    args = parser.parse_args(argv)
    return exit_status(_run, parser, args)  # a user's mistake (a missing package, say) ends in its message


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir) if args.runs_dir else RunStore.at(data_root=args.data_root)

    if args.command == "list":
        for run_id, state in store.runs():
            print(_describe(store, run_id, state))
        return 0
    if args.command == "latest":
        record = store.latest(f"{args.submission}.submission" if args.submission else None)
        if record is None:
            what = f" with a {args.submission} submission" if args.submission else ""
            print(f"no complete run{what} under {store.root}", file=sys.stderr)
            return 1
        if args.submission:
            print(record.submissions()[args.submission])
        else:
            _print_record(record, print)
        return 0
    if args.command == "report":
        return _report(store, args.run_id, args.output)
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
                from digit_recognizer.report import REPORT_DATASET, write_report

                record, path = store.close_run(args.run_id, lambda r, journal: write_report(store, r, journal))
                print(f"closed run {args.run_id}: {path}\nreport: {record.outputs[REPORT_DATASET]}")
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

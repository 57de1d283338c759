"""``kedro runs``: list, show, report, pin, close, abort and prune runs, configured as ``kedro run`` is.

    kedro runs list                          # every run, newest first: scores, or its state
    kedro runs latest --submission conv      # the path of the latest complete conv submission
    kedro runs report [RUN_ID]               # a run's page (made for an old run that has none)
    kedro runs pin RUN_ID                    # keep it whatever retention says
    kedro runs close RUN_ID                  # commit an open run made of scheduler tasks
    kedro runs abort RUN_ID                  # delete an open run and everything it wrote
    kedro runs retention --keep 30           # keep the newest 30 complete runs, delete older ones whole

Each reads the project's configuration through Kedro (``--env``, ``--data-root`` as ``--params
data_root=...``): the data root, its credentials and ``runstore.yml`` make the run store's
settings, and the catalog says where a page goes. ``python -m digit_recognizer.runs`` and
``python -m digit_recognizer.retention`` run the same commands (for cron). A user's mistake ends
in its message and exit status 1.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from digit_recognizer.errors import UserError
from digit_recognizer.framework.project import load_context, project_store
from digit_recognizer.framework.publishers import PagePublisher, render_page
from digit_recognizer.report import REPORT_DATASET
from digit_recognizer.runstore import RunState, RunStateError, RunStore, RunStoreSettings, describe_open, locations
from digit_recognizer.runstore.retention import prune


class NotAProjectError(UserError, FileNotFoundError):
    """The command was started outside the project folder."""


class Project:
    """The project as a command sees it: its Kedro context (loaded once, when needed) and its run store."""

    def __init__(self, env: str | None, data_root: str | None, runs_dir: str | None) -> None:
        self.env, self.data_root, self.runs_dir = env, data_root, runs_dir

    def override(self, env: str | None, data_root: str | None, runs_dir: str | None) -> None:
        """The subcommand's own options win over the group's."""
        self.env, self.data_root, self.runs_dir = (
            env or self.env,
            data_root or self.data_root,
            runs_dir or self.runs_dir,
        )

    @cached_property
    def path(self) -> Path:
        from kedro.utils import find_kedro_project

        found = find_kedro_project(Path.cwd())
        if found is None:
            raise NotAProjectError(
                f"{Path.cwd()} is not in the digit-recognizer project: run the command from its folder"
            )
        return Path(found)

    @cached_property
    def context(self) -> Any:
        return load_context(self.path, self.env, {"data_root": self.data_root} if self.data_root else None)

    @cached_property
    def store(self) -> RunStore:
        if self.runs_dir:  # the run folders named directly: no configuration needed
            settings = RunStoreSettings.build(Path.cwd(), config={"runs_dir": self.runs_dir})
            return RunStore.from_settings(settings)
        return project_store(self.context)

    def publish_page(self) -> Callable[..., dict[str, str]]:
        """Writes a run's page where the catalog says: ``publish(record, journal)`` (the context loaded when called)."""

        def publish(record: Any, journal: Callable[[locations.Location], None]) -> dict[str, str]:
            return PagePublisher(self.context.catalog, self.store.settings).publish(
                record, self.store.complete(), journal
            )

        return publish


_COLUMNS = ("RUN ID", "STATE", "PIPELINES", "MODEL", "VALIDATION", "TEST", "NOTE")


def _rows(store: RunStore, run_id: str, state: RunState) -> list[tuple[str, ...]]:
    """``runs list``'s rows for one run: a complete run's models (validation and test scores), else its state."""
    if state is RunState.COMPLETE:
        record = store.record(run_id)
        pinned = "pinned" if store.is_pinned(run_id) else ""
        pipelines = ",".join(record.pipelines)
        models = [
            (key, row.get("validation_accuracy"), row.get("test_score"))
            for key, row in sorted(record.metrics.items(), key=lambda item: -(item[1].get("validation_accuracy") or 0))
        ]
        if not models:  # a predict-only run: submissions from an earlier run's models
            return [(run_id, "complete", pipelines, ",".join(record.submissions) or "-", "-", "-", "predictions only")]
        return [
            (
                run_id if i == 0 else "",
                "complete" if i == 0 else "",
                pipelines if i == 0 else "",
                key,
                _score(valid),
                _score(test),
                pinned if i == 0 else "",
            )
            for i, (key, valid, test) in enumerate(models)
        ]
    if state is RunState.OPEN:
        info = next((i for i in store.open_runs() if i.get("run_id") == run_id), {"run_id": run_id})
        return [(run_id, "open", ",".join(info.get("pipelines", [])), "", "", "", describe_open(store, info))]
    if state is RunState.LIVE:
        live = next((found for found in store.live() if found["run_id"] == run_id), {})
        where = f"on {live['host']}, pid {live.get('pid')}" if live.get("host") else ""
        return [(run_id, "running", "", "", "", "", where)]
    notes = {
        RunState.DEAD: "killed or cut off before it finished; the next run or retention deletes what it wrote",
        RunState.ABORTING: "being aborted",
        RunState.DELETING: "being deleted by retention",
    }
    return [(run_id, state.value, "", "", "", "", notes.get(state, ""))]


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [_COLUMNS, *rows]
    ]


def _fail(message: str) -> None:
    click.echo(message, err=True)
    raise SystemExit(1)


_ENV = click.option("--env", "-e", help="the configuration environment, as for kedro run (default: local)")
_DATA_ROOT = click.option("--data-root", help="the data root the runs live under, when not the configured one")
_RUNS_DIR = click.option(
    "--runs-dir", help="the folder (or URL) of the run folders themselves, skipping the configuration"
)


class _UserErrors(click.Group):
    """A user's mistake in any subcommand ends in its message and status 1 (``--traceback`` aside)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"Error: {exc}", err=True)
            raise SystemExit(1) from None


def _command(name: str | None = None, **settings: Any) -> Callable[[Callable[..., None]], click.Command]:
    """A subcommand of ``runs`` that takes the project first, and ``--env``, ``--data-root``, ``--runs-dir`` too.

    Those options are accepted before the subcommand or after it (``kedro runs latest --env prod``).
    """

    def decorate(function: Callable[..., None]) -> click.Command:
        @functools.wraps(function)
        def command(*args: Any, env: str | None, data_root: str | None, runs_dir: str | None, **kwargs: Any) -> None:
            project = click.get_current_context().find_object(Project)
            project.override(env, data_root, runs_dir)
            function(project, *args, **kwargs)

        for option in (_RUNS_DIR, _DATA_ROOT, _ENV):
            command = option(command)
        return runs.command(name=name, **settings)(command)

    return decorate


@click.group(name="runs", cls=_UserErrors)
@_ENV
@_DATA_ROOT
@_RUNS_DIR
@click.pass_context
def runs(ctx: click.Context, env: str | None, data_root: str | None, runs_dir: str | None) -> None:
    """Runs: the unit of versioning, of "latest" and of retention (docs/runs.md)."""
    ctx.obj = Project(env, data_root, runs_dir)


@_command(name="list")
def list_runs(project: Project) -> None:
    """Every run, newest first: a complete run's models with their validation and test scores, any other's state."""
    store = project.store
    found = store.runs()
    if not found:
        there = "" if store.backend.exists("") or locations.is_url(store.root) else " (no such folder)"
        click.echo(f"no runs under {store.root}{there}; runs elsewhere are found with --data-root or --env")
        return
    rows = [row for run_id, state in found for row in _rows(store, run_id, state)]
    for line in _table(rows):
        click.echo(line)


@_command()
@click.option("--submission", metavar="ARCH", help="print only the path of this architecture's submission")
def latest(project: Project, submission: str | None) -> None:
    """The latest complete run's record."""
    store = project.store
    record = next((r for r in store.complete() if submission in r.submissions), None) if submission else store.latest()
    if record is None:
        what = f" with a {submission} submission" if submission else ""
        _fail(f"no complete run{what} under {store.root}")
    click.echo(record.submissions[submission] if submission else json.dumps(record.to_dict(), indent=2))


@_command()
@click.argument("run_id")
def show(project: Project, run_id: str) -> None:
    """A complete run's record."""
    record = project.store.record(run_id)
    if record is None:
        _fail(f"no complete run {run_id!r} under {project.store.root}")
    click.echo(json.dumps(record.to_dict(), indent=2))


@_command()
@click.argument("run_id", required=False)
@click.option("--output", type=click.Path(path_type=Path), help="write the page to this file (the run is not changed)")
def report(project: Project, run_id: str | None, output: Path | None) -> None:
    """The path of a complete run's page (made from its record and outputs when it has none)."""
    store = project.store
    record = store.record(run_id) if run_id else store.latest()
    if record is None:
        _fail(f"no complete run {run_id or ''} under {store.root}".replace("  ", " "))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render_page(record, store.complete(), store.settings), encoding="utf-8")
        click.echo(output)
        return
    if REPORT_DATASET not in record.outputs:  # a run from before pages existed gets one now
        record = store.add_outputs(record.run_id, project.publish_page())
    click.echo(locations.resolve(store.project, record.outputs[REPORT_DATASET]))


@_command()
@click.argument("run_id")
def close(project: Project, run_id: str) -> None:
    """Commit an open run (made of scheduler tasks) once every node has run."""
    try:
        record, path = project.store.close_run(run_id, project.publish_page())
    except RunStateError as exc:
        _fail(str(exc))
    click.echo(f"closed run {run_id}: {path}\nreport: {record.outputs.get(REPORT_DATASET)}")


@_command()
@click.argument("run_id")
def abort(project: Project, run_id: str) -> None:
    """Delete an open run and everything it wrote."""
    try:
        removed = project.store.abort_run(run_id)
    except RunStateError as exc:
        _fail(str(exc))
    click.echo(f"aborted run {run_id}: deleted {len(removed)} version folders")


def _pin(pinned: bool) -> Callable[[Project, str], None]:
    def command(project: Project, run_id: str) -> None:
        try:
            project.store.set_pinned(run_id, pinned)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        click.echo(f"{'pin' if pinned else 'unpin'}ned {run_id}")

    return command


_command(name="pin", help="Keep a complete run whatever retention says.")(click.argument("run_id")(_pin(True)))
_command(name="unpin", help="Let retention delete it again.")(click.argument("run_id")(_pin(False)))


@_command()
@click.option("--keep", type=int, required=True, help="complete runs to keep (at least 1)")
@click.option("--dry-run", is_flag=True, help="list what would be deleted, delete nothing")
def retention(project: Project, keep: int, dry_run: bool) -> None:
    """Keep the newest N complete runs and delete older ones, whole."""
    store = project.store
    result = prune(store, keep, dry_run)
    verb = "would delete" if dry_run else "deleted"
    for run_id in result.interrupted:
        click.echo(f"removed what the interrupted run {run_id} left")
    for run_id in result.removed:
        click.echo(f"{verb} run {run_id}")
    click.echo(
        f"kept {len(result.kept)} complete runs, {verb} {len(result.removed)} ({result.freed_bytes / 1e6:.1f} MB)"
    )
    for info in store.open_runs():
        click.echo(
            f"left alone: run {info['run_id']}, {describe_open(store, info)}; "
            "kedro runs abort RUN_ID removes it if its scheduler is done with it"
        )
    if result.orphans:
        click.echo(
            f"{len(result.orphans)} version folders belong to no recorded run (older than run records?) "
            f"and were left alone, e.g. {result.orphans[0]}"
        )


def main(argv: list[str] | None = None, prog_name: str = "python -m digit_recognizer.runs") -> int:
    """Runs ``kedro runs ARGS`` outside Kedro's command line; returns the exit status."""
    try:
        runs.main(args=list(sys.argv[1:] if argv is None else argv), prog_name=prog_name, standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Abort:
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0

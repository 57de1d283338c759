"""The project's ``kedro run``: Kedro's own command, with messages a person can act on.

* A mistake the user can fix (:class:`~digit_recognizer.errors.UserError`: parameters, input
  files, versions, a pipeline name) ends in its message and exit status 1, not in a traceback;
  ``--traceback`` (or ``DIGIT_RECOGNIZER_TRACEBACK=1``) shows the traceback too. Anything else
  is a bug and keeps its traceback.
* A run stopped by SIGTERM or SIGINT exits with the conventional status (143, 130) once it has
  rolled back (the hooks do that and say so).
* The console has the project's format wherever the command starts (:mod:`.console`).

``python -m digit_recognizer`` runs the same command.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.project import pipelines

from digit_recognizer.errors import RunInterrupted, UserError
from digit_recognizer.framework.console import use_project_console
from digit_recognizer.framework.kedro_compat import kedro_run_command

TRACEBACK_VARIABLE = "DIGIT_RECOGNIZER_TRACEBACK"
logger = logging.getLogger("digit_recognizer")


class UnknownPipelineError(UserError, ValueError):
    """``--pipeline`` names no registered pipeline."""


@click.group(name="digit_recognizer")
def cli() -> None:
    """The project's own commands (they take the place of Kedro's of the same name)."""


@cli.command(
    name="run",
    params=[
        *kedro_run.params,
        click.Option(
            ["--traceback"], is_flag=True, help=f"Show the traceback of a user error too (or {TRACEBACK_VARIABLE}=1)."
        ),
    ],
    help=kedro_run.help,
)
def run(traceback: bool, **options: Any) -> dict[str, Any]:
    use_project_console()
    try:
        _check_pipeline_names([options.get("pipeline"), *(options.get("pipelines") or [])])
        return kedro_run_command()(**options)
    except RunInterrupted as exc:
        sys.exit(128 + exc.signum)  # the hooks have rolled the run back and said so
    except Exception as exc:
        if _in_chain(exc, UserError) is None or traceback or os.environ.get(TRACEBACK_VARIABLE):
            raise
        click.echo(f"Error: {exc}", err=True)  # Kedro may wrap it ("raw_train: ..."): the wrapper says more
        sys.exit(1)


def _in_chain(error: BaseException, kind: type[BaseException]) -> Any:
    """``error`` or the first exception it was raised from that is a ``kind``."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__
    return None


def _check_pipeline_names(names: list[str | None]) -> None:
    known = sorted(pipelines)
    for name in filter(None, names):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise UnknownPipelineError(f"There is no pipeline '{name}'.{hint} The pipelines: {', '.join(known)}.")

"""The project's ``kedro run``: Kedro's own command, with messages a person can act on.

* A mistake the user can fix (:class:`~digit_recognizer.errors.UserError`: parameters, input
  files, versions, a pipeline name) ends in its message and exit status 1, not in a traceback;
  ``--traceback`` (or ``DIGIT_RECOGNIZER_TRACEBACK=1``) shows the traceback too. Anything else
  is a bug and keeps its traceback.
* A run stopped by SIGTERM or SIGINT exits with the conventional status (143, 130) once it has
  rolled back (the hooks do that and say so).
* The console has the project's format wherever the command starts (:mod:`.console`).
* The setting is checked before Kedro starts: a folder without ``conf/`` says what to pass, an
  unknown ``--env`` names the environments there are. A failure of the object store
  (:mod:`~digit_recognizer.runstore.faults`) ends in one message naming the bucket, the endpoint or
  where the credentials came from.
* ``--pipeline NAME`` is the project's own option (``--pipelines NAME``): it runs without Kedro's
  deprecation warning of its option of that name.

``python -m digit_recognizer`` runs the same command.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.project import pipelines

from digit_recognizer.errors import RunInterrupted, UserError
from digit_recognizer.framework.console import use_project_console
from digit_recognizer.framework.kedro_compat import kedro_run_command
from digit_recognizer.runstore.faults import explain

TRACEBACK_VARIABLE = "DIGIT_RECOGNIZER_TRACEBACK"
logger = logging.getLogger("digit_recognizer")


class UnknownPipelineError(UserError, ValueError):
    """``--pipeline`` names no registered pipeline."""


class SettingError(UserError, FileNotFoundError):
    """The command cannot find the project's configuration, or the environment it names."""


_PIPELINE = click.Option(
    ["--pipeline", "-p"],
    help="Name of the registered pipeline to run (the same as --pipelines NAME). Default: __default__.",
)


@click.group(name="digit_recognizer")
def cli() -> None:
    """The project's own commands (they take the place of Kedro's of the same name)."""


@cli.command(
    name="run",
    params=[
        *(_PIPELINE if param.name == "pipeline" else param for param in kedro_run.params),
        click.Option(
            ["--traceback"], is_flag=True, help=f"Show the traceback of a user error too (or {TRACEBACK_VARIABLE}=1)."
        ),
    ],
    help=kedro_run.help,
)
def run(traceback: bool, **options: Any) -> dict[str, Any]:
    use_project_console()
    try:
        if options.get("pipeline"):
            if options.get("pipelines"):
                raise click.UsageError("give --pipeline or --pipelines, not both")
            options["pipelines"] = [options.pop("pipeline")]
        options["pipeline"] = None
        _check_setting(options.get("conf_source"), options.get("env"))
        _check_pipeline_names(options.get("pipelines") or [])
        return kedro_run_command()(**options)
    except RunInterrupted as exc:
        sys.exit(128 + exc.signum)  # the hooks have rolled the run back and said so
    except click.ClickException:
        raise
    except Exception as exc:
        known = _in_chain(exc, UserError) is not None or explain(exc) is not None
        if not known or traceback or os.environ.get(TRACEBACK_VARIABLE):
            raise
        fault = explain(exc) if _in_chain(exc, UserError) is None else None
        click.echo(f"Error: {fault or exc}", err=True)  # Kedro may wrap it ("raw_train: ..."): the wrapper says more
        sys.exit(1)


def _in_chain(error: BaseException, kind: type[BaseException]) -> Any:
    """``error`` or the first exception it was raised from that is a ``kind``."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__
    return None


def _check_setting(conf_source: str | None, env: str | None) -> None:
    """The configuration folder exists, and so does the environment the run names."""
    from kedro.framework.project import settings
    from kedro.utils import find_kedro_project

    project = find_kedro_project(Path.cwd()) or Path.cwd()
    conf = Path(conf_source) if conf_source else Path(project) / settings.CONF_SOURCE
    if conf_source and conf.is_file():
        return  # an archive (tar.gz, zip): Kedro reads it
    if not conf.is_dir():
        raise SettingError(
            f"there is no configuration at {conf}: run the command in the project's folder (the one with conf/ and "
            "pyproject.toml), or pass --conf-source /path/to/the/project/conf"
        )
    env = env or os.environ.get("KEDRO_ENV") or settings.CONFIG_LOADER_ARGS.get("default_run_env") or "local"
    base = settings.CONFIG_LOADER_ARGS.get("base_env") or "base"
    if not (conf / env).is_dir():
        there = sorted(p.name for p in conf.iterdir() if p.is_dir() and p.name != base and not p.name.startswith("."))
        raise SettingError(
            f"there is no configuration environment '{env}' (no folder {conf / env}). The environments: "
            f"{', '.join(there) or 'none'} (with --env NAME or KEDRO_ENV; {base} is always read)"
        )


def _check_pipeline_names(names: list[str | None]) -> None:
    known = sorted(pipelines)
    for name in filter(None, names):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise UnknownPipelineError(f"There is no pipeline '{name}'.{hint} The pipelines: {', '.join(known)}.")

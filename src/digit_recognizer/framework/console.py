"""Console logging in the project's format, wherever a run starts: Rich on a terminal, plain lines elsewhere."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import rich.logging
import yaml
from kedro.framework.project import configure_logging
from kedro.utils import find_kedro_project

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def use_project_console() -> None:
    """The project's ``conf/logging.yml`` even from a subfolder, then plain lines when not on a terminal.

    Kedro reads ``conf/logging.yml`` relative to the working directory, so ``kedro run`` from
    ``src/`` would fall back to Kedro's own console; here the project's file is applied instead
    (unless ``KEDRO_LOGGING_CONFIG`` names one).
    """
    project = find_kedro_project(Path.cwd())
    own = project / "conf" / "logging.yml" if project else None
    if not os.environ.get("KEDRO_LOGGING_CONFIG") and own and own.is_file() and not Path("conf/logging.yml").is_file():
        configure_logging(yaml.safe_load(own.read_text()))
    plain_logs_when_piped()


def plain_logs_when_piped() -> None:
    """Swaps Rich's console handler for one-line records when stdout is not a terminal.

    A log written to a file, a pipe, cron mail or the journal should not be wrapped into
    80-column boxes, so there each record is one line (time, level, logger, message) on
    stderr, and tracebacks are Python's own. Kedro 1.7 only lets logging.yml name handler
    classes from ``logging`` and ``kedro.logging``, so the swap happens here, once Kedro has
    applied conf/logging.yml.
    """
    if sys.stdout.isatty():
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, rich.logging.RichHandler):
            plain = logging.StreamHandler(sys.stderr)
            plain.setLevel(handler.level)
            plain.setFormatter(logging.Formatter(PLAIN_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
            root.removeHandler(handler)
            root.addHandler(plain)
            sys.excepthook = sys.__excepthook__  # undo rich.traceback.install


class _NoResumeHints(logging.Filter):
    """Drops Kedro's advice after a failed node ("No nodes ran. Repeat the previous command", "--from-nodes").

    Here a run is all or nothing: a failed run was rolled back whole (the project's hooks say
    what they deleted), so there is nothing to resume from, and a data error was refused before
    anything was written. The hooks' own line says what is true.
    """

    HINTS = ("No nodes ran. Repeat the previous command", "You can resume the pipeline run from the nearest nodes")

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith(self.HINTS[0]) or self.HINTS[1] in message)


RUNNER_LOGGERS = (
    "kedro.runner.sequential_runner",
    "kedro.runner.thread_runner",
    "kedro.runner.parallel_runner",
    "kedro.runner.runner",
    "digit_recognizer.framework.dask_runner",
)


def hide_resume_hints() -> None:
    """Installs :class:`_NoResumeHints` on the loggers of Kedro's runners (and the project's), once."""
    for name in RUNNER_LOGGERS:
        found = logging.getLogger(name)
        if not any(isinstance(existing, _NoResumeHints) for existing in found.filters):
            found.addFilter(_NoResumeHints())

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

"""Console logging: Rich on a terminal, plain one-line records anywhere else."""

from __future__ import annotations

import logging
import sys

import rich.logging

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def plain_logs_when_piped() -> None:
    """Swaps Rich's console handler for one-line records when stdout is not a terminal.

    A log written to a file, a pipe, cron mail or the journal should not be wrapped into
    80-column boxes, so there each record is one line (time, level, logger, message) on
    stderr, and tracebacks are Python's own. Kedro 1.7 only lets logging.yml name handler
    classes from ``logging`` and ``kedro.logging``, so the swap happens here, from settings.py,
    once Kedro has applied conf/logging.yml.
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

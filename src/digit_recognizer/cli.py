"""Where Kedro looks for the project's commands: ``kedro run`` (see :mod:`digit_recognizer.framework.cli`)."""

from digit_recognizer.framework.cli import cli, run

__all__ = ["cli", "run"]

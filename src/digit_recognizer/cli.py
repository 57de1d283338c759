"""Where Kedro looks for the project's commands: ``kedro run`` and ``kedro runs`` (listed by ``kedro --help``)."""

from digit_recognizer.framework.cli import cli, run
from digit_recognizer.framework.commands import runs

cli.add_command(runs)

__all__ = ["cli", "run", "runs"]

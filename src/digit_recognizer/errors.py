"""The one mark of a mistake a person can fix: ``UserError``.

Bad parameters, bad or missing input files, a version that does not exist, a training that
diverged at the chosen learning rate, a run in the wrong state: each error class for these also
derives from :class:`UserError`, and the project's ``kedro run`` prints its message (what, where,
what was expected, what to do) without a traceback. Anything else is a bug and keeps its
traceback. This module imports nothing, so every room may use it.
"""


class UserError(Exception):
    """A mistake the user can fix; its message says what to do."""


def exit_status(command, *args) -> int:
    """Runs a command-line entry point: a :class:`UserError` ends in its message on stderr and status 1."""
    import sys

    try:
        return command(*args)
    except UserError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


class RunInterrupted(BaseException):  # noqa: N818 (it is what happened, not a failure of the code)
    """The run got SIGTERM or SIGINT and has rolled back; like KeyboardInterrupt, no ``except Exception`` stops it."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(f"interrupted by {name}")
        self.signum, self.name = signum, name

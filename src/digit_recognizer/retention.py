"""``python -m digit_recognizer.retention --keep N``: ``kedro runs retention``, for cron."""

import sys

from digit_recognizer.framework.commands import main


def retention_main(argv: list[str] | None = None) -> int:
    """``kedro runs retention ARGS``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return main(["retention", *argv], prog_name="python -m digit_recognizer.retention")


if __name__ == "__main__":
    sys.exit(retention_main())

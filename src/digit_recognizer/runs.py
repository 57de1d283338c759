"""``python -m digit_recognizer.runs``: ``kedro runs`` for cron and scripts (see :mod:`digit_recognizer.framework.commands`)."""

import sys

from digit_recognizer.framework.commands import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m digit_recognizer.runs``: the run store's command line (see :mod:`digit_recognizer.runstore`)."""

import sys

from digit_recognizer.runstore.cli import main

if __name__ == "__main__":
    sys.exit(main())

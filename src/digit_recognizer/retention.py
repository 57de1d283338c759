"""``python -m digit_recognizer.retention --keep N``: keep the newest N complete runs, delete older ones whole."""

import sys

from digit_recognizer.runstore.retention import main

if __name__ == "__main__":
    sys.exit(main())

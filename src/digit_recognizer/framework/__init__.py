"""The Kedro adapter: hooks, the project's datasets, version resolution and console logging.

The only code that touches Kedro. Where Kedro has no public route, :mod:`.kedro_compat` holds
the one protected access, with a test that fails on the Kedro version where it changes.
"""

from digit_recognizer.framework.run_dataset import RunDataset

__all__ = ["RunDataset"]

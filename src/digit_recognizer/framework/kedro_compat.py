"""Every protected Kedro API this project uses, in one place, each with a test that fails when Kedro changes it.

Checked against kedro 1.7.0 (``pyproject.toml`` pins kedro to 1.7.x; ``tests/framework/
test_kedro_compat.py`` checks each). There are three:

1. ``CachedDataset._dataset``: no public way reaches the dataset a ``CachedDataset`` wraps; the
   run's hooks need it to bind a cached :class:`~digit_recognizer.framework.run_dataset.RunDataset`.
2. ``AbstractVersionedDataset._version`` and ``_clear_version_cache()``: a versioned dataset takes
   its version only when it is made; a run binds its datasets to the run's id after the catalog
   made them.
3. The ``callback`` of Kedro's ``run`` command (a click command): the project's ``kedro run`` is
   Kedro's own, with its options, wrapped in messages a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro.io import AbstractVersionedDataset, CachedDataset, Version


def unwrap(dataset: Any) -> Any:
    """The dataset inside a ``CachedDataset`` (``_dataset``); any other dataset as it is."""
    return dataset._dataset if isinstance(dataset, CachedDataset) else dataset


def set_version(dataset: AbstractVersionedDataset, version: Version) -> None:
    """Gives a versioned dataset the version it loads and saves from now on (``_version``)."""
    dataset._version = version
    dataset._clear_version_cache()


def kedro_run_command() -> Callable[..., Any]:
    """What Kedro's ``kedro run`` does with its options (the click command's callback)."""
    from kedro.framework.cli.project import run  # Kedro's command line: imported only where a command runs

    return run.callback

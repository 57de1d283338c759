"""The one protected Kedro API this project needs, kept here with a test that fails when it changes.

Checked against kedro 1.7.0 (``pyproject.toml`` pins kedro to 1.7.x). ``CachedDataset`` has no
public way to reach the dataset it wraps; the run hooks need it to bind a cached
:class:`~digit_recognizer.framework.run_dataset.RunDataset` to the run.
"""

from __future__ import annotations

from typing import Any

from kedro.io import CachedDataset


def unwrap(dataset: Any) -> Any:
    """The dataset inside a ``CachedDataset`` (``_dataset``); any other dataset as it is."""
    return dataset._dataset if isinstance(dataset, CachedDataset) else dataset

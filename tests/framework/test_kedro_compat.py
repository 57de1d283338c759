"""The one protected Kedro API the project uses, checked against the installed Kedro."""

from __future__ import annotations

import importlib.metadata

from kedro.io import CachedDataset, MemoryDataset

from digit_recognizer.framework.kedro_compat import unwrap


def test_unwrap_reaches_the_dataset_inside_a_cache():
    inner = MemoryDataset([1, 2])
    assert unwrap(CachedDataset(inner)) is inner  # fails where CachedDataset stops keeping it in _dataset
    assert unwrap(inner) is inner


def test_kedro_is_the_minor_version_the_project_pins():
    assert importlib.metadata.version("kedro").startswith("1.7.")
    assert importlib.metadata.version("kedro-datasets").startswith("9.6.")

"""Hooks that tell the user where a run put the files they came for."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset

logger = logging.getLogger(__name__)

ANNOUNCED_SUFFIXES = (".submission", ".model", "leaderboard")


class OutputLocationHooks:
    """Logs the versioned path of every submission, model and leaderboard a run writes."""

    def __init__(self) -> None:
        self._catalog: Any = None

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        self._catalog = catalog

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if self._catalog is None or not dataset_name.endswith(ANNOUNCED_SUFFIXES):
            return
        dataset = self._catalog.get(dataset_name)
        if isinstance(dataset, AbstractVersionedDataset):
            path = dataset._get_versioned_path(dataset.resolve_save_version())
            logger.info("Wrote %s to %s", dataset_name, path)

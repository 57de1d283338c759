"""Hooks that tell the user where a run put its files and where its time went."""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import time
from pathlib import Path
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


class RunTimingHooks:
    """Logs how long each node took and the process's peak memory, once the run ends.

    With ``DIGIT_RECOGNIZER_TIMINGS=/path/file.json`` in the environment the same figures are
    written there as JSON (the benchmark reads them).
    """

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._nodes: list[dict[str, Any]] = []
        self._pipeline_start = 0.0

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._nodes.clear()
        self._pipeline_start = time.time()

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        seconds = time.perf_counter() - self._started.pop(node.name, time.perf_counter())
        self._nodes.append({"node": node.name, "seconds": seconds, "peak_rss_mb": _peak_rss_mb()})

    @hook_impl
    def after_pipeline_run(self) -> None:
        slowest = sorted(self._nodes, key=lambda n: n["seconds"], reverse=True)[:5]
        logger.info(
            "Slowest nodes: %s; peak memory %.0f MB",
            ", ".join(f"{n['node']} {n['seconds']:.2f}s" for n in slowest),
            _peak_rss_mb(),
        )
        target = os.environ.get("DIGIT_RECOGNIZER_TIMINGS")
        if target:
            report = {
                "pipeline_start": self._pipeline_start,
                "pipeline_end": time.time(),
                "peak_rss_mb": _peak_rss_mb(),
                "nodes": self._nodes,
            }
            Path(target).write_text(json.dumps(report, indent=2))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class FastShutdownHooks:
    """Spares the interpreter a slow final garbage collection after a run.

    torch, scikit-learn and their imports leave millions of long-lived objects, and scanning
    them at exit cost about a second per `kedro run` on a 2-core machine. After collecting
    the run's real garbage, the survivors are frozen (``gc.freeze``) so that the exit scan skips
    them; the next run in the same process (a notebook, say) unfreezes them first, so nothing
    stays uncollectable for longer than one run.
    """

    @hook_impl
    def before_pipeline_run(self) -> None:
        gc.unfreeze()

    @hook_impl
    def after_pipeline_run(self) -> None:
        gc.collect()
        gc.freeze()

"""Hooks that tell the user where a run put its files and where its time went."""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset
from kedro.io.core import Version

logger = logging.getLogger(__name__)

ANNOUNCED_SUFFIXES = (".submission", ".model", "leaderboard")


class _CatalogHooks:
    """Base for hooks that look datasets up in the run's catalog."""

    def __init__(self) -> None:
        self._catalog: Any = None

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        self._catalog = catalog


class OutputLocationHooks(_CatalogHooks):
    """Logs the versioned path of every submission, model and leaderboard a run writes."""

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        dataset = _versioned(self._catalog, dataset_name) if dataset_name.endswith(ANNOUNCED_SUFFIXES) else None
        if dataset is not None:
            logger.info("Wrote %s to %s", dataset_name, _save_path(dataset))


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


class SafeVersionsHooks(_CatalogHooks):
    """Keeps versioned outputs whole and each run's outputs its own.

    * Before a versioned dataset is written, a marker ``.<file>.writing`` (naming this process)
      is put beside it, and removed once the write has finished. A run killed mid-write
      (SIGKILL, power loss) leaves the marker behind; the next run that touches the dataset
      deletes that half-written version before anything can load it. Markers of a live process
      (a run going on beside this one) are left alone.
    * Once a run has written a versioned dataset, it reads back that version, not "the latest":
      a second run started at the same time may have written a newer one in between.
    """

    MARKER = ".{name}.writing"

    @hook_impl
    def before_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        for name in sorted(pipeline.datasets()):
            dataset = _versioned(catalog, name)
            if dataset is not None:
                for removed in remove_partial_versions(Path(str(dataset._filepath))):
                    logger.warning("Removed %s, left half-written by an interrupted run", removed)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        dataset = _versioned(self._catalog, dataset_name)
        if dataset is not None:
            path = _save_path(dataset)
            path.parent.mkdir(parents=True, exist_ok=True)
            marker = path.with_name(self.MARKER.format(name=path.name))
            marker.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        dataset = _versioned(self._catalog, dataset_name)
        if dataset is None:
            return
        path = _save_path(dataset)
        path.with_name(self.MARKER.format(name=path.name)).unlink(missing_ok=True)
        if dataset._version.load is None:  # an explicit --load-versions pin stays as it is
            version = dataset.resolve_save_version()
            dataset._version = Version(version, version)


def _versioned(catalog: Any, name: str) -> AbstractVersionedDataset | None:
    """The local versioned dataset behind ``name`` (looking inside a CachedDataset), if any."""
    if catalog is None or name.startswith("params:") or name == "parameters":
        return None
    try:
        dataset = catalog.get(name)
    except Exception:  # not in the catalog: a default in-memory dataset
        return None
    dataset = getattr(dataset, "_dataset", dataset)
    if isinstance(dataset, AbstractVersionedDataset) and getattr(dataset, "_protocol", "file") == "file":
        return dataset
    return None


def _save_path(dataset: AbstractVersionedDataset) -> Path:
    """Where this run writes (or wrote) the dataset: ``<filepath>/<run version>/<file>``."""
    return Path(str(dataset._get_versioned_path(dataset.resolve_save_version())))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_partial_versions(dataset_dir: Path) -> list[Path]:
    """Deletes versions under ``dataset_dir`` whose writer died mid-write; returns what went."""
    removed = []
    for marker in sorted(dataset_dir.glob("*/.*.writing")):
        try:
            writer = json.loads(marker.read_text())
        except (OSError, ValueError):
            writer = {}
        if writer.get("host") == socket.gethostname() and _alive(int(writer.get("pid", -1))):
            continue  # a run in progress beside this one
        partial = marker.with_name(marker.name[1 : -len(".writing")])
        if partial.is_dir():
            shutil.rmtree(partial)
        else:
            partial.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        removed.append(partial)
        if not any(marker.parent.iterdir()):
            marker.parent.rmdir()
    return removed

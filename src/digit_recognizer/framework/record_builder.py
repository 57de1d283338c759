"""The run record, gathered while a run goes: each dataset's role comes from the catalog's metadata, never its name.

.. code-block:: yaml

    "{architecture}.submission":
      metadata: {digit_recognizer: {record: submission, key: "{architecture}"}}

``record``: ``input`` (a raw file: its path, size, hash, rows and label counts), ``metrics`` (a
leaderboard row), ``history`` (a training history), ``submission``; ``key``: the record's key
for it (a namespace); ``announce: true``: the run's log says where it was written.
"""

from __future__ import annotations

import logging
import platform
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from digit_recognizer import __version__
from digit_recognizer.runstore import RunRecord, iso_time, locations

logger = logging.getLogger(__name__)

METADATA_KEY = "digit_recognizer"  # catalog metadata: {record: input | metrics | history | submission, key, announce}


def roles(catalog: Any, names: set[str]) -> dict[str, dict[str, Any]]:
    """Each dataset's role, as its catalog entry declares it under ``metadata: {digit_recognizer: ...}``."""
    return {name: (getattr(catalog.get(name), "metadata", None) or {}).get(METADATA_KEY, {}) for name in names}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RecordBuilder:
    """What one run read, wrote, scored and spent, turned into its :class:`RunRecord` at the end."""

    def __init__(self, project: Path, parameters: dict[str, Any], roles: dict[str, dict[str, Any]]) -> None:
        self.project, self.parameters, self.roles = project, parameters, roles
        self.started = time.time()
        self.inputs: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, str] = {}
        self.submissions: dict[str, str] = {}
        self.metrics: dict[str, dict[str, Any]] = {}
        self.histories: dict[str, str] = {}
        self.nodes: list[dict[str, Any]] = []
        self.datasets: list[dict[str, Any]] = []  # each load and save: {dataset, op, seconds}
        self._node_started: dict[str, float] = {}
        self._dataset_started: dict[tuple[str, str], float] = {}

    def dataset_started(self, name: str, op: str) -> None:
        """A load or save (``op``) of ``name`` begins: its time goes in the record's timings."""
        self._dataset_started[name, op] = time.perf_counter()

    def dataset_finished(self, name: str, op: str) -> None:
        started = self._dataset_started.pop((name, op), None)
        if started is not None:
            self.datasets.append({"dataset": name, "op": op, "seconds": round(time.perf_counter() - started, 4)})

    def loaded(self, name: str, data: Any) -> None:
        """An input's fingerprint, as its dataset left it in the frame's ``attrs``."""
        attrs = getattr(data, "attrs", {})
        if self.roles.get(name, {}).get("record") == "input" and "source" in attrs:
            found = {"path": attrs["source"], "bytes": attrs["bytes"], "sha256": attrs["sha256"], "rows": len(data)}
            self.inputs[name] = {**found, **({"labels": attrs["labels"]} if "labels" in attrs else {})}

    def saved(self, name: str, data: Any, file: locations.Location | None) -> None:
        """An output, written to ``file`` (None for one that is not versioned by the run)."""
        role = self.roles.get(name, {})
        key = role.get("key", name)
        if file is not None:
            self.outputs[name] = locations.relative(self.project, file)
            if role.get("record") == "submission":
                self.submissions[key] = self.outputs[name]
            if role.get("announce"):
                logger.info("Wrote %s to %s", name, self.outputs[name])
        if role.get("record") == "metrics" and isinstance(data, dict):
            self.metrics[key] = data
        elif role.get("record") == "history":
            self.histories[key] = name

    def node_started(self, name: str) -> None:
        self._node_started[name] = time.perf_counter()

    def node_finished(self, name: str) -> None:
        seconds = time.perf_counter() - self._node_started.pop(name, time.perf_counter())
        self.node_ran(name, seconds, socket.gethostname(), peak_rss_mb())

    def node_ran(self, name: str, seconds: float, host: str, peak_mb: float | None = None) -> None:
        """A node's time and the host it ran on (another process's, for a node a Dask worker ran)."""
        entry = {"node": name, "seconds": round(seconds, 4), "host": host}
        if peak_mb is not None:
            entry["peak_rss_mb"] = round(peak_mb, 1)
        self.nodes.append(entry)

    def recorded(self) -> set[str]:
        """The datasets whose loads or saves the record keeps something of (inputs, metrics)."""
        return {name for name, role in self.roles.items() if role.get("record") in ("input", "metrics")}

    def build(self, run_id: str, run_params: dict[str, Any], node_names: list[str], reads: dict[str, str]) -> RunRecord:
        finished = time.time()
        folders = {str(locations.parent(found["path"])) for found in self.inputs.values()}
        return RunRecord(
            run_id=run_id,
            started=iso_time(self.started),
            finished=iso_time(finished),
            seconds=round(finished - self.started, 3),
            pipelines=run_params.get("pipeline_names") or ["__default__"],
            parameters=self.parameters,
            tags=run_params.get("tags"),
            env=run_params.get("env"),
            runtime_params=run_params.get("runtime_params") or {},
            nodes=sorted(node_names),
            host=socket.gethostname(),
            versions={
                "digit_recognizer": __version__,
                "git_commit": git_commit(self.project),
                "python": platform.python_version(),
                "kedro": run_params.get("kedro_version"),
                "torch": getattr(sys.modules.get("torch"), "__version__", None),
            },
            raw_dir=folders.pop() if len(folders) == 1 else None,
            inputs=self.inputs,
            reads=reads,
            outputs=dict(sorted(self.outputs.items())),
            submissions=dict(sorted(self.submissions.items())),
            metrics=self.metrics,
            histories=self.histories,
            timings={"peak_rss_mb": round(peak_rss_mb(), 1), "nodes": self.nodes, "datasets": self.datasets},
        )


def git_commit(project: Path) -> str | None:
    if not (project / ".git").exists():
        return None
    try:
        found = subprocess.run(
            ["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None

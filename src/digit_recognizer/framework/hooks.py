"""Hooks that make a ``kedro run`` all-or-nothing, record it, and tell the user where things went."""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines
from kedro.io.core import DatasetError
from kedro.pipeline import Pipeline

from digit_recognizer import __version__
from digit_recognizer.config import check_parameters
from digit_recognizer.framework.kedro_compat import (
    end_redirect,
    local_versioned,
    pin,
    pinned_load,
    redirect_save,
    versioned_file,
)
from digit_recognizer.runstore import (
    JOIN_VARIABLE,
    LiveRun,
    RunPart,
    RunStateError,
    RunStore,
    atomic_write,
    iso_time,
    part_name,
)

logger = logging.getLogger(__name__)

ANNOUNCED_SUFFIXES = (".submission", ".model", "leaderboard")
RAW_PREFIX = "raw_"


class RunHooks:
    """One ``kedro run`` is one run: checked first, written under one version, committed last.

    * Parameters are checked before the catalog is built (:func:`check_parameters`).
    * Every versioned dataset the run writes gets the run's version, through a temporary name
      renamed into place (:func:`atomic_write`); every dataset it only reads comes from the
      latest *complete* run that wrote it, or the version given with ``--load-versions``.
    * The run holds a lock (:class:`LiveRun`) from before its first write; a run that raises
      deletes what it wrote, and what killed runs left is deleted before this one starts.
    * The run's last write is its record, ``data/runs/<run id>/run.json``; then a short
      summary: this run's leaderboard, its submissions and where the record is.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._project = Path.cwd()
        self._parameters: dict[str, Any] = {}
        self._run_id = ""
        self._live: LiveRun | None = None
        self._inputs: dict[str, dict[str, Any]] = {}
        self._reads: dict[str, str] = {}
        self._outputs: dict[str, Path] = {}
        self._summaries: dict[str, dict[str, Any]] = {}
        self._nodes: list[dict[str, Any]] = []
        self._node_started: dict[str, float] = {}
        self._started = 0.0

    @property
    def store(self) -> RunStore:
        return RunStore(self._project / "data" / "runs")

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._reset()
        self._project = Path(context.project_path)
        self._parameters = check_parameters(_plain(context.config_loader["parameters"]))  # defaults filled in

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._started = time.time()
        joined = os.environ.get(JOIN_VARIABLE)
        self._run_id = joined or run_params["run_id"]
        store = self.store
        for run_id, removed in store.remove_dead():
            logger.warning("Removed what the interrupted run %s left: %d folders", run_id, len(removed))
        # a part of an open run reads what earlier parts of that run wrote, never another run's
        earlier = self._earlier_parts(store, joined, run_params) if joined else {}
        produced = pipeline.all_outputs()
        missing, not_yet = [], []
        for name in sorted(pipeline.datasets()):
            dataset = local_versioned(catalog, name)
            if dataset is None:
                continue
            if name in produced:
                pin(dataset, self._run_id, self._run_id)
                self._guard(name, dataset)
            elif name in earlier:
                if earlier[name] is None:
                    not_yet.append(name)
                pin(dataset, self._run_id, self._run_id)
                self._reads[name] = self._run_id  # the run's own; left out of the closed run's record
            elif pinned_load(dataset):
                self._reads[name] = pinned_load(dataset)
            else:
                record = store.latest(name)
                if record is None:
                    missing.append(name)
                    continue
                pin(dataset, record["run_id"], self._run_id)
                self._reads[name] = record["run_id"]
        if not_yet:
            raise DatasetError(
                f"Run {joined} has not written {', '.join(not_yet)} yet: the task that makes it must finish "
                "before this one starts (a part never reads another run's version)."
            )
        if missing:
            raise DatasetError(
                f"No complete run has written {', '.join(missing)} yet (runs are listed in {store.root}); "
                "run the pipeline that makes it first, or pass --load-versions NAME:VERSION."
            )
        if "run" in pipeline.inputs():
            catalog.get("run").save({"run_id": self._run_id})  # the catalog's in-memory "run" entry
        if joined:
            self._live = RunPart(store, joined, part_name(node.name for node in pipeline.nodes))
        else:
            self._live = LiveRun(store, self._run_id)
        self._live.start(self._reads)

    @staticmethod
    def _earlier_parts(store: RunStore, run_id: str, run_params: dict[str, Any]) -> dict[str, str | None]:
        """Datasets the open run makes: the run's id where an earlier part wrote it, else None."""
        info = store.open_info(run_id)
        names = run_params.get("pipeline_names") or ["__default__"]
        if names != info.get("pipelines"):
            raise RunStateError(f"run {run_id} runs the pipelines {info.get('pipelines')}, not {names}")
        whole = sum((pipelines[name] for name in names), start=Pipeline([]))
        makes: dict[str, str | None] = dict.fromkeys(whole.only_nodes(*info["nodes"]).all_outputs())
        for record in store.parts(run_id).values():
            makes.update(dict.fromkeys(record.get("outputs", {}), run_id))
        return makes

    def _guard(self, name: str, dataset: Any) -> None:
        """Every save of ``dataset`` goes to a temporary name first, noted in the run's journal."""
        save = dataset.save

        def atomic_save(data: Any) -> None:
            final = versioned_file(dataset, self._run_id)
            if self._live is not None:
                self._live.journal(final.parent)
            with atomic_write(final, f"dataset '{name}'") as temporary:
                redirect_save(dataset, temporary)
                try:
                    save(data)
                finally:
                    end_redirect(dataset)
            self._outputs[name] = final

        dataset.save = atomic_save

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if dataset_name.startswith(RAW_PREFIX) and data is not None and "source" in getattr(data, "attrs", {}):
            self._inputs[dataset_name] = _describe_file(Path(data.attrs["source"]))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if dataset_name.endswith("_summary") and isinstance(data, dict):
            self._summaries[dataset_name.removesuffix("_summary")] = data
        if dataset_name.endswith(ANNOUNCED_SUFFIXES) and dataset_name in self._outputs:
            logger.info("Wrote %s to %s", dataset_name, self._relative(self._outputs[dataset_name]))

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._node_started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        seconds = time.perf_counter() - self._node_started.pop(node.name, time.perf_counter())
        self._nodes.append({"node": node.name, "seconds": round(seconds, 4), "peak_rss_mb": round(_peak_rss_mb(), 1)})

    @hook_impl(tryfirst=True)  # before kedro-mlflow closes its MLflow run
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any) -> None:
        if self._live is None:
            return
        record = self._record(run_params, pipeline)
        try:
            path = self._live.commit(record)
        except BaseException:
            self._live.abort()
            raise
        part, self._live = self._live, None
        if isinstance(part, RunPart):
            logger.info(
                "Part %s of run %s done in %.1f s (%s); the run is complete once it is closed.",
                part.part,
                self._run_id,
                record["seconds"],
                self._relative(path),
            )
            return
        self._announce(record, path)
        if "mlflow" in sys.modules:  # kedro-mlflow is installed and has imported it
            from digit_recognizer.integrations import mlflow as tracking

            mlflow_run = tracking.log_run(record, path, self._project)
            if mlflow_run:
                logger.info(
                    "  mlflow: logged as run %s (mlflow ui --backend-store-uri sqlite:///mlflow.db)", mlflow_run
                )

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        if self._live is None:
            return
        removed = self._live.abort()
        part, self._live = self._live, None
        if isinstance(part, RunPart):
            logger.error(
                "Part %s of run %s failed; deleted the %d version folders it had written. The run stays "
                "open (never 'latest'): retry the task, or abort the run.",
                part.part,
                self._run_id,
                len(removed),
            )
            return
        logger.error(
            "Run %s failed; deleted the %d version folders it had written, so earlier results stay the latest.",
            self._run_id,
            len(removed),
        )

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self._project))
        except ValueError:
            return str(path)

    def _record(self, run_params: dict[str, Any], pipeline: Any) -> dict[str, Any]:
        finished = time.time()
        return {
            "run_id": self._run_id,
            "status": "complete",
            "started": iso_time(self._started),
            "finished": iso_time(finished),
            "seconds": round(finished - self._started, 3),
            "pipelines": run_params.get("pipeline_names") or ["__default__"],
            "tags": run_params.get("tags"),
            "env": run_params.get("env"),
            "runtime_params": run_params.get("runtime_params") or {},
            "nodes": sorted(node.name for node in pipeline.nodes),
            "host": socket.gethostname(),
            "versions": {
                "digit_recognizer": __version__,
                "git_commit": _git_commit(self._project),
                "python": platform.python_version(),
                "kedro": run_params.get("kedro_version"),
                "torch": _torch_version(),
            },
            "parameters": self._parameters,
            "raw_dir": str(Path(self._inputs["raw_train"]["path"]).parent) if "raw_train" in self._inputs else None,
            "inputs": self._inputs,
            "reads": self._reads,
            "outputs": {name: self._relative(path) for name, path in sorted(self._outputs.items())},
            "metrics": self._summaries,
            "timings": {"peak_rss_mb": round(_peak_rss_mb(), 1), "nodes": self._nodes},
        }

    def _announce(self, record: dict[str, Any], path: Path) -> None:
        """This run's leaderboard, its submissions and where to look, as the run's last lines."""
        lines = [f"Run {record['run_id']} complete in {record['seconds']:.1f} s."]
        rows = sorted(self._summaries.items(), key=lambda item: -(item[1].get("validation_accuracy") or 0))
        if rows:
            lines.append(f"  {'architecture':<14}{'validation':>11}{'test':>8}{'parameters':>12}{'training':>10}")
            for arch, row in rows:
                test = row.get("test_score")
                lines.append(
                    f"  {arch:<14}{row['validation_accuracy']:>11.4f}{'-' if test is None else f'{test:.4f}':>8}"
                    f"{row['parameters']:>12,}{row['training_seconds']:>9.1f}s"
                )
        for name, output in record["outputs"].items():
            if name.endswith(".submission"):
                lines.append(f"  submission {name.removesuffix('.submission')}: {output}")
        lines.append(f"  run record: {self._relative(path)}")
        slowest = sorted(self._nodes, key=lambda n: n["seconds"], reverse=True)[:3]
        if slowest:
            nodes = ", ".join(f"{n['node']} {n['seconds']:.1f}s" for n in slowest)
            lines.append(f"  slowest nodes: {nodes}; peak memory {_peak_rss_mb():.0f} MB")
        lines.append(
            "  look at it: kedro viz run, or notebooks/explore_results.ipynb; "
            "python -m digit_recognizer.runs latest --submission ARCH prints the latest submission's path"
        )
        for line in lines:
            logger.info(line)


def _plain(value: Any) -> Any:
    """Config values as plain dicts and lists (OmegaConf containers become JSON-ready)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value


def _describe_file(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _git_commit(project: Path) -> str | None:
    if not (project / ".git").exists():
        return None
    try:
        found = subprocess.run(
            ["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


def _torch_version() -> str | None:
    torch = sys.modules.get("torch")
    return getattr(torch, "__version__", None)


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

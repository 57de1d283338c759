"""Hooks that make a ``kedro run`` one run: checked first, versioned together, committed last.

* Parameters are checked before the catalog is built (:func:`~digit_recognizer.config.check_parameters`).
* Every :class:`~digit_recognizer.framework.run_dataset.RunDataset` of the pipeline is bound to
  the run: it saves under the run's id, atomically, noting each folder in the run's journal, and
  loads what :func:`~digit_recognizer.framework.versions.plan_versions` says.
* The run holds a lock from before its first write (:class:`~digit_recognizer.runstore.LiveRun`);
  a run that raises deletes what it wrote, and what dead runs left is deleted before it starts.
* After the last node it writes the run's page (``run_report``, :mod:`digit_recognizer.report`);
  its last write is its record (:class:`~digit_recognizer.runstore.RunRecord`), filled from the
  datasets the catalog declares (``metadata: {digit_recognizer: {record: input | metrics |
  history}}``); then a short summary: the leaderboard, the submissions, the page and the record.
"""

from __future__ import annotations

import gc
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
from kedro.io import AbstractVersionedDataset
from kedro.io.core import generate_timestamp
from kedro.pipeline import Pipeline

from digit_recognizer import __version__
from digit_recognizer.config import check_parameters
from digit_recognizer.errors import UserError
from digit_recognizer.framework.kedro_compat import unwrap
from digit_recognizer.framework.run_dataset import RunDataset
from digit_recognizer.framework.stop_signals import StopSignals
from digit_recognizer.framework.versions import plan_versions
from digit_recognizer.ml.threads import TASKS_VARIABLE, widest
from digit_recognizer.report import REPORT_DATASET, render_report
from digit_recognizer.runstore import (
    JOIN_VARIABLE,
    LiveRun,
    RunPart,
    RunRecord,
    RunStateError,
    RunStore,
    iso_time,
    locations,
)
from digit_recognizer.runstore.project import CREDENTIALS_KEY, use_credentials
from digit_recognizer.runstore.store import part_name

logger = logging.getLogger(__name__)

METADATA_KEY = "digit_recognizer"  # catalog metadata: {record: input | metrics | history, key: ..., announce: true}


class RunHooks:
    """One ``kedro run`` (or one task of a scheduled run) is one run of the run store."""

    def __init__(self) -> None:
        self._project = Path.cwd()
        self._data_root: str | None = None
        self._parameters: dict[str, Any] = {}
        self._live: LiveRun | None = None
        self._signals = StopSignals(self._roll_back)
        self._start("")

    def _start(self, run_id: str) -> None:
        """Forgets the previous run (a notebook runs several in one process)."""
        self._run_id = run_id
        self._started = time.time()
        self._datasets: dict[str, RunDataset] = {}
        self._roles: dict[str, dict[str, Any]] = {}  # dataset -> its catalog metadata under METADATA_KEY
        self._reads: dict[str, str] = {}
        self._inputs: dict[str, dict[str, Any]] = {}
        self._outputs: dict[str, Path] = {}
        self._metrics: dict[str, dict[str, Any]] = {}
        self._histories: dict[str, str] = {}
        self._nodes: list[dict[str, Any]] = []
        self._node_started: dict[str, float] = {}
        self._report: RunDataset | None = None
        if getattr(self, "_set_tasks_variable", False):  # put back what the previous run set
            os.environ.pop(TASKS_VARIABLE, None)
        self._set_tasks_variable = False

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._project = Path(context.project_path)
        self._parameters = check_parameters(_plain(context.config_loader["parameters"]))  # defaults filled in
        loader = context.config_loader
        runtime = getattr(loader, "runtime_params", None) or {}
        try:
            configured = (loader["globals"] or {}).get("data_root")
        except Exception:  # a project without globals.yml
            configured = None
        self._data_root = str(runtime.get("data_root") or configured or "") or None  # the runs live under it
        if self._data_root and locations.is_url(self._data_root):
            locations.filesystem_class(self._data_root)  # its package is installed, or say which to install
        if self._data_root:  # its credentials, where credentials.yml has them, for every reader and writer
            try:
                credentials = (loader["credentials"] or {}).get(CREDENTIALS_KEY)
            except Exception:  # no credentials file
                credentials = None
            use_credentials(self._data_root, credentials if isinstance(credentials, dict) else None)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        at_once = _nodes_at_once(str(run_params.get("runner") or ""), pipeline)  # refuses ParallelRunner first
        joined = os.environ.get(JOIN_VARIABLE)
        self._start(joined or run_params["run_id"])
        if at_once > 1 and not os.environ.get(TASKS_VARIABLE):
            # ThreadRunner trains independent nodes at once: `threads: auto` divides the CPUs among them
            os.environ[TASKS_VARIABLE] = str(at_once)
            self._set_tasks_variable = True
            logger.info(
                "Nodes that train or predict may run %d at once: threads: auto divides the CPUs among them", at_once
            )
        store = RunStore.at(self._project, self._data_root)
        for run_id, removed in store.remove_dead():
            logger.warning("Removed what the interrupted run %s left: %d folders", run_id, len(removed))

        declared = {name: catalog.get(name) for name in pipeline.datasets() if _in_catalog(catalog, name)}
        self._datasets = {name: ds for name, d in declared.items() if isinstance(ds := unwrap(d), RunDataset)}
        for name, dataset in declared.items():
            if isinstance(unwrap(dataset), AbstractVersionedDataset) and name not in self._datasets:
                logger.warning(
                    "%s is versioned by Kedro, not by run: a failed run would leave its version behind. "
                    "Declare it as type: digit_recognizer.framework.RunDataset (see conf/base/catalog.yml).",
                    name,
                )
        self._roles = {name: (getattr(d, "metadata", None) or {}).get(METADATA_KEY, {}) for name, d in declared.items()}
        earlier = _earlier_parts(store, joined, run_params) if joined else None
        complete = store.complete()  # newest first, read once

        def writers(name: str) -> list[str]:
            return [record.run_id for record in complete if name in record.outputs]

        while True:
            plan = plan_versions(
                self._run_id,
                self._datasets,
                pipeline.all_outputs(),
                run_params.get("load_versions") or {},
                lambda name: next(iter(writers(name)), None),
                earlier_parts=earlier,
                exists=lambda name, version: self._datasets[name].exists_version(version),
                writers=writers,
            )
            if joined:
                live = RunPart(store, joined, part_name(node.name for node in pipeline.nodes))
            else:
                live = LiveRun(store, self._run_id)
            try:
                live.start(plan.reads)
                self._live = live
                break
            except FileExistsError:
                if joined:
                    raise
                time.sleep(0.002)  # another run started in the same millisecond: take the next one
                self._run_id = generate_timestamp()
        self._reads = plan.reads
        for name, dataset in self._datasets.items():
            dataset.bind(name, plan.loads[name], self._run_id, self._live.journal)
        report = unwrap(catalog.get(REPORT_DATASET)) if REPORT_DATASET in catalog else None
        if isinstance(report, RunDataset) and not joined:  # a scheduled run's page is written when it closes
            report.bind(REPORT_DATASET, None, self._run_id, self._live.journal)
            self._report = report
        self._signals.trap()
        if "run" in pipeline.inputs():
            catalog.get("run").save({"run_id": self._run_id})  # the catalog's in-memory "run" entry

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        attrs = getattr(data, "attrs", {})
        if self._roles.get(dataset_name, {}).get("record") == "input" and "source" in attrs:
            self._inputs[dataset_name] = {
                "path": attrs["source"],
                "bytes": attrs["bytes"],
                "sha256": attrs["sha256"],
                "rows": len(data),
            }
            if "label" in getattr(data, "columns", ()):
                counts = data["label"].value_counts()
                self._inputs[dataset_name]["labels"] = {str(d): int(counts.get(d, 0)) for d in range(10)}

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if dataset_name in self._datasets:
            self._outputs[dataset_name] = self._datasets[dataset_name].file(self._run_id)
        role = self._roles.get(dataset_name, {})
        key = role.get("key", dataset_name)
        if role.get("record") == "metrics" and isinstance(data, dict):
            self._metrics[key] = data
        elif role.get("record") == "history":
            self._histories[key] = dataset_name
        if role.get("announce") and dataset_name in self._outputs:
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
        self._restore_tasks_variable()
        if self._live is None:
            return
        self._signals.hold()  # the commit is not interrupted halfway
        try:
            record = self._record(run_params, pipeline)
            try:
                if self._report is not None:
                    self._write_report(record)
                path = self._live.commit(record)
            except BaseException:
                self._live.abort()
                raise
        finally:
            self._signals.restore()
        part, self._live = self._live, None
        if isinstance(part, RunPart):
            logger.info(
                "Part %s of run %s done in %.1f s (%s); the run is complete once it is closed.",
                part.part,
                self._run_id,
                record.seconds,
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
        self._restore_tasks_variable()
        self._signals.hold()  # a signal does not stop the rollback halfway
        try:
            self._roll_back("failed")
        finally:
            self._signals.restore()

    def _roll_back(self, what: str) -> None:
        """Deletes what the run (or this part of an open run) wrote, and says so."""
        if self._live is None:
            return
        removed = self._live.abort()
        part, self._live = self._live, None
        seconds = time.time() - self._started
        if isinstance(part, RunPart):
            logger.error(
                "Part %s of run %s %s after %.1f s; deleted the %d version folders it had written. The run "
                "stays open (never 'latest'): retry the task, or abort the run.",
                part.part,
                self._run_id,
                what,
                seconds,
                len(removed),
            )
            return
        logger.error(
            "Run %s %s after %.1f s; deleted the %d version folders it had written, so earlier results stay the latest.",
            self._run_id,
            what,
            seconds,
            len(removed),
        )

    def _restore_tasks_variable(self) -> None:
        if self._set_tasks_variable:
            os.environ.pop(TASKS_VARIABLE, None)
            self._set_tasks_variable = False

    def _write_report(self, record: RunRecord) -> None:
        """The run's page, from the record as it will be written; it becomes one of the run's outputs."""
        started = time.perf_counter()
        earlier = RunStore.at(self._project, self._data_root).complete()
        self._report.save(render_report(record, self._project, earlier))
        record.outputs[REPORT_DATASET] = self._relative(self._report.file(self._run_id))
        record.outputs = dict(sorted(record.outputs.items()))
        logger.debug("Wrote the run report in %.2f s", time.perf_counter() - started)

    def _relative(self, path: Path | str) -> str:
        if isinstance(path, str):  # a URL: kept whole
            return path
        try:
            return str(path.relative_to(self._project))
        except ValueError:
            return str(path)

    def _record(self, run_params: dict[str, Any], pipeline: Any) -> RunRecord:
        finished = time.time()
        folders = {str(Path(found["path"]).parent) for found in self._inputs.values()}
        return RunRecord(
            run_id=self._run_id,
            started=iso_time(self._started),
            finished=iso_time(finished),
            seconds=round(finished - self._started, 3),
            pipelines=run_params.get("pipeline_names") or ["__default__"],
            parameters=self._parameters,
            tags=run_params.get("tags"),
            env=run_params.get("env"),
            runtime_params=run_params.get("runtime_params") or {},
            nodes=sorted(node.name for node in pipeline.nodes),
            host=socket.gethostname(),
            versions={
                "digit_recognizer": __version__,
                "git_commit": _git_commit(self._project),
                "python": platform.python_version(),
                "kedro": run_params.get("kedro_version"),
                "torch": getattr(sys.modules.get("torch"), "__version__", None),
            },
            raw_dir=folders.pop() if len(folders) == 1 else None,
            inputs=self._inputs,
            reads=self._reads,
            outputs={name: self._relative(path) for name, path in sorted(self._outputs.items())},
            metrics=self._metrics,
            histories=self._histories,
            timings={"peak_rss_mb": round(_peak_rss_mb(), 1), "nodes": self._nodes},
        )

    def _announce(self, record: RunRecord, path: Path) -> None:
        """This run's leaderboard, its submissions and where to look, as the run's last lines."""
        lines = [f"Run {record.run_id} complete in {record.seconds:.1f} s.", *record.leaderboard_lines()]
        if REPORT_DATASET in record.outputs:
            lines.append(f"  report: {record.outputs[REPORT_DATASET]}")
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


class RunnerError(UserError, ValueError):
    """A Kedro runner this project's runs cannot use."""


def _nodes_at_once(runner: str, pipeline: Any) -> int:
    """How many nodes that train or predict the runner may run at once (1 for Kedro's SequentialRunner).

    ``ParallelRunner`` is refused: each node would run in another process, but a run's outputs
    are bound to this one (its journal, its lock, its version).
    """
    if "ParallelRunner" in runner:
        raise RunnerError(
            "--runner ParallelRunner cannot run this project: a run's outputs are versioned, journalled and "
            "rolled back by this process, which other processes cannot share. Use --runner ThreadRunner (nodes "
            "in threads; threads: auto divides the CPUs among the trainings that run at once) or a scheduler "
            "(docs/airflow.md)."
        )
    if "ThreadRunner" not in runner:
        return 1
    from digit_recognizer.pipelines.training.nodes import THREADED_NODES

    dependencies = {node.name: [dep.name for dep in deps] for node, deps in pipeline.node_dependencies.items()}
    counted = {node.name for node in pipeline.nodes if node.name.rsplit(".", 1)[-1] in THREADED_NODES}
    return widest(dependencies, counted=counted) if counted else 1


def _in_catalog(catalog: Any, name: str) -> bool:
    return name != "parameters" and not name.startswith("params:") and name in catalog


def _earlier_parts(store: RunStore, run_id: str, run_params: dict[str, Any]) -> dict[str, str | None]:
    """Datasets the open run makes: the run's id where an earlier part wrote it, else None."""
    info = store.open_info(run_id)
    names = run_params.get("pipeline_names") or ["__default__"]
    if names != info.get("pipelines"):
        raise RunStateError(f"run {run_id} runs the pipelines {info.get('pipelines')}, not {names}")
    whole = sum((pipelines[name] for name in names), start=Pipeline([]))
    makes: dict[str, str | None] = dict.fromkeys(whole.only_nodes(*info["nodes"]).all_outputs())
    for record in store.parts(run_id).values():
        makes.update(dict.fromkeys(record.outputs, run_id))
    return makes


def _plain(value: Any) -> Any:
    """Config values as plain dicts and lists (OmegaConf containers become JSON-ready)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value


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

"""Hooks that make a ``kedro run`` one run: checked first, versioned together, committed last.

Each hook hands its work to a named collaborator:

* :func:`~digit_recognizer.config.check_parameters` checks the parameters before the catalog is built;
* :func:`~digit_recognizer.framework.project.store_settings` makes the run store's settings from
  Kedro's configuration;
* :class:`~digit_recognizer.framework.run_session.RunSession` plans the versions, claims the run,
  binds its datasets, and commits or rolls back;
* :class:`~digit_recognizer.framework.record_builder.RecordBuilder` gathers the record from the
  datasets' roles in the catalog's metadata;
* :class:`~digit_recognizer.framework.publishers.PagePublisher` writes the run's page before the
  record, and :mod:`~digit_recognizer.framework.publishers` logs the summary and, with the
  extra, the MLflow run.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl

from digit_recognizer.config import EnsembleConfig, check_parameters
from digit_recognizer.framework.console import hide_resume_hints
from digit_recognizer.framework.project import plain, store_settings
from digit_recognizer.framework.publishers import PagePublisher, announce, publish_to_mlflow
from digit_recognizer.framework.record_builder import RecordBuilder, roles
from digit_recognizer.framework.run_session import RunSession
from digit_recognizer.framework.stop_signals import StopSignals
from digit_recognizer.framework.threads import CPU_SHARE, cpu_share
from digit_recognizer.runstore import JOIN_VARIABLE, RollbackIncomplete, RunStore, RunStoreSettings

logger = logging.getLogger(__name__)


class RunHooks:
    """One ``kedro run`` (or one task of a scheduled run) is one run of the run store."""

    def __init__(self) -> None:
        self._project = Path.cwd()
        self._parameters: dict[str, Any] = {}
        self._settings: RunStoreSettings | None = None
        self._session: RunSession | None = None
        self._builder: RecordBuilder | None = None
        self._page: PagePublisher | None = None
        self._signals = StopSignals(self._roll_back)

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        hide_resume_hints()  # a run is all or nothing: Kedro's "--from-nodes" advice does not apply
        self._project = Path(context.project_path)
        self._parameters = check_parameters(plain(context.config_loader["parameters"]))  # defaults filled in
        self._settings = store_settings(context.config_loader, self._project)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        share = cpu_share(str(run_params.get("runner") or ""), pipeline)  # refuses ParallelRunner first
        joined = os.environ.get(JOIN_VARIABLE)
        if share > 1 and not joined:
            logger.info(
                "Nodes that train or predict may run %d at once: threads: auto divides the CPUs among them", share
            )
        self._settings = settings = self._settings or RunStoreSettings.build(self._project)
        for name in EnsembleConfig.unused_inputs(self._parameters) & pipeline.inputs():
            catalog[name] = None  # an ensemble candidate that is not a member: neither read nor needed
        self._session = RunSession(RunStore.from_settings(settings), joined)
        self._session.start(run_params, pipeline, catalog)
        known = {name for name in pipeline.datasets() if name in catalog and not name.startswith("params:")}
        self._builder = RecordBuilder(self._project, self._parameters, roles(catalog, known))
        self._page = None if self._session.is_part else PagePublisher(catalog, settings)  # parts: at close
        self._signals.trap()
        inputs = pipeline.inputs()
        if "run" in inputs:
            catalog.get("run").save({"run_id": self._session.run_id})
        if CPU_SHARE in inputs:
            catalog.get(CPU_SHARE).save(share)

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str) -> None:
        if self._builder is not None:
            self._builder.dataset_started(dataset_name, "load")

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if self._builder is not None:
            self._builder.dataset_finished(dataset_name, "load")
            self._builder.loaded(dataset_name, data)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        if self._builder is not None:
            self._builder.dataset_started(dataset_name, "save")

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if self._builder is not None and self._session is not None:
            self._builder.dataset_finished(dataset_name, "save")
            self._builder.saved(dataset_name, data, self._session.file(dataset_name))

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        if self._builder is not None:
            self._builder.node_started(node.name)

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        if self._builder is not None:
            self._builder.node_finished(node.name)

    def recorded(self) -> set[str]:
        """The datasets whose loads and saves the record keeps something of: what a remote node reports back."""
        return self._builder.recorded() if self._builder is not None else set()

    def ran_elsewhere(
        self,
        node: str,
        outputs: list[str],
        host: str,
        seconds: float,
        loaded: dict[str, dict[str, Any]],
        saved: dict[str, Any],
    ) -> None:
        """What a node that another process ran (a Dask worker) read and wrote, as the local hooks would see it."""
        if self._builder is None or self._session is None:
            return
        for name, found in loaded.items():
            frame = pd.DataFrame(index=range(found["rows"]))  # its size and its file's fingerprint, not its pixels
            frame.attrs.update(found["attrs"])
            self._builder.loaded(name, frame)
        for name in outputs:
            self._builder.saved(name, saved.get(name), self._session.file(name))
        self._builder.node_ran(node, seconds, host)

    @hook_impl(tryfirst=True)  # before kedro-mlflow closes its MLflow run
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any) -> None:
        session, builder = self._session, self._builder
        if session is None or session.live is None or builder is None:
            return
        self._signals.hold()  # the commit is not interrupted halfway
        try:
            record = builder.build(session.run_id, run_params, [n.name for n in pipeline.nodes], session.plan.reads)
            path = session.commit(record, before=self._write_page)
        finally:
            self._signals.restore()
        announce(record, path, self._project, session.part if session.is_part else None, builder.nodes)
        if not session.is_part and (mlflow_run := publish_to_mlflow(record, path, self._settings)):
            logger.info("  mlflow: logged as run %s (mlflow ui --backend-store-uri sqlite:///mlflow.db)", mlflow_run)

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        self._signals.hold()  # a signal does not stop the rollback halfway
        try:
            self._roll_back("failed")
        finally:
            self._signals.restore()

    def _write_page(self, record: Any) -> None:
        """The run's page, from the record as it will be written; it becomes one of the run's outputs."""
        if self._page is not None and self._session is not None:
            started = time.perf_counter()
            record.outputs = dict(
                sorted(
                    {
                        **record.outputs,
                        **self._page.publish(record, self._session.store.complete(), self._session.live.journal),
                    }.items()
                )
            )
            record.timings["page_seconds"] = round(time.perf_counter() - started, 4)

    def _roll_back(self, what: str) -> None:
        """Deletes what the run (or this part of an open run) wrote, and says so."""
        session = self._session
        try:
            removed = session.roll_back() if session is not None else None
        except RollbackIncomplete as exc:  # the store stopped answering: say what is left, and who removes it
            logger.error("%s %s after %.1f s; %s", "Part" if session.is_part else "Run", what, session.elapsed, exc)
            return
        if removed is None:
            return
        if session.is_part:
            logger.error(
                "Part %s of run %s %s after %.1f s; deleted the %d version folders it had written. The run "
                "stays open (never 'latest'): retry the task, or abort the run.",
                session.part,
                session.run_id,
                what,
                session.elapsed,
                len(removed),
            )
            return
        logger.error(
            "Run %s %s after %.1f s; deleted the %d version folders it had written, so earlier results stay the "
            "latest. Nothing to resume: a run is all or nothing; run the command again once the cause is fixed.",
            session.run_id,
            what,
            session.elapsed,
            len(removed),
        )


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

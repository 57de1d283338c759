"""One ``kedro run`` as one run of the run store: it plans the versions, claims the run, and commits or rolls back.

* Every :class:`~digit_recognizer.framework.run_dataset.RunDataset` of the pipeline is bound to
  the run: it saves under the run's id, atomically, noting each folder in the run's journal, and
  loads what :func:`~digit_recognizer.framework.versions.plan_versions` says.
* The run is claimed (:class:`~digit_recognizer.runstore.LiveRun`, a lock or a lease) before its
  first write; what dead runs left is deleted first.
* A process that joins an open run of a scheduler (one task of a DAG run) is a
  :class:`~digit_recognizer.runstore.RunPart` of it instead, reading what earlier parts wrote.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kedro.framework.project import pipelines
from kedro.io import AbstractVersionedDataset
from kedro.pipeline import Pipeline

from digit_recognizer.framework.kedro_compat import unwrap
from digit_recognizer.framework.run_dataset import RunDataset
from digit_recognizer.framework.versions import VersionPlan, plan_versions
from digit_recognizer.runstore import (
    LiveRun,
    RollbackIncomplete,
    RunPart,
    RunRecord,
    RunStateError,
    RunStore,
    locations,
    part_name,
)
from digit_recognizer.runstore.layout import with_new_id

logger = logging.getLogger(__name__)


def _in_catalog(catalog: Any, name: str) -> bool:
    return name != "parameters" and not name.startswith("params:") and name in catalog


class RunSession:
    """The run store's side of one ``kedro run``, or of one task (``joined``: the open run it is a part of)."""

    def __init__(self, store: RunStore, joined: str | None = None) -> None:
        self.store, self.joined = store, joined
        self.run_id = joined or ""
        self.live: LiveRun | None = None
        self.plan = VersionPlan(save="")
        self.datasets: dict[str, RunDataset] = {}
        self._part: str | None = None
        self.started = time.time()

    @property
    def is_part(self) -> bool:
        return self.joined is not None

    @property
    def part(self) -> str | None:
        return self.live.part if isinstance(self.live, RunPart) else self._part

    @property
    def elapsed(self) -> float:
        return time.time() - self.started

    def start(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        """Deletes what dead runs left, plans every version, claims the run and binds its datasets to it."""
        for run_id, removed in self.store.remove_dead():
            logger.warning("Removed what the interrupted run %s left: %d folders", run_id, len(removed))
        self.datasets = datasets = self._run_datasets(pipeline, catalog)
        earlier = self._earlier_parts(run_params) if self.joined else None
        complete = self.store.complete()  # newest first, read once

        def writers(name: str) -> list[str]:
            return [record.run_id for record in complete if name in record.outputs]

        def claim(run_id: str) -> tuple[LiveRun, VersionPlan]:
            plan = plan_versions(
                run_id,
                datasets,
                pipeline.all_outputs(),
                run_params.get("load_versions") or {},
                lambda name: next(iter(writers(name)), None),
                earlier_parts=earlier,
                exists=lambda name, version: datasets[name].exists_version(version),
                writers=writers,
            )
            if self.joined:
                live: LiveRun = RunPart(self.store, run_id, part_name(node.name for node in pipeline.nodes))
            else:
                live = LiveRun(self.store, run_id)
            live.start(plan.reads)
            return live, plan

        if self.joined:
            self.run_id, (self.live, self.plan) = self.joined, claim(self.joined)
        else:
            self.run_id, (self.live, self.plan) = with_new_id(claim, run_params["run_id"])
        for name, dataset in datasets.items():
            dataset.bind(name, self.plan.loads[name], self.run_id, self.live.journal)
            if locations.is_url(dataset.folder):  # the store's bounded waits for the outputs too
                dataset.use_options(self.store.settings.options_for(str(dataset.folder)))

    def file(self, name: str) -> locations.Location | None:
        """The file the run wrote for ``name``, when the run versions it."""
        return self.datasets[name].file(self.run_id) if name in self.datasets else None

    def commit(self, record: RunRecord, before: Callable[[RunRecord], None] | None = None) -> locations.Location:
        """Writes the record, the run's last write (``before`` first: the page); any failure deletes all it wrote."""
        assert self.live is not None, "the run was not started"
        try:
            if before is not None:
                before(record)
            path = self.live.commit(record)
        except BaseException as exc:
            try:
                self.live.abort()
            except RollbackIncomplete as incomplete:  # the cause stays the error; what is left is said here
                logger.error("Run %s: %s", self.run_id, incomplete)
            finally:
                self.live = None
            raise exc
        if isinstance(self.live, RunPart):
            self._part = self.live.part
        self.live = None
        return path

    def roll_back(self) -> list[locations.Location] | None:
        """Deletes what the run (or this part of an open run) wrote; None when there was nothing to roll back."""
        if self.live is None:
            return None
        removed = self.live.abort()
        if isinstance(self.live, RunPart):
            self._part = self.live.part
        self.live = None
        return removed

    def _run_datasets(self, pipeline: Pipeline, catalog: Any) -> dict[str, RunDataset]:
        declared = {name: unwrap(catalog.get(name)) for name in pipeline.datasets() if _in_catalog(catalog, name)}
        for name, dataset in declared.items():
            if isinstance(dataset, AbstractVersionedDataset) and not isinstance(dataset, RunDataset):
                logger.warning(
                    "%s is versioned by Kedro, not by run: a failed run would leave its version behind. "
                    "Declare it as type: digit_recognizer.framework.RunDataset (see conf/base/catalog.yml).",
                    name,
                )
        return {name: dataset for name, dataset in declared.items() if isinstance(dataset, RunDataset)}

    def _earlier_parts(self, run_params: dict[str, Any]) -> dict[str, str | None]:
        """Datasets the open run makes: the run's id where an earlier part wrote it, else None."""
        info = self.store.open_info(self.joined)
        names = run_params.get("pipeline_names") or ["__default__"]
        if names != info.get("pipelines"):
            raise RunStateError(f"run {self.joined} runs the pipelines {info.get('pipelines')}, not {names}")
        whole = sum((pipelines[name] for name in names), start=Pipeline([]))
        makes: dict[str, str | None] = dict.fromkeys(whole.only_nodes(*info["nodes"]).all_outputs())
        for record in self.store.parts(self.joined).values():
            makes.update(dict.fromkeys(record.outputs, self.joined))
        return makes

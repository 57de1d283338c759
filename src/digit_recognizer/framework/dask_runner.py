"""``DaskRunner``: each node of a ``kedro run`` a task on a Dask cluster, the whole run one run of the run store.

    kedro run --runner digit_recognizer.framework.dask_runner.DaskRunner     # a LocalCluster sized to the machine
    DASK_SCHEDULER_ADDRESS=tcp://scheduler:8786 kedro run --runner ...DaskRunner   # a cluster of many hosts

The process that runs ``kedro run`` (the driver) is the run: its hooks claim it, plan every
version, and commit the record last or roll back. The workers only run nodes:

* what nodes hand each other in memory (tensors, parameters, the run's id) travels through Dask
  (each node's in-memory outputs are the result of its task, fetched by the tasks that need
  them); everything else through the catalog, so on hosts that share only a bucket the data
  root (``data_root=s3://...``) and the raw files (``raw_dir=s3://...``) are in it;
* before a node is submitted, the driver notes each version folder it will write in the run's
  journal, so a run that fails or dies is rolled back whatever a worker wrote; a task that Dask
  runs again after its worker died first deletes what the dead attempt had written;
* the record says on which host each node ran, and how long it took there;
* ``threads: auto`` takes the worker's share of its machine, its ``nthreads``.

Kedro's deployment docs sketch the same runner (each node ``client.submit``-ted, in-memory data
through Dask); this one also keeps the run store's promises. The ``dask`` extra installs it.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from kedro.io import AbstractDataset, DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import AbstractRunner

from digit_recognizer.errors import UserError
from digit_recognizer.framework.hooks import RunHooks
from digit_recognizer.framework.kedro_compat import unwrap
from digit_recognizer.framework.run_dataset import RunDataset
from digit_recognizer.framework.threads import CPU_SHARE
from digit_recognizer.ml.threads import available_cpus

logger = logging.getLogger(__name__)


class DaskTaskError(UserError, RuntimeError):
    """A node could not run on the cluster (its workers kept dying); the run was rolled back."""


@dataclass
class NodeReport:
    """What a worker tells the driver about the node it ran."""

    node: str
    host: str
    seconds: float
    outputs: dict[str, Any] = field(default_factory=dict)  # in-memory outputs, for the nodes that need them
    saved: dict[str, Any] = field(default_factory=dict)  # persisted outputs the record keeps (metrics rows)
    loaded: dict[str, dict[str, Any]] = field(default_factory=dict)  # inputs' fingerprints (attrs, rows)


def _worker_share() -> int:
    """``cpu_share`` on this worker: ``threads: auto`` then gives a node the worker's ``nthreads``."""
    from distributed import get_worker

    return max(1, available_cpus() // max(1, get_worker().state.nthreads))


def run_on_worker(
    node: Node, datasets: dict[str, AbstractDataset], keep: set[str], *results: NodeReport, **values: Any
) -> NodeReport:
    """Runs ``node`` on a worker: its persisted inputs from the catalog, in-memory ones from earlier tasks' results."""
    memory = {name: value for report in results for name, value in report.outputs.items()}
    memory.update(values)
    if CPU_SHARE in node.inputs:
        memory[CPU_SHARE] = _worker_share()
    catalog = DataCatalog({**datasets, **{n: MemoryDataset(v, copy_mode="assign") for n, v in memory.items()}})
    for name in node.outputs:
        dataset = datasets.get(name)
        if isinstance(dataset, RunDataset):
            dataset.discard_saved()  # an earlier attempt of this task, on a worker that died
    started = time.perf_counter()
    inputs = {name: catalog.load(name) for name in node.inputs}
    outputs = node.run(inputs)
    report = NodeReport(node.name, socket.gethostname(), 0.0)
    for name, value in outputs.items():
        if name in datasets:
            datasets[name].save(value)
            if name in keep:
                report.saved[name] = value
        else:
            report.outputs[name] = value
    report.seconds = round(time.perf_counter() - started, 4)
    report.loaded = {
        name: {"attrs": dict(value.attrs), "rows": len(value)}
        for name, value in inputs.items()
        if name in keep and hasattr(value, "attrs")
    }
    return report


class DaskRunner(AbstractRunner):
    """Runs each node as a Dask task on the cluster ``DASK_SCHEDULER_ADDRESS`` names, else on a LocalCluster."""

    def __init__(self, is_async: bool = False) -> None:
        super().__init__(is_async=False)

    def _get_executor(self, max_workers: int) -> None:
        return None  # the cluster is the executor

    def _run(self, pipeline: Pipeline, catalog: Any, hook_manager: Any = None, run_id: str | None = None) -> None:
        from distributed import Client, as_completed

        plugins = hook_manager.get_plugins() if hasattr(hook_manager, "get_plugins") else []
        hooks = next((p for p in plugins if isinstance(p, RunHooks)), None)
        keep = hooks.recorded() if hooks is not None else set()
        in_memory = {name for name in pipeline.datasets() if isinstance(_dataset(catalog, name), MemoryDataset)}
        values = {name: catalog.load(name) for name in pipeline.inputs() & in_memory}
        maker = {name: node for node in pipeline.nodes for name in node.outputs}
        client, cluster = self._connect(Client)
        futures: dict[str, Any] = {}  # node name -> the future of its NodeReport
        todo, done, running = list(pipeline.nodes), set(), as_completed()
        try:
            while todo or running.count():
                for node in [n for n in todo if all(maker[i].name in done for i in n.inputs if i in maker)]:
                    todo.remove(node)
                    upstream = sorted({maker[i].name for i in node.inputs if i in in_memory and i in maker})
                    futures[node.name] = client.submit(
                        run_on_worker,
                        node,
                        self._datasets_for(node, catalog, in_memory),
                        keep,
                        *[futures[name] for name in upstream],
                        key=f"{node.name}|{run_id}",
                        **{i: values[i] for i in node.inputs if i in values},
                    )
                    running.add(futures[node.name])
                report = self._result(next(running))
                done.add(report.node)
                if hooks is not None:
                    outputs = [name for name in next(n for n in pipeline.nodes if n.name == report.node).outputs]
                    hooks.ran_elsewhere(report.node, outputs, report.host, report.seconds, report.loaded, report.saved)
                self._logger.info("Completed node %s on %s in %.1f s", report.node, report.host, report.seconds)
        except BaseException:
            client.cancel(list(futures.values()))
            raise
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def _connect(self, client_class: Any) -> tuple[Any, Any]:
        """The cluster dask's configuration names (``DASK_SCHEDULER_ADDRESS``), else a LocalCluster sized to the machine."""
        import dask

        logging.getLogger("distributed").setLevel(logging.WARNING)  # distributed sets INFO when first imported
        address = dask.config.get("scheduler-address", None) or dask.config.get("scheduler_address", None)
        if address:
            self._logger.info("Running the nodes on the Dask cluster at %s", address)
            return client_class(address), None
        from distributed import LocalCluster

        cluster = LocalCluster(
            n_workers=available_cpus(), threads_per_worker=1, dashboard_address=None, silence_logs=logging.WARNING
        )
        self._logger.info("Running the nodes on a local Dask cluster of %d workers", available_cpus())
        return client_class(cluster), cluster

    @staticmethod
    def _datasets_for(node: Node, catalog: Any, in_memory: set[str]) -> dict[str, AbstractDataset]:
        """The persisted datasets a node reads and writes, as the worker gets them (outputs journalled here first)."""
        found = {}
        for name in {*node.inputs, *node.outputs} - in_memory:
            dataset = _dataset(catalog, name)
            found[name] = dataset.for_worker(write=name in node.outputs) if isinstance(dataset, RunDataset) else dataset
        return found

    @staticmethod
    def _result(future: Any) -> NodeReport:
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            node = str(future.key).split("|", 1)[0]
            raise DaskTaskError(
                f"node {node}: every Dask worker that ran it died (distributed's allowed-failures was reached); "
                "the run was stopped"
            ) from exc


def _dataset(catalog: Any, name: str) -> AbstractDataset:
    return unwrap(catalog.get(name))

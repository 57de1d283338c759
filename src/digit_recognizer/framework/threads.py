"""How many nodes that use torch's threads run at once in this process: the ``cpu_share`` a run hands its nodes.

The nodes that train or predict take the catalog's in-memory ``cpu_share`` entry as an input
(that is how they say they use the CPUs); ``threads: auto`` divides the CPUs this process may
use by it. The hooks fill it when the run starts: 1 for Kedro's SequentialRunner, the widest set
of such nodes that can run at once for its ThreadRunner, and for one task of a scheduler's run
the number the scheduler gives (``$DIGIT_RECOGNIZER_TASKS_AT_ONCE``, see
``integrations.scheduled.run_task``).
"""

from __future__ import annotations

import os
from typing import Any

from digit_recognizer.errors import UserError
from digit_recognizer.ml.threads import widest
from digit_recognizer.runstore.layout import TASKS_VARIABLE

CPU_SHARE = "cpu_share"  # the catalog entry


class RunnerError(UserError, ValueError):
    """A Kedro runner this project's runs cannot use."""


class ThreadSettingError(UserError, ValueError):
    """The scheduler says how many tasks share the machine, and it is not a positive number."""


def uses_cpu_share(node: Any) -> bool:
    return CPU_SHARE in node.inputs


def cpu_share(runner: str, pipeline: Any, environ: Any = os.environ) -> int:
    """Among how many nodes (or tasks) at once ``threads: auto`` divides the CPUs.

    ``ParallelRunner`` is refused: each node would run in another process, but a run's outputs
    are bound to this one (its journal, its lock, its version).
    """
    if "ParallelRunner" in runner:
        raise RunnerError(
            "--runner ParallelRunner cannot run this project: a run's outputs are versioned, journalled and "
            "rolled back by this process, which other processes cannot share. Use --runner ThreadRunner (nodes "
            "in threads; threads: auto divides the CPUs among the trainings that run at once), --runner "
            "digit_recognizer.framework.dask_runner.DaskRunner (nodes on a Dask cluster; docs/dask.md) or a "
            "scheduler (docs/airflow.md)."
        )
    given = str(environ.get(TASKS_VARIABLE, "")).strip()
    if given:
        try:
            count = int(given)
        except ValueError:
            count = 0
        if count < 1:
            raise ThreadSettingError(f"${TASKS_VARIABLE} = {given!r}: expected a positive number of tasks")
        return count
    if "ThreadRunner" not in runner:
        return 1
    dependencies = {node.name: [dep.name for dep in deps] for node, deps in pipeline.node_dependencies.items()}
    counted = {node.name for node in pipeline.nodes if uses_cpu_share(node)}
    return widest(dependencies, counted=counted) if counted else 1

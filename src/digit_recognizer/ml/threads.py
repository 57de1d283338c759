"""How many threads torch may use: chosen from the CPUs this process may run on, not inherited.

torch's default is every core it sees, which is wrong in a container with a CPU quota, under
``taskset``, or when several tasks share a machine: OpenMP threads that wait on each other at
every small operation collapse when one of them is descheduled.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity, capped by a cgroup CPU quota where one is set."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_quota()
    return max(1, min(cpus, math.floor(quota))) if quota else cpus


def cgroup_quota(root: Path = CGROUP) -> float | None:
    """The cgroup's CPU quota in CPUs (cgroup v2 ``cpu.max``, else v1 ``cfs_quota_us``), or None."""
    try:
        limit, period = (root / "cpu.max").read_text().split()
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    try:
        limit = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if limit <= 0 else limit / period
    except (OSError, ValueError):
        return None


def resolve_threads(setting: int | str, sharing: int = 1) -> int:
    """``auto``: the available CPUs divided among ``sharing`` nodes or tasks that run at once; a number as it is.

    Each gets at least one thread. ``sharing`` is the run's ``cpu_share`` (a catalog entry the
    nodes take as an input, filled by the run's hooks).
    """
    if setting == "auto":
        return max(1, available_cpus() // max(1, sharing))
    return int(setting)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch uses ``count`` threads in the block, and what it used before afterwards."""
    import torch  # here, so that a scheduler's open and close steps import this module without torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def widest(
    dependencies: Mapping[str, Sequence[str]], counted: Collection[str] | None = None, through: str | None = None
) -> int:
    """The most tasks of a DAG that can run at the same time (with ``through``: beside that task, itself included).

    ``dependencies`` maps each task to the tasks it waits for; tasks can run together when none
    waits (directly or not) for another, and the largest such set is found as the number of tasks
    less a maximum matching of "runs before" (Dilworth's theorem). Only tasks in ``counted`` (all
    when None) count, ``through`` always does.
    """
    tasks = sorted(set(dependencies) | {d for deps in dependencies.values() for d in deps})
    before: dict[str, set[str]] = {}

    def ancestors(name: str) -> set[str]:
        if name not in before:
            before[name] = set()
            for dep in dependencies.get(name, ()):
                before[name] |= {dep} | ancestors(dep)
        return before[name]

    if through is not None:
        if through not in tasks:
            raise ValueError(f"{through!r} is not a task of the DAG (tasks: {', '.join(tasks)})")
        tasks = [t for t in tasks if t != through and t not in ancestors(through) and through not in ancestors(t)]
    if counted is not None:
        tasks = [t for t in tasks if t in counted]
    later = {name: [t for t in tasks if name in ancestors(t)] for name in tasks}
    matched: dict[str, str] = {}  # a later task → the earlier task it is matched with

    def augment(name: str, seen: set[str]) -> bool:
        for other in later[name]:
            if other not in seen:
                seen.add(other)
                if other not in matched or augment(matched[other], seen):
                    matched[other] = name
                    return True
        return False

    return max(1, len(tasks) - sum(augment(name, set()) for name in tasks) + (through is not None))

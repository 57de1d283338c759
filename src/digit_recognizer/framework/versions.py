"""Which version each dataset of a run loads and saves: a pure function, tested without a session.

A run saves every dataset it writes under its own id. A dataset it only reads comes from, in
this order: the run itself, when it is a part of an open run and an earlier part wrote it; the
version given with ``--load-versions``; the latest *complete* run that wrote it. Anything else
is an error before the run starts, named here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from kedro.io.core import DatasetError

from digit_recognizer.errors import UserError


class VersionPlanError(UserError, DatasetError):
    """The run cannot start: an input has no version to load, or a pin asks for the impossible."""


@dataclass(frozen=True)
class VersionPlan:
    """``loads``: dataset → the version it loads; the run saves every dataset it writes as ``save``."""

    save: str
    loads: dict[str, str | None] = field(default_factory=dict)
    reads: dict[str, str] = field(default_factory=dict)  # what it reads and from which run (the record's "reads")


def plan_versions(
    run_id: str,
    datasets: Collection[str],
    writes: Collection[str],
    pinned: Mapping[str, str],
    latest: Callable[[str], str | None],
    earlier_parts: Mapping[str, str | None] | None = None,
    exists: Callable[[str, str], bool] | None = None,
    writers: Callable[[str], list[str]] | None = None,
) -> VersionPlan:
    """The versions of ``datasets`` (the run's versioned ones) for run ``run_id``.

    ``writes``: the datasets this run writes. ``pinned``: ``--load-versions``. ``latest``: the
    newest complete run that wrote a dataset, or None. ``earlier_parts``: for a part of an open
    run, each dataset the whole run writes, with the run's id where an earlier part wrote it
    (None where no part has yet). ``exists``: whether a dataset has a given version (to check
    a pin); ``writers``: the complete runs that wrote a dataset, newest first (for the message
    when a pinned version is absent).
    """
    loads: dict[str, str | None] = {}
    reads: dict[str, str] = {}
    refused, missing, not_yet, absent = [], [], [], []
    for name in sorted(datasets):
        if name in writes:
            if name in pinned:
                refused.append(name)
            loads[name] = run_id
        elif earlier_parts is not None and name in earlier_parts:
            if earlier_parts[name] is None:
                not_yet.append(name)
            loads[name] = reads[name] = run_id
        elif name in pinned:
            loads[name] = reads[name] = pinned[name]
            if exists is not None and not exists(name, pinned[name]):
                absent.append(name)
        elif (version := latest(name)) is not None:
            loads[name] = reads[name] = version
        else:
            missing.append(name)
    _refuse(run_id, pinned, refused, absent, not_yet, missing, writers)
    return VersionPlan(save=run_id, loads=loads, reads=reads)


def _refuse(
    run_id: str,
    pinned: Mapping[str, str],
    refused: list[str],
    absent: list[str],
    not_yet: list[str],
    missing: list[str],
    writers: Callable[[str], list[str]] | None,
) -> None:
    """Raises the :class:`VersionPlanError` for the first kind of problem found, naming every dataset of that kind."""
    if refused:
        raise VersionPlanError(
            f"--load-versions names {', '.join(refused)}, which this run writes itself, so the version would "
            "be ignored. Run only the nodes that read it (for a model: --tags data_processing,predict), "
            "or leave it out of --load-versions."
        )
    if absent:
        found = []
        for name in absent:
            runs = writers(name)[:5] if writers else []
            have = (
                f"complete runs that wrote it, newest first: {', '.join(runs)}" if runs else "no complete run wrote it"
            )
            found.append(f"{name} has no version {pinned[name]} ({have})")
        raise VersionPlanError(
            f"--load-versions: {'; '.join(found)}. python -m digit_recognizer.runs list shows every run."
        )
    if not_yet:
        raise VersionPlanError(
            f"Run {run_id} has not written {', '.join(not_yet)} yet: the task that makes it must finish "
            "before this one starts (a part never reads another run's version)."
        )
    if missing:
        raise VersionPlanError(
            f"No complete run has written {', '.join(missing)} yet; run the pipeline that makes it first, "
            "or pass --load-versions NAME:VERSION."
        )

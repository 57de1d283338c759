"""What changed between two complete runs: scores, parameters, inputs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from digit_recognizer.runstore import RunRecord
from digit_recognizer.runstore.record import flatten

# A score counts as dropped when it fell by more than one digit's worth of the set it was measured
# on; the leaderboard rows keep four decimals, so "more than one digit" is read as 1.5 digits.
ONE_DIGIT_MARGIN = 1.5
SCORES = {"validation_accuracy": "validation", "test_score": "test (solution.csv)"}


@dataclass
class ScoreChange:
    key: str  # the architecture (namespace)
    measure: str  # validation or test
    before: float | None
    after: float | None
    rows: int | None  # how many digits the score was measured on (now)

    @property
    def delta(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before

    @property
    def one_digit(self) -> float | None:
        return 1 / self.rows if self.rows else None

    @property
    def digits(self) -> float | None:
        """The change in digits of the set (positive: more right)."""
        return None if self.delta is None or not self.rows else self.delta * self.rows

    @property
    def dropped(self) -> bool:
        """Fell by more than the noise of one digit (by any amount where the set's size is unknown)."""
        if self.delta is None:
            return False
        return self.delta < -(ONE_DIGIT_MARGIN * self.one_digit if self.one_digit else 0.0)


@dataclass
class Change:
    name: str
    before: Any
    after: Any


@dataclass
class Comparison:
    """This run against ``previous`` (None: there is nothing to compare with)."""

    previous: str | None
    scores: list[ScoreChange] = field(default_factory=list)
    parameters: list[Change] = field(default_factory=list)
    inputs: list[Change] = field(default_factory=list)

    @property
    def dropped(self) -> list[ScoreChange]:
        return [score for score in self.scores if score.dropped]


def previous_run(records: Iterable[RunRecord], record: RunRecord) -> RunRecord | None:
    """The newest complete run before ``record`` of the same pipelines (``records``: newest first)."""
    for earlier in records:
        if earlier.run_id < record.run_id and sorted(earlier.pipelines) == sorted(record.pipelines):
            return earlier
    return None


def compare(current: RunRecord, previous: RunRecord | None, rows: Mapping[str, Mapping[str, int]]) -> Comparison:
    """``rows``: per architecture, the digits each score was measured on (``validation_accuracy``, ``test_score``)."""
    if previous is None:
        return Comparison(previous=None)
    scores = [
        ScoreChange(
            key=key,
            measure=label,
            before=previous.metrics.get(key, {}).get(measure),
            after=current.metrics.get(key, {}).get(measure),
            rows=rows.get(key, {}).get(measure),
        )
        for key in sorted(set(current.metrics) | set(previous.metrics))
        for measure, label in SCORES.items()
        if previous.metrics.get(key, {}).get(measure) is not None or current.metrics.get(key, {}).get(measure)
    ]
    return Comparison(
        previous=previous.run_id,
        scores=scores,
        parameters=_changes(flatten(previous.parameters), flatten(current.parameters)),
        inputs=_input_changes(previous.inputs, current.inputs),
    )


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    return [
        Change(name, before.get(name), after.get(name))
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


def _input_changes(before: Mapping[str, dict[str, Any]], after: Mapping[str, dict[str, Any]]) -> list[Change]:
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None or new is None:
            changes.append(
                Change(name, None if old is None else old.get("path"), None if new is None else new.get("path"))
            )
            continue
        for what in ("path", "sha256", "rows", "labels"):
            if old.get(what) != new.get(what) and not (what == "labels" and old.get(what) is None):
                changes.append(Change(f"{name} {what}", old.get(what), new.get(what)))
    return changes

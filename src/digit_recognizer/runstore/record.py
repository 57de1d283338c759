"""The run record: what ran, with what, what it wrote and what it scored; built here, read by its type.

A complete run's last write is its record, ``<runs>/<run id>/run.json``. Every reader (the runs
command, retention, MLflow, the notebook, the Airflow close step) goes through
:class:`RunRecord`, so a field has one name and one meaning. Which datasets count as metrics,
inputs, submissions or training histories is declared in the catalog (``metadata: {digit_recognizer:
{record: metrics}}``), never guessed from a dataset's name.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from digit_recognizer.runstore.files import atomic_write, iso_time


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested parameters as dotted keys: ``{"cnn": {"augment": {"max_shift": 0.1}}}`` → ``{"cnn.augment.max_shift": 0.1}``.

    An empty block stays a value of its own (``{"cnn.model": {}}``), so that every key is kept.
    """
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


@dataclass
class RunRecord:
    run_id: str
    started: str
    finished: str
    seconds: float
    pipelines: list[str]
    parameters: dict[str, Any]
    status: str = "complete"
    tags: list[str] | None = None
    env: str | None = None
    runtime_params: dict[str, Any] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    host: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    raw_dir: str | None = None
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> path, bytes, sha256
    reads: dict[str, str] = field(default_factory=dict)  # dataset -> the run whose version it read
    outputs: dict[str, str] = field(default_factory=dict)  # dataset -> file, relative to the project
    submissions: dict[str, str] = field(default_factory=dict)  # key (a namespace) -> its submission's file
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> leaderboard row
    histories: dict[str, str] = field(default_factory=dict)  # key -> training history dataset
    timings: dict[str, Any] = field(
        default_factory=dict
    )  # peak_rss_mb, nodes: [{node, seconds, ...}], datasets: [{dataset, op, seconds}]
    scheduler: dict[str, Any] | None = None  # who opened a run made of parts
    parts: list[dict[str, Any]] | None = None  # and each part's host, times and nodes

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """A record from its JSON form; keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        record = cls(**{key: value for key, value in data.items() if key in known})
        if "submissions" not in data:  # a record from before the catalog declared submissions
            record.submissions = {
                name.removesuffix(".submission"): path
                for name, path in record.outputs.items()
                if name.endswith(".submission")
            }
        return record

    @classmethod
    def from_bytes(cls, data: bytes | None) -> RunRecord | None:
        """A record from the bytes of its file (None for none, or for bytes that are not a record)."""
        if data is None:
            return None
        try:
            return cls.from_dict(json.loads(data))
        except (ValueError, TypeError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, default=str) + "\n").encode()

    def write(self, path: Path, what: str = "the run record") -> None:
        with atomic_write(path, what) as temporary:
            temporary.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")

    def score(self, key: str) -> float | None:
        """A metrics row's test score where there is one, else its validation accuracy."""
        row = self.metrics.get(key, {})
        return row.get("test_score") if row.get("test_score") is not None else row.get("validation_accuracy")

    def leaderboard_lines(self) -> list[str]:
        """The run's leaderboard (best validation accuracy first) and its submissions, as log lines."""
        lines = []
        rows = sorted(self.metrics.items(), key=lambda item: -(item[1].get("validation_accuracy") or 0))
        if rows:
            lines.append(f"  {'architecture':<14}{'validation':>11}{'test':>8}{'parameters':>12}{'training':>10}")
        for key, row in rows:
            test = row.get("test_score")
            lines.append(
                f"  {key:<14}{row.get('validation_accuracy', float('nan')):>11.4f}"
                f"{'-' if test is None else f'{test:.4f}':>8}"
                f"{row.get('parameters', 0):>12,}{row.get('training_seconds', 0.0):>9.1f}s"
            )
        lines += [f"  submission {key}: {path}" for key, path in self.submissions.items()]
        return lines

    @classmethod
    def merge(cls, info: dict[str, Any], parts: dict[str, RunRecord]) -> RunRecord:
        """One record for a run made of parts (see ``RunStore.close_run``), from its parts' records."""
        ordered = sorted(parts.values(), key=lambda record: record.started)
        first, run_id = ordered[0], info["run_id"]
        finished = time.time()

        def union(key: str) -> dict[str, Any]:
            merged: dict[str, Any] = {}
            for record in ordered:
                merged.update(getattr(record, key) or {})
            return merged

        return cls(
            **{
                **first.to_dict(),
                "run_id": run_id,
                "status": "complete",
                "started": iso_time(info["opened_at"]),
                "finished": iso_time(finished),
                "seconds": round(finished - info["opened_at"], 3),
                "pipelines": info.get("pipelines", first.pipelines),
                "nodes": sorted({node for record in ordered for node in record.nodes}),
                "host": info.get("host"),
                "inputs": union("inputs"),
                "reads": {name: version for name, version in union("reads").items() if version != run_id},
                "outputs": dict(sorted(union("outputs").items())),
                "submissions": dict(sorted(union("submissions").items())),
                "metrics": union("metrics"),
                "histories": union("histories"),
                "timings": {
                    "peak_rss_mb": max(record.timings["peak_rss_mb"] for record in ordered),
                    "nodes": [node for record in ordered for node in record.timings["nodes"]],
                    "datasets": [entry for record in ordered for entry in record.timings.get("datasets", [])],
                },
                "raw_dir": next((record.raw_dir for record in ordered if record.raw_dir), None),
                "scheduler": info.get("scheduler"),
                "parts": [
                    {
                        "part": name,
                        "host": record.host,
                        "started": record.started,
                        "finished": record.finished,
                        "nodes": record.nodes,
                    }
                    for name, record in sorted(parts.items(), key=lambda item: item[1].started)
                ],
            }
        )

"""The page: a run record and the files it names, rendered with the Jinja2 template beside this module."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from digit_recognizer.report.compare import compare, previous_run
from digit_recognizer.runstore import RunRecord, locations
from digit_recognizer.runstore.record import flatten

REPORT_DATASET = "run_report"  # the catalog entry that says where every page goes
PLOTS = {  # catalog plot dataset (after the namespace) → what the page calls it
    "training_curves_plot": "Training curves",
    "confusion_matrix_plot": "Confusion matrix (validation)",
    "misclassified_digits_plot": "The most confidently wrong validation digits",
    "lr_finder_plot": "Learning-rate finder",
}


@dataclass
class Section:
    """One architecture's part of the page."""

    key: str
    row: dict[str, Any]
    history: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    images: list[tuple[str, str]] = field(default_factory=list)  # (title, data: URI)
    members: list[dict[str, Any]] = field(default_factory=list)  # an ensemble's leaderboard
    submission: str | None = None

    @property
    def per_class(self) -> list[tuple[int, float, int]]:
        """(digit, accuracy, validation digits of that class)."""
        if not self.validation or "per_class_accuracy" not in self.validation:
            return []
        matrix = self.validation.get("confusion_matrix") or [[]] * 10
        return [
            (int(digit), accuracy, sum(matrix[int(digit)]))
            for digit, accuracy in self.validation["per_class_accuracy"].items()
        ]


def render_report(
    record: RunRecord,
    project: Path,
    earlier: Iterable[RunRecord] = (),
    defaults: Mapping[str, dict[str, Any] | None] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """The run's page as one HTML document.

    ``earlier``: complete runs, newest first, to compare with; ``defaults``: each parameter
    block's defaults (``config.parameter_defaults``), to show what the run changed;
    ``storage_options``: to read the run's outputs where they are in a bucket.
    """
    files = _Files(Path(project), storage_options or {})
    sections = [_section(record, files, key) for key in _by_score(record)]
    rows = {
        section.key: {
            "validation_accuracy": (section.validation or {}).get("validation_rows"),
            "test_score": (record.inputs.get("raw_solution") or {}).get("rows"),
        }
        for section in sections
    }
    previous = previous_run(earlier, record)
    comparison = compare(record, previous, rows)
    return _template().render(
        record=record,
        sections=sections,
        comparison=comparison,
        previous=previous,
        changed_parameters=changed_from_defaults(_used(record), defaults or {}),
        slowest=sorted(record.timings.get("nodes", []), key=lambda n: -n["seconds"])[:5],
        sample_digits=files.image(record.outputs.get("sample_digits")),
        leaderboard_plot=files.image(record.outputs.get("leaderboard_plot")),
        max_label_count=max(
            (count for found in record.inputs.values() for count in (found.get("labels") or {}).values()), default=1
        ),
    )


def changed_from_defaults(
    parameters: dict[str, Any], defaults: Mapping[str, dict[str, Any] | None]
) -> list[tuple[str, Any, Any]]:
    """(key, value, default) for every parameter that differs from its block's default.

    ``defaults``: each block's defaults (``config.parameter_defaults``); a block without any (the
    ensemble's members) is listed as it is, with no default.
    """
    changed = []
    for name, block in parameters.items():
        block_defaults = defaults.get(name)
        flat, flat_defaults = flatten(block, name), flatten(block_defaults, name) if block_defaults is not None else {}
        for key, value in flat.items():
            if key not in flat_defaults or flat_defaults[key] != value:
                changed.append((key, value, flat_defaults.get(key)))
    return changed


@cache
def _template():
    environment = Environment(
        loader=PackageLoader("digit_recognizer.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["signed"] = lambda value, digits=4: "" if value is None else f"{value:+.{digits}f}"
    environment.filters["plain"] = lambda value: json.dumps(value) if isinstance(value, dict | list) else str(value)
    return environment.get_template("report.html.j2")


def _used(record: RunRecord) -> dict[str, Any]:
    """The parameter blocks this run used: the trained architectures', the ensemble's if it ran, and the shared ones."""
    trained = set(record.metrics)
    if "ensemble" in trained:
        trained |= set((record.parameters.get("ensemble") or {}).get("members", []))
    return {
        name: block
        for name, block in record.parameters.items()
        if name in trained or not (isinstance(block, dict) and ("architecture" in block or name == "ensemble"))
    }


def _by_score(record: RunRecord) -> list[str]:
    return sorted(record.metrics, key=lambda key: -(record.metrics[key].get("validation_accuracy") or 0))


def _section(record: RunRecord, files: _Files, key: str) -> Section:
    outputs = record.outputs
    section = Section(key=key, row=record.metrics[key], submission=record.submissions.get(key))
    section.history = files.json(outputs.get(record.histories.get(key, "")))
    section.validation = files.json(outputs.get(f"{key}.validation_metrics"))
    for dataset, title in PLOTS.items():
        image = files.image(outputs.get(f"{key}.{dataset}"))
        if image:
            section.images.append((title, image))
    if f"{key}.leaderboard" in outputs:  # the ensemble's members beside it
        data = files.read(outputs[f"{key}.leaderboard"])
        if data is not None:
            section.members = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    return section


@dataclass(frozen=True)
class _Files:
    """The files a run wrote, as its record names them: under the project, or in a bucket."""

    project: Path
    options: Mapping[str, Any]

    def read(self, stored: str) -> bytes | None:
        location = locations.resolve(self.project, stored)
        return locations.read_bytes(location, self.options if locations.is_url(location) else None)

    def json(self, stored: str | None) -> dict[str, Any] | None:
        data = self.read(stored) if stored else None
        return None if data is None else json.loads(data)

    def image(self, stored: str | None) -> str | None:
        """A PNG the run wrote, as a ``data:`` URI: the page carries its images."""
        if not stored or not stored.endswith(".png"):
            return None
        data = self.read(stored)
        return None if data is None else "data:image/png;base64," + base64.b64encode(data).decode("ascii")

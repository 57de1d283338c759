"""The page: a run record and the files it names, rendered with the Jinja2 template beside this module."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from digit_recognizer.report.compare import compare, flatten, previous_run
from digit_recognizer.runstore import RunRecord, RunStore, locations
from digit_recognizer.runstore.files import atomic_write

REPORT_DATASET = "run_report"  # the catalog entry; the same file for a `kedro run` and a scheduler's close step
REPORT_FOLDER = Path("data/08_reporting/report.html")
PLOTS = {  # catalog plot dataset (after the namespace) → what the page calls it
    "training_curves_plot": "Training curves",
    "confusion_matrix_plot": "Confusion matrix (validation)",
    "misclassified_digits_plot": "The most confidently wrong validation digits",
    "lr_finder_plot": "Learning-rate finder",
}


def report_file(run_id: str) -> Path:
    """The page of run ``run_id``, relative to the project folder (a versioned dataset's file)."""
    return REPORT_FOLDER / run_id / "report.html"


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


def render_report(record: RunRecord, project: Path, earlier: Iterable[RunRecord] = ()) -> str:
    """The run's page as one HTML document; ``earlier``: complete runs, newest first, to compare with."""
    project = Path(project)
    sections = [_section(record, project, key) for key in _by_score(record)]
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
        changed_parameters=changed_from_defaults(_used(record)),
        slowest=sorted(record.timings.get("nodes", []), key=lambda n: -n["seconds"])[:5],
        sample_digits=_image(project, record.outputs.get("sample_digits")),
        leaderboard_plot=_image(project, record.outputs.get("leaderboard_plot")),
        max_label_count=max(
            (count for found in record.inputs.values() for count in (found.get("labels") or {}).values()), default=1
        ),
    )


def changed_from_defaults(parameters: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, value, default) for every parameter that differs from its default in config.py.

    A block without defaults (the ensemble's members) is listed as it is, with no default.
    """
    from digit_recognizer.config import BLOCKS, TrainingConfig  # here: it imports the model registry

    changed = []
    for name, block in parameters.items():
        defaults: dict[str, Any] | None = None
        if isinstance(block, dict) and "architecture" in block:
            defaults = TrainingConfig.model_validate({"architecture": block["architecture"]}).model_dump()
        elif name in BLOCKS:
            try:
                defaults = BLOCKS[name]().model_dump()
            except ValueError:  # a block that has no defaults
                defaults = None
        flat, flat_defaults = flatten(block, name), flatten(defaults, name) if defaults is not None else {}
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


def _section(record: RunRecord, project: Path, key: str) -> Section:
    outputs = record.outputs
    section = Section(key=key, row=record.metrics[key], submission=outputs.get(f"{key}.submission"))
    section.history = _json(project, outputs.get(record.histories.get(key, "")))
    section.validation = _json(project, outputs.get(f"{key}.validation_metrics"))
    for dataset, title in PLOTS.items():
        image = _image(project, outputs.get(f"{key}.{dataset}"))
        if image:
            section.images.append((title, image))
    if f"{key}.leaderboard" in outputs:  # the ensemble's members beside it
        data = locations.read_bytes(locations.resolve(project, outputs[f"{key}.leaderboard"]))
        if data is not None:
            section.members = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    return section


def _json(project: Path, stored: str | None) -> dict[str, Any] | None:
    data = locations.read_bytes(locations.resolve(project, stored)) if stored else None
    return None if data is None else json.loads(data)


def _image(project: Path, stored: str | None) -> str | None:
    """A PNG the run wrote (on this disk or an object store), as a ``data:`` URI: the page carries its images."""
    if not stored or not stored.endswith(".png"):
        return None
    data = locations.read_bytes(locations.resolve(project, stored))
    return None if data is None else "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def write_report(store: RunStore, record: RunRecord, journal: Callable[[Path], None]) -> dict[str, str]:
    """Writes the page of ``record`` at its versioned place, whole or not at all; returns it as an output.

    ``journal`` is told the version folder before anything is written into it, so a run that
    fails later deletes the page with the rest of what it wrote. For :meth:`RunStore.close_run`
    and :meth:`RunStore.add_outputs`.
    """
    html = render_report(record, store.project, store.complete())
    if store.data_root and locations.is_url(store.data_root):  # the runs and their outputs are in a bucket
        url = f"{store.data_root.rstrip('/')}/{report_file(record.run_id).relative_to(REPORT_FOLDER.parts[0])}"
        journal(locations.parent(url))
        locations.write_bytes(url, html.encode("utf-8"), "the run report")
        return {REPORT_DATASET: url}
    relative = report_file(record.run_id)
    final = store.project / relative
    journal(final.parent)
    with atomic_write(final, "the run report") as temporary:
        temporary.write_text(html, encoding="utf-8")
    return {REPORT_DATASET: str(relative)}

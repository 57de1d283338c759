"""What a complete run publishes beside its record: its page (through the catalog) and, with the extra, an MLflow run.

The page is written by the catalog's ``run_report`` entry (a
:class:`~digit_recognizer.framework.run_dataset.RunDataset`): one rule says where a page goes,
whether a ``kedro run``, a scheduler's close step or ``kedro runs report`` writes it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from digit_recognizer.config import parameter_defaults
from digit_recognizer.framework.kedro_compat import unwrap
from digit_recognizer.framework.run_dataset import RunDataset
from digit_recognizer.report import REPORT_DATASET, render_report
from digit_recognizer.runstore import RunRecord, RunStoreSettings, locations

logger = logging.getLogger(__name__)


class PagePublisher:
    """Renders a run's page and saves it as the run's version of the catalog's ``run_report``."""

    def __init__(self, catalog: Any, settings: RunStoreSettings) -> None:
        found = unwrap(catalog.get(REPORT_DATASET)) if REPORT_DATASET in catalog else None
        self.dataset: RunDataset | None = found if isinstance(found, RunDataset) else None
        self.project, self.settings = settings.project, settings

    def publish(
        self, record: RunRecord, earlier: Iterable[RunRecord], journal: Callable[[locations.Location], None]
    ) -> dict[str, str]:
        """Writes the page of ``record`` (journalled first, whole or not at all); returns it as the run's output."""
        if self.dataset is None:
            return {}
        html = render_page(record, earlier, self.settings)
        self.dataset.bind(REPORT_DATASET, None, record.run_id, journal)
        self.dataset.save(html)
        return {REPORT_DATASET: locations.relative(self.project, self.dataset.file(record.run_id))}


def render_page(record: RunRecord, earlier: Iterable[RunRecord], settings: RunStoreSettings) -> str:
    """The page of ``record``: what changed since ``earlier`` runs, parameters against their defaults."""
    options = settings.options_for(settings.data_root)
    return render_report(record, settings.project, earlier, parameter_defaults(record.parameters), options)


def publish_to_mlflow(record: RunRecord, path: locations.Location, settings: RunStoreSettings) -> str | None:
    """Logs the record as an MLflow run where kedro-mlflow has imported mlflow (its hooks set the tracking URI)."""
    if "mlflow" not in sys.modules:
        return None
    from digit_recognizer.integrations import mlflow as tracking

    return tracking.log_run(record, path, settings.project, settings.options_for(settings.data_root))


def announce(
    record: RunRecord, path: locations.Location, project: Path, part: str | None, nodes: list[dict[str, Any]]
) -> None:
    """The run's last lines: its leaderboard, its submissions and where to look (for a part: that it is done)."""
    where = locations.relative(project, path)
    if part is not None:
        logger.info(
            "Part %s of run %s done in %.1f s (%s); the run is complete once it is closed.",
            part,
            record.run_id,
            record.seconds,
            where,
        )
        return
    lines = [f"Run {record.run_id} complete in {record.seconds:.1f} s.", *record.leaderboard_lines()]
    if REPORT_DATASET in record.outputs:
        lines.append(f"  report: {record.outputs[REPORT_DATASET]}")
    lines.append(f"  run record: {where}")
    slowest = sorted(nodes, key=lambda n: n["seconds"], reverse=True)[:3]
    if slowest:
        named = ", ".join(f"{n['node']} {n['seconds']:.1f}s" for n in slowest)
        lines.append(f"  slowest nodes: {named}; peak memory {record.timings.get('peak_rss_mb', 0):.0f} MB")
    lines.append(
        "  look at it: kedro viz run, or notebooks/explore_results.ipynb; "
        "kedro runs latest --submission ARCH prints the latest submission's path"
    )
    for line in lines:
        logger.info(line)

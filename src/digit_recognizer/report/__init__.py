"""A run's report: one self-contained HTML page per complete run, and what changed since the last one.

The page is made from the run record and the files the run wrote (the figures the pipelines
already draw, the validation metrics, the training histories), so it can be made for any complete
run, old ones included, without retraining. Templates are Jinja2; every image is inline and
nothing is fetched from the network. No Kedro, no torch here: the Kedro adapter's page publisher renders it and saves it through
the catalog, for a ``kedro run``, the runs command and a scheduler's close step alike.
"""

from digit_recognizer.report.compare import Comparison, compare, previous_run
from digit_recognizer.report.page import REPORT_DATASET, render_report

__all__ = ["REPORT_DATASET", "Comparison", "compare", "previous_run", "render_report"]

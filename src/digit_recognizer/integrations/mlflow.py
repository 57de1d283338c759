"""MLflow tracking, when kedro-mlflow is installed: one MLflow run per kedro run, from its record.

kedro-mlflow opens an MLflow run before the pipeline and closes it after; :func:`log_run` fills
it from the run record once the record is written: every parameter (flattened, ``conv.epochs``),
each architecture's per-epoch loss and accuracy as metric histories, its final metrics and test
score, and the record, the plots and the model files as artifacts. The project's own versioned
files stay where they are. Nothing here is imported unless MLflow already is.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from digit_recognizer.runstore import RunRecord, locations
from digit_recognizer.runstore.record import flatten

MAX_PARAM_LENGTH = 250  # MLflow's limit on a parameter's value
HISTORY = ("train_loss", "valid_loss", "accuracy")
ARTIFACT_SUFFIXES = (".png", ".pt", ".csv", ".html")  # plots, models, submissions, leaderboards, the page
FINAL = ("validation_accuracy", "validation_loss", "test_score", "training_seconds", "parameters")


def log_run(
    record: RunRecord, record_path: locations.Location, project: Path, options: dict[str, Any] | None = None
) -> str | None:
    """Logs the run into MLflow's active run (kedro-mlflow's); returns its id, or None if none is active."""
    import mlflow
    from mlflow.entities import Metric

    active = mlflow.active_run()
    if active is None:
        return None
    client = mlflow.MlflowClient()
    run_id = active.info.run_id
    params = {k: v for k, v in flatten(record.parameters).items() if len(str(v)) <= MAX_PARAM_LENGTH}
    items = list(params.items())
    for start in range(0, len(items), 100):  # MLflow takes at most 100 parameters a call
        mlflow.log_params(dict(items[start : start + 100]))
    mlflow.set_tags({"digit_recognizer.run_id": record.run_id, "git_commit": record.versions.get("git_commit") or ""})

    now = int(time.time() * 1000)
    metrics = [
        Metric(f"{name}.{key}", float(row[key]), now, 0)
        for name, row in record.metrics.items()
        for key in FINAL
        if row.get(key) is not None
    ]
    for name, output in record.histories.items():
        history = locations.read_bytes(locations.resolve(project, record.outputs[output]), options)
        epochs = json.loads(history or b"{}")
        epochs = epochs.get("epochs", [])
        metrics += [
            Metric(f"{name}.{key}", float(epoch[key]), now, int(epoch["epoch"]))
            for epoch in epochs
            for key in HISTORY
            if epoch.get(key) == epoch.get(key)  # NaN: not measured (no validation rows in a refit)
        ]
    for start in range(0, len(metrics), 1000):  # and at most 1,000 metrics
        client.log_batch(run_id, metrics=metrics[start : start + 1000])

    _log_artifact(mlflow, record_path, None, options)
    for output, path in record.outputs.items():
        if Path(path).suffix in ARTIFACT_SUFFIXES:
            folder = output.split(".")[0] if "." in output else ""
            _log_artifact(mlflow, locations.resolve(project, path), folder or None, options)
    return run_id


def _log_artifact(
    mlflow: Any, location: locations.Location, folder: str | None, options: dict[str, Any] | None
) -> None:
    """Logs a local file as it is, an object from an object store through a temporary copy."""
    if not locations.is_url(location):
        mlflow.log_artifact(str(location), artifact_path=folder)
        return
    data = locations.read_bytes(location, options)
    if data is None:
        return
    with tempfile.TemporaryDirectory() as temporary:
        copy = Path(temporary) / str(location).rsplit("/", 1)[-1]
        copy.write_bytes(data)
        mlflow.log_artifact(str(copy), artifact_path=folder)

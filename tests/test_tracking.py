"""MLflow tracking: optional, and complete when kedro-mlflow is installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from digit_recognizer.runstore.record import flatten

from .conftest import kedro


def test_parameters_are_flattened_by_their_full_key():
    assert flatten({"conv": {"epochs": 3, "model": {"batchnorm": True}}, "raw_dir": "x"}) == {
        "conv.epochs": 3,
        "conv.model.batchnorm": True,
        "raw_dir": "x",
    }


def test_the_project_imports_no_mlflow_by_itself():
    script = "import sys, digit_recognizer.settings, digit_recognizer.framework.hooks; print('mlflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.slow
def test_a_run_is_logged_to_mlflow_whole(project):
    pytest.importorskip("kedro_mlflow", reason="needs the [mlflow] extra")
    import mlflow

    result = kedro(project, "run", "--pipelines", "linear,centroid", "--params", "linear.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    [experiment] = [e for e in client.search_experiments() if e.name == "digit_recognizer"]
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    params, metrics = run.data.params, run.data.metrics
    assert params["linear.epochs"] == "2" and params["centroid.model.distance"] == "cosine"
    assert params["split.validation_fraction"] == "0.2"
    assert metrics["linear.validation_accuracy"] > 0.5 and metrics["centroid.test_score"] > 0.5
    history = client.get_metric_history(run.info.run_id, "linear.accuracy")
    assert [m.step for m in history] == [0, 1]  # one value per epoch
    assert {m.key for m in client.get_metric_history(run.info.run_id, "linear.train_loss")} == {"linear.train_loss"}

    def artifacts(path=None):
        for item in client.list_artifacts(run.info.run_id, path):
            yield from artifacts(item.path) if item.is_dir else [item.path]

    logged = set(artifacts())
    assert {"run.json", "linear/model.pt", "linear/training_curves.png", "centroid/confusion_matrix.png"} <= logged
    assert "report.html" in logged  # the run's page
    assert run.data.tags["digit_recognizer.run_id"] in {d.name for d in (project / "data" / "runs").iterdir()}

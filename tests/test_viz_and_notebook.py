"""kedro-viz and the notebook, on a project that has run once on the sample."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import FAST, copy_project, kedro

pytestmark = pytest.mark.slow  # whole `kedro run`s: left out by `pytest -m "not slow"`

LAYERS = ["raw", "intermediate", "primary", "model_input", "models", "model_output", "reporting"]
ARCHITECTURES = ["linear", "mlp", "conv", "cnn", "fast", "centroid"]


@pytest.fixture(scope="module")
def project_after_run(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("viz") / "project")
    result = kedro(project, "run", "--params", FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    return project


@pytest.fixture(scope="module")
def viz_build(project_after_run) -> Path:
    result = kedro(project_after_run, "viz", "build", "--include-previews")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "circular" not in result.stdout + result.stderr
    return project_after_run / "build" / "api"


def test_viz_has_every_pipeline_namespace_and_layer(viz_build):
    main = json.loads((viz_build / "main").read_text())
    assert [p["id"] for p in main["pipelines"]] == [
        "data_processing",
        *ARCHITECTURES,
        "lr_finder",
        "reporting",
        "ensemble",
        "__default__",
    ]
    for pipeline in ("data_processing", "conv", "reporting"):
        assert (viz_build / "pipelines" / pipeline).is_file()
    assert main["layers"] == LAYERS
    assert set(main["modular_pipelines"]) >= set(ARCHITECTURES)
    boxes = {n["name"] for n in main["nodes"] if n["type"] == "modularPipeline"}
    assert boxes == set(ARCHITECTURES)
    datasets = [n for n in main["nodes"] if n["type"] == "data"]
    assert all(n["layer"] in LAYERS for n in datasets), [n["name"] for n in datasets if not n.get("layer")]
    tasks = [n for n in main["nodes"] if n["type"] == "task"]
    assert {"validate_raw_data", "stratified_split", "build_leaderboard"} <= {n["name"] for n in tasks}
    boxes_of_train_model = {box for n in tasks if n["name"] == "train_model" for box in n["modular_pipelines"]}
    assert boxes_of_train_model == {"linear", "mlp", "conv", "cnn", "fast"}  # drawn inside each architecture's box


def test_viz_previews_plots_and_tables(viz_build):
    main = json.loads((viz_build / "main").read_text())
    by_name = {n["name"]: n["id"] for n in main["nodes"] if n["type"] == "data"}
    plots = (
        ["sample_digits", "leaderboard_plot"]
        + [f"{a}.{p}_plot" for a in ARCHITECTURES for p in ("confusion_matrix", "misclassified_digits")]
        + [f"{a}.training_curves_plot" for a in ("linear", "mlp", "conv", "cnn", "fast")]
    )
    for name in plots:
        detail = json.loads((viz_build / "nodes" / by_name[name]).read_text())
        assert detail["preview_type"] == "ImagePreview", name
        assert base64.b64decode(detail["preview"])[:4] == b"\x89PNG", name
    leaderboard = json.loads((viz_build / "nodes" / by_name["leaderboard"]).read_text())
    assert leaderboard["preview_type"] == "TablePreview"
    assert "validation_accuracy" in leaderboard["preview"]["columns"]
    assert leaderboard["stats"]["rows"] == len(ARCHITECTURES)  # the panel's row count, not "N/A"
    accuracy = leaderboard["preview"]["columns"].index("validation_accuracy")
    assert all(len(str(row[accuracy]).split(".")[-1]) <= 4 for row in leaderboard["preview"]["data"])  # rounded
    metrics = json.loads((viz_build / "nodes" / by_name["conv.validation_metrics"]).read_text())
    assert metrics["preview_type"] == "JSONPreview" and '"accuracy"' in metrics["preview"]


def test_every_node_has_a_one_line_docstring():
    from digit_recognizer.pipeline_registry import register_pipelines

    for node in register_pipelines()["__default__"].nodes:
        doc = node.func.__doc__ or ""
        assert doc.strip() and "\n" not in doc.strip(), node.name


def test_notebook_runs_on_the_sample(project_after_run):
    path = project_after_run / "notebooks" / "explore_results.ipynb"
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5  # digits, leaderboard, confusion matrix, mistakes, the predicted digit
    text = "".join(o.get("text", "") for o in outputs)
    assert "probabilities:" in text and "misclassified" in text

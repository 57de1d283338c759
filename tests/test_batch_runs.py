"""Scheduled batch runs: packaging, Airflow, failures that lose nothing, concurrency, pinned versions."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from digit_recognizer.datasets import TorchModelDataset
from digit_recognizer.pipeline_registry import register_pipelines

from .conftest import FAST, RAW_DIR, kedro


def output(result: subprocess.CompletedProcess) -> str:
    """What a run printed, with the console's line wrapping undone."""
    return " ".join((result.stdout + result.stderr).split())


def snapshot(project: Path) -> dict[str, str]:
    """Every file under data/ but the raw sample, with its content hash."""
    return {
        str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((project / "data").rglob("*"))
        if p.is_file() and "01_raw" not in p.parts and p.name != ".gitkeep"
    }


def versions_of(project: Path, dataset_dir: str) -> list[Path]:
    name = Path(dataset_dir).name
    return sorted(p / name for p in (project / "data" / dataset_dir).iterdir() if (p / name).exists())


def assert_no_markers(project: Path) -> None:
    assert not list((project / "data").rglob("*.writing"))


def test_packaged_project_runs_with_data_outside_it(project, tmp_path):
    built = kedro(project, "package")
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (project / "dist").glob("digit_recognizer-*.whl")
    archive = project / "dist" / "conf-digit_recognizer.tar.gz"
    assert archive.is_file()

    # The wheel goes into a folder of its own, in front of this interpreter's packages (its
    # dependencies): this works alike in a virtual environment, a conda env or the system Python.
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", site, wheel],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    python = sys.executable
    run_env = {**os.environ, "DO_NOT_TRACK": "1", "PYTHONPATH": str(site)}

    workdir = tmp_path / "nightly"
    workdir.mkdir()
    where = subprocess.run(
        [python, "-c", "import digit_recognizer; print(digit_recognizer.__file__)"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=run_env,
    )
    assert str(site) in where.stdout  # the installed wheel, not the source tree
    run = subprocess.run(
        [
            python,
            "-m",
            "digit_recognizer",
            "--pipelines",
            "conv",
            "--conf-source",
            str(archive),
            "--params",
            f"raw_dir={RAW_DIR},conv.epochs=1",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=run_env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    [submission] = (workdir / "data" / "07_model_output" / "conv" / "submission.csv").glob("*/submission.csv")
    assert len(pd.read_csv(submission)) == 1000


def test_airflow_dag_names_every_node_and_persists_what_crosses_tasks(project, tmp_path):
    result = kedro(project, "airflow", "create", "--pipelines", "conv", "--group-by", "memory", "-t", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    [dag_file] = tmp_path.glob("*.py")
    source = dag_file.read_text()
    tree = ast.parse(source)
    compile(tree, str(dag_file), "exec")
    groups = [
        [ast.literal_eval(element) for element in call.keywords[0].value.elts]
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "_run_kedro_node" and call.keywords
    ]
    pipeline = register_pipelines()["conv"]
    assert sorted(n for group in groups for n in group) == sorted(node.name for node in pipeline.nodes)
    group_of = {name: i for i, group in enumerate(groups) for name in group}
    catalog = (project / "conf" / "base" / "catalog.yml").read_text()
    for node in pipeline.nodes:
        for dataset in node.inputs:
            producers = [n for n in pipeline.nodes if dataset in n.outputs]
            if producers and group_of[producers[0].name] != group_of[node.name]:
                # crosses Airflow tasks: must be a persisted catalog entry, never in memory
                entry = dataset if dataset in catalog else "{architecture}." + dataset.split(".", 1)[-1]
                block = catalog.split(f"{entry}", 1)[1].split("\n\n", 1)[0]
                assert "MemoryDataset" not in block and "filepath" in block, dataset


def test_bad_input_and_a_failing_training_leave_earlier_versions_intact(project, tmp_path):
    first = kedro(project, "run", "--pipelines", "conv", "--params", "conv.epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(project)

    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("test.csv", "sample_submission.csv"):
        (bad / name).write_bytes((RAW_DIR / name).read_bytes())
    (bad / "train.csv").write_text((RAW_DIR / "train.csv").read_text().replace("\n5,", "\nfive,", 1))
    failed = kedro(project, "run", "--pipelines", "conv", "--params", f"raw_dir={bad}")
    assert failed.returncode == 1
    assert "expected an integer label 0..9, got 'five'" in output(failed)
    assert snapshot(project) == before  # nothing written, nothing touched

    diverged = kedro(project, "run", "--pipelines", "conv", "--params", "conv.epochs=2,conv.lr=1e9")
    assert diverged.returncode == 1
    assert "training diverged" in output(diverged)
    after = snapshot(project)
    assert {k: v for k, v in after.items() if k in before} == before
    assert not any("06_models" in k for k in set(after) - set(before))  # no model from the failed run
    assert_no_markers(project)
    assert TorchModelDataset(filepath=str(versions_of(project, "06_models/conv/model.pt")[-1])).load()


def test_sigkill_mid_epoch_loses_nothing_and_half_written_files_are_never_loaded(project):
    first = kedro(project, "run", "--params", FAST)
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(project)

    env = {**os.environ, "DO_NOT_TRACK": "1", "COLUMNS": "200"}
    run = subprocess.Popen(
        [sys.executable, "-m", "kedro", "run", "--pipelines", "conv", "--params", "conv.epochs=500"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 120
    for line in run.stdout:  # wait for the training table's row of epoch 2
        words = line.split()
        if "INFO" in words and words[words.index("INFO") + 1 :][:1] == ["2"] and len(words) >= 6:
            break
        assert time.time() < deadline, "training never reached its third epoch"
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL
    after = snapshot(project)
    assert {k: v for k, v in after.items() if k in before} == before
    assert_no_markers(project)  # it died while training, between writes

    # A run that died while writing leaves a marker beside its half-written file: the next
    # run deletes that version before anything loads it.
    summary_dir = project / "data" / "08_reporting" / "conv" / "summary.json"
    partial = summary_dir / "2099-01-01T00.00.00.000Z" / "summary.json"
    partial.parent.mkdir()
    partial.write_text('{"architecture": "co')
    (partial.parent / ".summary.json.writing").write_text(json.dumps({"pid": run.pid, "host": os.uname().nodename}))
    report = kedro(project, "run", "--pipelines", "reporting")
    assert report.returncode == 0, report.stderr[-3000:]
    assert not partial.parent.exists()
    assert "left half-written by an interrupted run" in output(report)


def test_two_runs_at_once_keep_their_own_outputs(project):
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kedro",
                "run",
                "--pipelines",
                "centroid",
                "--params",
                f"centroid.model.distance={d}",
            ],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for d in ("euclidean", "cosine")
    ]
    for run in runs:
        assert run.wait(timeout=600) == 0, run.stderr.read()[-3000:]
    models = versions_of(project, "06_models/centroid/model.pt")
    submissions = versions_of(project, "07_model_output/centroid/submission.csv")
    scores = versions_of(project, "08_reporting/centroid/test_score.json")
    assert len(models) == len(submissions) == len(scores) == 2
    test = torch.tensor(pd.read_csv(RAW_DIR / "test.csv").to_numpy() / 255, dtype=torch.float32).reshape(-1, 1, 28, 28)
    solution = pd.read_csv(RAW_DIR / "solution.csv")["Label"].to_numpy()
    distances = set()
    for model_file, submission_file, score_file in zip(models, submissions, scores, strict=True):
        assert model_file.parent.name == submission_file.parent.name == score_file.parent.name
        model = TorchModelDataset(filepath=str(model_file)).load()
        distances.add(model.options["distance"])
        predicted = model(test).argmax(1).numpy()
        submission = pd.read_csv(submission_file)["Label"].to_numpy()
        assert (predicted == submission).all()  # each submission comes from its own run's model
        assert json.loads(score_file.read_text())["accuracy"] == pytest.approx((submission == solution).mean())
    assert distances == {"euclidean", "cosine"}


def test_load_versions_remakes_a_past_submission(project):
    first = kedro(project, "run", "--pipelines", "conv", "--params", "conv.epochs=1,conv.seed=0")
    second = kedro(project, "run", "--pipelines", "conv", "--params", "conv.epochs=1,conv.seed=1")
    assert first.returncode == second.returncode == 0, second.stderr[-3000:]
    models = versions_of(project, "06_models/conv/model.pt")
    first_submission, second_submission = versions_of(project, "07_model_output/conv/submission.csv")
    assert first_submission.read_bytes() != second_submission.read_bytes()

    version = models[0].parent.name
    again = kedro(
        project,
        "run",
        "--pipelines",
        "conv",
        "--tags",
        "data_processing,predict",
        "--load-versions",
        f"conv.model:{version}",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(versions_of(project, "06_models/conv/model.pt")) == 2  # nothing retrained
    remade = versions_of(project, "07_model_output/conv/submission.csv")[-1]
    assert remade.read_bytes() == first_submission.read_bytes()

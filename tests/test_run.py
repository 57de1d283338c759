"""End-to-end `kedro run` in a temporary copy of the project, on the embedded sample."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from digit_recognizer.runstore import RunStore

from .conftest import FAST, kedro

pytestmark = pytest.mark.slow  # whole `kedro run`s: left out by `pytest -m "not slow"`


def written(project: Path, pattern: str) -> list[Path]:
    return sorted(p for p in (project / "data").glob(pattern) if p.is_file())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_conv_pipeline_leaves_a_valid_submission(project):
    result = kedro(project, "run", "--pipeline", "conv", "--params", "conv.epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    [submission_file] = written(project, "07_model_output/conv/submission.csv/*/submission.csv")
    submission = pd.read_csv(submission_file)
    assert list(submission.columns) == ["ImageId", "Label"]
    assert submission["ImageId"].tolist() == list(range(1, 1001))
    assert submission["Label"].between(0, 9).all()
    output = result.stdout + result.stderr
    assert "Wrote conv.submission to" in output and "train_loss" in output
    # the run ends with its answer, one plain line each when the log is not a terminal
    lines = output.splitlines()
    assert any(line.endswith(f"submission conv: {submission_file.relative_to(project)}") for line in lines)
    [record_line] = [line for line in lines if "run record: " in line]
    assert (project / record_line.split("run record: ")[1]).is_file()
    assert any(
        re.search(r"INFO digit_recognizer.framework.publishers:\s+conv\s+0\.\d{4}\s+0\.\d{4}\s+29,770\s", line)
        for line in lines
    )
    info = [line for line in lines if " INFO " in line and " mlflow." not in line]  # MLflow formats its own
    assert info and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO \S+: ", line) for line in info)
    assert any("Running node: conv.train_model" in line or "train_model([" in line for line in info)
    assert len(written(project, "06_models/conv/model.pt/*/model.pt")) == 1
    assert not written(project, "06_models/linear/**/*")  # only conv was trained


def test_same_parameters_same_submission_and_full_run_agrees(project):
    first = kedro(project, "run", "--pipelines", "conv", "--params", FAST)
    second = kedro(project, "run", "--pipelines", "conv", "--params", FAST)
    assert first.returncode == second.returncode == 0, second.stderr[-3000:]
    full = kedro(project, "run", "--params", FAST)
    assert full.returncode == 0, full.stderr[-3000:]
    submissions = written(project, "07_model_output/conv/submission.csv/*/submission.csv")
    assert len(submissions) == 3 and len({digest(p) for p in submissions}) == 1
    leaderboard = pd.read_csv(written(project, "08_reporting/leaderboard.csv/*/leaderboard.csv")[0])
    assert sorted(leaderboard["architecture"]) == ["centroid", "cnn", "conv", "fast", "linear", "mlp"]
    assert leaderboard["run"].nunique() == 1  # every row from the one run that made it


def test_raw_dir_parameter_reads_files_elsewhere_and_bad_input_writes_nothing(project, tmp_path):
    elsewhere = tmp_path / "kaggle"
    shutil.copytree(project / "data" / "01_raw", elsewhere)
    train = pd.read_csv(elsewhere / "train.csv")
    train.loc[41, "pixel300"] = 256
    train.to_csv(elsewhere / "train.csv", index=False)

    result = kedro(project, "run", "--pipeline", "centroid", "--params", f"raw_dir={elsewhere}")
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())
    assert (
        f"{elsewhere / 'train.csv'}, line 43 (data row 42), column 'pixel300': expected pixel value 0..255, got 256"
        in output
    )
    assert not written(project, "0[2-8]_*/**/*")

    (elsewhere / "train.csv").unlink()
    result = kedro(project, "run", "--pipeline", "centroid", "--params", f"raw_dir={elsewhere}")
    assert "file not found" in " ".join((result.stdout + result.stderr).split())

    shutil.copy(project / "data" / "01_raw" / "train.csv", elsewhere / "train.csv")
    (elsewhere / "solution.csv").unlink()  # as in Kaggle's download
    result = kedro(project, "run", "--pipeline", "centroid", "--params", f"raw_dir={elsewhere}")
    assert result.returncode == 0, result.stderr[-3000:]
    [score] = written(project, "08_reporting/centroid/test_score.json/*/test_score.json")
    assert '"scored": false' in score.read_text()


def test_lr_finder_pipeline_draws_each_sweep(project):
    result = kedro(project, "run", "--pipeline", "lr_finder", "--params", "cnn.lr_finder.num_steps=20")
    assert result.returncode == 0, result.stderr[-3000:]
    for architecture in ("linear", "mlp", "conv", "cnn"):
        [plot] = written(project, f"08_reporting/{architecture}/lr_finder.png/*/lr_finder.png")
        [sweep] = written(project, f"08_reporting/{architecture}/lr_finder.json/*/lr_finder.json")
        assert plot.read_bytes()[:4] == b"\x89PNG" and '"suggestion"' in sweep.read_text()
    assert not written(project, "06_models/**/*")  # a sweep trains no model


def test_ensemble_is_re_averaged_from_earlier_members_without_training(project):
    epochs = "cnn.epochs=1,cnn_seed1.epochs=1,cnn_seed2.epochs=1"
    first = kedro(project, "run", "--pipeline", "ensemble", "--params", epochs)
    assert first.returncode == 0, first.stderr[-3000:]
    again = kedro(
        project, "run", "--pipeline", "ensemble", "--tags", "ensemble", "--params", "ensemble.members=cnn+cnn_seed2"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    store = RunStore(project / "data" / "runs")
    latest, trained = store.complete()
    assert "Training cnn" not in again.stdout + again.stderr
    assert set(latest.reads) == {  # the members' outputs only: cnn_seed1 is a candidate, not a member
        f"{m}_{what}"
        for m in ("cnn", "cnn_seed2")
        for what in ("validation_probabilities", "test_probabilities", "summary")
    } and set(latest.reads.values()) == {trained.run_id}
    assert all(name.startswith("ensemble") for name in latest.outputs if name != "run_report")  # and its page
    assert latest.metrics["ensemble"]["submitted"] == "mean of cnn, cnn_seed2"
    leaderboard = pd.read_csv(project / latest.outputs["ensemble.leaderboard"])
    assert sorted(leaderboard["member"]) == ["cnn", "cnn_seed2", "ensemble"]

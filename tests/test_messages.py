"""What a user sees when they make a mistake or stop a run: the message last, no traceback, the right exit status.

Each case runs ``kedro run`` (or ``python -m digit_recognizer``) as a user would and reads its
last lines and exit status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from digit_recognizer.runstore import RunStore

from .conftest import RAW_DIR, kedro
from .test_batch_runs import run_kedro, snapshot, wait_for_epoch

pytestmark = pytest.mark.slow


def last_lines(result: subprocess.CompletedProcess, count: int = 3) -> str:
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-count:])


@pytest.fixture
def zipped_raw(tmp_path) -> Path:
    """A raw folder holding only Kaggle's download, digit-recognizer.zip."""
    folder = tmp_path / "kaggle"
    folder.mkdir()
    with zipfile.ZipFile(folder / "digit-recognizer.zip", "w") as archive:
        for name in ("train.csv", "test.csv", "sample_submission.csv"):
            archive.write(RAW_DIR / name, name)
    return folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pipeline", "cnnn"], "Error: There is no pipeline 'cnnn'. Did you mean cnn?"),
        (
            ["--pipelines", "conv", "--params", "raw_dir=/no/such/folder"],
            "the raw folder '/no/such/folder' does not exist",
        ),
        (["--pipelines", "conv", "--params", "conv.epochs=-1"], "conv.epochs = -1: Input should be greater than 0"),
        (["--pipelines", "conv", "--params", "conv.lr=abc"], "conv.lr = 'abc': Input should be a valid number"),
        (
            ["--pipelines", "conv", "--load-versions", "conv.model:2020-01-01T00.00.00.000Z"],
            "--load-versions names conv.model, which this run writes itself",
        ),
        (
            [
                "--pipelines",
                "conv",
                "--tags",
                "data_processing,predict",
                "--load-versions",
                "conv.model:2020-01-01T00.00.00.000Z",
            ],
            "conv.model has no version 2020-01-01T00.00.00.000Z (no complete run wrote it)",
        ),
        (["--pipelines", "reporting"], "No complete run has written centroid_summary, cnn_summary"),
        (
            ["--pipelines", "conv", "--env", "nosuchenv"],
            "there is no configuration environment 'nosuchenv' (no folder",
        ),
        (["--pipelines", "conv", "--params", f"raw_dir={RAW_DIR / 'train.csv'}"], "is a file, not a folder"),
        (  # the ensemble's candidates that are not members are not needed, nor named
            ["--pipeline", "ensemble", "--tags", "ensemble", "--params", "ensemble.members=cnn+cnn_seed2"],
            "No complete run has written cnn_seed2_summary, cnn_seed2_test_probabilities, "
            "cnn_seed2_validation_probabilities, cnn_summary, cnn_test_probabilities, cnn_validation_probabilities yet",
        ),
        (  # gcsfs is no dependency of the project: as s3:// without the [s3] extra
            ["--pipelines", "conv", "--params", "data_root=gs://bucket/project"],
            "gs://bucket/project is on gs://, which needs a package that is not installed: "
            "fsspec's package for gs:// (gcsfs for gs://",
        ),
    ],
)
def test_a_user_mistake_ends_in_its_message(project, args, message):
    result = kedro(project, "run", *args)
    assert result.returncode == 1
    assert message in last_lines(result, 2)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "Repeat the previous command" not in output and "You can resume the pipeline" not in output
    assert "deprecated" not in output  # --pipeline is the project's own option
    assert snapshot(project) == {}  # nothing written


def test_the_environments_are_named_and_a_folder_without_conf_says_what_to_pass(project, tmp_path):
    unknown = kedro(project, "run", "--env", "prdo")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert "The environments: airflow, kaggle, local, prod" in last_lines(unknown, 1)
    elsewhere = subprocess.run(
        [sys.executable, "-m", "digit_recognizer", "--pipeline", "conv"],
        cwd=tmp_path,
        env={**os.environ, "DO_NOT_TRACK": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert elsewhere.returncode == 1 and "Traceback" not in elsewhere.stderr, elsewhere.stderr[-2000:]
    assert f"there is no configuration at {tmp_path / 'conf'}" in elsewhere.stderr
    assert "--conf-source /path/to/the/project/conf" in elsewhere.stderr


def test_a_zip_in_the_raw_folder_is_named_with_the_command_that_unpacks_it(project, zipped_raw):
    result = kedro(project, "run", "--pipelines", "centroid", "--params", f"raw_dir={zipped_raw}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        f"holds digit-recognizer.zip: unpack it first (unzip -o {zipped_raw}/digit-recognizer.zip -d {zipped_raw})"
        in last_lines(result, 1)
    )


def test_the_traceback_is_there_when_asked_for(project):
    result = kedro(project, "run", "--pipelines", "conv", "--params", "conv.epochs=-1", "--traceback")
    assert result.returncode == 1 and "Traceback" in result.stderr and "ParameterError" in result.stderr
    env = {**os.environ, "DIGIT_RECOGNIZER_TRACEBACK": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--pipelines", "conv", "--params", "conv.epochs=-1"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_the_packaged_command_and_a_subfolder_give_the_same_messages_and_format(project):
    packaged = subprocess.run(
        [sys.executable, "-m", "digit_recognizer", "--pipeline", "cnnn"], cwd=project, capture_output=True, text=True
    )
    assert packaged.returncode == 1 and "Error: There is no pipeline 'cnnn'" in packaged.stderr
    below = kedro(project / "src", "run", "--pipelines", "centroid")
    assert below.returncode == 0, below.stderr[-3000:]
    lines = below.stderr.strip().splitlines()
    assert lines[-1].split()[2:4] == ["INFO", "digit_recognizer.framework.publishers:"]  # the project's one-line format
    assert not any("│" in line or "╭" in line for line in lines)  # no Rich boxes


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_rolls_back_at_once_and_says_so(project, signum, status):
    run = run_kedro(
        project, "--pipelines", "conv", "--params", "conv.epochs=500", stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    wait_for_epoch(run, 1)
    run.send_signal(signum)
    rest = run.stdout.read()
    assert run.wait(timeout=60) == status
    name = signal.Signals(signum).name
    assert f"interrupted by {name} after" in rest.strip().splitlines()[-1]
    assert "version folders it had written" in rest.strip().splitlines()[-1] and "Traceback" not in rest
    assert snapshot(project) == {}  # everything it wrote is gone at once, its run folder too


def test_a_second_signal_during_the_rollback_leaves_nothing_half_deleted(project):
    run = run_kedro(
        project, "--pipelines", "conv", "--params", "conv.epochs=500", stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    wait_for_epoch(run, 1)
    run.send_signal(signal.SIGTERM)
    run.send_signal(signal.SIGTERM)
    run.stdout.read()
    assert run.wait(timeout=60) in (143, -signal.SIGTERM)
    RunStore.at(project).remove_dead()  # what the next run does first
    assert snapshot(project) == {}

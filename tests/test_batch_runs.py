"""Scheduled batch runs: packaging, Airflow, failures that lose nothing, concurrency, pinned versions."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from digit_recognizer.framework.datasets import TorchModelDataset
from digit_recognizer.runstore import RunRecord, RunStore

from .conftest import RAW_DIR, kedro

pytestmark = pytest.mark.slow  # whole `kedro run`s: left out by `pytest -m "not slow"`


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


def assert_no_leftovers(project: Path) -> None:
    """No temporary files and no unfinished run folders."""
    assert not list((project / "data").rglob(".*.tmp"))
    runs = project / "data" / "runs"
    assert all((run / "run.json").exists() for run in runs.iterdir()) if runs.exists() else True


def latest_record(project: Path) -> RunRecord:
    return RunStore(project / "data" / "runs").latest()


def run_kedro(project: Path, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "DO_NOT_TRACK": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "kedro", "run", *args], cwd=project, env=env, text=True, **popen)


def wait_for_epoch(run: subprocess.Popen, epoch: int, timeout: float = 120) -> None:
    """Reads the run's log until the training table shows ``epoch``."""
    deadline = time.time() + timeout
    for line in run.stdout:
        words = line.split()
        counted = [w.split("/") for w in words if w.count("/") == 1 and w.replace("/", "").isdigit()]
        if "digit_recognizer.pipelines.training.nodes:" in words and counted and int(counted[0][0]) == epoch + 1:
            return
        assert time.time() < deadline, f"training never reached epoch {epoch}"
    raise AssertionError(f"the run ended before epoch {epoch}")


def test_packaged_project_runs_with_data_outside_it(project, tmp_path):
    built = kedro(project, "package")
    assert built.returncode == 0, built.stderr[-3000:]
    assert "is absent from the `packages` configuration" not in built.stdout + built.stderr  # no setuptools warning
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


def test_bad_input_and_a_failing_training_leave_earlier_versions_intact(project, tmp_path):
    first = kedro(project, "run", "--pipelines", "conv", "--params", "conv.epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(project)
    good_run = latest_record(project).run_id

    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("test.csv", "sample_submission.csv", "solution.csv"):
        (bad / name).write_bytes((RAW_DIR / name).read_bytes())
    (bad / "train.csv").write_text((RAW_DIR / "train.csv").read_text().replace("\n5,", "\nfive,", 1))
    failed = kedro(project, "run", "--pipelines", "conv", "--params", f"raw_dir={bad}")
    assert failed.returncode == 1
    assert "expected an integer label 0..9, got 'five'" in output(failed)
    assert snapshot(project) == before  # nothing written, nothing touched

    (bad / "train.csv").write_bytes((RAW_DIR / "train.csv").read_bytes())
    (bad / "solution.csv").write_text((RAW_DIR / "solution.csv").read_text().replace("ImageId,Label", "Id,Label", 1))
    failed = kedro(project, "run", "--pipelines", "conv", "--params", f"raw_dir={bad}")
    assert failed.returncode == 1
    assert "solution.csv: expected ImageId,Label (2 columns), found 2 columns: missing 'ImageId'" in output(failed)
    assert snapshot(project) == before

    diverged = kedro(project, "run", "--pipelines", "conv", "--params", "conv.epochs=2,conv.lr=1e9")
    assert diverged.returncode == 1
    assert "training diverged" in output(diverged)
    assert "deleted the 5 version folders it had written" in output(diverged)
    assert snapshot(project) == before  # what it wrote before training failed is gone too
    assert_no_leftovers(project)
    assert latest_record(project).run_id == good_run


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("conv.epoch=3", "conv.epoch: unknown key"),
        ("conv.epochs=2.5", "conv.epochs = 2.5: Input should be a valid integer"),
        ("conv.device=banana", "conv.device = 'banana': expected auto, cpu, mps, cuda or cuda:N"),
        ("split.validation_fraction=1.5", "split.validation_fraction = 1.5: Input should be less than 1"),
        ("conv.model.batchnorm=maybe", "conv.model.batchnorm = 'maybe': Input should be a valid boolean"),
    ],
)
def test_a_bad_parameter_stops_the_run_before_anything_is_written(project, override, message):
    result = kedro(project, "run", "--pipelines", "conv", "--params", override)
    assert result.returncode == 1
    assert message in output(result)
    assert snapshot(project) == {}


def test_a_write_that_fails_for_lack_of_space_names_it_and_leaves_nothing(project):
    if importlib.util.find_spec("kedro_mlflow"):
        pytest.skip("with the [mlflow] extra, MLflow's own store (mlflow.db) is the first write to hit the limit")

    def small_disk() -> None:  # as on a full disk: writes past 300 kB fail (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    run = run_kedro(
        project, "--pipelines", "centroid", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=small_disk
    )
    out = " ".join(run.communicate(timeout=600)[0].split())
    assert run.returncode == 1
    assert "Could not write dataset 'validated_train' to " in out
    assert "validated_train.parquet: File too large (errno EFBIG)" in out
    assert snapshot(project) == {}  # nothing under data/: no output, no run folder, no record
    assert not (project / "data" / "runs").exists() or not any((project / "data" / "runs").iterdir())


def test_sigkill_mid_epoch_loses_nothing_and_the_next_run_cleans_up(project):
    first = kedro(project, "run", "--pipelines", "conv", "--params", "conv.epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(project)
    good_model = latest_record(project).outputs["conv.model"]

    run = run_kedro(
        project, "--pipelines", "conv", "--params", "conv.epochs=500", stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    wait_for_epoch(run, 2)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL
    after = snapshot(project)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before)  # it had written its data processing outputs
    assert latest_record(project).outputs["conv.model"] == good_model  # never "latest"

    # A predict-only run now reads the last complete run's model, and removes the killed run's files.
    again = kedro(project, "run", "--pipelines", "conv", "--tags", "data_processing,predict")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Removed what the interrupted run" in output(again)
    assert latest_record(project).reads["conv.model"] == Path(good_model).parent.name
    newest = latest_record(project).run_id
    for path in snapshot(project):  # the killed run's files are gone: all is from complete runs
        assert path in before or newest in path, path
    assert_no_leftovers(project)


def test_sigkill_mid_write_never_serves_the_half_written_file(project):
    first = kedro(project, "run", "--pipelines", "centroid")
    assert first.returncode == 0, first.stderr[-3000:]
    good = latest_record(project)
    killer = textwrap.dedent(
        """
        import os, signal, torch
        real_save = torch.save
        def save_half_and_die(payload, path, *args, **kwargs):
            real_save(payload, path, *args, **kwargs)
            with open(path, "r+b") as handle:
                handle.truncate(os.path.getsize(path) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = save_half_and_die
        import sys
        from kedro.framework.cli import main
        sys.argv = ["kedro", "run", "--pipelines", "centroid"]
        main()
        """
    )
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    killed = subprocess.run([sys.executable, "-c", killer], cwd=project, env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL
    assert list((project / "data" / "06_models" / "centroid" / "model.pt").rglob(".model.pt.tmp"))  # half written

    again = kedro(project, "run", "--pipelines", "centroid", "--tags", "data_processing,predict")
    assert again.returncode == 0, again.stderr[-3000:]
    assert latest_record(project).reads["centroid.model"] == good.run_id
    submission = project / latest_record(project).outputs["centroid.submission"]
    assert submission.read_bytes() == (project / good.outputs["centroid.submission"]).read_bytes()
    assert_no_leftovers(project)
    models = sorted((project / "data" / "06_models" / "centroid" / "model.pt").iterdir())
    assert [m.name for m in models] == [good.run_id]


def test_two_runs_at_once_keep_their_own_outputs(project):
    if importlib.util.find_spec("kedro_mlflow"):
        pytest.skip("two runs creating a fresh MLflow SQLite store at once collide (see the README's MLflow section)")
    runs = [
        run_kedro(
            project,
            "--pipelines",
            "centroid",
            "--params",
            f"centroid.model.distance={d}",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for d in ("euclidean", "cosine")
    ]
    for run in runs:
        assert run.wait(timeout=600) == 0, run.stderr.read()[-3000:]
    records = RunStore(project / "data" / "runs").complete()
    assert len(records) == 2
    test = torch.tensor(pd.read_csv(RAW_DIR / "test.csv").to_numpy() / 255, dtype=torch.float32).reshape(-1, 1, 28, 28)
    solution = pd.read_csv(RAW_DIR / "solution.csv")["Label"].to_numpy()
    distances = set()
    for record in records:
        outputs = {name: project / path for name, path in record.outputs.items()}
        assert {path.parent.name for path in outputs.values()} == {record.run_id}  # one version per run
        model = TorchModelDataset(filepath=str(outputs["centroid.model"])).load()
        distances.add(model.config.options["distance"])
        predicted = model(test).argmax(1).numpy()
        submission = pd.read_csv(outputs["centroid.submission"])["Label"].to_numpy()
        assert (predicted == submission).all()  # each submission comes from its own run's model
        score = json.loads(outputs["centroid.test_score"].read_text())["accuracy"]
        assert score == pytest.approx((submission == solution).mean())
        assert record.metrics["centroid"]["test_score"] == pytest.approx(score, abs=1e-4)
        assert record.parameters["centroid"]["model"]["distance"] == model.config.options["distance"]
        timed = {(entry["dataset"], entry["op"]) for entry in record.timings["datasets"]}  # time outside the nodes
        assert {("raw_train", "load"), ("centroid.model", "save")} <= timed and record.timings["page_seconds"] > 0
    assert distances == {"euclidean", "cosine"}


def _unshare_works() -> bool:
    try:
        probe = subprocess.run(["unshare", "-u", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -u` (root) to give a run another host name")
def test_a_live_run_on_another_host_sharing_data_is_never_touched(project):
    """Two hosts share data/ (as over NFS): the lock tells a live run from a dead one, not the host name."""
    script = f"hostname other-host && exec {sys.executable} -m kedro run --pipelines conv --params conv.epochs=500"
    other = subprocess.Popen(
        ["unshare", "-u", "sh", "-c", script],
        cwd=project,
        text=True,
        env={**os.environ, "DO_NOT_TRACK": "1", "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_epoch(other, 1)
        [other_run] = [d for d in (project / "data" / "runs").iterdir()]
        theirs = {k: v for k, v in snapshot(project).items() if other_run.name in k and "/runs/" not in k}
        assert theirs
        here = kedro(project, "run", "--pipelines", "centroid")
        assert here.returncode == 0, here.stderr[-3000:]
        assert "interrupted run" not in output(here)
        now = snapshot(project)
        assert {k: now.get(k) for k in theirs} == theirs  # not one of its files touched
        assert (other_run / "lock").exists()
        retention = subprocess.run(
            [sys.executable, "-m", "digit_recognizer.retention", "--keep", "1"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        assert retention.returncode == 0, retention.stderr
        assert {k: snapshot(project).get(k) for k in theirs} == theirs
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    after = kedro(project, "run", "--pipelines", "centroid", "--tags", "data_processing,predict")
    assert after.returncode == 0, after.stderr[-3000:]
    assert f"Removed what the interrupted run {other_run.name} left" in output(after)
    assert not any(other_run.name in k for k in snapshot(project))


def test_load_versions_remakes_a_past_submission(project):
    first = kedro(project, "run", "--pipelines", "conv", "--params", "conv.epochs=1,conv.seed=0")
    second = kedro(project, "run", "--pipelines", "conv", "--params", "conv.epochs=1,conv.seed=1")
    assert first.returncode == second.returncode == 0, second.stderr[-3000:]
    old, new = RunStore(project / "data" / "runs").complete()[::-1]
    first_submission = (project / old.outputs["conv.submission"]).read_bytes()
    assert first_submission != (project / new.outputs["conv.submission"]).read_bytes()

    again = kedro(
        project,
        "run",
        "--pipelines",
        "conv",
        "--tags",
        "data_processing,predict",
        "--load-versions",
        f"conv.model:{old.run_id}",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    remade = latest_record(project)
    assert "conv.model" not in remade.outputs and remade.reads == {"conv.model": old.run_id}
    assert (project / remade.outputs["conv.submission"]).read_bytes() == first_submission


def test_a_model_carries_its_preprocessing_into_a_predict_run(project):
    trained = kedro(
        project,
        "run",
        "--pipelines",
        "centroid",
        "--params",
        "normalisation.standardise=true,centroid.model.distance=euclidean",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    first = latest_record(project)
    # remade with the default parameters (no standardisation): the model applies its own
    again = kedro(project, "run", "--pipelines", "centroid", "--tags", "data_processing,predict")
    assert again.returncode == 0, again.stderr[-3000:]
    second = latest_record(project)
    assert second.reads["centroid.model"] == first.run_id
    assert (project / second.outputs["centroid.submission"]).read_bytes() == (
        project / first.outputs["centroid.submission"]
    ).read_bytes()

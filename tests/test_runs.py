"""The run store: locks the OS releases, atomic writes, records, and the runs command."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from digit_recognizer.runs import main
from digit_recognizer.runstore import LiveRun, RunStore, WriteError, atomic_write

from .conftest import run_record

RUN = "2026-11-27T02.30.00.000Z"


def test_atomic_write_leaves_the_old_file_or_the_whole_new_one(tmp_path):
    target = tmp_path / "out" / "file.txt"
    with atomic_write(target, "the file") as temporary:
        temporary.write_text("first")
    with pytest.raises(
        WriteError, match=rf"Could not write dataset 'x' to {target}: No space left on device \(errno ENOSPC\)"
    ):
        with atomic_write(target, "dataset 'x'") as temporary:
            temporary.write_text("half of the sec")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]  # no temporary left


def test_atomic_write_names_a_full_disk(tmp_path):
    """A write past RLIMIT_FSIZE (SIGXFSZ ignored) fails as on a full disk: EFBIG, named."""
    script = textwrap.dedent(
        f"""
        import resource, signal
        from pathlib import Path
        from digit_recognizer.runstore import atomic_write
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        with atomic_write(Path({str(tmp_path / "big.bin")!r}), "dataset 'conv.model'") as temporary:
            temporary.write_bytes(bytes(5000))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 1
    assert (
        f"Could not write dataset 'conv.model' to {tmp_path / 'big.bin'}: File too large (errno EFBIG)" in result.stderr
    )
    assert list(tmp_path.iterdir()) == []


def _hold_a_run(root: Path, run_id: str) -> subprocess.Popen:
    """Another process that starts a run, writes half a file, and waits (to be killed)."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from digit_recognizer.runstore import LiveRun, RunStore
        run = LiveRun(RunStore(Path({str(root)!r})), {run_id!r})
        run.start({{}})
        version = Path({str(root.parent)!r}) / "06_models/conv/model.pt" / {run_id!r}
        run.journal(version)
        version.mkdir(parents=True)
        (version / "model.pt").write_bytes(b"half a mod")
        print("holding", flush=True)
        time.sleep(600)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "holding"
    return child


def test_a_live_run_is_left_alone_and_a_killed_one_is_cleaned(tmp_path):
    root = tmp_path / "data" / "runs"
    child = _hold_a_run(root, RUN)
    store = RunStore(root)
    try:
        assert store.remove_dead() == []
        assert [live["run_id"] for live in store.live()] == [RUN]
        assert store.latest() is None  # an unfinished run is never "latest"
        assert (tmp_path / "data/06_models/conv/model.pt" / RUN / "model.pt").exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    [(run_id, removed)] = store.remove_dead()
    assert run_id == RUN and removed == [tmp_path / "data/06_models/conv/model.pt" / RUN]
    assert not (root / RUN).exists() and not removed[0].exists()


def test_a_reused_pid_does_not_keep_a_dead_run_alive(tmp_path):
    """Liveness is the OS lock, not a pid: a dead run whose pid now belongs to us is still dead."""
    root = tmp_path / "runs"
    run = LiveRun(RunStore(root), RUN)
    run.start({})
    (root / RUN / "reads.json").write_text(json.dumps({"reads": {}, "pid": os.getpid()}))
    run._release()  # the process "died"; its pid is alive (it is ours)
    assert [run_id for run_id, _ in RunStore(root).remove_dead()] == [RUN]


def test_two_runs_cannot_share_an_id(tmp_path):
    LiveRun(RunStore(tmp_path), RUN).start({})
    with pytest.raises(FileExistsError, match=f"another run already has the id {RUN}"):
        LiveRun(RunStore(tmp_path), RUN).start({})


def test_runs_command_lists_and_finds_the_latest_submission(tmp_path, capsys):
    root = tmp_path / "data" / "runs"
    for run_id, score in [("2026-11-26T02.30.00.000Z", 0.98), (RUN, 0.99)]:
        run = LiveRun(RunStore(root), run_id)
        run.start({})
        path = f"data/07_model_output/conv/submission.csv/{run_id}/submission.csv"
        outputs, submissions = {"conv.submission": path}, {"conv": path}
        run.commit(
            run_record(run_id, outputs=outputs, submissions=submissions, metrics={"conv": {"test_score": score}})
        )
    LiveRun(RunStore(root), "2026-11-28T02.30.00.000Z").start({})  # in progress: not the latest
    assert main(["--runs-dir", str(root), "latest", "--submission", "conv"]) == 0
    assert capsys.readouterr().out.strip() == f"data/07_model_output/conv/submission.csv/{RUN}/submission.csv"
    assert main(["--runs-dir", str(root), "pin", RUN]) == 0
    main(["--runs-dir", str(root), "list"])
    header, *rows = capsys.readouterr().out.splitlines()[1:]
    assert header.split() == ["RUN", "ID", "STATE", "PIPELINES", "MODEL", "VALIDATION", "TEST", "NOTE"]
    assert rows[0].split()[:2] == ["2026-11-28T02.30.00.000Z", "running"]
    assert rows[0].endswith(f"on {socket.gethostname()}, pid {os.getpid()}")
    assert rows[1].split()[:2] == [RUN, "complete"] and rows[1].split()[-4:] == ["conv", "-", "0.9900", "pinned"]
    assert header.index("TEST") == rows[1].index("0.9900")  # the test score in the TEST column
    assert len(rows) == 3
    assert main(["--runs-dir", str(root), "latest", "--submission", "mlp"]) == 1


def test_a_bucket_without_its_package_says_which_to_install(monkeypatch):
    import fsspec

    from digit_recognizer.runstore import locations

    def missing(protocol):
        raise ImportError("Install s3fs to access S3")  # what fsspec says when s3fs is absent

    monkeypatch.setattr(fsspec, "get_filesystem_class", missing)
    with pytest.raises(
        locations.MissingFilesystem,
        match=r"s3://bucket/x is on s3://, which needs a package that is not installed: s3fs, the \[s3\] extra: "
        r'pip install -e "\.\[s3\]"',
    ):
        locations.filesystem_class("s3://bucket/x")


def test_the_runs_and_retention_commands_end_a_user_mistake_in_its_message(project, capsys, monkeypatch):
    from digit_recognizer.retention import retention_main as retention

    monkeypatch.chdir(project)
    assert main(["--data-root", "gs://bucket/x", "list"]) == 1  # gcsfs is not installed
    assert capsys.readouterr().err.startswith("Error: gs://bucket/x is on gs://, which needs a package")
    assert main(["list", "--data-root", "gs://bucket/x"]) == 1  # the option after the subcommand too
    assert capsys.readouterr().err.startswith("Error: gs://bucket/x is on gs://, which needs a package")
    assert retention(["--keep", "1", "--data-root", "gs://bucket/x"]) == 1
    assert capsys.readouterr().err.startswith("Error: gs://bucket/x is on gs://, which needs a package")


def test_the_runs_command_outside_the_project_says_where_to_run_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"Error: {tmp_path} is not in the digit-recognizer project: run the command from its folder"
    )

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from digit_recognizer.retention import main, prune

VERSIONS = [f"2026-11-2{d}T01.00.00.000Z" for d in range(1, 6)]


def make_dataset(root: Path, relative: str, versions=VERSIONS) -> Path:
    dataset = root / relative
    name = dataset.name
    for version in versions:
        (dataset / version).mkdir(parents=True)
        (dataset / version / name).write_text(version)
    return dataset


@pytest.fixture
def data(tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "01_raw").mkdir(parents=True)
    (root / "01_raw" / "train.csv").write_text("label,pixel0\n1,0\n")
    make_dataset(root, "06_models/conv/model.pt")
    make_dataset(root, "07_model_output/conv/submission.csv", VERSIONS[:2])
    return root


def remaining(dataset: Path) -> list[str]:
    return sorted(p.name for p in dataset.iterdir())


def test_keeps_the_newest_versions_of_every_dataset(data):
    result = prune(data, keep=3)
    assert remaining(data / "06_models/conv/model.pt") == VERSIONS[2:]
    assert remaining(data / "07_model_output/conv/submission.csv") == VERSIONS[:2]
    assert (data / "01_raw" / "train.csv").exists()
    assert result.datasets == 2 and result.kept == 5 and len(result.removed) == 2
    assert result.freed_bytes == 2 * len(VERSIONS[0])


def test_dry_run_deletes_nothing_and_says_what_would_go(data, capsys):
    assert main(["--keep", "1", "--dry-run", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert out.count("would delete") == 5 + 1  # 4 + 1 versions, and the summary line
    assert "2 versioned datasets: kept 2 versions, would delete 5" in out
    assert remaining(data / "06_models/conv/model.pt") == VERSIONS


def test_cli_deletes(data, capsys):
    main(["--keep", "1", "--data-dir", str(data)])
    assert remaining(data / "06_models/conv/model.pt") == VERSIONS[-1:]
    assert "deleted 5" in capsys.readouterr().out


def test_keep_must_be_positive(data):
    with pytest.raises(SystemExit):
        main(["--keep", "0", "--data-dir", str(data)])


def test_half_written_versions_of_dead_runs_go_live_ones_stay(data):
    dataset = data / "06_models/conv/model.pt"
    dead, live = "2026-11-27T01.00.00.000Z", "2026-11-28T01.00.00.000Z"
    for version, pid in [(dead, 2**22 + 12345), (live, os.getpid())]:
        (dataset / version).mkdir()
        (dataset / version / "model.pt").write_text("half")
        (dataset / version / ".model.pt.writing").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    prune(data, keep=10)
    assert not (dataset / dead).exists()
    assert (dataset / live / "model.pt").exists()

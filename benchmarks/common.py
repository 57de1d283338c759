"""Helpers shared by the benchmark scripts: Kaggle-sized input and a measured `kedro run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUT = PROJECT_ROOT / "benchmarks" / "out"

sys.path.insert(0, str(Path(__file__).parent))
import kaggle_sized  # noqa: E402


def kaggle_sized_dir(train_rows: int = 42_000, test_rows: int = 28_000) -> Path:
    return kaggle_sized.write(OUT / f"kaggle-{train_rows}-{test_rows}", train_rows, test_rows)


@dataclass
class Measured:
    wall_seconds: float
    peak_rss_mb: float
    pipeline_seconds: float
    startup_seconds: float
    nodes: list[dict]
    datasets: list[dict]  # each load and save: {dataset, op, seconds}
    page_seconds: float
    bytes_written: int


def _data_bytes() -> dict[Path, int]:
    return {p: p.stat().st_size for p in (PROJECT_ROOT / "data").rglob("*") if p.is_file()}


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr.decode()[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def run_kedro(args: list[str]) -> Measured:
    """`kedro run ARGS` in a child process, with wall time, peak memory, node times and disk written.

    Node times and the pipeline's start and end come from the run's own record
    (data/runs/<run id>/run.json), which every run writes last.
    """
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    before = _data_bytes()
    launched = time.time()
    wall, peak = measure([sys.executable, "-m", "kedro", "run", *args], env)
    after = _data_bytes()
    written = sum(size for path, size in after.items() if path not in before)
    [record_file] = [p for p in after if p not in before and p.name == "run.json"]
    record = json.loads(record_file.read_text())
    started = datetime.fromisoformat(record["started"]).timestamp()
    return Measured(
        wall_seconds=wall,
        peak_rss_mb=peak,
        pipeline_seconds=record["seconds"],
        startup_seconds=started - launched,
        nodes=record["timings"]["nodes"],
        datasets=record["timings"].get("datasets", []),
        page_seconds=record["timings"].get("page_seconds", 0.0),
        bytes_written=written,
    )

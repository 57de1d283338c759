"""Where the time goes: `kedro run --pipeline conv` against the same job as one plain script.

    python benchmarks/run.py              # Kaggle-sized input (42,000 + 28,000 rows), 5 epochs
    python benchmarks/run.py --tiny       # a few hundred rows, 1 epoch: checks the script still works

Prints (1) whole-process wall time and peak memory of both and their ratio, (2) the Kedro
run's per-node times and start-up, (3) training seconds per epoch for linear, mlp and conv
beside the plain script's loop, (4) the disk that one run writes under data/, (5) the pieces of
start-up beside Kedro's own floor, a bare project's `kedro run` (`startup.py`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch
from common import PROJECT_ROOT, kaggle_sized_dir, measure, run_kedro

PLAIN = Path(__file__).with_name("plain_script.py")


def latest(pattern: str) -> Path:
    return sorted((PROJECT_ROOT / "data").glob(pattern))[-1]


def kedro_epoch_seconds(architecture: str) -> list[float]:
    history = json.loads(
        latest(f"08_reporting/{architecture}/training_history.json/*/training_history.json").read_text()
    )
    return [epoch["time"] for epoch in history["epochs"]]


def plain_run(raw: Path, tmp: Path, architecture: str, epochs: int, augment: bool) -> tuple[float, float, list[float]]:
    """Wall seconds, peak MB and per-epoch seconds of the plain script."""
    times = tmp / f"{architecture}.json"
    command = [
        sys.executable,
        str(PLAIN),
        str(raw),
        str(tmp / f"{architecture}.csv"),
        "--arch",
        architecture,
        "--epochs",
        str(epochs),
        "--epoch-times",
        str(times),
    ]
    wall, peak = measure(command + ([] if augment else ["--no-augment"]))
    return wall, peak, json.loads(times.read_text())


def per_epoch(times: list[float]) -> float:
    """Median epoch time, leaving out the first (warm-up) epoch when there are others."""
    return statistics.median(times[1:] or times)


def breakdown(run) -> list[tuple[str, float]]:
    """Where one run's seconds went: start-up, each node, each kind of load and save, the page, the rest."""
    rows = [("start-up (launch to the run's first hook)", run.startup_seconds)]
    rows += [(f"node {node['node']}", node["seconds"]) for node in run.nodes]
    kinds: dict[str, float] = {}
    for entry in run.datasets:
        kind = dataset_kind(entry["dataset"], entry["op"])
        kinds[kind] = kinds.get(kind, 0.0) + entry["seconds"]
    rows += sorted(kinds.items(), key=lambda item: -item[1])
    inside = sum(node["seconds"] for node in run.nodes) + sum(kinds.values())
    rows.append(("hooks (versions, journal, record builder)", run.pipeline_seconds - inside))
    rows.append(("the run's page", run.page_seconds))
    rows.append(
        (
            "record, commit and shut-down",
            run.wall_seconds - run.startup_seconds - run.pipeline_seconds - run.page_seconds,
        )
    )
    return rows


def dataset_kind(name: str, op: str) -> str:
    """A dataset's load or save, grouped by what the catalog stores it as."""
    base = name.rsplit(".", 1)[-1]
    if base.startswith("raw_"):
        kind = "the raw CSVs (read, checked, hashed)"
    elif base.endswith("_plot") or base == "sample_digits":
        kind = "plots (PNG)"
    elif base in ("model", "split_model"):
        kind = "models (torch.save)"
    elif base == "submission":
        kind = "submissions (CSV)"
    elif base.endswith("probabilities") or base in ("validated_train", "validated_test", "split", "leaderboard"):
        kind = "tables (Parquet, CSV)"
    else:
        kind = "JSON and in-memory datasets"
    return f"{op}s: {kind}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="whole-process runs of each job")
    parser.add_argument("--tiny", action="store_true", help="400 + 200 rows, 1 epoch, 1 run")
    parser.add_argument(
        "--augment", action="store_true", help="train conv with its default augmentation (default: none, in both jobs)"
    )
    args = parser.parse_args()
    rows, epochs = ((400, 200), 1) if args.tiny else ((42_000, 28_000), args.epochs)
    if args.tiny:
        args.repeat = 1
    raw = kaggle_sized_dir(*rows)
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"python {platform.python_version()}, torch {torch.__version__}"
    )
    print(f"input: {rows[0]:,} labelled + {rows[1]:,} test rows; {epochs} epochs")

    params = f"raw_dir={raw},conv.epochs={epochs}" + ("" if args.augment else ",conv.augment=null")
    print(f"conv {'with' if args.augment else 'without'} augmentation, learning-rate finder off (as by default)\n")
    with tempfile.TemporaryDirectory() as tmp:
        kedro_runs, plain_runs = [], []
        for _ in range(args.repeat):  # alternate the two, so drifts in machine speed hit both
            kedro_runs.append(run_kedro(["--pipelines", "conv", "--params", params]))
            plain_runs.append(plain_run(raw, Path(tmp), "conv", epochs, augment=args.augment))
        conv = min(kedro_runs, key=lambda run: run.wall_seconds)
        kedro_wall = statistics.median(run.wall_seconds for run in kedro_runs)
        plain_wall = statistics.median(run[0] for run in plain_runs)
        plain_conv_epochs = plain_runs[0][2]
        kedro_sub = pd.read_csv(latest("07_model_output/conv/submission.csv/*/submission.csv"))
        plain_sub = pd.read_csv(Path(tmp) / "conv.csv")
        assert kedro_sub.shape == plain_sub.shape, "the two jobs wrote different submissions"

        print(f"1. whole process (median of {args.repeat} runs each; peak memory: the highest)")
        print(
            f"   {'kedro run --pipelines conv':<34} {kedro_wall:7.2f} s "
            f"{max(run.peak_rss_mb for run in kedro_runs):7.0f} MB peak"
        )
        print(f"   {'plain script':<34} {plain_wall:7.2f} s {max(run[1] for run in plain_runs):7.0f} MB peak")
        print(
            f"   {'ratio (target <= 1.10)':<34} {kedro_wall / plain_wall:7.2f}   (run by run: "
            + ", ".join(f"{k.wall_seconds / p[0]:.2f}" for k, p in zip(kedro_runs, plain_runs, strict=True))
            + ")"
        )

        print("\n2. the fastest kedro run, step by step")
        for label, seconds in breakdown(conv):
            print(f"   {label:<44} {seconds:7.2f} s")

        others = run_kedro(
            ["--pipelines", "linear,mlp", "--params", f"raw_dir={raw},linear.epochs={epochs},mlp.epochs={epochs}"]
        )
        print("\n3. training seconds per epoch (median after the first)")
        print(f"   {'':<10} {'kedro':>8} {'plain':>8} {'ratio':>7}")
        for architecture in ("linear", "mlp", "conv"):
            kedro_time = per_epoch(kedro_epoch_seconds(architecture))
            if architecture == "conv":
                plain_times = plain_conv_epochs
            else:
                plain_times = plain_run(raw, Path(tmp), architecture, epochs, augment=architecture == "mlp")[2]
            plain_time = per_epoch(plain_times)
            print(f"   {architecture:<10} {kedro_time:8.3f} {plain_time:8.3f} {kedro_time / plain_time:7.2f}")

    print("\n4. disk written under data/ by one `kedro run --pipelines conv`")
    print(
        f"   {conv.bytes_written / 1e6:.1f} MB (target < 100 MB); linear + mlp run: {others.bytes_written / 1e6:.1f} MB"
    )

    from startup import pieces

    print("\n5. start-up, piece by piece (median of 3 fresh processes each)")
    print(f"   {'kedro run --pipelines conv: launch to first node':<44} {conv.startup_seconds:6.2f} s")
    for label, seconds in pieces(1 if args.tiny else 3):
        print(f"   {label:<44} {seconds:6.2f} s")


if __name__ == "__main__":
    main()

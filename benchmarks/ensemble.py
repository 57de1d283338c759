"""The recommended Kaggle submission end to end: `kedro run --pipeline ensemble --env kaggle` on Kaggle-sized input.

    python benchmarks/ensemble.py              # 42,000 + 28,000 rows (made on first use)
    python benchmarks/ensemble.py --rows 4200 2800 --params cnn.epochs=1,cnn_seed1.epochs=1,cnn_seed2.epochs=1

Prints the CPU (model, flags) and torch's parallel setup, then the whole process's wall time and
peak memory, the time per node kind (training on the split, the refit on every row, the
predictions with test-time shifts) and each member's and the ensemble's validation accuracy.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections import defaultdict

from common import PROJECT_ROOT, kaggle_sized_dir, run_kedro
from threads import cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs=2, default=(42_000, 28_000), metavar=("TRAIN", "TEST"))
    parser.add_argument("--params", default="", help="more `kedro run --params`")
    args = parser.parse_args()
    import torch

    print(f"cpu: {cpu()}")
    print(f"python {platform.python_version()}, torch {torch.__version__}")
    print(torch.__config__.parallel_info().strip())
    raw = kaggle_sized_dir(*args.rows)
    params = ",".join(p for p in (f"raw_dir={raw}", args.params) if p)
    measured = run_kedro(["--pipeline", "ensemble", "--env", "kaggle", "--params", params])
    print()
    print(f"kedro run --pipeline ensemble --env kaggle on {args.rows[0]:,} + {args.rows[1]:,} rows")
    print(
        f"whole process {measured.wall_seconds / 60:.1f} min ({measured.wall_seconds:.0f} s), peak memory "
        f"{measured.peak_rss_mb:,.0f} MB, start-up {measured.startup_seconds:.1f} s"
    )
    kinds: dict[str, float] = defaultdict(float)
    for node in measured.nodes:
        kinds[node["node"].rsplit(".", 1)[-1]] += node["seconds"]
    for kind, seconds in sorted(kinds.items(), key=lambda item: -item[1])[:8]:
        print(f"  {kind:<28}{seconds:>8.1f} s")
    [record_file] = sorted((PROJECT_ROOT / "data" / "runs").glob("*/run.json"))[-1:]
    record = json.loads(record_file.read_text())
    for key, row in sorted(record["metrics"].items(), key=lambda item: -item[1]["validation_accuracy"]):
        print(f"  {key:<14} validation {row['validation_accuracy']:.4f}  training {row['training_seconds']:.0f} s")


if __name__ == "__main__":
    main()

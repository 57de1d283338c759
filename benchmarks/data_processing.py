"""Times `kedro run --pipeline data_processing` on Kaggle-sized files beside a plain pandas.read_csv.

    python benchmarks/data_processing.py

Makes benchmarks/out/kaggle/ (42,000 + 28,000 rows, about 77 + 51 MB) on first use.
"""

from __future__ import annotations

import time

import pandas as pd
from common import kaggle_sized_dir, run_kedro


def main() -> None:
    raw = kaggle_sized_dir()
    start = time.perf_counter()
    train = pd.read_csv(raw / "train.csv")
    test = pd.read_csv(raw / "test.csv")
    plain = time.perf_counter() - start
    print(
        f"input: {len(train):,} + {len(test):,} rows, "
        f"{((raw / 'train.csv').stat().st_size + (raw / 'test.csv').stat().st_size) / 1e6:.0f} MB of CSV"
    )
    del train, test

    run = run_kedro(["--pipelines", "data_processing", "--params", f"raw_dir={raw}"])
    print(f"{'plain pandas.read_csv of train.csv + test.csv':<52} {plain:6.2f} s")
    print(f"{'kedro run --pipelines data_processing: pipeline':<52} {run.pipeline_seconds:6.2f} s")
    print(f"{'  of which node functions':<52} {sum(n['seconds'] for n in run.nodes):6.2f} s")
    for node in run.nodes:
        print(f"{'    ' + node['node']:<52} {node['seconds']:6.2f} s")
    print(f"{'kedro run --pipelines data_processing: whole process':<52} {run.wall_seconds:6.2f} s")
    print(f"{'  peak memory':<52} {run.peak_rss_mb:6.0f} MB")
    print(f"{'  written under data/':<52} {run.bytes_written / 1e6:6.1f} MB")


if __name__ == "__main__":
    main()

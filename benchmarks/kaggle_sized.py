"""Kaggle-sized raw files (42,000 labelled + 28,000 test rows) made from the embedded sample.

Each copy of a sample digit is shifted by up to two pixels in each direction, so the rows are
not exact repeats (the CSV parser and the model see realistic, varied data).

    python benchmarks/kaggle_sized.py OUT_DIR [--train-rows N --test-rows N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "01_raw"
PIXELS = [f"pixel{i}" for i in range(784)]


def shifted_copies(images: np.ndarray, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`rows` images drawn from `images`, each shifted by -2..2 pixels in x and y (zero fill)."""
    picks = rng.integers(0, len(images), rows)
    squares = images[picks].reshape(rows, 28, 28)
    padded = np.pad(squares, ((0, 0), (2, 2), (2, 2)))
    dy, dx = rng.integers(0, 5, rows), rng.integers(0, 5, rows)
    out = np.empty_like(squares)
    for y in range(5):
        for x in range(5):
            chosen = (dy == y) & (dx == x)
            out[chosen] = padded[chosen, y : y + 28, x : x + 28]
    return out.reshape(rows, 784), picks


def write(out: Path, train_rows: int = 42_000, test_rows: int = 28_000, seed: int = 0) -> Path:
    """Writes train.csv, test.csv and sample_submission.csv into `out` (skipped if present)."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / f".rows-{train_rows}-{test_rows}-{seed}"
    if marker.exists():
        return out
    rng = np.random.default_rng(seed)
    sample = pd.read_csv(SAMPLE / "train.csv")
    labels = sample["label"].to_numpy()
    pixels = sample[PIXELS].to_numpy(dtype=np.uint8)
    train_pixels, picks = shifted_copies(pixels, train_rows, rng)
    train = pd.DataFrame(train_pixels, columns=PIXELS)
    train.insert(0, "label", labels[picks])
    test_sample = pd.read_csv(SAMPLE / "test.csv").to_numpy(dtype=np.uint8)
    test = pd.DataFrame(shifted_copies(test_sample, test_rows, rng)[0], columns=PIXELS)
    train.to_csv(out / "train.csv", index=False)
    test.to_csv(out / "test.csv", index=False)
    pd.DataFrame({"ImageId": np.arange(1, test_rows + 1), "Label": 0}).to_csv(
        out / "sample_submission.csv", index=False
    )
    for stale in out.glob(".rows-*"):
        stale.unlink()
    marker.touch()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--train-rows", type=int, default=42_000)
    parser.add_argument("--test-rows", type=int, default=28_000)
    args = parser.parse_args()
    folder = write(args.out, args.train_rows, args.test_rows)
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        print(f"{folder / name}: {(folder / name).stat().st_size / 1e6:.1f} MB")

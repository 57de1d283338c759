"""Training seconds per epoch on a CUDA GPU with the whole data set on the device, beside the CPU.

    PYTHONPATH=src python benchmarks/gpu_epoch.py [--epochs 5]

Needs only torch, numpy and pandas (no Kedro): it drives digit_recognizer.ml.models and
digit_recognizer.ml.training directly on Kaggle-sized data made from the embedded sample.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from kaggle_sized import SAMPLE, shifted_copies  # noqa: E402

from digit_recognizer.ml.models import build_model  # noqa: E402
from digit_recognizer.ml.training import FitSettings, fit, predict, resolve_device  # noqa: E402

AUGMENT = {"max_rotation": 10.0, "max_shift": 0.1, "max_scale": 0.1}


def tensors(rows: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    sample = pd.read_csv(SAMPLE / "train.csv")
    pixels, picks = shifted_copies(sample.iloc[:, 1:].to_numpy(np.uint8), rows, np.random.default_rng(seed))
    images = torch.from_numpy(pixels.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    return images, torch.from_numpy(sample["label"].to_numpy()[picks].astype(np.int64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    device = resolve_device("auto")
    print(f"device auto -> {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    train_x, train_y = tensors(33_600, seed=0)
    valid_x, valid_y = tensors(8_400, seed=1)
    settings = {"linear": (0.1, None), "mlp": (0.2, AUGMENT), "conv": (0.1, AUGMENT)}
    for where in [device, torch.device("cpu")] if device.type == "cuda" else [device]:
        data = [t.to(where) for t in (train_x, train_y, valid_x, valid_y)]
        if where.type == "cuda":
            torch.cuda.synchronize()
        for architecture, (lr, augment) in settings.items():
            torch.manual_seed(0)
            model = build_model(architecture).to(where)
            start = time.perf_counter()
            settings = FitSettings(epochs=args.epochs, lr=lr, weight_decay=1e-3, augment=augment, progress_bar=False)
            history = fit(model, tuple(data[:2]), tuple(data[2:]), settings, log=lambda _: None)
            total = time.perf_counter() - start
            on_device = all(p.device.type == where.type for p in model.parameters())
            epochs = [h.time for h in history]
            print(
                f"{where.type:>4} {architecture:<7} per epoch {statistics.median(epochs[1:] or epochs):7.3f} s "
                f"(first {epochs[0]:.3f} s), {args.epochs} epochs {total:6.2f} s, "
                f"valid accuracy {history[-1].accuracy:.4f}, model on {where.type}: {on_device}"
            )
        if where.type == "cuda":
            sample = predict(model, data[2][:1000])
            print(f"cuda predictions stay on the device: {sample.device}")


if __name__ == "__main__":
    main()

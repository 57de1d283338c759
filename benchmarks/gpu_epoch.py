"""Training with the whole data set on a CUDA GPU: seconds per epoch, and the fast recipe's seconds to 0.99.

    PYTHONPATH=src python benchmarks/gpu_epoch.py               # one device call prints every figure
    PYTHONPATH=src python benchmarks/gpu_epoch.py --device cpu --rows 4000 --seeds 1 --epochs 1   # a quick look

Needs torch, numpy, pandas, pyyaml and pydantic (no Kedro): it drives digit_recognizer.ml
directly on Kaggle-sized data made from the embedded sample (`kaggle_sized.py`). Every tensor
sits on the device before the clock starts; batches are index tensors drawn on the device, so
no image crosses the bus during training. Prints:

1. seconds per epoch of linear, mlp and conv (5 epochs), on the device and, where that is a
   GPU, on the same machine's CPU;
2. the fast recipe to 0.99 (`time_to_accuracy.py`'s split by source digit: no validation digit
   is a copy of a training one): conf/base's `fast` block with conf/kaggle's changes, and the
   same at larger batches (a GPU step costs about the same at 128 and 512 images, so fewer,
   larger steps are the GPU's way to a shorter epoch), each over `--seeds` seeds: the epoch and
   the seconds of training (validation passes included, the device synchronised) at which
   validation first reached the target, and the last model's accuracy with test-time shifts;
3. with `--compile`, the block again under `torch.compile`, its compile time apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).parent))

from threads import cpu  # noqa: E402
from time_to_accuracy import block, data  # noqa: E402

from digit_recognizer.ml.precision import resolve_precision  # noqa: E402
from digit_recognizer.ml.registry import ARCHITECTURES, build_model  # noqa: E402
from digit_recognizer.ml.training import FitSettings, class_probabilities, fit, resolve_device  # noqa: E402

AUGMENT = {"max_rotation": 10.0, "max_shift": 0.1, "max_scale": 0.1}
# (label, changes to the fast block): the block as conf/kaggle runs it, then larger batches.
FAST_VARIANTS = (
    ("the fast block", {}),
    ("batch 256, lr 0.03", {"batch_size": 256, "lr": 0.03}),
    ("batch 512, 3 epochs, lr 0.04", {"batch_size": 512, "epochs": 3, "lr": 0.04, "validate_every": 3}),
)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_epoch(device: torch.device, sets: tuple, epochs: int) -> None:
    """Section 1: linear, mlp and conv, seconds per epoch."""
    settings = {"linear": (0.1, None), "mlp": (0.2, AUGMENT), "conv": (0.1, AUGMENT)}
    on = [t.to(device) for pair in sets for t in pair]
    synchronize(device)
    for architecture, (lr, augment) in settings.items():
        torch.manual_seed(0)
        model = build_model(architecture).to(device)
        start = time.perf_counter()
        settings = FitSettings(epochs=epochs, lr=lr, weight_decay=1e-3, augment=augment, progress_bar=False)
        history = fit(model, tuple(on[:2]), tuple(on[2:]), settings, log=lambda _: None)
        synchronize(device)
        total = time.perf_counter() - start
        times = [h.time for h in history]
        print(
            f"{device.type:>4} {architecture:<7} per epoch {statistics.median(times[1:] or times):7.3f} s "
            f"(first {times[0]:.3f} s), {epochs} epochs {total:6.2f} s, valid accuracy {history[-1].accuracy:.4f}",
            flush=True,
        )


def to_target(device: torch.device, sets: tuple, changes: dict, seed: int, target: float, compiled: bool) -> dict:
    """One seed of the fast recipe: when validation first reached ``target``, and the accuracy with shifts."""
    config = block("fast", None, seed)
    config.update(changes)
    precision, _ = resolve_precision(config["precision"], device, allowed=ARCHITECTURES["fast"].bf16)
    train, valid = ((x.to(device), y.to(device)) for x, y in sets)
    torch.manual_seed(seed)
    model = build_model("fast", **config["model"]).to(device)
    compile_seconds = 0.0
    if compiled:  # compiled and warmed up on a throw-away copy's first steps, the time counted apart
        start = time.perf_counter()
        model = torch.compile(model)
        warm = FitSettings.from_block({**config, "epochs": 1}, precision=precision, progress_bar=False)
        fit(model, (train[0][:1024], train[1][:1024]), None, warm, log=lambda _: None)
        synchronize(device)
        compile_seconds = time.perf_counter() - start
        torch.manual_seed(seed)
        model._orig_mod.load_state_dict(build_model("fast", **config["model"]).state_dict())
    synchronize(device)
    start = time.perf_counter()
    reached: dict = {}

    def on_epoch(stats) -> None:
        synchronize(device)
        if stats.accuracy >= target and not reached:
            reached.update(epoch=stats.epoch + 1, seconds=time.perf_counter() - start)

    settings = FitSettings.from_block(config, precision=precision, progress_bar=False)
    history = fit(model, train, valid, settings, log=lambda _: None, on_epoch=on_epoch)
    synchronize(device)
    seconds = time.perf_counter() - start
    shifted = class_probabilities(model, valid[0], test_time_shifts=True, precision=precision)
    return {
        "precision": precision,
        "epochs": config["epochs"],
        "batch": config["batch_size"],
        "seconds": seconds,
        "reached": reached,
        "accuracy": history[-1].accuracy,
        "with_shifts": (shifted.argmax(1) == valid[1]).float().mean().item(),
        "compile_seconds": compile_seconds,
    }


def figures(runs: list[dict], key: str) -> str:
    return " ".join(f"{run[key]:.4f}" for run in runs)


def fast_to_target(device: torch.device, sets: tuple, seeds: int, target: float, compiled: bool) -> None:
    """Sections 2 and 3: the fast recipe (and larger batches) over seeds."""
    variants = [(label + (", compiled" if compiled else ""), changes) for label, changes in FAST_VARIANTS]
    for label, changes in variants[:1] if compiled else variants:
        runs = [to_target(device, sets, changes, seed, target, compiled) for seed in range(seeds)]
        first = runs[0]
        reached = [r["reached"]["seconds"] for r in runs if r["reached"]]
        if len(reached) == len(runs):
            at = f"{target} reached at {statistics.median(reached):.2f} s (median)"
        else:
            at = f"{target} reached by {len(reached)} of {len(runs)} seeds"
        print(
            f"{device.type:>4} fast, {label:<30} {first['precision']}, batch {first['batch']}, {first['epochs']} epochs: "
            f"training {statistics.median(r['seconds'] for r in runs):.2f} s (median), {at}; "
            f"accuracy {figures(runs, 'accuracy')}, with test-time shifts {figures(runs, 'with_shifts')}"
            + (f"; compile {statistics.median(r['compile_seconds'] for r in runs):.1f} s" if compiled else ""),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA where there is one), cpu, cuda:N")
    parser.add_argument("--rows", type=int, default=42_000, help="labelled rows (default: Kaggle's 42,000)")
    parser.add_argument("--epochs", type=int, default=5, help="section 1's epochs")
    parser.add_argument("--seeds", type=int, default=3, help="section 2's seeds per variant")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--compile", action="store_true", help="section 3: the block under torch.compile")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"device {args.device} -> {device}{name}; cpu: {cpu()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    sets = data(args.rows)
    print(f"{len(sets[0][0]):,} training rows, {len(sets[1][0]):,} validation rows (split by source digit)")
    print("\n1. seconds per epoch, the whole data set on the device", flush=True)
    for where in [device, torch.device("cpu")] if device.type == "cuda" else [device]:
        per_epoch(where, sets, args.epochs)
    print(f"\n2. the fast recipe to {args.target}, {args.seeds} seeds each", flush=True)
    fast_to_target(device, sets, args.seeds, args.target, compiled=False)
    if args.compile:
        print("\n3. the fast block under torch.compile (compile and warm-up timed apart)", flush=True)
        fast_to_target(device, sets, args.seeds, args.target, compiled=True)


if __name__ == "__main__":
    main()

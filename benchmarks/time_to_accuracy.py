"""Time to 0.99 validation accuracy on Kaggle-sized input: fp32 and bf16, one and all threads, quiet and busy.

    python benchmarks/time_to_accuracy.py                 # fast, conv and cnn: the eight settings each
    python benchmarks/time_to_accuracy.py --arch fast --quiet-only --settings fp32-2,bf16-2 --seed 1
    python benchmarks/time_to_accuracy.py --arch cnn --set epochs=8 --set precision=fp32 --full   # a candidate
    python benchmarks/time_to_accuracy.py --arch cnn --sample 42 --full --settings bf16-1   # the sample's split
    python benchmarks/time_to_accuracy.py --rows 4000 --epochs 1 --settings fp32-1   # a quick look

The data: the 42,000 labelled rows of `kaggle_sized.py` (shifted copies of the embedded sample's
4,000 digits), split by *source digit*: the copies of a fifth of the sample's digits form the
validation set, so no validation digit is a shifted copy of a training one. `--sample SEED`
trains on the embedded sample instead, split as the pipeline splits it with `split.seed` SEED.
The training: the project's own `fit` with each architecture's block of conf/base and conf/kaggle's
changes to it (the cnn: 4 epochs, one-cycle over the 4; fast: 2, one validation pass after the
last; conf/base's alone with `--sample`), changed by `--set KEY=VALUE`, validated after the epochs
the block says (`validate_every`); a setting stops once it reaches the target (`--full`: trains
on). The accuracy after each epoch ("-": not validated) is the model's own; where the block
predicts with test-time shifts, the last model's accuracy with them follows in brackets, and for
a bf16 training the same model's predictions in bf16 (what the pipeline's metrics node reports):
their accuracy, how many digits they read otherwise than float32 did, the seconds of both.

Each setting runs in a fresh process (OpenMP reads its environment once). "busy" starts a second
process beside it that multiplies 1024x1024 matrices with two torch threads. Prints the CPU model
and flags, torch's parallel setup, then per setting: seconds per epoch (median), the epoch and the
seconds of training (validation passes included) at which the target was first reached.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).parent))

from threads import COMPETITOR, cpu  # noqa: E402

SETTINGS = {  # name: (precision, threads)
    "fp32-1": ("fp32", 1),
    "fp32-2": ("fp32", 2),
    "bf16-1": ("bf16", 1),
    "bf16-2": ("bf16", 2),
}


def block(
    arch: str, epochs: int | None, seed: int | None = None, changes: list[str] = (), kaggle_epochs: bool = True
) -> dict:
    """conf/base's block of ``arch`` with conf/kaggle's changes (or ``epochs``), the defaults of config.py filled in.

    ``kaggle_epochs=False`` keeps conf/base's block (the embedded sample's).
    ``changes``: ``key=value`` overrides of the block, the value read as YAML (``lr=0.02``,
    ``augment=null``, ``model={widths: [16, 16, 32]}``): a candidate recipe, checked as a block is.
    """
    from digit_recognizer.config import TrainingConfig

    base = yaml.safe_load((ROOT / "conf" / "base" / "parameters_training.yml").read_text())[arch]
    kaggle = yaml.safe_load((ROOT / "conf" / "kaggle" / "parameters.yml").read_text()).get(arch, {})
    values = {**base, **(kaggle if kaggle_epochs else {})}
    values["epochs"] = epochs or values.get("epochs")
    if seed is not None:
        values["seed"] = seed
    for change in changes:
        key, _, value = change.partition("=")
        values[key] = yaml.safe_load(value)
    return TrainingConfig.model_validate(values).model_dump()


def sample_split(split_seed: int):
    """The embedded sample's 4,000 labelled digits, split as the pipeline splits them (``split.seed``)."""
    import numpy as np
    import pandas as pd
    import torch
    from kaggle_sized import PIXELS, SAMPLE
    from sklearn.model_selection import train_test_split

    sample = pd.read_csv(SAMPLE / "train.csv")
    pixels, labels = sample[PIXELS].to_numpy(dtype=np.float32) / 255, sample["label"].to_numpy()
    rows = np.arange(len(labels))
    train_rows, valid_rows = train_test_split(rows, test_size=0.2, stratify=labels, random_state=split_seed)

    def tensors(chosen):
        return torch.from_numpy(pixels[chosen]).reshape(-1, 1, 28, 28), torch.from_numpy(labels[chosen]).long()

    return tensors(train_rows), tensors(valid_rows)


def data(rows: int, seed: int = 0):
    """Kaggle-sized labelled rows, split by source digit (80 / 20), as [0, 1] image tensors."""
    import numpy as np
    import pandas as pd
    import torch
    from kaggle_sized import PIXELS, SAMPLE, shifted_copies

    sample = pd.read_csv(SAMPLE / "train.csv")
    pixels, labels = sample[PIXELS].to_numpy(dtype=np.uint8), sample["label"].to_numpy()
    images, picks = shifted_copies(pixels, rows, np.random.default_rng(seed))
    held_out = np.random.default_rng(1).permutation(len(pixels))[: len(pixels) // 5]
    valid = np.isin(picks, held_out)

    def tensors(chosen):
        x = torch.from_numpy(images[chosen].astype(np.float32) / 255).reshape(-1, 1, 28, 28)
        return x, torch.from_numpy(labels[picks[chosen]]).long()

    return tensors(~valid), tensors(valid)


def train(
    precision: str,
    threads: int,
    rows: int,
    epochs: int | None,
    target: float,
    arch: str,
    seed: int | None,
    changes: list[str] = (),
    sample: int | None = None,
    full: bool = False,
) -> dict:
    """One setting, in this process: the epochs it ran and when it reached ``target``."""
    import torch

    from digit_recognizer.ml.registry import build_model
    from digit_recognizer.ml.training import FitSettings, class_probabilities, fit

    torch.set_num_threads(threads)
    config = block(arch, epochs, seed, changes, kaggle_epochs=sample is None)
    train_set, valid_set = data(rows) if sample is None else sample_split(sample)
    torch.manual_seed(config["seed"])
    model = build_model(config["architecture"], **config["model"])
    start = time.perf_counter()
    reached = {}

    def on_epoch(stats) -> bool:
        if stats.accuracy >= target and not reached:
            reached.update(epoch=stats.epoch + 1, seconds=time.perf_counter() - start)
        return bool(reached) and not full

    history = fit(
        model,
        train_set,
        valid_set,
        FitSettings.from_block(config, precision=precision, progress_bar=False),
        log=lambda line: print(line, file=sys.stderr),
        on_epoch=on_epoch,
    )
    shifted, in_bf16 = None, None
    if config["test_time_shifts"]:  # what the pipeline's metrics node reports: the mean over five shifted views
        views = {}
        for inference in ("fp32", "bf16") if precision == "bf16" else ("fp32",):  # a bf16 model predicts in bf16
            start = time.perf_counter()
            probabilities = class_probabilities(model, valid_set[0], test_time_shifts=True, precision=inference)
            views[inference] = (probabilities.argmax(1), time.perf_counter() - start)
        shifted = (views["fp32"][0] == valid_set[1]).float().mean().item()
        if "bf16" in views:
            in_bf16 = {
                "accuracy": (views["bf16"][0] == valid_set[1]).float().mean().item(),
                "differ": int((views["bf16"][0] != views["fp32"][0]).sum()),
                "seconds": (views["fp32"][1], views["bf16"][1]),
            }
    return {
        "with_shifts": shifted,
        "in_bf16": in_bf16,
        "train_rows": len(train_set[0]),
        "valid_rows": len(valid_set[0]),
        "epoch_seconds": [h.time for h in history],
        "accuracy": [h.accuracy for h in history],
        "reached": reached,
    }


def run_setting(name: str, busy: bool, arch: str, args: argparse.Namespace) -> dict:
    precision, threads = SETTINGS[name]
    command = [sys.executable, __file__, "--child", name, "--rows", str(args.rows), "--target", str(args.target)]
    command += ["--arch", arch] + (["--epochs", str(args.epochs)] if args.epochs else [])
    command += ["--seed", str(args.seed)] if args.seed is not None else []
    command += [f"--set={change}" for change in args.set]
    command += (["--sample", str(args.sample)] if args.sample is not None else []) + (["--full"] if args.full else [])
    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR]) if busy else None
    try:
        if competitor:
            time.sleep(2)  # let it spin up
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        if competitor:
            competitor.kill()
            competitor.wait()
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=42_000, help="labelled rows (default: Kaggle's 42,000)")
    parser.add_argument(
        "--arch", default="fast,conv,cnn", help="the parameter blocks to train (default: fast,conv,cnn)"
    )
    parser.add_argument("--epochs", type=int, help="the one-cycle schedule's length (default: conf/kaggle's)")
    parser.add_argument("--seed", type=int, help="the block's seed instead of its own")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument(
        "--sample",
        type=int,
        metavar="SPLIT_SEED",
        help="the embedded sample, split as the pipeline does with this seed",
    )
    parser.add_argument("--full", action="store_true", help="train every epoch, past the target")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="change the block: lr=0.02, augment=null, ..."
    )
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {', '.join(SETTINGS)}")
    parser.add_argument("--quiet-only", action="store_true", help="skip the runs beside a competing job")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        precision, threads = SETTINGS[args.child]
        result = train(
            precision,
            threads,
            args.rows,
            args.epochs,
            args.target,
            args.arch,
            args.seed,
            args.set,
            args.sample,
            args.full,
        )
        print(json.dumps(result))
        return

    import torch

    print(f"cpu: {cpu()}")
    print(f"python {platform.python_version()}, torch {torch.__version__}")
    print(torch.__config__.parallel_info().strip())
    seed = "" if args.seed is None else f", seed {args.seed}"
    changed = f", changed: {', '.join(args.set)}" if args.set else ""
    where = "conf/kaggle's changes" if args.sample is None else f"the sample's epochs, split.seed {args.sample}"
    print(f"conf/base blocks with {where}{seed}{changed}; target {args.target} validation accuracy")
    print()
    header = (
        f"{'arch':<6}{'epochs':>7}  {'setting':<18}{'train rows':>11}{'s/epoch':>9}{'reached at':>12}{'seconds':>9}"
        "  accuracy after each epoch"
    )
    print(header, flush=True)
    for arch in args.arch.split(","):
        epochs = block(arch, args.epochs, kaggle_epochs=args.sample is None)["epochs"]
        for busy in (False,) if args.quiet_only else (False, True):
            for name in args.settings.split(","):
                result = run_setting(name, busy, arch, args)
                precision, threads = SETTINGS[name]
                label = f"{precision} {threads}t {'busy' if busy else 'quiet'}"
                reached = result["reached"]
                at = f"epoch {reached['epoch']}" if reached else "not reached"
                seconds = f"{reached['seconds']:.1f}" if reached else "-"
                accuracy = " ".join("-" if a != a else f"{a:.4f}" for a in result["accuracy"])  # NaN: skipped
                if result["with_shifts"] is not None:
                    accuracy += f" (with test-time shifts {result['with_shifts']:.4f}"
                    if result["in_bf16"]:  # the same model predicting in bf16, as the pipeline's nodes do
                        bf16 = result["in_bf16"]
                        accuracy += (
                            f"; predicted in bf16 {bf16['accuracy']:.4f}, {bf16['differ']} digits differ,"
                            f" {bf16['seconds'][0]:.1f} s -> {bf16['seconds'][1]:.1f} s"
                        )
                    accuracy += ")"
                per_epoch = statistics.median(result["epoch_seconds"])
                print(
                    f"{arch:<6}{epochs:>7}  {label:<18}{result['train_rows']:>11,}{per_epoch:>9.1f}{at:>12}"
                    f"{seconds:>9}  {accuracy}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

"""A cnn training step under each thread setting and precision, quiet and beside a competing torch job.

    python benchmarks/threads.py            # 30 timed steps per setting (after 5 warm-up steps)
    python benchmarks/threads.py --steps 5  # a quick look

Each setting runs in a fresh process (OpenMP reads its environment once), on the same batches:
cnn, batch 128, channels_last, SGD, a real training step (forward, loss, backward, update).
"Busy" starts a second process beside it that multiplies matrices with two torch threads, as a
test suite or another training does. Prints the CPU (model, flags that matter), torch's parallel
setup, then the median milliseconds per step of each setting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

STEP = r"""
import json, sys, time, torch
sys.path.insert(0, {src!r})
from digit_recognizer.ml.models import build_model
torch.set_num_threads({threads})
if {interop}:
    torch.set_num_interop_threads({interop})
torch.manual_seed(0)
model = build_model("cnn")
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
images, labels = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
times = []
for step in range({warmup} + {steps}):
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled={bf16}):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    times.append(time.perf_counter() - start)
print(json.dumps(times[{warmup}:]))
"""

COMPETITOR = "import torch\ntorch.set_num_threads(2)\na = torch.rand(1024, 1024)\nwhile True:\n    a @ a\n"


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    shown = [flag for flag in flags if flag.startswith(("amx", "avx512_bf16", "avx512f", "avx2"))]
    return f"{model}; flags: {' '.join(shown) or 'none of avx2/avx512/amx'}; {os.cpu_count()} CPUs"


def step_ms(threads: int, bf16: bool, steps: int, env: dict[str, str], interop: int = 0) -> float:
    src = str(Path(__file__).resolve().parents[1] / "src")
    code = STEP.format(src=src, threads=threads, bf16=bf16, warmup=5, steps=steps, interop=interop)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return statistics.median(json.loads(out)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    import torch

    print(f"cpu: {cpu()}")
    print(f"python {platform.python_version()}, torch {torch.__version__}")
    print(torch.__config__.parallel_info().strip())
    print()
    settings = [  # name, threads, environment, inter-op threads (0: torch's default)
        ("1 thread", 1, {}, 0),
        ("2 threads", 2, {}, 0),
        ("2 threads, OMP_WAIT_POLICY=PASSIVE", 2, {"OMP_WAIT_POLICY": "PASSIVE"}, 0),
        ("2 threads, 1 inter-op thread", 2, {}, 1),
    ]
    print(f"{'ms per cnn step (median)':<40}{'fp32 quiet':>11}{'fp32 busy':>11}{'bf16 quiet':>11}{'bf16 busy':>11}")
    for name, threads, extra, interop in settings:
        env = {**os.environ, **extra}
        row = []
        for busy in (False, True):
            competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR]) if busy else None
            try:
                if competitor:
                    time.sleep(2)  # let it spin up
                row.append([step_ms(threads, bf16, args.steps, env, interop) for bf16 in (False, True)])
            finally:
                if competitor:
                    competitor.kill()
                    competitor.wait()
        (fq, bq), (fb, bb) = row
        print(f"{name:<40}{fq:>11.1f}{fb:>11.1f}{bq:>11.1f}{bb:>11.1f}")


if __name__ == "__main__":
    main()

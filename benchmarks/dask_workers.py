"""The default pipeline (every architecture, the sample) on a Dask cluster of one worker and of two.

    python benchmarks/dask_workers.py              # one round of each
    python benchmarks/dask_workers.py --rounds 3   # alternated, medians

A ``dask scheduler`` and N ``dask worker --nthreads 1`` processes on this machine (stopped by
process group afterwards), then ``kedro run --runner ...DaskRunner`` with
``DASK_SCHEDULER_ADDRESS`` pointing at it; Kedro's SequentialRunner on the same job beside it.
Prints the CPU and torch's parallel setup, then each configuration's whole-process seconds. Outputs and runs go to the project's data folder (the workers
share this disk); ``kedro runs retention --keep 5`` trims them afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PROJECT_ROOT  # noqa: E402
from threads import cpu  # noqa: E402

DASK = str(Path(sys.executable).parent / "dask")
RUNNER = "digit_recognizer.framework.dask_runner.DaskRunner"


def start_cluster(workers: int) -> tuple[str, list[subprocess.Popen]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    processes = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port)], **quiet)]
    for k in range(workers):
        command = [DASK, "worker", address, "--nthreads", "1", "--no-dashboard", "--name", f"worker-{k + 1}"]
        processes.append(subprocess.Popen(command, **quiet))
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, processes


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)


def kedro_run(extra: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kedro", "run", *extra], cwd=PROJECT_ROOT, env=env, check=True, capture_output=True
    )
    seconds = time.perf_counter() - started
    newest = max((PROJECT_ROOT / "data" / "runs").glob("*/run.json"), key=lambda p: p.parent.name)
    return seconds, json.loads(newest.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    import torch

    print(cpu())
    print(torch.__config__.parallel_info().strip())
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")} | {"DO_NOT_TRACK": "1"}
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        seconds, _ = kedro_run([], env)
        results.setdefault("SequentialRunner", []).append(seconds)
        for workers in (1, 2):
            address, processes = start_cluster(workers)
            try:
                seconds, _ = kedro_run(["--runner", RUNNER], {**env, "DASK_SCHEDULER_ADDRESS": address})
            finally:
                stop(processes)
            name = f"DaskRunner, {workers} worker{'s' if workers > 1 else ''}"
            results.setdefault(name, []).append(seconds)
    print(f"\nkedro run (every architecture on the sample), {args.rounds} round(s), whole process:")
    for name, seconds in results.items():
        print(f"  {name:<26} {statistics.median(seconds):6.1f} s  (each: {', '.join(f'{s:.1f}' for s in seconds)})")


if __name__ == "__main__":
    main()

"""`kedro run --pipeline conv` with its outputs and runs (data_root) on the local disk and on an S3 endpoint, like for like.

    python benchmarks/object_store.py                # the sample, then Kaggle-sized input (conv, 5 epochs)
    python benchmarks/object_store.py --sample-only --by-part   # and what each request was for

The S3 endpoint is moto's server on 127.0.0.1 (moto[server], installed by `.[test]`), so the
figures say what the project adds on an object store (requests, bytes, the client's work), not
what a real bucket's network costs. Each job runs once per backend, alternated; prints the CPU,
then per input and backend: whole-process seconds, bytes written and the S3 requests made, by kind.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PROJECT_ROOT, kaggle_sized_dir
from threads import cpu

# a request line of moto's server log; werkzeug colours some (DELETE's 204, the 4xx answers) with ANSI codes
REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)*(GET|PUT|POST|HEAD|DELETE) ([^ "]*)[^"]*" (\d{3})')


def part(path: str, root: str) -> str:
    """What a request was for: the run store, an output, the store probe, or a listing of the bucket."""
    key = path.split("?", 1)[0].removeprefix(f"/{root.removeprefix('s3://')}/")
    if key.startswith("/"):
        return "listing"
    return "probe" if key.startswith(".probe/") else ("run store" if key.startswith("runs/") else "output")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def data_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-only", action="store_true")
    parser.add_argument("--by-part", action="store_true", help="break the requests down by what they were for")
    args = parser.parse_args()
    print(f"cpu: {cpu()}")
    credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    port = free_port()
    with tempfile.TemporaryDirectory() as temporary:
        log_path = Path(temporary) / "moto.log"
        with open(log_path, "w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **credentials},
            )
        try:
            time.sleep(3)
            endpoint = f"http://127.0.0.1:{port}"
            env = {**os.environ, **credentials, "AWS_ENDPOINT_URL": endpoint, "DO_NOT_TRACK": "1"}
            import boto3

            s3 = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            s3.create_bucket(Bucket="bench")
            inputs = [("sample", str(PROJECT_ROOT / "data" / "01_raw"), "conv.epochs=5")]
            if not args.sample_only:
                inputs.append(("Kaggle-sized", str(kaggle_sized_dir()), "conv.epochs=5"))
            print(f"{'input':<14}{'backend':<9}{'seconds':>9}{'MB written':>12}{'S3 requests':>13}  by kind")
            for name, raw, params in inputs:
                for backend in ("local", "s3"):
                    root = "data" if backend == "local" else f"s3://bench/{name.lower().replace(' ', '-')}"
                    before_local = data_bytes(PROJECT_ROOT / "data")
                    before_objects = sum(o["Size"] for o in _objects(s3))
                    before_log = log_path.read_text().splitlines()  # after this script's own listing
                    start = time.perf_counter()
                    result = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "kedro",
                            "run",
                            "--pipeline",
                            "conv",
                            "--params",
                            f"raw_dir={raw},{params},conv.augment=null,data_root={root}",
                        ],
                        cwd=PROJECT_ROOT,
                        env=env,
                        capture_output=True,
                        text=True,
                    )
                    seconds = time.perf_counter() - start
                    if result.returncode != 0:
                        raise SystemExit(result.stderr[-3000:])
                    answered = [
                        (m.group(1), part(m.group(2), root), m.group(3))
                        for line in log_path.read_text().splitlines()[len(before_log) :]
                        if (m := REQUEST.search(line))
                    ]
                    requests = [kind for kind, _, _ in answered]
                    refused = sum(status.startswith("4") for _, _, status in answered)
                    written = (data_bytes(PROJECT_ROOT / "data") - before_local) + (
                        sum(o["Size"] for o in _objects(s3)) - before_objects
                    )
                    kinds = ", ".join(f"{k} {v}" for k, v in collections.Counter(requests).most_common())
                    kinds += f"; {refused} answered 4xx (absent, or a condition not met)" if refused else ""
                    print(
                        f"{name:<14}{backend:<9}{seconds:>9.1f}{written / 1e6:>12.1f}{len(requests):>13}  {kinds}",
                        flush=True,
                    )
                    if args.by_part and answered:
                        for (what, kind, status), count in sorted(
                            collections.Counter((w, k, s) for k, w, s in answered).items(), key=lambda i: -i[1]
                        ):
                            print(f"{'':<23}{count:>5}  {what}: {kind} answered {status}")
        finally:
            server.terminate()
            server.wait()


def _objects(s3) -> list[dict]:
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench"):
        found += page.get("Contents", [])
    return found


if __name__ == "__main__":
    main()

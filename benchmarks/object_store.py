"""`kedro run --pipeline conv` with its outputs and runs (data_root) on the local disk and on an S3 endpoint, like for like.

    python benchmarks/object_store.py                # the sample, then Kaggle-sized input (conv, 5 epochs)
    python benchmarks/object_store.py --sample-only

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

REQUEST = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) ')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def data_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-only", action="store_true")
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
                    requests = [
                        m.group(1)
                        for line in log_path.read_text().splitlines()[len(before_log) :]
                        if (m := REQUEST.search(line))
                    ]
                    written = (data_bytes(PROJECT_ROOT / "data") - before_local) + (
                        sum(o["Size"] for o in _objects(s3)) - before_objects
                    )
                    kinds = ", ".join(f"{k} {v}" for k, v in collections.Counter(requests).most_common())
                    print(
                        f"{name:<14}{backend:<9}{seconds:>9.1f}{written / 1e6:>12.1f}{len(requests):>13}  {kinds}",
                        flush=True,
                    )
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

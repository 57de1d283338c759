"""Checks that a DAG run whose tasks ran on several hosts that share only a bucket is one complete run.

    pip install -e ".[test]"     # once: kedro-airflow (to make the DAG) and the [s3] extra
    # several "hosts" on this machine (as root: unshare -u gives each its own hostname):
    python scripts/check_shared_bucket.py --data-root s3://my-bucket/digit-recognizer [--hosts 2] [--epochs 1]
    # what a real Airflow deployment (workers on several machines) left in the bucket:
    python scripts/check_shared_bucket.py --data-root s3://my-bucket/digit-recognizer --dag-run latest

The bucket is reached as s3fs reaches it (``AWS_*`` variables, ``AWS_ENDPOINT_URL`` for an
S3-compatible server, ``~/.aws``). With ``--hosts N`` (the default, 2) it

1. makes the conv DAG with the project's template (``kedro airflow create --pipelines conv --env
   airflow --group-by memory``) and reads its tasks, as a scheduler would run them;
2. gives each host its own folder: a copy of the project's code, configuration and raw files
   (what a worker's image holds) and an empty working directory; nothing of one host's disk is
   seen by another, only the bucket is shared;
3. opens the run on a "scheduler" host, runs each task in its own process on host ``worker-K``
   (round robin, ``unshare -u``), closes the run on the scheduler, and checks it (below);
4. opens a second run, kills its training task with SIGKILL on ``worker-2`` while it holds its
   lease, and checks that the close step finds the task dead once its lease expired, aborts the
   run and leaves nothing of it in the bucket, while the first run stays the latest.

With ``--dag-run ID`` (an Airflow DAG run id, or ``latest``) it only checks what that DAG run
left in the bucket: one complete run record, every node of the DAG, every output present under
the run's version, no open or dead run left, the page naming the run, and on which hosts its
tasks ran. Exit status: 0 when every check passes, 1 when one fails, 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PIPELINE, ENV = "conv", "airflow"
ROOT = Path(__file__).resolve().parents[1]


def _fail(message: str) -> int:
    print(f"FAILED: {message}", file=sys.stderr)
    return 1


def _host(base: Path, project: Path, name: str) -> tuple[Path, Path]:
    """A host's own project copy (code, configuration, raw files) and its empty working directory."""
    copy, work = base / name / "project", base / name / "work"
    work.mkdir(parents=True)
    copy.mkdir()
    for item in ("pyproject.toml", "conf", "src", "templates"):
        source = project / item
        ignore = shutil.ignore_patterns("__pycache__", "local")  # conf/local (and its credentials) stays behind
        shutil.copytree(source, copy / item, ignore=ignore) if source.is_dir() else shutil.copy(source, copy / item)
    (copy / "conf" / "local").mkdir(exist_ok=True)
    shutil.copytree(project / "data" / "01_raw", copy / "data" / "01_raw")
    return copy, work


def _on_host(name: str, host: tuple[Path, Path], code: str, env: dict[str, str]) -> subprocess.Popen:
    """``python -c code`` in a process of its own with hostname ``name`` (unshare -u), in the host's folders."""
    project, work = host
    command = ["unshare", "-u", "sh", "-c", f'hostname {name} && exec "$0" "$@"', sys.executable, "-c", code]
    env = {**env, "DIGIT_RECOGNIZER_PROJECT": str(project)}
    return subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _task_code(run_id: str, nodes: list[str], params: dict) -> str:
    return (
        "from digit_recognizer.scheduled import run_task; "
        f"run_task({run_id!r}, {PIPELINE!r}, {nodes!r}, {ENV!r}, {params!r})"
    )


def _dag(project: Path, folder: Path) -> tuple[dict[str, list[str]], list[str]]:
    """The conv DAG's tasks (task → nodes) from the project's template, and the task ids in an order they can run."""
    from digit_recognizer.integrations.airflow import dag_tasks
    from digit_recognizer.pipeline_registry import register_pipelines

    result = subprocess.run(
        [sys.executable, "-m", "kedro", "airflow", "create", "--pipelines", PIPELINE, "--env", ENV]
        + ["--group-by", "memory", "-j", str(project / "templates" / "airflow_dag.j2"), "-t", str(folder)],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "DO_NOT_TRACK": "1"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"kedro airflow create failed:\n{result.stderr[-3000:]}")
    [dag_file] = folder.glob("*.py")
    tasks = dag_tasks(dag_file)
    order = [node.name for node in register_pipelines()[PIPELINE].nodes]  # a topological order
    return tasks, sorted(tasks, key=lambda task: min(order.index(n) for n in tasks[task]))


def check_run(store, record, nodes: list[str] | None = None) -> list[str]:
    """What is wrong with a DAG run's record in the bucket (nothing: an empty list)."""
    from digit_recognizer.runstore import RunState, locations

    problems = []
    run_id = record.run_id
    if nodes is not None and sorted(record.nodes) != sorted(nodes):
        problems.append(f"the record's nodes {record.nodes} are not the DAG's {sorted(nodes)}")
    for name, path in record.outputs.items():
        if not locations.is_url(path):
            problems.append(f"{name} was written to a host's disk ({path}), not the bucket")
        elif f"/{run_id}/" not in path:
            problems.append(f"{name} is not under the run's version {run_id}: {path}")
        elif not locations.exists(path):
            problems.append(f"{name} is missing from the bucket: {path}")
    left = [f"{run} ({state.value})" for run, state in store.runs() if state in (RunState.OPEN, RunState.DEAD)]
    if left:
        problems.append(f"runs left open or dead in the store: {', '.join(left)}")
    submission = locations.read_bytes(record.outputs.get(f"{PIPELINE}.submission", "s3://missing/none"))
    rows = list(csv.reader(io.StringIO(submission.decode()))) if submission else []
    if not rows or rows[0] != ["ImageId", "Label"] or len(rows) < 2:
        problems.append("the submission is missing or has no ImageId,Label rows")
    page = locations.read_bytes(record.outputs.get("run_report", "s3://missing/none"))
    if page is None or run_id not in page.decode("utf-8"):
        problems.append(f"close-run wrote no page naming run {run_id}")
    if store.latest() is None or store.latest().run_id != run_id:
        problems.append(f"run {run_id} is not the latest complete run")
    return problems


def _describe(record) -> None:
    hosts = sorted({part["host"] for part in record.parts or []})
    print(f"run {record.run_id}: {len(record.nodes)} nodes in {len(record.parts or [])} tasks on {', '.join(hosts)}")
    for part in record.parts or []:
        print(f"  {part['host']:<12} {part['part']:<40} {len(part['nodes'])} nodes")
    print(f"  record: {record.run_id}/run.json; page: {record.outputs.get('run_report')}")


def check_dag_run(data_root: str, dag_run: str) -> int:
    from digit_recognizer.runstore import RunStore

    store = RunStore.at(ROOT, data_root)
    records = [r for r in store.complete() if r.scheduler]
    if dag_run != "latest":
        records = [r for r in records if (r.scheduler or {}).get("dag_run_id") == dag_run]
    if not records:
        return _fail(f"no complete run of a scheduler {'' if dag_run == 'latest' else dag_run} under {store.root}")
    record = records[0]
    problems = check_run(store, record)
    if problems:
        return _fail("; ".join(problems))
    _describe(record)
    print("OK")
    return 0


def simulate(data_root: str, hosts: int, epochs: int, kill: bool) -> int:
    from digit_recognizer.runstore import RunStore
    from digit_recognizer.scheduled import close_run, open_run

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("--hosts needs root and unshare (util-linux) to give each host its own hostname", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="shared-bucket-"))
    try:
        tasks, order = _dag(ROOT, base / "dags")
        machines = {f"worker-{k + 1}": _host(base, ROOT, f"worker-{k + 1}") for k in range(hosts)}
        scheduler = _host(base, ROOT, "scheduler")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEDRO", "DIGIT_RECOGNIZER_RUN"))}
        env["DO_NOT_TRACK"] = "1"
        params = {f"{PIPELINE}.epochs": epochs, "data_root": data_root}
        nodes = [n for task in order for n in tasks[task]]
        store = RunStore.at(scheduler[0], data_root)

        os.chdir(scheduler[1])
        started = time.perf_counter()
        run_id = open_run(PIPELINE, nodes, ENV, params, {"name": "check_shared_bucket.py"}, project=scheduler[0])
        print(f"opened run {run_id} in {store.root} ({len(order)} tasks, {hosts} hosts)")
        for position, task in enumerate(order):
            name = f"worker-{position % hosts + 1}"
            task_started = time.perf_counter()
            child = _on_host(name, machines[name], _task_code(run_id, tasks[task], params), env)
            _, stderr = child.communicate(timeout=1800)
            if child.returncode != 0:
                return _fail(f"task {task} on {name} exited with {child.returncode}:\n{stderr[-3000:]}")
            print(f"  {name:<10} {task:<44} {time.perf_counter() - task_started:5.1f} s")
        path = close_run(run_id, project=scheduler[0], env=ENV, params=params)
        print(f"closed on the scheduler in {time.perf_counter() - started:.1f} s in all: {path}")
        record = store.record(run_id)
        problems = check_run(store, record, nodes)
        hosts_used = {part["host"] for part in record.parts or []}
        if hosts_used != set(machines):
            problems.append(f"the parts ran on {sorted(hosts_used)}, not on {sorted(machines)}")
        for name, (project, work) in {**machines, "scheduler": scheduler}.items():
            written = [p for p in (project / "data").rglob("*") if p.is_file() and "01_raw" not in p.parts]
            written += [p for p in work.rglob("*") if p.is_file()]
            if written:
                problems.append(f"{name} wrote to its own disk: {[str(p) for p in written[:3]]}")
        if problems:
            return _fail("; ".join(problems))
        _describe(record)

        if kill:
            code = _kill_a_task(store, tasks, order, machines, env, scheduler, params, epochs, run_id)
            if code:
                return code
        print("OK")
        return 0
    finally:
        os.chdir(ROOT)
        shutil.rmtree(base, ignore_errors=True)


def _kill_a_task(store, tasks, order, machines, env, scheduler, params, epochs, complete_run) -> int:
    """A second run whose training task is killed on a worker: found dead by its lease, aborted at close."""
    from digit_recognizer.runstore import RunIncompleteError, locations
    from digit_recognizer.runstore.objects import lease_state
    from digit_recognizer.scheduled import close_run, open_run

    nodes = [n for task in order for n in tasks[task]]
    run_id = open_run(PIPELINE, nodes, ENV, params, {"name": "check_shared_bucket.py"}, project=scheduler[0])
    training = next(task for task in order if f"{PIPELINE}.train_model" in tasks[task])
    names = sorted(machines)
    for position, task in enumerate(order[: order.index(training)]):
        name = names[position % len(names)]
        child = _on_host(name, machines[name], _task_code(run_id, tasks[task], params), env)
        if child.wait(timeout=1800) != 0:
            return _fail(f"task {task} on {name} failed: {child.stderr.read()[-3000:]}")
    victim = names[-1]
    longer = {**params, f"{PIPELINE}.epochs": 500}
    child = _on_host(victim, machines[victim], _task_code(run_id, tasks[training], longer), env)
    lease = f"{run_id}/parts/{min(tasks[training])}.lock"
    deadline = time.monotonic() + 300
    while lease_state(store.backend.objects, lease)[0] != "live" and time.monotonic() < deadline:
        if child.poll() is not None:
            return _fail(f"the training task ended before it could be killed: {child.stderr.read()[-3000:]}")
        time.sleep(0.2)
    state, info = lease_state(store.backend.objects, lease)
    if state != "live" or info.host != victim:
        return _fail(f"the training task's lease is {state} (host {getattr(info, 'host', None)}), not live on {victim}")
    time.sleep(2)  # into its training
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed = time.monotonic()
    print(f"killed task {training} on {victim} (SIGKILL) while it held {store.where(lease)}")
    try:
        close_run(run_id, project=scheduler[0], env=ENV, params=params)
        return _fail(f"close-run committed run {run_id}, whose training task was killed")
    except RunIncompleteError as exc:
        print(f"  close-run, {time.monotonic() - killed:.1f} s after the kill: {exc}")
    fs, path = locations.filesystem(str(store.root))
    fs.invalidate_cache()
    left = [p for p in fs.find(path.rsplit("/", 1)[0]) if run_id in p]
    if left:
        return _fail(f"the aborted run left {len(left)} objects in the bucket, e.g. {left[0]}")
    if store.latest().run_id != complete_run:
        return _fail(f"the latest complete run is {store.latest().run_id}, not {complete_run}")
    print(f"  nothing of run {run_id} is left in the bucket; {complete_run} is still the latest")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="the shared bucket's data root, s3://bucket/prefix")
    parser.add_argument("--hosts", type=int, default=2, help="simulated worker hosts (default 2)")
    parser.add_argument("--epochs", type=int, default=1, help="conv.epochs for the simulated DAG run")
    parser.add_argument("--no-kill", action="store_true", help="skip the killed-task check")
    parser.add_argument("--dag-run", help="only check what this Airflow DAG run (or 'latest') left in the bucket")
    args = parser.parse_args(argv)
    if "://" not in args.data_root:
        parser.error(f"--data-root must be a bucket URL such as s3://bucket/prefix, not {args.data_root!r}")
    sys.path.insert(0, str(ROOT / "src"))
    if args.dag_run:
        return check_dag_run(args.data_root, args.dag_run)
    if args.hosts < 2:
        parser.error("--hosts must be at least 2")
    return simulate(args.data_root, args.hosts, args.epochs, not args.no_kill)


if __name__ == "__main__":
    sys.exit(main())

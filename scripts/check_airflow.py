"""Runs the conv pipeline as an Airflow DAG, from outside the project, and checks what it left.

    pip install -e ".[test]" "apache-airflow==3.3.2" torch==2.13.0   # once; this script installs nothing
    python scripts/check_airflow.py [--epochs 2] [--project PATH] [--data-root s3://bucket/prefix]
    python scripts/check_airflow.py --workers 2 --data-root s3://bucket/prefix [--kill-worker] [--retries 1]

With a fresh Airflow home (a temporary folder, SQLite metadata database) and a working directory
outside the project, it

1. makes the DAG with the project's template: ``kedro airflow create --pipelines conv --env
   airflow --group-by memory -j templates/airflow_dag.j2``;
2. runs ``airflow db migrate``, ``airflow dags reserialize`` and ``airflow dags test`` on
   ``digit-recognizer-conv-airflow``, with ``{"kedro_params": {"conv.epochs": N}}``;
3. checks that every task succeeded, that the DAG run is exactly one complete project run (one
   record, every node of the pipeline, every output under the run's one version, no open run
   left), that its submission is complete (``ImageId,Label``, one row per test row) and that
   ``close-run`` wrote the run's page (the run report, naming the run);
4. prints what each task cost: its time in Airflow beside the time its Kedro nodes took, and
   the start-up of one task in a fresh process, as an Airflow worker pays it for every task.

It writes one complete run into the project's ``data/`` (a real run, like any other), or, with
``--data-root``, into that bucket (the DAG run's ``kedro_params`` carry it: outputs, run store and
page there; credentials as s3fs finds them). Exit status: 0 when every check passes, 1 when one
fails, 2 when Airflow (or, with ``--workers``, what the deployment needs) is not installed.

With ``--workers N`` the DAG runs on a real deployment instead of ``airflow dags test``: Redis,
PostgreSQL, the API server, the scheduler, the DAG processor and N Celery workers, each on a host
of its own with its own project copy (``scripts/airflow_celery.py``); the DAG run is triggered as
a user would (``airflow dags trigger`` with its ``kedro_params``), the raw files and every output
in the bucket. The checks add: the record's ``scheduler`` names the CeleryExecutor, and its parts
ran on every worker. ``--kill-worker`` SIGKILLs the worker that trains conv (its process group)
while it trains: with ``--retries 1`` Airflow runs the task again on another worker and the DAG
run must end as one complete run; with no retry left the close step must abort the run and leave
nothing of it in the bucket.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

PIPELINE, ENV = "conv", "airflow"  # the architecture checked; the DAG's pipeline is --pipeline (conv)
DAG_ID = f"digit-recognizer-{PIPELINE}-{ENV}"
DAG_PIPELINE = PIPELINE
ROOT = Path(__file__).resolve().parents[1]


def _command(
    args: list[str], env: dict[str, str], cwd: Path, timeout: int = 1800, quiet: bool = False
) -> subprocess.CompletedProcess:
    if not quiet:
        print(f"$ {' '.join(args)}", flush=True)
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _json_lines(output: str) -> list[dict]:
    """The JSON list an ``airflow ... -o json`` command printed (among its log lines)."""
    for line in output.splitlines():
        if line.startswith("["):
            return json.loads(line)
    raise ValueError(f"no JSON list in:\n{output[-2000:]}")


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return float("nan")
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _fail(message: str, detail: str = "") -> int:
    print(f"FAILED: {message}", file=sys.stderr)
    if detail:
        print(detail[-6000:], file=sys.stderr)
    return 1


def _fresh_process_startup(project: Path, env: dict[str, str], params: dict) -> tuple[float, float]:
    """Seconds for one small task (conv.summarise_run) in a new process, and its node's seconds.

    The task joins a run of its own, which is aborted afterwards: nothing stays behind.
    """
    sys.path.insert(0, str(project / "src"))
    from digit_recognizer.runstore import RunStore
    from digit_recognizer.scheduled import open_run

    node = f"{PIPELINE}.summarise_run"
    run_id = open_run(PIPELINE, [node], ENV, params, {"name": "check_airflow.py"}, project=project)
    script = (
        "from digit_recognizer.scheduled import run_task; "
        f"run_task({run_id!r}, {PIPELINE!r}, [{node!r}], {ENV!r}, {params!r})"
    )
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=env["HOME_FOR_CHECK"], capture_output=True)
    seconds = time.perf_counter() - started
    store = RunStore.at(project, params.get("data_root"))
    parts = store.parts(run_id)
    store.abort_run(run_id)
    if result.returncode != 0 or not parts:
        raise RuntimeError(f"the fresh-process task failed:\n{result.stderr.decode()[-3000:]}")
    node_seconds = sum(n["seconds"] for part in parts.values() for n in part.timings["nodes"])
    return seconds, node_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT, help="the project folder (default: this checkout)")
    parser.add_argument("--epochs", type=int, default=2, help="conv.epochs for the check's DAG run")
    parser.add_argument("--keep-airflow-home", action="store_true", help="keep the temporary Airflow home")
    parser.add_argument("--data-root", help="run into this bucket (s3://bucket/prefix) instead of the project's data/")
    parser.add_argument("--workers", type=int, default=0, help="run on a CeleryExecutor deployment of N workers")
    parser.add_argument("--kill-worker", action="store_true", help="SIGKILL the worker that trains, as it trains")
    parser.add_argument("--retries", type=int, default=0, help="the DAG's retries per task")
    parser.add_argument("--pipeline", default=PIPELINE, help="the DAG's pipeline (default conv; __default__: all)")
    args = parser.parse_args(argv)
    global DAG_ID, DAG_PIPELINE
    DAG_PIPELINE = args.pipeline
    DAG_ID = f"digit-recognizer-{args.pipeline.strip('_')}-{ENV}"
    project = args.project.resolve()
    if args.workers:
        from airflow_celery import missing

        lacking = missing() + ([] if (args.data_root or "").startswith("s3://") else ["--data-root s3://..."])
        if lacking:
            print(f"--workers needs: {'; '.join(lacking)}", file=sys.stderr)
            return 2

    if shutil.which("airflow", path=str(Path(sys.executable).parent)) is None:
        print(
            "Airflow is not installed beside this Python; install it first:\n"
            '    pip install -e ".[test]" "apache-airflow==3.3.2" torch==2.13.0',
            file=sys.stderr,
        )
        return 2

    home = Path(tempfile.mkdtemp(prefix="airflow-check-"))
    outside = home / "elsewhere"  # the working directory: not the project
    dags = home / "dags"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "KEDRO", "DIGIT_RECOGNIZER"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        DIGIT_RECOGNIZER_PROJECT=str(project),
        HOME_FOR_CHECK=str(outside),
    )
    try:
        if args.workers:
            return _check_on_workers(project, env, home, dags, args)
        return _check(project, env, outside, dags, args.epochs, args.data_root)
    finally:
        if args.keep_airflow_home:
            print(f"Airflow home kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def _make_dag(project: Path, env: dict[str, str], dags: Path, retries: int = 0) -> subprocess.CompletedProcess:
    return _command(
        [sys.executable, "-m", "kedro", "airflow", "create", "--pipelines", DAG_PIPELINE, "--env", ENV]
        + ["--group-by", "memory", "-j", str(project / "templates" / "airflow_dag.j2"), "-t", str(dags)]
        + ["--params", f"retries={retries},retry_delay=0"],
        env,
        project,  # kedro's own CLI needs the project folder; the DAG run below does not
    )


def _check(project: Path, env: dict[str, str], outside: Path, dags: Path, epochs: int, data_root: str | None) -> int:
    airflow = [sys.executable, "-m", "airflow"]
    create = _make_dag(project, env, dags)
    if create.returncode != 0:
        return _fail("kedro airflow create", create.stderr)
    for step in (["db", "migrate"], ["dags", "reserialize"]):
        result = _command(airflow + step, env, outside)
        if result.returncode != 0:
            return _fail(f"airflow {' '.join(step)}", result.stdout + result.stderr)

    started = time.time()
    params = {"data_root": data_root} if data_root else {}
    conf = json.dumps({"kedro_params": {f"{PIPELINE}.epochs": epochs, **params}})
    test = _command(airflow + ["dags", "test", DAG_ID, "-c", conf], env, outside)
    wall = time.time() - started
    if test.returncode != 0:
        return _fail(f"airflow dags test {DAG_ID} exited with {test.returncode}", test.stdout + test.stderr)

    [dag_run] = _json_lines(_command(airflow + ["dags", "list-runs", DAG_ID, "-o", "json"], env, outside).stdout)
    states = _json_lines(
        _command(
            airflow + ["tasks", "states-for-dag-run", DAG_ID, dag_run["run_id"], "-o", "json"], env, outside
        ).stdout
    )
    failed = [f"{t['task_id']}: {t['state']}" for t in states if t["state"] != "success"]
    if dag_run["state"] != "success" or failed:
        return _fail(f"DAG run {dag_run['run_id']} is {dag_run['state']}; tasks not successful: {failed}")

    problem, record, store, tasks = _verify(project, dags, dag_run, data_root, epochs)
    if problem:
        return _fail(problem)
    run_id, dag_nodes = record.run_id, sorted(node for nodes in tasks.values() for node in nodes)
    submission, page = record.outputs[f"{PIPELINE}.submission"], record.outputs.get("run_report")

    node_seconds = {node["node"]: node["seconds"] for node in record.timings["nodes"]}
    print(f"\nDAG run {dag_run['run_id']} = project run {run_id}: {len(states)} tasks, all successful, in {wall:.1f} s")
    print(f"  {'task':<46}{'in Airflow':>12}{'its nodes':>12}")
    for task in states:
        seconds = _seconds(task["start_date"], task["end_date"])
        nodes = tasks.get(task["task_id"])
        kedro = f"{sum(node_seconds[n] for n in nodes):.1f} s" if nodes else "-"
        print(f"  {task['task_id']:<46}{seconds:>10.1f} s{kedro:>12}")
    score = record.metrics.get(PIPELINE, {}).get("test_score")
    print(f"  run record: {store.where(run_id, 'run.json')}; {len(dag_nodes)} nodes; submission {submission}")
    print(f"  {PIPELINE} after {epochs} epochs: test score {score}; report {page}")
    fresh, node = _fresh_process_startup(project, env, params)
    print(f"  one task in a fresh process (as on an Airflow worker): {fresh:.1f} s, of which its node {node:.2f} s")
    print("OK")
    return 0


def _check_on_workers(project: Path, env: dict[str, str], home: Path, dags: Path, args: argparse.Namespace) -> int:
    """The DAG run on a CeleryExecutor deployment of ``args.workers`` workers on hosts of their own."""
    from airflow_celery import Deployment

    airflow, outside = [sys.executable, "-m", "airflow"], home / "elsewhere"
    create = _make_dag(project, env, dags, args.retries)
    if create.returncode != 0:
        return _fail("kedro airflow create", create.stderr)
    raw_dir = _raw_files_in(project, args.data_root)
    params = {f"{PIPELINE}.epochs": args.epochs, "data_root": args.data_root, "raw_dir": raw_dir}
    deployment = Deployment(home, env, project, args.workers)
    try:
        deployment.start_services()
        deployment.start_airflow(outside)
        denv = deployment.env
        _wait_for(
            lambda: DAG_ID in _command(airflow + ["dags", "list", "-o", "json"], denv, outside, quiet=True).stdout, 120
        )
        started = time.time()
        conf = json.dumps({"kedro_params": params})
        trigger = _command(airflow + ["dags", "trigger", DAG_ID, "-c", conf, "-o", "json"], denv, outside)
        if trigger.returncode != 0:
            return _fail("airflow dags trigger", trigger.stdout + trigger.stderr)
        dag_run_id = _json_lines(trigger.stdout)[0]["dag_run_id"]
        killed = _kill_trainer(project, deployment, dags, args.data_root, dag_run_id) if args.kill_worker else None

        def finished() -> dict | None:
            listed = _command(airflow + ["dags", "list-runs", DAG_ID, "-o", "json"], denv, outside, quiet=True)
            runs = _json_lines(listed.stdout)
            run = next((r for r in runs if r["run_id"] == dag_run_id), None)
            return run if run and run["state"] in ("success", "failed") else None

        dag_run = _wait_for(finished, 1200)
        wall = time.time() - started
        states = _json_lines(
            _command(airflow + ["tasks", "states-for-dag-run", DAG_ID, dag_run_id, "-o", "json"], denv, outside).stdout
        )
    finally:
        deployment.stop()
    if killed and args.retries == 0:  # no retry left: the close step must abort the run, leaving nothing
        return _check_aborted(project, args.data_root, dag_run, killed)
    failed = [f"{t['task_id']}: {t['state']}" for t in states if t["state"] != "success"]
    if dag_run["state"] != "success" or failed:
        return _fail(f"DAG run {dag_run_id} is {dag_run['state']}; tasks not successful: {failed}")
    problem, record, store, tasks = _verify(project, dags, dag_run, args.data_root, args.epochs)
    hosts = {part["host"] for part in record.parts or []} if record else set()
    workers = {f"worker-{k}" for k in range(1, args.workers + 1)}
    if not problem and (record.scheduler or {}).get("executor") != "CeleryExecutor":
        problem = f"the record's scheduler {record.scheduler} does not name the CeleryExecutor"
    trainer = (
        next((p["host"] for p in record.parts or [] if f"{PIPELINE}.train_model" in p["nodes"]), None)
        if record
        else None
    )
    if not problem and not killed and hosts != workers:
        problem = f"the run's parts ran on {sorted(hosts)}, not on every worker {sorted(workers)}"
    if not problem and killed and (trainer == killed or not hosts <= workers):
        problem = f"the training part ran on {trainer} after {killed} was killed (parts on {sorted(hosts)})"
    if problem:
        return _fail(problem)
    print(f"\nDAG run {dag_run_id} = project run {record.run_id} on {args.workers} Celery workers in {wall:.1f} s")
    for part in record.parts:
        print(f"  {part['part']:<28} on {part['host']}  {_seconds(part['started'], part['finished']):6.1f} s")
    if killed:
        print(f"  {killed} was killed while it trained; Airflow ran the task again on another worker")
    print(f"  run record: {store.where(record.run_id, 'run.json')}; executor {record.scheduler['executor']}")
    print("OK")
    return 0


def _wait_for(found, seconds: float):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = found()
        if value:
            return value
        time.sleep(1.0)
    raise TimeoutError(f"waited {seconds} s in vain")


def _raw_files_in(project: Path, data_root: str) -> str:
    """The sample's raw files under ``<data_root>/raw`` (uploaded when not there): hosts share only the bucket."""
    import fsspec

    raw_dir = f"{data_root.rstrip('/')}/raw"
    fs, base = fsspec.core.url_to_fs(raw_dir)
    for path in (project / "data" / "01_raw").glob("*.csv"):
        if not fs.exists(f"{base}/{path.name}"):
            fs.put_file(str(path), f"{base}/{path.name}")
    return raw_dir


def _kill_trainer(project: Path, deployment, dags: Path, data_root: str, dag_run_id: str) -> str:
    """SIGKILLs the worker whose task trains conv, a few seconds into its training; returns its name."""
    sys.path.insert(0, str(project / "src"))
    from digit_recognizer.integrations.airflow import dag_tasks
    from digit_recognizer.runstore import RunStore, part_name
    from digit_recognizer.runstore.objects import LeaseInfo

    [dag_file] = dags.glob("*.py")
    part = part_name(next(nodes for nodes in dag_tasks(dag_file).values() if f"{PIPELINE}.train_model" in nodes))
    store = RunStore.at(project, data_root)

    def holder() -> str | None:
        runs = [i["run_id"] for i in store.open_runs() if (i.get("scheduler") or {}).get("dag_run_id") == dag_run_id]
        lease = store.backend.read(f"{runs[0]}/parts/{part}.lock") if runs else None
        return LeaseInfo.parse(lease).host if lease else None

    host = _wait_for(holder, 600)
    time.sleep(3.0)  # into its epochs
    deployment.kill(host)
    print(f"killed {host} (SIGKILL, its process group) while it ran part {part}", flush=True)
    return host


def _check_aborted(project: Path, data_root: str, dag_run: dict, killed: str) -> int:
    """With no retry left, the DAG run fails and close-run aborts the project run: nothing of it stays."""
    sys.path.insert(0, str(project / "src"))
    import fsspec

    from digit_recognizer.runstore import RunStore
    from digit_recognizer.runstore.retention import VERSION

    store = RunStore.at(project, data_root)
    complete = {r.run_id for r in store.complete()}
    mine = [r for r in store.complete() if (r.scheduler or {}).get("dag_run_id") == dag_run["run_id"]]
    left = [run_id for run_id, state in store.runs() if run_id not in complete]
    fs, base = fsspec.core.url_to_fs(data_root)
    fs.invalidate_cache()
    versions = {part for key in fs.find(base) for part in key.split("/") if VERSION.match(part)}
    if dag_run["state"] != "failed" or mine or left or not versions <= complete:
        return _fail(
            f"after {killed} died with no retry left: DAG run {dag_run['state']}, its records {mine}, runs left "
            f"{left}, versions of no complete run {sorted(versions - complete)}"
        )
    print(f"\nDAG run {dag_run['run_id']} failed after {killed} died with no retry left; close-run aborted the run")
    print("OK")
    return 0


def _verify(project: Path, dags: Path, dag_run: dict, data_root: str | None, epochs: int):
    """Checks the DAG run is one complete project run; returns (problem or None, record, store, DAG tasks)."""
    sys.path.insert(0, str(project / "src"))
    from digit_recognizer.integrations.airflow import dag_tasks
    from digit_recognizer.runstore import RunStore, locations

    store = RunStore.at(project, data_root)
    records = [r for r in store.complete() if (r.scheduler or {}).get("dag_run_id") == dag_run["run_id"]]
    if len(records) != 1:
        return f"expected one run record for DAG run {dag_run['run_id']}, found {len(records)}", None, store, {}
    [record] = records
    run_id = record.run_id
    [dag_file] = dags.glob("*.py")
    tasks = dag_tasks(dag_file)
    dag_nodes = sorted(node for nodes in tasks.values() for node in nodes)
    bad_outputs = [name for name, path in record.outputs.items() if f"/{run_id}/" not in path]
    opened = [info["run_id"] for info in store.open_runs() if info.get("scheduler", {}).get("dag_run_id")]
    submission = locations.resolve(project, record.outputs[f"{PIPELINE}.submission"])
    test_rows = record.inputs["raw_test"]["rows"]
    rows = list(csv.reader(io.StringIO((locations.read_bytes(submission) or b"").decode())))
    problems = []
    if record.nodes != dag_nodes:
        problems.append(f"the run record's nodes {record.nodes} are not the DAG's {dag_nodes}")
    if bad_outputs:
        problems.append(f"outputs not under the run's version {run_id}: {bad_outputs}")
    if opened:
        problems.append(f"open runs left: {opened}")
    if not rows or rows[0] != ["ImageId", "Label"] or len(rows) - 1 != test_rows:
        problems.append(f"{submission}: header {rows[:1]}, {len(rows) - 1} rows for {test_rows} test rows")
    page = locations.resolve(project, record.outputs.get("run_report", "missing"))
    if run_id not in (locations.read_bytes(page) or b"").decode("utf-8"):
        problems.append(f"close-run wrote no run report naming run {run_id} (looked for {page})")
    if record.parameters[PIPELINE]["epochs"] != epochs:
        problems.append(f"{PIPELINE}.epochs ran as {record.parameters[PIPELINE]['epochs']}, not {epochs}")
    return ("; ".join(problems) or None), record, store, tasks


if __name__ == "__main__":
    sys.exit(main())

"""Runs the conv pipeline as an Airflow DAG, from outside the project, and checks what it left.

    pip install -e ".[test]" "apache-airflow==3.3.2" torch==2.13.0   # once; this script installs nothing
    python scripts/check_airflow.py [--epochs 2] [--project PATH] [--data-root s3://bucket/prefix]

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
fails, 2 when Airflow is not installed.
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

PIPELINE, ENV = "conv", "airflow"
DAG_ID = f"digit-recognizer-{PIPELINE}-{ENV}"
ROOT = Path(__file__).resolve().parents[1]


def _command(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
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
    args = parser.parse_args(argv)
    project = args.project.resolve()

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
        return _check(project, env, outside, dags, args.epochs, args.data_root)
    finally:
        if args.keep_airflow_home:
            print(f"Airflow home kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def _check(project: Path, env: dict[str, str], outside: Path, dags: Path, epochs: int, data_root: str | None) -> int:
    airflow = [sys.executable, "-m", "airflow"]
    create = _command(
        [sys.executable, "-m", "kedro", "airflow", "create", "--pipelines", PIPELINE, "--env", ENV]
        + ["--group-by", "memory", "-j", str(project / "templates" / "airflow_dag.j2"), "-t", str(dags)]
        + ["--params", "retries=0"],
        env,
        project,  # kedro's own CLI needs the project folder; the DAG run below does not
    )
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

    sys.path.insert(0, str(project / "src"))
    from digit_recognizer.integrations.airflow import dag_tasks
    from digit_recognizer.runstore import RunStore, locations

    store = RunStore.at(project, data_root)
    records = [r for r in store.complete() if (r.scheduler or {}).get("dag_run_id") == dag_run["run_id"]]
    if len(records) != 1:
        return _fail(f"expected one run record for DAG run {dag_run['run_id']}, found {len(records)}")
    [record] = records
    run_id = record.run_id
    [dag_file] = dags.glob("*.py")
    tasks = dag_tasks(dag_file)
    dag_nodes = sorted(node for nodes in tasks.values() for node in nodes)
    bad_outputs = [name for name, path in record.outputs.items() if f"/{run_id}/" not in path]
    opened = [info["run_id"] for info in store.open_runs() if info.get("scheduler", {}).get("dag_run_id")]
    submission = locations.resolve(project, record.outputs[f"{PIPELINE}.submission"])
    test_rows = sum(1 for _ in open(Path(record.inputs["raw_test"]["path"]))) - 1
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
    if problems:
        return _fail("; ".join(problems))

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


if __name__ == "__main__":
    sys.exit(main())

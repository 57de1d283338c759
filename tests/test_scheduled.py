"""One run made of scheduler tasks (an Airflow DAG run), without Airflow: open, parts, close."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import MemoryDataset
from kedro.io.core import DatasetError

from digit_recognizer.framework.threads import TASKS_VARIABLE
from digit_recognizer.integrations.airflow import dag_tasks
from digit_recognizer.integrations.scheduled import (
    close_run,
    kedro_params,
    open_run,
    project_path,
    run_task,
    tasks_at_once,
)
from digit_recognizer.ml.threads import available_cpus
from digit_recognizer.pipeline_registry import register_pipelines
from digit_recognizer.retention import retention_main
from digit_recognizer.runs import main
from digit_recognizer.runstore import JOIN_VARIABLE, RunStateError, RunStore
from digit_recognizer.runstore.retention import prune

from .conftest import PROJECT_ROOT, kedro

TEMPLATE = PROJECT_ROOT / "templates" / "airflow_dag.j2"
FAST = {"conv.epochs": 1}


@pytest.fixture(scope="module")
def conv_dag(tmp_path_factory) -> Path:
    """The conv DAG, made with the project's template."""
    target = tmp_path_factory.mktemp("dags")
    result = kedro(
        PROJECT_ROOT,
        *("airflow", "create", "--pipelines", "conv", "--env", "airflow", "--group-by", "memory"),
        *("-j", str(TEMPLATE), "-t", str(target)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [dag_file] = target.glob("*.py")
    return dag_file


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working directory outside the project, as on a scheduler's worker."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def dag_dependencies(dag_file: Path) -> dict[str, list[str]]:
    """The DAG file's DEPENDENCIES: each task and the tasks it waits for."""
    tree = ast.parse(dag_file.read_text())
    [value] = [n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "DEPENDENCIES"]
    return ast.literal_eval(value)


def in_order(conv_dag: Path) -> list[list[str]]:
    """The DAG's tasks in an order its dependencies allow (the pipeline's node order)."""
    order = [node.name for node in register_pipelines()["conv"].nodes]
    return sorted(dag_tasks(conv_dag).values(), key=lambda nodes: min(order.index(n) for n in nodes))


def test_the_template_names_the_dag_after_its_pipeline_and_env_and_runs_every_node_once(conv_dag):
    text = conv_dag.read_text()
    tree = ast.parse(text)
    compile(tree, str(conv_dag), "exec")
    assert 'dag_id="digit-recognizer-conv-airflow"' in text
    assert "max_active_runs=1" in text
    assert "Path.cwd()" not in text  # the project folder comes from DIGIT_RECOGNIZER_PROJECT
    tasks = dag_tasks(conv_dag)
    pipeline = register_pipelines()["conv"]
    everything = sorted(node for nodes in tasks.values() for node in nodes)
    assert everything == sorted(node.name for node in pipeline.nodes)  # every node, each once
    [nodes_list] = [n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "NODES"]
    assert sorted(ast.literal_eval(nodes_list)) == everything  # what open-run says the run must run
    assert {"open-run", "close-run"} <= {
        k.value.value for c in ast.walk(tree) if isinstance(c, ast.Call) for k in c.keywords if k.arg == "task_id"
    }
    # the DAG function uses Airflow's `task` and `dag`: assigning either name there breaks the DAG at import
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assert not assigned & {"task", "dag", "Param"}, assigned
    dependencies = dag_dependencies(conv_dag)
    assert set(dependencies) == set(tasks) and all(set(d) <= set(tasks) for d in dependencies.values())
    assert text.count("tasks_at_once=at_once") == len(tasks)  # every task divides the CPUs


def test_what_crosses_tasks_is_persisted(conv_dag, project):
    tasks = list(dag_tasks(conv_dag).values())
    task_of = {node: i for i, nodes in enumerate(tasks) for node in nodes}
    pipeline = register_pipelines()["conv"]
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="airflow") as session:  # the DAG's env
        catalog = session.load_context().catalog
    for node in pipeline.nodes:
        for dataset in node.inputs:
            producers = [n for n in pipeline.nodes if dataset in n.outputs]
            if producers and task_of[producers[0].name] != task_of[node.name]:
                assert not isinstance(catalog.get(dataset), MemoryDataset), dataset


@pytest.mark.slow
def test_a_dag_run_is_one_run_with_one_record(conv_dag, project, elsewhere):
    before = RunStore(project / "data" / "runs").latest()
    tasks = in_order(conv_dag)
    nodes = [n for task in tasks for n in task]
    run_id = open_run("conv", nodes, "airflow", FAST, {"name": "airflow", "dag_run_id": "manual__1"}, project=project)
    store = RunStore(project / "data" / "runs")
    dependencies = dag_dependencies(conv_dag)
    task_ids = {tuple(nodes): task_id for task_id, nodes in dag_tasks(conv_dag).items()}
    task_nodes = dag_tasks(conv_dag)
    [training] = [task for task in tasks if "conv.train_model" in task]
    # only plot-sample-digits can run beside the training task, and it trains nothing
    assert tasks_at_once(dependencies, task=task_ids[tuple(training)], nodes=task_nodes) == 1
    for task in tasks:
        assert store.latest() == before  # an open run is never "latest"
        at_once = tasks_at_once(dependencies, task=task_ids[tuple(task)], nodes=task_nodes)  # as its DAG task does
        if task is training:
            at_once = 2  # as if another training could: `threads: auto` then takes half the CPUs
        run_task(run_id, "conv", task, "airflow", FAST, project=project, tasks_at_once=at_once)
    assert Path.cwd() == elsewhere and JOIN_VARIABLE not in os.environ  # put back after each task
    assert TASKS_VARIABLE not in os.environ
    path = close_run(run_id, project=project)

    record = json.loads(path.read_text())
    assert store.latest().run_id == run_id and [r.to_dict() for r in store.complete()] == [record]
    assert record["nodes"] == sorted(nodes)
    assert record["scheduler"] == {"name": "airflow", "dag_run_id": "manual__1"}
    assert record["parameters"]["conv"]["epochs"] == 1 and record["env"] == "airflow"
    assert record["reads"] == {}  # everything it read, it wrote itself
    assert len(record["parts"]) == len(tasks)
    assert all(f"/{run_id}/" in output for output in record["outputs"].values())
    submission = pd.read_csv(project / record["outputs"]["conv.submission"])
    assert list(submission.columns) == ["ImageId", "Label"] and len(submission) == 1000
    assert record["metrics"]["conv"]["run"] == run_id  # the leaderboard row names the one run
    assert sorted(p.name for p in (project / "data" / "runs" / run_id).iterdir()) == ["journal", "run.json"]
    page = project / record["outputs"]["run_report"]  # the close step wrote the whole DAG run's page
    assert page == project / "data" / "08_reporting" / "report.html" / run_id / "report.html"
    assert run_id in page.read_text() and f"{len(tasks)} tasks on" in page.read_text()
    assert str(page.parent) in (project / "data" / "runs" / run_id / "journal").read_text()  # retention deletes it
    history = json.loads((project / record["outputs"][record["histories"]["conv"]]).read_text())
    assert history["threads"] == max(1, available_cpus() // 2)


@pytest.mark.slow
def test_a_dag_run_with_a_data_root_outside_the_project_puts_its_page_where_kedro_run_does(
    conv_dag, project, elsewhere, tmp_path
):
    other_root = tmp_path / "other-root"  # a local folder outside the project
    params = {**FAST, "data_root": str(other_root)}
    tasks = in_order(conv_dag)
    run_id = open_run("conv", [n for task in tasks for n in task], "airflow", params, project=project)
    for task in tasks:
        run_task(run_id, "conv", task, "airflow", params, project=project)
    path = close_run(run_id, project=project, env="airflow", params=params)

    assert Path(path) == other_root / "runs" / run_id / "run.json"
    record = RunStore.at(project, str(other_root)).latest()
    assert record.run_id == run_id
    page = Path(record.outputs["run_report"])  # outside the project: kept whole
    assert page == other_root / "08_reporting" / "report.html" / run_id / "report.html" and page.is_file()
    assert not (project / "data" / "08_reporting").exists() and not (project / "data" / "runs").exists()

    direct = kedro(project, "run", "--pipeline", "conv", "--params", f"conv.epochs=1,data_root={other_root}")
    assert direct.returncode == 0, direct.stderr[-3000:]
    latest = RunStore.at(project, str(other_root)).latest()
    assert Path(latest.outputs["run_report"]).parent.parent == page.parent.parent  # the same place


@pytest.mark.slow
def test_each_task_reads_what_its_own_dag_run_wrote(conv_dag, project, elsewhere):
    first, second = ["validate_raw_data"], ["stratified_split"]  # two tasks of the conv DAG
    assert first in in_order(conv_dag) and second in in_order(conv_dag)
    nodes = [n for task in in_order(conv_dag) for n in task]
    older = open_run("conv", nodes, "airflow", FAST, project=project)
    newer = open_run("conv", nodes, "airflow", FAST, project=project)
    run_task(older, "conv", first, "airflow", FAST, project=project)
    run_task(newer, "conv", first, "airflow", FAST, project=project)
    run_task(older, "conv", second, "airflow", FAST, project=project)  # newer's validated data exists too
    store = RunStore(project / "data" / "runs")
    assert store.parts(older)["stratified_split"].reads == {"validated_train": older}

    # a task whose upstream task has not run reads nothing of anyone else's
    with pytest.raises(
        DatasetError, match=rf"Run {newer} has not written split yet: the task that makes it must finish"
    ):
        run_task(newer, "conv", ["normalise_images"], "airflow", FAST, project=project)


@pytest.mark.slow
def test_a_failed_task_aborts_the_whole_run_at_close(conv_dag, project, elsewhere):
    tasks = in_order(conv_dag)
    nodes = [n for task in tasks for n in task]
    run_id = open_run("conv", nodes, "airflow", {"conv.lr": 1e9, "conv.epochs": 2}, project=project)  # diverges
    training = next(task for task in tasks if "conv.train_model" in task)
    for task in tasks[: tasks.index(training)]:
        run_task(run_id, "conv", task, "airflow", {"conv.lr": 1e9, "conv.epochs": 2}, project=project)
    with pytest.raises(Exception, match="training diverged"):
        run_task(run_id, "conv", training, "airflow", {"conv.lr": 1e9, "conv.epochs": 2}, project=project)
    store = RunStore(project / "data" / "runs")
    assert "conv.train_model" not in {n for part in store.parts(run_id).values() for n in part.nodes}
    assert list((project / "data").rglob(f"{run_id}/model.pt")) == []  # the failed task's own files are gone
    assert store.open_runs()[0]["run_id"] == run_id  # still open: the scheduler may retry the task

    written = [p for p in (project / "data").rglob(run_id) if "runs" not in p.parts]  # by the tasks that ran
    assert len(written) >= 4
    with pytest.raises(
        RunStateError,
        match=rf"incomplete: no task has run conv.evaluate_model, .* and 5 more; aborted it and deleted the {len(written)} version",
    ):
        close_run(run_id, project=project)
    assert store.open_runs() == [] and store.complete() == []
    assert list((project / "data").rglob(run_id)) == []  # nothing of it is left anywhere


@pytest.mark.slow
def test_a_task_stopped_with_sigterm_rolls_its_part_back_and_close_aborts_the_run(conv_dag, project, elsewhere):
    """What Airflow, systemd or Kubernetes do to a task they stop: its own files go at once, the run stays open."""
    tasks = in_order(conv_dag)
    nodes = [n for task in tasks for n in task]
    params = {"conv.epochs": 500}
    run_id = open_run("conv", nodes, "airflow", params, project=project)
    training = next(task for task in tasks if "conv.train_model" in task)
    for task in tasks[: tasks.index(training)]:
        run_task(run_id, "conv", task, "airflow", params, project=project)
    script = f"from digit_recognizer.scheduled import run_task; run_task({run_id!r}, 'conv', {training!r}, 'airflow', {params!r}, project={str(project)!r})"
    task = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    lock = project / "data" / "runs" / run_id / "parts" / f"{min(training)}.lock"
    deadline = time.time() + 120
    while not lock.exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(3)  # into its 500 epochs
    task.send_signal(signal.SIGTERM)
    stderr = task.communicate(timeout=60)[1]
    assert task.returncode != 0
    assert f"Part {min(training)} of run {run_id} interrupted by SIGTERM after" in stderr
    store = RunStore(project / "data" / "runs")
    assert list((project / "data").rglob(f"{run_id}/model.pt")) == [] and store.open_runs()[0]["run_id"] == run_id
    with pytest.raises(RunStateError, match="incomplete"):
        close_run(run_id, project=project)
    assert list((project / "data").rglob(run_id)) == []


def test_open_runs_survive_cleanup_and_retention_until_aborted(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    store = RunStore(data / "runs")
    store.open_run(
        "2026-11-27T01.00.00.000Z",
        {
            "pipelines": ["conv"],
            "nodes": ["a"],
            "scheduler": {"name": "airflow", "dag_id": "d", "dag_run_id": "manual__1"},
        },
    )
    version = data / "02_intermediate" / "x.parquet" / "2026-11-27T01.00.00.000Z"
    version.mkdir(parents=True)
    (store.root / "2026-11-27T01.00.00.000Z" / "parts" / "a.journal").write_text(f"{version}\n")

    assert store.remove_dead() == []  # no process holds it between tasks, and it is not dead
    prune(store, keep=1)
    assert retention_main(["--keep", "1", "--runs-dir", str(store.root)]) == 0
    assert "left alone: run 2026-11-27T01.00.00.000Z, open since" in capsys.readouterr().out
    assert version.exists() and [info["run_id"] for info in store.open_runs()] == ["2026-11-27T01.00.00.000Z"]

    assert main(["--runs-dir", str(store.root), "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.splitlines()[1].split()[:3] == ["2026-11-27T01.00.00.000Z", "open", "conv"]
    assert "open since 2026-" in listed
    assert "0 parts done (airflow d manual__1)" in listed
    assert main(["--runs-dir", str(store.root), "close", "2026-11-27T01.00.00.000Z"]) == 1
    assert "incomplete: no task has run a" in capsys.readouterr().err
    assert main(["--runs-dir", str(store.root), "abort", "2026-11-27T01.00.00.000Z"]) == 0
    assert "deleted 1 version folders" in capsys.readouterr().out
    assert not version.exists() and not (store.root / "2026-11-27T01.00.00.000Z").exists()
    with pytest.raises(RunStateError, match="is not open"):
        store.open_info("2026-11-27T01.00.00.000Z")


def test_kedro_params_take_dotted_keys_as_the_cli_does():
    assert kedro_params({"conv.epochs": 2, "conv.model.batchnorm": False, "raw_dir": "/data"}) == {
        "conv": {"epochs": 2, "model": {"batchnorm": False}},
        "raw_dir": "/data",
    }
    assert kedro_params({"conv": {"epochs": 2}, "conv.lr": 0.1}) == {"conv": {"epochs": 2, "lr": 0.1}}
    with pytest.raises(ValueError, match="'conv.epochs.x' sets a key inside 'epochs'"):
        kedro_params({"conv.epochs": 2, "conv.epochs.x": 1})


def test_the_project_folder_comes_from_the_environment(project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGIT_RECOGNIZER_PROJECT", str(project))
    assert project_path() == project.resolve()
    monkeypatch.setenv("DIGIT_RECOGNIZER_PROJECT", str(tmp_path))
    with pytest.raises(
        FileNotFoundError, match=rf"{tmp_path} is not the digit-recognizer project .* set \$DIGIT_RECOGNIZER_PROJECT"
    ):
        project_path()


def test_check_script_says_how_to_install_airflow_when_it_is_missing():
    if (Path(sys.executable).parent / "airflow").exists():
        pytest.skip("Airflow is installed here (tests/test_airflow.py runs the check)")
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "check_airflow.py")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert 'pip install -e ".[test]" "apache-airflow==3.3.2" torch==2.13.0' in result.stderr


@pytest.mark.parametrize(
    ("argv", "variables", "disabled"),
    [
        (["kedro", "run"], {}, None),
        (["kedro", "run", "--env", "prod"], {}, None),  # the command line never changes the settings
        (["kedro", "run"], {"KEDRO_ENV": "airflow"}, None),
        (["kedro", "run"], {"KEDRO_ENV": "airflow", JOIN_VARIABLE: "x"}, ("kedro-mlflow", "kedro_mlflow")),
    ],
)
def test_only_a_part_of_a_scheduled_run_leaves_plugin_hooks_out(argv, variables, disabled):
    """A part leaves MLflow to the close step; nothing else changes what the settings declare."""
    script = f"import sys; sys.argv = {argv!r}; import digit_recognizer.settings as s; print(getattr(s, 'DISABLE_HOOKS_FOR_PLUGINS', None))"
    env = {k: v for k, v in os.environ.items() if k not in ("KEDRO_ENV", JOIN_VARIABLE)}
    result = subprocess.run([sys.executable, "-c", script], env={**env, **variables}, capture_output=True, text=True)
    assert result.stdout.strip() == str(disabled), result.stderr


def test_closing_while_a_task_runs_changes_nothing(tmp_path):
    store = RunStore(tmp_path / "data" / "runs")
    store.open_run("2026-11-27T01.00.00.000Z", {"pipelines": ["conv"], "nodes": ["a"]})
    script = (
        "import time; from pathlib import Path; from digit_recognizer.runstore import RunPart, RunStore; "
        f"RunPart(RunStore(Path({str(store.root)!r})), '2026-11-27T01.00.00.000Z', 'a').start({{}}); "
        "print('running', flush=True); time.sleep(600)"
    )
    task = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert task.stdout.readline().strip() == "running"
        with pytest.raises(RunStateError, match="still has parts running: a"):
            store.close_run("2026-11-27T01.00.00.000Z")
        with pytest.raises(RunStateError, match="still has parts running: a"):
            store.abort_run("2026-11-27T01.00.00.000Z")
        assert [info["run_id"] for info in store.open_runs()] == ["2026-11-27T01.00.00.000Z"]
    finally:
        task.kill()
        task.wait()
    with pytest.raises(RunStateError, match="incomplete: no task has run a"):
        store.close_run("2026-11-27T01.00.00.000Z")  # the killed task wrote no record


@pytest.mark.slow
def test_kedro_run_joins_an_open_run_from_the_command_line(project):
    """What another scheduler does: open, `kedro run --nodes` per task with the run's id, close."""
    nodes = ["validate_raw_data", "stratified_split"]
    run_id = open_run("conv", nodes, project=project)
    env = {**os.environ, "DO_NOT_TRACK": "1", JOIN_VARIABLE: run_id}
    for node in nodes:
        result = subprocess.run(
            [sys.executable, "-m", "kedro", "run", "--pipeline", "conv", "--nodes", node],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"Part {node} of run {run_id} done" in " ".join(result.stderr.split())
    record = json.loads(close_run(run_id, project=project).read_text())
    assert record["nodes"] == sorted(nodes) and record["reads"] == {}
    assert sorted(record["outputs"]) == ["run_report", "split", "validated_test", "validated_train"]


def test_the_default_dag_trains_each_architecture_in_a_task_of_its_own(tmp_path):
    """Memory grouping must not fold independent trainings into one task: N workers train N models at once."""
    result = kedro(
        PROJECT_ROOT,
        *("airflow", "create", "--pipelines", "__default__", "--env", "airflow", "--group-by", "memory"),
        *("-j", str(TEMPLATE), "-t", str(tmp_path)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [dag_file] = tmp_path.glob("*.py")
    trainings = {
        task: [n for n in nodes if n.endswith((".train_model", ".fit_model"))]
        for task, nodes in dag_tasks(dag_file).items()
    }
    trained = sorted(n for nodes in trainings.values() for n in nodes)
    assert trained == sorted(
        f"{a}.{'fit' if a == 'centroid' else 'train'}_model"
        for a in ("centroid", "cnn", "conv", "fast", "linear", "mlp")
    )
    assert all(len(nodes) <= 1 for nodes in trainings.values()), trainings
    dependencies = dag_dependencies(dag_file)
    assert tasks_at_once(dependencies, nodes=dag_tasks(dag_file)) >= 6  # the six trainings can run at once

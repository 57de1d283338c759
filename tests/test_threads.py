"""torch's threads come from the CPUs this process may use, not from the cores the machine has."""

from __future__ import annotations

import os
import re

import pytest
import torch

from digit_recognizer.config import ParameterError, check_parameters
from digit_recognizer.framework.threads import TASKS_VARIABLE, RunnerError, ThreadSettingError, cpu_share
from digit_recognizer.integrations.scheduled import tasks_at_once as tasks_at_once_in
from digit_recognizer.ml.threads import available_cpus, cgroup_quota, resolve_threads, torch_threads


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_the_cgroup_quota_v2_and_v1(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_quota(tmp_path) == quota


def test_auto_is_the_affinity_capped_by_the_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr("digit_recognizer.ml.threads.cgroup_quota", lambda: 1.5)
    assert available_cpus() == 1 and resolve_threads("auto") == 1
    monkeypatch.setattr("digit_recognizer.ml.threads.cgroup_quota", lambda: None)
    assert available_cpus() == 4 and resolve_threads("auto", sharing=2) == 2 and resolve_threads(3) == 3


def test_a_node_sets_torch_threads_for_its_block_only():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_threads_is_auto_or_a_positive_number():
    check_parameters({"conv": {"architecture": "conv", "threads": 2}})
    with pytest.raises(
        ParameterError, match=r"conv\.threads = 0: expected auto or a positive number of threads, got 0$"
    ):
        check_parameters({"conv": {"architecture": "conv", "threads": 0}})
    with pytest.raises(ParameterError, match=r"conv\.threads = 'all': expected auto or a positive number"):
        check_parameters({"conv": {"architecture": "conv", "threads": "all"}})


def test_auto_divides_the_cpus_by_the_share_it_is_given(monkeypatch):
    monkeypatch.setattr("digit_recognizer.ml.threads.available_cpus", lambda: 4)
    assert resolve_threads("auto") == 4 and resolve_threads("auto", 3) == 1 and resolve_threads(2, 3) == 2
    assert resolve_threads("auto", 8) == 1  # never fewer than one


def test_the_cpu_share_comes_from_the_runner_or_the_scheduler():
    from digit_recognizer.pipeline_registry import register_pipelines

    pipeline = register_pipelines()["__default__"]
    assert cpu_share("", pipeline, environ={}) == 1  # SequentialRunner: one node at a time
    assert cpu_share("kedro.runner.ThreadRunner", pipeline, environ={}) >= 4  # the architectures train at once
    assert cpu_share("", pipeline, environ={TASKS_VARIABLE: "3"}) == 3  # a scheduler's task: its word
    with pytest.raises(ThreadSettingError, match=r"\$DIGIT_RECOGNIZER_TASKS_AT_ONCE = 'many': expected a positive"):
        cpu_share("", pipeline, environ={TASKS_VARIABLE: "many"})
    with pytest.raises(RunnerError, match="--runner ParallelRunner cannot run this project"):
        cpu_share("ParallelRunner", pipeline, environ={})


@pytest.mark.parametrize(
    ("dependencies", "width"),
    [
        ({"a": [], "b": ["a"], "c": ["b"]}, 1),  # a chain
        ({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}, 2),  # a diamond
        ({"a": [], "b": [], "c": [], "d": ["a", "b", "c"]}, 3),
        # b and d can overlap although they sit at different depths
        ({"a": [], "b": ["a"], "c": ["a"], "d": ["c"], "e": ["b", "d"]}, 2),
        ({"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b"], "f": ["e", "c", "d"]}, 3),
    ],
)
def test_a_dags_width_is_the_most_tasks_that_can_run_at_once(dependencies, width):
    assert tasks_at_once_in(dependencies) == width
    assert tasks_at_once_in(dependencies, limit=1) == 1


def test_a_tasks_share_counts_only_the_tasks_that_can_run_beside_it():
    dependencies = {"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b"], "f": ["e", "c", "d"]}
    assert tasks_at_once_in(dependencies, task="a") == 1  # everything waits for it
    assert tasks_at_once_in(dependencies, task="b") == 3  # b, c, d
    assert tasks_at_once_in(dependencies, task="e") == 3  # e, c, d
    assert tasks_at_once_in(dependencies, task="c") == 3
    with pytest.raises(ValueError, match="'x' is not a task of the DAG"):
        tasks_at_once_in(dependencies, task="x")


def test_only_tasks_that_train_or_predict_take_a_share():
    dependencies = {"split": [], "plot": ["split"], "train-a": ["split"], "train-b": ["split"], "close": ["train-a"]}
    nodes = {
        "split": ["stratified_split"],
        "plot": ["plot_sample_digits"],
        "train-a": ["normalise_images", "a.train_model"],
        "train-b": ["b.train_model", "b.predict_test"],
        "close": ["a.summarise_run"],
    }
    assert tasks_at_once_in(dependencies, task="train-a") == 3  # the plot and train-b
    assert tasks_at_once_in(dependencies, task="train-a", nodes=nodes) == 2  # only train-b: the plot does not count
    assert tasks_at_once_in(dependencies, task="plot", nodes=nodes) == 3


def test_the_nodes_that_take_a_cpu_share_are_those_whose_functions_set_torch_threads():
    import inspect

    from digit_recognizer.pipeline_registry import register_pipelines
    from digit_recognizer.pipelines.training import nodes as training
    from digit_recognizer.pipelines.training.pipeline import threaded_nodes

    nodes = [node for pipeline in register_pipelines().values() for node in pipeline.nodes]
    sets_threads = {
        node.name.rsplit(".", 1)[-1]
        for node in nodes
        if inspect.getmodule(node.func) is training and re.search(r"\b_threads\(", inspect.getsource(node.func))
    }
    takes_share = {node.name.rsplit(".", 1)[-1] for node in nodes if "cpu_share" in node.inputs}
    assert sets_threads == takes_share == threaded_nodes()
    assert {"train_model", "predict_test"} <= sets_threads


@pytest.mark.slow
def test_a_thread_runner_divides_the_cpus_and_a_parallel_runner_is_refused_with_a_reason(project):
    import json

    from digit_recognizer.runstore import RunStore

    from .conftest import kedro

    params = "conv.epochs=1,mlp.epochs=1"
    threaded = kedro(project, "run", "--pipelines", "conv,mlp", "--runner", "ThreadRunner", "--params", params)
    assert threaded.returncode == 0, threaded.stderr[-3000:]
    found = re.search(r"Nodes that train or predict may run (\d+) at once", threaded.stdout + threaded.stderr)
    assert found and int(found.group(1)) >= 2  # conv's and mlp's trainings are independent
    [record] = RunStore.at(project).complete()
    for key in ("conv", "mlp"):
        history = json.loads((project / record.outputs[record.histories[key]]).read_text())
        assert history["threads"] == max(1, available_cpus() // int(found.group(1)))

    parallel = kedro(project, "run", "--pipeline", "conv", "--runner", "ParallelRunner")
    out = " ".join((parallel.stdout + parallel.stderr).split())
    assert parallel.returncode == 1 and "Error: --runner ParallelRunner cannot run this project" in out
    assert "Traceback" not in out and len(RunStore.at(project).complete()) == 1

"""What a DAG rendered from ``templates/airflow_dag.j2`` runs, read from its source (no Airflow import)."""

from __future__ import annotations

import ast
from pathlib import Path


def dag_tasks(dag_file: Path) -> dict[str, list[str]]:
    """The DAG's Kedro tasks: task id → the nodes its ``run_task`` call runs."""
    tasks = {}
    for function in ast.walk(ast.parse(Path(dag_file).read_text())):
        if not isinstance(function, ast.FunctionDef):
            continue
        task_ids = [
            k.value.value
            for d in function.decorator_list
            if isinstance(d, ast.Call)
            for k in d.keywords
            if k.arg == "task_id"
        ]
        calls = [c for c in ast.walk(function) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "run_task"]
        if task_ids and calls:
            nodes = calls[0].args[2]
            if isinstance(nodes, ast.Name):  # `nodes = [...]` earlier in the task
                [nodes] = [
                    a.value
                    for a in ast.walk(function)
                    if isinstance(a, ast.Assign) and any(getattr(t, "id", "") == nodes.id for t in a.targets)
                ]
            tasks[task_ids[0]] = ast.literal_eval(nodes)
    return tasks

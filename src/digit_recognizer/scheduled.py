"""A run made of scheduler tasks: open, run each task, close (see :mod:`digit_recognizer.integrations.scheduled`).

Kept at this name because DAG files rendered from ``templates/airflow_dag.j2`` import it.
"""

from digit_recognizer.integrations.scheduled import close_run, open_run, run_task, tasks_at_once

__all__ = ["close_run", "open_run", "run_task", "tasks_at_once"]

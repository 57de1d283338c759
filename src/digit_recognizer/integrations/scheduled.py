"""One run made of several scheduler tasks (an Airflow DAG run): open it, run each task, close it.

A scheduler that runs the pipeline as several tasks, each its own process, calls:

* :func:`open_run` once, first: it makes the run's id (a Kedro version) and notes which nodes
  the run must run; every task's outputs are saved under that one version;
* :func:`run_task` in each task, with the run's id: a Kedro session that runs the task's nodes
  as a part of the open run, reading what earlier tasks of *this* run wrote (never whatever is
  newest), and writing its own part record;
* :func:`close_run` once, last, whatever happened: when every node has run, one run record is
  written for the whole run (and logged to MLflow where the [mlflow] extra is installed); when
  a task failed, everything the run wrote is deleted and the close fails too.

An open run is never "latest": until it is closed, other runs keep reading the previous
complete one. The DAG template ``templates/airflow_dag.j2`` calls these three; any other
scheduler can call them the same way. Nothing here imports Airflow.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from digit_recognizer.ml.threads import widest
from digit_recognizer.report import REPORT_DATASET
from digit_recognizer.runstore import JOIN_VARIABLE, RunIncompleteError, RunRecord, locations
from digit_recognizer.runstore.files import WriteError
from digit_recognizer.runstore.layout import TASKS_VARIABLE, with_new_id

logger = logging.getLogger(__name__)

PROJECT_VARIABLE = "DIGIT_RECOGNIZER_PROJECT"


def project_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The project folder: ``path``, else ``$DIGIT_RECOGNIZER_PROJECT``, else the working directory."""
    found = Path(path or os.environ.get(PROJECT_VARIABLE) or Path.cwd()).resolve()
    pyproject = found / "pyproject.toml"
    if not pyproject.is_file() or "[tool.kedro]" not in pyproject.read_text():
        source = f"${PROJECT_VARIABLE}" if os.environ.get(PROJECT_VARIABLE) and not path else "the project path"
        raise FileNotFoundError(
            f"{found} is not the digit-recognizer project (no pyproject.toml with [tool.kedro]); "
            f"set {source} to the project folder"
        )
    return found


def kedro_params(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Runtime parameters as Kedro takes them: ``{"conv.epochs": 2}`` becomes ``{"conv": {"epochs": 2}}``."""
    nested: dict[str, Any] = {}
    for key, value in (values or {}).items():
        *path, last = str(key).split(".")
        target = nested
        for part in path:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ValueError(f"parameter {key!r} sets a key inside {part!r}, which is also given a value")
        if isinstance(value, Mapping):
            target.setdefault(last, {}).update(kedro_params(value))
        else:
            target[last] = value
    return nested


def open_run(
    pipeline: str,
    nodes: Sequence[str],
    env: str | None = None,
    params: Mapping[str, Any] | None = None,
    scheduler: Mapping[str, Any] | None = None,
    project: str | os.PathLike[str] | None = None,
) -> str:
    """Opens a run that will run ``nodes`` of ``pipeline``; returns its id for the tasks."""
    from digit_recognizer.framework.project import load_context, project_store  # Kedro: only when a step runs

    params = kedro_params(params)
    store = project_store(load_context(project_path(project), env, params, step="open"))
    info = {
        "pipelines": [pipeline],
        "nodes": sorted(nodes),
        "env": env,
        "runtime_params": params,
        "scheduler": dict(scheduler or {}),
    }
    run_id, _ = with_new_id(lambda run_id: store.open_run(run_id, info))
    logger.info("Opened run %s for %d nodes of pipeline %s", run_id, len(nodes), pipeline)
    return run_id


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """The catalog's paths (``data/...``) are relative to the project folder."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def logging_config_path(project: Path, env: str | None) -> Path:
    """``$KEDRO_LOGGING_CONFIG``, else ``conf/<env>/logging.yml``, else ``conf/airflow/logging.yml``.

    The last sets the project's log levels and adds no handler, so that the scheduler's own
    handlers (which put each line in the task's log) stay in place.
    """
    given = os.environ.get("KEDRO_LOGGING_CONFIG")
    if given:
        return project / given
    own = project / "conf" / (env or "local") / "logging.yml"
    return own if own.is_file() else project / "conf" / "airflow" / "logging.yml"


def tasks_at_once(
    dependencies: Mapping[str, Sequence[str]],
    limit: int | None = None,
    task: str | None = None,
    nodes: Mapping[str, Sequence[str]] | None = None,
) -> int:
    """The most tasks of a DAG that can run at the same time (at most ``limit``); with ``task``, beside that one.

    ``dependencies`` maps each task to the tasks it waits for. Tasks can run together when none
    waits (directly or not) for another; the largest such set is the DAG's width, found as the
    number of tasks less a maximum matching of "runs before" (Dilworth's theorem). With ``task``:
    the largest such set that holds ``task`` (a task that overlaps few others divides the CPUs
    among fewer). With ``nodes`` (task → its node names), only tasks that train or predict with
    torch count (a node that takes ``cpu_share``): a plotting task beside a training one takes no
    thread from it. It depends only on the DAG, so a task's thread count, and so its results, is
    the same in every DAG run.
    """
    counted = None
    if nodes is not None:
        from digit_recognizer.pipelines.training.pipeline import threaded_nodes  # imports torch: only in a task

        threaded = threaded_nodes()
        counted = {t for t, names in nodes.items() if any(n.rsplit(".", 1)[-1] in threaded for n in names)}
    width = widest(dependencies, counted=counted, through=task)
    return max(1, min(width, limit) if limit else width)


def run_task(
    run_id: str,
    pipeline: str,
    nodes: Sequence[str],
    env: str | None = None,
    params: Mapping[str, Any] | None = None,
    project: str | os.PathLike[str] | None = None,
    tasks_at_once: int | None = None,
) -> None:
    """Runs ``nodes`` of ``pipeline`` as one part of the open run ``run_id``, in a Kedro session.

    The project's logging configuration is applied (see :func:`logging_config_path`), the
    session runs in the project folder whatever the scheduler's working directory, and the
    environment tells the project's settings which plugins' hooks to leave out.
    ``tasks_at_once``: how many tasks may run at once on this machine (the DAG's width, see
    :func:`tasks_at_once`); training nodes with ``threads: auto`` divide the CPUs among them.
    """
    folder = project_path(project)
    logging_config = logging_config_path(folder, env)
    # set before Kedro's first import, which applies its logging config (conf/logging.yml under
    # the *working directory*, or Kedro's own Rich console, which would replace the scheduler's)
    variables = {JOIN_VARIABLE: run_id, PROJECT_VARIABLE: str(folder), "KEDRO_LOGGING_CONFIG": str(logging_config)}
    if env:
        variables["KEDRO_ENV"] = env
    if tasks_at_once:
        variables[TASKS_VARIABLE] = str(tasks_at_once)
    with _environment(variables), _working_directory(folder):
        from kedro.framework.project import configure_logging
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        configure_logging(yaml.safe_load(logging_config.read_text()))  # again, where Kedro was imported before
        bootstrap_project(folder)
        with KedroSession.create(project_path=folder, env=env, runtime_params=kedro_params(params)) as session:
            session.run(pipeline_names=[pipeline], node_names=list(nodes))


def close_run(
    run_id: str,
    project: str | os.PathLike[str] | None = None,
    env: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Path | str:
    """Commits the run once every node has run; otherwise deletes all it wrote and raises.

    Returns the run record's path (a URL where the runs live on an object store). ``env`` and
    ``params``: as given to :func:`open_run`, to find the run store (under ``data_root``). A task
    that was killed on a host that shares only an object store still holds its lease for up to
    ``ttl + skew`` seconds; the close step waits that long for it to be found dead. A part still
    running after that, or a run that is not open, raises :class:`RunStateError` and changes
    nothing; abort such a run with ``python -m digit_recognizer.runs abort RUN_ID``.
    """
    from digit_recognizer.framework.project import load_context, project_store  # Kedro: only when a step runs
    from digit_recognizer.framework.publishers import PagePublisher
    from digit_recognizer.framework.run_dataset import OutputWriteError

    folder = project_path(project)
    context = load_context(folder, env, kedro_params(params), step="close")
    store = project_store(context)
    page = PagePublisher(context.catalog, store.settings)
    try:
        record, path = store.close_run(
            run_id, lambda record, journal: page.publish(record, store.complete(), journal), wait=store.backend.grace
        )
    except RunIncompleteError as exc:
        removed = store.abort_run(run_id)
        raise RunIncompleteError(f"{exc}; aborted it and deleted the {len(removed)} version folders it wrote") from exc
    except (WriteError, OutputWriteError) as exc:  # the page could not be written (a full disk): as for any output
        removed = store.abort_run(run_id)
        raise WriteError(
            f"{exc}; aborted run {run_id} and deleted the {len(removed)} version folders it wrote"
        ) from exc
    logger.info("Closed run %s: %s", run_id, locations.relative(folder, path))
    for line in record.leaderboard_lines():
        logger.info(line)
    logger.info("  report: %s", record.outputs[REPORT_DATASET])
    _log_to_mlflow(record, path, folder, context.config_loader, store.options(store.data_root))
    return path


def _log_to_mlflow(record: RunRecord, path: Path | str, folder: Path, config: Any, options: dict[str, Any]) -> None:
    """Logs the whole run as one MLflow run where the [mlflow] extra is installed (``mlflow.yml`` through Kedro)."""
    try:
        import mlflow
    except ImportError:
        return
    from digit_recognizer.framework.project import section
    from digit_recognizer.integrations import mlflow as tracking

    settings = section(config, "mlflow")
    server = settings.get("server", {})
    uri = str(server.get("mlflow_tracking_uri") or f"sqlite:///{folder / 'mlflow.db'}")
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{folder / uri.removeprefix('sqlite:///')}"
    mlflow.set_tracking_uri(uri)
    experiment = settings.get("tracking", {}).get("experiment", {}).get("name") or "digit_recognizer"
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"{','.join(record.pipelines)} {record.run_id}"):
        mlflow_run = tracking.log_run(record, path, folder, options)
    logger.info("  mlflow: logged as run %s", mlflow_run)

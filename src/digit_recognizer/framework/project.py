"""The project as Kedro configures it, for code that runs outside a ``kedro run``: the runs command, a scheduler's steps.

:func:`store_settings` builds the run store's one settings object from Kedro's configuration
loader, the same way for a ``kedro run`` (the hooks), the ``kedro runs`` command and a
scheduler's open and close steps; :func:`load_context` gives those commands the project's
configuration and catalog as ``kedro run --env ENV --params ...`` would see them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException

from digit_recognizer.runstore import RunStore, RunStoreSettings, locations

CREDENTIALS_KEY = "data_root"  # the entry of credentials.yml that holds the data root's storage options


def plain(value: Any) -> Any:
    """Config values as plain dicts and lists (OmegaConf containers and pydantic models become JSON-ready)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return value


def section(config_loader: Any, key: str) -> dict[str, Any]:
    """A configuration section as plain data; {} where the project has no such file."""
    try:
        found = config_loader[key]
    except (KeyError, MissingConfigException):
        return {}
    return plain(found) if isinstance(found, Mapping) else {}


def store_settings(config_loader: Any, project: Path | str) -> RunStoreSettings:
    """The run store's settings: ``data_root`` from ``--params`` or the globals, ``runstore.yml``, the credentials.

    A data root on a protocol whose package is missing (``s3://`` without the ``[s3]`` extra)
    is refused here, before anything is written, naming what to install.
    """
    runtime = getattr(config_loader, "runtime_params", None) or {}
    data_root = runtime.get("data_root") or section(config_loader, "globals").get("data_root")
    if data_root and locations.is_url(str(data_root)):
        locations.filesystem_class(str(data_root))
    credentials = section(config_loader, "credentials").get(CREDENTIALS_KEY)
    return RunStoreSettings.build(
        project,
        str(data_root) if data_root else None,
        section(config_loader, "runstore"),
        credentials if isinstance(credentials, Mapping) else None,
    )


SCHEDULER_STEP_VARIABLE = "DIGIT_RECOGNIZER_SCHEDULER_STEP"  # set while a scheduler's open or close step loads Kedro


def load_context(
    project: Path | str, env: str | None = None, params: Mapping[str, Any] | None = None, step: str | None = None
) -> Any:
    """The project's Kedro context (configuration, catalog) for ``env`` and runtime ``params``, as a run would have.

    ``step`` (``open``, ``close``): a scheduler's step, which leaves the tracking plugins out as its
    tasks do (the settings read ``$DIGIT_RECOGNIZER_SCHEDULER_STEP`` once per process).
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = Path(project).resolve()
    before = os.environ.get(SCHEDULER_STEP_VARIABLE)
    if step:
        os.environ[SCHEDULER_STEP_VARIABLE] = step
    try:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env=env, runtime_params=dict(params or {})) as session:
            return session.load_context()
    finally:
        if step and before is None:
            os.environ.pop(SCHEDULER_STEP_VARIABLE, None)


def project_store(context: Any) -> RunStore:
    """The run store of a loaded context, as its configuration says."""
    return RunStore.from_settings(store_settings(context.config_loader, context.project_path))

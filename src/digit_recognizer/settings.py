"""Project settings: hooks and configuration loading (Kedro defaults otherwise)."""

import os
import sys
import warnings

from digit_recognizer.framework.console import plain_logs_when_piped
from digit_recognizer.framework.hooks import FastShutdownHooks, RunHooks
from digit_recognizer.runstore import JOIN_VARIABLE

# Kedro 1.7 still calls OmegaConf's deprecated register_new_resolver(); the warning is not ours
# to fix and would otherwise open every run (and every test that builds a session).
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)

plain_logs_when_piped()

HOOKS = (RunHooks(), FastShutdownHooks())


def _environment() -> str | None:
    """The run's environment, from ``--env NAME`` / ``-e NAME`` or ``KEDRO_ENV``."""
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        if arg in ("--env", "-e") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--env="):
            return arg.split("=", 1)[1]
    return os.environ.get("KEDRO_ENV")


# Scheduled runs (--env prod or --env airflow, or KEDRO_ENV) skip kedro-viz's hooks, which only
# feed its run-status panel. A task that is one part of a scheduled run (DIGIT_RECOGNIZER_RUN_ID,
# see scheduled.py) also skips kedro-mlflow's: the whole run is logged to MLflow once, when it is
# closed, not once per task.
_disabled = []
if _environment() in ("prod", "airflow"):
    _disabled.append("kedro-viz")
if os.environ.get(JOIN_VARIABLE):
    _disabled += ["kedro-mlflow", "kedro_mlflow"]  # its distribution calls itself the latter
if _disabled:
    DISABLE_HOOKS_FOR_PLUGINS = tuple(_disabled)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment overrides single keys of a parameter block (conf/prod: conv.progress_bar)
    "merge_strategy": {"parameters": "soft"},
}

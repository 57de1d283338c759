"""Project settings: hooks and configuration loading (Kedro defaults otherwise)."""

import os
import warnings

from digit_recognizer.framework.hooks import FastShutdownHooks, RunHooks
from digit_recognizer.framework.project import SCHEDULER_STEP_VARIABLE
from digit_recognizer.runstore import JOIN_VARIABLE

# Kedro 1.7 still calls OmegaConf's deprecated register_new_resolver(); the warning is not ours
# to fix and would otherwise open every run (and every test that builds a session).
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)

HOOKS = (RunHooks(), FastShutdownHooks())

# A process that runs a step of a scheduled run (a task: DIGIT_RECOGNIZER_RUN_ID; the open or close
# step: DIGIT_RECOGNIZER_SCHEDULER_STEP; see integrations/scheduled.py) leaves kedro-mlflow's hooks
# out: the whole run is logged to MLflow once, when it is closed, not once per task.
if os.environ.get(JOIN_VARIABLE) or os.environ.get(SCHEDULER_STEP_VARIABLE):
    DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")  # its distribution calls itself the latter

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment overrides single keys of a parameter block (conf/kaggle: cnn.epochs)
    "merge_strategy": {"parameters": "soft"},
    # the run store's settings (conf/<env>/runstore.yml), read through Kedro as every other file
    "config_patterns": {"runstore": ["runstore*", "runstore*/**"], "mlflow": ["mlflow*", "mlflow*/**"]},
}

"""Project settings: hooks and configuration loading (Kedro defaults otherwise)."""

import os
import warnings

from digit_recognizer.hooks import FastShutdownHooks, OutputLocationHooks, RunTimingHooks, SafeVersionsHooks

# Kedro 1.7 still calls OmegaConf's deprecated register_new_resolver(); the warning is not ours
# to fix and would otherwise open every run.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)

HOOKS = (SafeVersionsHooks(), OutputLocationHooks(), RunTimingHooks(), FastShutdownHooks())

# Scheduled runs (KEDRO_ENV=prod) skip kedro-viz's hooks, which only feed its run-status panel.
if os.environ.get("KEDRO_ENV") == "prod":
    DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment overrides single keys of a parameter block (conf/prod: conv.progress_bar)
    "merge_strategy": {"parameters": "soft"},
}

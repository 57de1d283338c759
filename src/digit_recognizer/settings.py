"""Project settings: hooks and configuration loading (Kedro defaults otherwise)."""

import warnings

from digit_recognizer.hooks import FastShutdownHooks, OutputLocationHooks, RunTimingHooks

# Kedro 1.7 still calls OmegaConf's deprecated register_new_resolver(); the warning is not ours
# to fix and would otherwise open every run.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)

HOOKS = (OutputLocationHooks(), RunTimingHooks(), FastShutdownHooks())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}

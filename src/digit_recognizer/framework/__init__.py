"""The Kedro adapter: hooks, the project's datasets, version resolution and console logging.

The only code that touches Kedro's internals (through :mod:`.kedro_compat`, where Kedro has no
public route).
"""

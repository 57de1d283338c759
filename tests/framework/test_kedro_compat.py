"""Each protected API of another library the project uses, checked against the installed version.

Kedro's are in framework/kedro_compat.py (three); each test here fails where the library changes under it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect

from kedro.io import CachedDataset, MemoryDataset, Version

from digit_recognizer.framework.kedro_compat import kedro_run_command, set_version, unwrap
from digit_recognizer.framework.run_dataset import RunDataset

from ..conftest import PROJECT_ROOT

SOURCE = PROJECT_ROOT / "src" / "digit_recognizer"


def test_unwrap_reaches_the_dataset_inside_a_cache():
    inner = MemoryDataset([1, 2])
    assert unwrap(CachedDataset(inner)) is inner  # fails where CachedDataset stops keeping it in _dataset
    assert unwrap(inner) is inner


def test_set_version_changes_what_a_made_dataset_loads_and_saves(tmp_path):
    dataset = RunDataset(filepath=str(tmp_path / "x.json"), dataset="json.JSONDataset")
    set_version(dataset, Version("2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"))
    assert dataset.resolve_save_version() == "2026-01-02T00.00.00.000Z"
    assert dataset.resolve_load_version() == "2026-01-01T00.00.00.000Z"
    set_version(dataset, Version(None, "2026-01-03T00.00.00.000Z"))  # the cached version is forgotten
    assert dataset.resolve_save_version() == "2026-01-03T00.00.00.000Z"


def test_kedro_run_callback_takes_the_options_of_kedro_run():
    from kedro.framework.cli.project import run

    names = {option.name for option in run.params}
    assert {"pipeline", "pipelines", "env", "params", "runner", "load_versions"} <= names
    assert set(inspect.signature(kedro_run_command()).parameters) == names


def test_no_other_module_reaches_a_protected_member_of_kedro():
    """A protected attribute of a Kedro object is used only in kedro_compat.py (a subclass's own excepted)."""
    found = []
    for path in SOURCE.rglob("*.py"):
        if path.name == "kedro_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("_dataset", "_clear_version_cache", "callback"):
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno} {node.attr}")
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "_version" for t in node.targets
            ):
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno} _version =")
    assert not found, found


def test_the_pyproject_says_how_many_protected_apis_there_are():
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    assert "framework/kedro_compat.py holds the three protected Kedro APIs used" in pyproject


def test_kedro_is_the_minor_version_the_project_pins():
    assert importlib.metadata.version("kedro").startswith("1.7.")
    assert importlib.metadata.version("kedro-datasets").startswith("9.6.")

"""Each room imports only what it may: the layout is a rule a test keeps, not a hope."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "digit_recognizer"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(path): path for path in PACKAGE.rglob("*.py")}


def _imports(module: str) -> set[str]:
    """What a module imports, anywhere in it (inside functions too), relative imports made absolute."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
    return found


def _reached(module: str) -> dict[str, str]:
    """Every import that ``module`` leads to, through the project's own modules: import -> the module that makes it."""
    reached: dict[str, str] = {}
    todo, seen = [module], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in _imports(current):
            reached.setdefault(name, current)
            own = [m for m in (name, *(name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1))) if m in MODULES]
            todo += [m for m in own if m != "digit_recognizer"]
    return reached


LOW = ("digit_recognizer.framework", "digit_recognizer.pipelines", "digit_recognizer.integrations")


@pytest.mark.parametrize(
    ("room", "forbidden"),
    [
        ("ml", ("kedro", "digit_recognizer.runstore", "digit_recognizer.report", *LOW)),
        (
            "runstore",
            ("kedro", "torch", "jinja2", "digit_recognizer.ml", "digit_recognizer.config", "digit_recognizer.report")
            + LOW,
        ),
        ("pipelines", ("digit_recognizer.framework", "digit_recognizer.runstore", "digit_recognizer.integrations")),
        ("report", ("kedro", "torch", "digit_recognizer.ml", "digit_recognizer.config", *LOW)),
        ("framework", ("digit_recognizer.pipelines",)),  # the adapter reaches into no pipeline
    ],
)
def test_a_room_reaches_nothing_it_may_not(room, forbidden):
    """Imports are followed through the project's own modules, and inside functions too."""
    offending = {
        f"{module} -> ... {by} imports {name}"
        for module in MODULES
        if module.startswith(f"digit_recognizer.{room}")
        for name, by in _reached(module).items()
        if name in forbidden or name.startswith(tuple(f"{f}." for f in forbidden))
    }
    assert not offending, sorted(offending)


def test_the_layout_check_follows_imports_inside_functions_and_through_other_modules():
    assert "digit_recognizer.report" in _imports("digit_recognizer.framework.publishers")
    assert "torch" in _reached("digit_recognizer.framework.publishers")  # through config and the model registry
    assert "kedro.framework.session" in _imports("digit_recognizer.framework.project")  # inside load_context


def test_the_run_store_works_without_kedro_or_torch_installed():
    """Imported with kedro, torch and the report made unimportable, the run store still loads, whole."""
    modules = sorted(f"digit_recognizer.runstore.{p.stem}" for p in (PACKAGE / "runstore").glob("*.py"))
    script = (
        f"import sys; sys.modules.update(kedro=None, torch=None, jinja2=None); import {', '.join(modules)}; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


def test_a_dag_file_imports_the_scheduled_steps_without_configuring_kedro():
    """Kedro configures logging when first imported; a task must apply its own logging config first."""
    script = "import sys, digit_recognizer.scheduled; print('kedro.framework.project' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr

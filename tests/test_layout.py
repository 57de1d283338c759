"""Each room imports only what it may: the layout is a rule a test keeps, not a hope."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "digit_recognizer"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    ("room", "forbidden"),
    [
        ("ml", ("kedro", "digit_recognizer.pipelines", "digit_recognizer.framework", "digit_recognizer.runstore")),
        (
            "runstore",
            ("kedro", "torch", "digit_recognizer.ml", "digit_recognizer.framework", "digit_recognizer.pipelines"),
        ),
        ("pipelines", ("digit_recognizer.framework", "digit_recognizer.runstore", "digit_recognizer.integrations")),
        (
            "report",
            (
                "kedro",
                "torch",
                "digit_recognizer.framework",
                "digit_recognizer.pipelines",
                "digit_recognizer.integrations",
            ),
        ),
    ],
)
def test_a_room_imports_nothing_it_may_not(room, forbidden):
    offending = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in (PACKAGE / room).rglob("*.py")
        for name in _imports(path)
        if name == forbidden or name.startswith(tuple(f"{f}." for f in forbidden) + forbidden)
    }
    assert not offending, offending


def test_the_run_store_works_without_kedro_installed():
    """Imported with kedro made unimportable, the run store and its commands still load."""
    script = (
        "import sys; sys.modules['kedro'] = None; "
        "import digit_recognizer.runstore, digit_recognizer.runstore.cli, digit_recognizer.runstore.retention; "
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr

"""The seconds before the first node: the interpreter, the imports, and Kedro's own floor, each in a fresh process.

    python benchmarks/startup.py          # five of each, medians

Kedro's floor is `kedro run` of a bare Kedro 1.7 project written to a temporary folder: one
package whose only pipeline is one node that does nothing, an empty catalog, no hooks and no
plugins of its own (installed plugins such as kedro-viz still load, as they do for the
project). `benchmarks/run.py` prints these beside the project's own start-up (launch to first
node of `kedro run --pipelines conv`).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import PROJECT_ROOT  # noqa: E402
from threads import cpu  # noqa: E402

BARE = {
    "pyproject.toml": (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "bare"\nversion = "0.1"\n\n'
        '[tool.kedro]\npackage_name = "bare"\nproject_name = "bare"\nkedro_init_version = "1.7.0"\n'
        'source_dir = "src"\n'
    ),
    "src/bare/__init__.py": "",
    "src/bare/settings.py": "",
    "src/bare/pipeline_registry.py": (
        "from kedro.pipeline import Pipeline, node\n\n\n"
        "def register_pipelines():\n"
        "    return {'__default__': Pipeline([node(lambda x: None, 'params:x', None, name='nothing')])}\n"
    ),
    "conf/base/catalog.yml": "{}\n",
    "conf/base/parameters.yml": "x: 1\n",
    "conf/local/.gitkeep": "",
}


def timed(command: list[str], cwd: Path, env: dict[str, str], repeat: int) -> float:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def pieces(repeat: int = 5) -> list[tuple[str, float]]:
    """(what, median seconds) for each piece, each in fresh processes."""
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare"
        for name, text in BARE.items():
            (bare / name).parent.mkdir(parents=True, exist_ok=True)
            (bare / name).write_text(text)
        bare_env = {**env, "PYTHONPATH": str(bare / "src")}
        project_modules = "import digit_recognizer.pipeline_registry, digit_recognizer.settings"
        rows = [
            ("python -c pass", [python, "-c", "pass"], PROJECT_ROOT, env),
            ("python -c 'import torch'", [python, "-c", "import torch"], PROJECT_ROOT, env),
            ("import the project's modules (torch too)", [python, "-c", project_modules], PROJECT_ROOT, env),
            ("kedro --version (Kedro's CLI, plugins)", [python, "-m", "kedro", "--version"], PROJECT_ROOT, env),
            ("kedro run, a bare project (Kedro's floor)", [python, "-m", "kedro", "run"], bare, bare_env),
        ]
        return [(label, timed(command, cwd, run_env, repeat)) for label, command, cwd, run_env in rows]


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(cpu())
    print(f"median of {repeat} fresh processes each:")
    for label, seconds in pieces(repeat):
        print(f"  {label:<44} {seconds:6.2f} s")


if __name__ == "__main__":
    main()

"""A real Airflow 3 deployment with the CeleryExecutor on this machine, its workers on hosts of their own.

Used by ``scripts/check_airflow.py --workers N``. It starts, each in a process group of its own
and each stopped by its group whatever happens:

* Redis (Debian's ``redis-server``) on 127.0.0.1, the Celery broker;
* PostgreSQL (Debian's ``postgresql``, run as its ``postgres`` user) on 127.0.0.1, the metadata
  database and Celery's result backend;
* ``airflow api-server`` (the execution API the workers' tasks talk to), ``airflow scheduler`` and
  ``airflow dag-processor``;
* N ``airflow celery worker``s, each under ``unshare -u`` with a hostname of its own
  (``worker-1`` ...), its own copy of the project (as a worker's image holds it), its own empty
  working folder and its own log-server port: only the bucket, the broker and the database are
  shared, as on separate machines.

Facts this needs (Airflow 3.3.2): celery 5.6.3 (5.7 lacks what providers-celery 3.26 imports),
one ``[api_auth] jwt_secret`` for every process and ``[core] execution_api_server_url`` pointing
at the API server, or tasks fail with "Invalid auth token".
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def missing() -> list[str]:
    """What this machine lacks for the deployment (empty when it has all)."""
    lacking = []
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        lacking.append("root and unshare (hosts of their own)")
    if shutil.which("redis-server") is None:
        lacking.append("redis-server (apt-get install redis-server)")
    if not POSTGRES_BIN:
        lacking.append("PostgreSQL (apt-get install postgresql)")
    try:
        import airflow.providers.celery  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError:
        lacking.append(
            'Airflow\'s Celery extra: pip install "apache-airflow[celery]==3.3.2" celery==5.6.3 psycopg2-binary'
        )
    return lacking


class Deployment:
    """The broker, the database, Airflow's services and the workers; ``start`` then ``stop`` (always)."""

    def __init__(self, home: Path, env: dict[str, str], project: Path, workers: int) -> None:
        self.home, self.project, self.workers = home, project, workers
        self.processes: dict[str, subprocess.Popen] = {}
        self.redis_port, self.pg_port, self.api_port = free_port(), free_port(), free_port()
        database = f"postgresql+psycopg2://postgres@127.0.0.1:{self.pg_port}/airflow"
        self.env = {
            **env,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:{self.pg_port}/airflow",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",  # a killed worker's task fails after 30 s
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        }

    def _start(self, name: str, command: list[str], cwd: Path, env: dict[str, str] | None = None, **kw) -> None:
        log = open(self.home / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            command, cwd=cwd, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kw
        )

    def _wait_port(self, port: int, name: str, seconds: float = 120) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {(self.home / f'{name}.log').read_text()[-3000:]}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"{name} did not listen on {port} within {seconds} s")

    def start_services(self) -> None:
        """Redis, PostgreSQL with an empty ``airflow`` database; then ``airflow db migrate``."""
        self._start(
            "redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""], self.home
        )
        self.pg_dir = Path(tempfile.mkdtemp(prefix="airflow-postgres-"))  # the postgres user's, outside the home
        shutil.chown(self.pg_dir, "postgres", "postgres")
        data = self.pg_dir / "data"
        bin_dir = POSTGRES_BIN[-1]
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust"], check=True, capture_output=True
        )
        postgres = [*as_postgres, str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.pg_port)]
        self._start("postgres", [*postgres, "-c", "listen_addresses=127.0.0.1", "-k", str(self.pg_dir)], self.home)
        self._wait_port(self.redis_port, "redis")
        self._wait_port(self.pg_port, "postgres")
        time.sleep(1.0)
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "airflow"],
            check=True,
            capture_output=True,
        )

    def start_airflow(self, outside: Path) -> None:
        airflow = [sys.executable, "-m", "airflow"]
        migrate = subprocess.run([*airflow, "db", "migrate"], env=self.env, cwd=outside, capture_output=True, text=True)
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate:\n{migrate.stdout[-2000:]}{migrate.stderr[-2000:]}")
        self._start("api-server", [*airflow, "api-server", "--port", str(self.api_port)], outside)
        self._start("scheduler", [*airflow, "scheduler"], outside)
        self._start("dag-processor", [*airflow, "dag-processor"], outside)
        self._wait_port(self.api_port, "api-server")
        for k in range(1, self.workers + 1):
            self.start_worker(k)

    def start_worker(self, k: int) -> None:
        """Worker ``k`` on a host of its own: hostname worker-k, its own project copy and empty folder."""
        name = f"worker-{k}"
        host = self.home / name
        copy, work = host / "project", host / "work"
        work.mkdir(parents=True)
        copy.mkdir()
        for item in ("pyproject.toml", "conf", "src", "templates"):
            source = self.project / item
            if source.is_dir():
                shutil.copytree(source, copy / item, ignore=shutil.ignore_patterns("__pycache__", "local"))
            else:
                shutil.copy(source, copy / item)
        (copy / "conf" / "local").mkdir(exist_ok=True)
        env = {
            **self.env,
            "DIGIT_RECOGNIZER_PROJECT": str(copy),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "PYTHONPATH": str(copy / "src"),  # the worker's own copy of the code, as its image would hold it
        }
        worker = f"exec {sys.executable} -m airflow celery worker --concurrency 1 --celery-hostname {name}@%h"
        self._start(name, ["unshare", "-u", "sh", "-c", f"hostname {name} && {worker}"], work, env)

    def kill(self, name: str) -> None:
        """SIGKILL a process's whole group, as a machine that dies."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.time() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if getattr(self, "pg_dir", None) is not None:
            shutil.rmtree(self.pg_dir, ignore_errors=True)

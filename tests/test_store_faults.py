"""When the store itself fails, as a user meets it: one message naming what to fix, exit 1, no traceback.

Each case runs the commands against moto's S3 server in a process of its own (so that it can be
killed, or paused with SIGSTOP, while a run uses it), started and stopped by the test by its
process group: a missing bucket, an endpoint that does not answer, missing and refused
credentials, access denied (moto with IAM checks on), a request stalled by a paused server, and
the store dying or pausing mid-training, after which the next run removes what was left.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import copy_project

pytestmark = pytest.mark.slow  # each starts moto's server, and most a `kedro` command

pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytest.importorskip("s3fs", reason="the [s3] extra (s3fs) is not installed")

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def moto_process(**environ: str):
    """moto's server as a process of its own group on 127.0.0.1: yields (endpoint, process); killed at the end."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, "moto's server did not start"
                time.sleep(0.1)
        yield endpoint, server
    finally:
        try:
            os.killpg(server.pid, signal.SIGCONT)
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait(timeout=30)


def _client(endpoint: str, service: str = "s3", **credentials: str):
    import boto3

    given = {**CREDENTIALS, **credentials}
    return boto3.client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=given["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=given["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )


def _env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **env,
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance role to look for on a test machine
        "DO_NOT_TRACK": "1",
        "COLUMNS": "200",
        **extra,
    }


def _kedro(project: Path, env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


def _one_message(result: subprocess.CompletedProcess, *expected: str) -> str:
    """Exit 1, no traceback, and the last line is the one message, holding every expected part."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: "), output[-3000:]
    for part in expected:
        assert part in last, (part, last)
    return last


@pytest.fixture(scope="module")
def store():
    with moto_process() as (endpoint, _):
        yield endpoint


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("faults") / "project")


def test_a_missing_bucket_is_named_by_run_list_and_retention(store, project):
    env = _env(store)
    ran = _kedro(project, env, "run", "--pipeline", "linear", "--params", "data_root=s3://no-such-bucket/dr")
    _one_message(ran, "the bucket 'no-such-bucket' does not exist at", store)
    assert "If-None-Match" not in ran.stderr  # the conditional-write probe does not take the blame
    for command in (["list"], ["retention", "--keep", "3"], ["latest"]):
        result = _kedro(project, env, "runs", *command, "--data-root", "s3://no-such-bucket/dr")
        _one_message(result, "the bucket 'no-such-bucket' does not exist", store)
    listed = _kedro(project, env, "runs", "--data-root", "s3://no-such-bucket/dr", "list")  # before or after
    _one_message(listed, "no-such-bucket")


def test_an_empty_store_says_where_it_looked(store, project):
    _client(store).create_bucket(Bucket="empty-bucket")
    listed = _kedro(project, _env(store), "runs", "list", "--data-root", "s3://empty-bucket/dr")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "no runs under s3://empty-bucket/dr/runs" in listed.stdout
    local = _kedro(project, _env(store), "runs", "--runs-dir", str(project / "nowhere"), "list")
    assert local.returncode == 0 and f"no runs under {project / 'nowhere'} (no such folder)" in local.stdout


def test_an_endpoint_that_does_not_answer_is_named(project):
    dead = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    ran = _kedro(project, _env(dead), "run", "--pipeline", "linear", "--params", "data_root=s3://bucket/dr")
    _one_message(ran, f"the object store at {dead} could not be reached", "runstore.yml")
    assert time.monotonic() - started < 60  # refused connections: the bounded attempts, not minutes
    _one_message(_kedro(project, _env(dead), "runs", "list", "--data-root", "s3://bucket/dr"), dead)
    no_scheme = _env(dead, AWS_ENDPOINT_URL=dead.removeprefix("http://"))  # 127.0.0.1:PORT, a common slip
    _one_message(_kedro(project, no_scheme, "runs", "list", "--data-root", "s3://bucket/dr"), "is not a URL")


def test_missing_and_refused_credentials_and_access_denied(project):
    # IAM checks from the 7th request on: the first six make a bucket and two users.
    with moto_process(INITIAL_NO_AUTH_ACTION_COUNT="7") as (endpoint, _):
        _client(endpoint).create_bucket(Bucket="guarded")
        iam, keys = _client(endpoint, "iam"), {}
        for user, actions in (("writer", ["s3:*"]), ("reader", ["s3:ListBucket", "s3:GetObject"])):
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
            resource = ["arn:aws:s3:::guarded", "arn:aws:s3:::guarded/*"]
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}],
            }
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
        run = ("run", "--pipeline", "linear", "--params", "data_root=s3://guarded/dr")

        missing = _env(endpoint)
        del missing["AWS_ACCESS_KEY_ID"], missing["AWS_SECRET_ACCESS_KEY"]
        missing["HOME"] = str(project)  # no ~/.aws either
        _one_message(_kedro(project, missing, *run), "no credentials for s3://guarded/dr", "credentials.yml")

        wrong = _env(endpoint, **{**keys["writer"], "AWS_SECRET_ACCESS_KEY": "not-the-secret"})
        last = _one_message(_kedro(project, wrong, *run), "refused the credentials (SignatureDoesNotMatch)")
        assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment" in last
        assert "not-the-secret" not in last
        unknown = _env(endpoint, AWS_ACCESS_KEY_ID="AKIANOSUCHKEY", AWS_SECRET_ACCESS_KEY="x")
        _one_message(_kedro(project, unknown, "runs", "list", "--data-root", "s3://guarded/dr"), "InvalidAccessKeyId")

        denied = _kedro(project, _env(endpoint, **keys["reader"]), *run)
        _one_message(denied, "access denied (AccessDenied, PutObject) on s3://guarded/dr/runs", "Permissions")

        writer = _kedro(project, _env(endpoint, **keys["writer"]), *run)  # the control: the right key works
        assert writer.returncode == 0, writer.stderr[-3000:]
        assert _kedro(project, _env(endpoint, **keys["reader"]), "runs", "list", "--data-root", "s3://guarded/dr")


def test_a_stalled_request_says_so_while_it_waits_and_ends_within_its_bound(caplog):
    from digit_recognizer.runstore import RunStoreSettings
    from digit_recognizer.runstore.backends import ObjectBackend
    from digit_recognizer.runstore.faults import StoreUnreachable

    with moto_process() as (endpoint, server):
        _client(endpoint).create_bucket(Bucket="stalls")
        settings = RunStoreSettings.build(
            config={"connect_timeout": 1, "read_timeout": 2, "retries": 2},
            credentials={"client_kwargs": {"endpoint_url": endpoint}, "key": "testing", "secret": "testing"},
            data_root="s3://stalls/dr",
            environ={},
        )
        backend = ObjectBackend("s3://stalls/dr/runs", settings)
        assert backend.names() == []
        os.killpg(server.pid, signal.SIGSTOP)  # the server takes connections (the kernel does) and never answers
        started = time.monotonic()
        with caplog.at_level(logging.WARNING), pytest.raises(StoreUnreachable, match="did not answer in time"):
            backend.read("run/run.json")
        waited = time.monotonic() - started
        os.killpg(server.pid, signal.SIGCONT)
    assert settings.patience <= waited <= settings.request_limit + 3, (waited, settings.request_limit)
    assert any("Still waiting for the object store" in r.getMessage() for r in caplog.records)


def _wait_for(path: Path, text: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while text not in path.read_text():
        assert process.poll() is None, path.read_text()[-3000:]
        assert time.time() < deadline, f"{text!r} never came"
        time.sleep(0.2)


@pytest.mark.parametrize("fault", ["killed", "paused"])
def test_the_rollback_survives_the_store_going_away_mid_training(project, tmp_path, fault):
    # A short lease (its waits shrink to fit) keeps the test short; the defaults behave alike, slower.
    with moto_process() as (endpoint, server):
        _client(endpoint).create_bucket(Bucket="fading")
        env = _env(endpoint, DIGIT_RECOGNIZER_LEASE_TTL="6", DIGIT_RECOGNIZER_CLOCK_SKEW="1")
        log = tmp_path / f"{fault}.log"
        args = ["run", "--pipeline", "conv", "--params", "data_root=s3://fading/dr,conv.epochs=40"]
        with open(log, "w") as out:
            run = subprocess.Popen(
                [sys.executable, "-m", "kedro", *args], cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT
            )
            try:
                _wait_for(log, "Running node: train_model: train_model(", run)
                os.killpg(server.pid, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
                started = time.monotonic()
                assert run.wait(timeout=240) == 1
                ended = time.monotonic() - started
            finally:
                run.kill()
        output = log.read_text()
        assert "Traceback" not in output, output[-4000:]
        assert "could not be rolled back whole" in output and "not a complete run" in output, output[-4000:]
        assert "the next run or `kedro runs retention` removes what is left once its lease expires" in output
        assert output.strip().splitlines()[-1].startswith("Error: "), output[-3000:]
        assert ended < 120, ended
        if fault == "killed":
            return
        os.killpg(server.pid, signal.SIGCONT)  # the store is back: the next run removes what was left
        s3 = _client(endpoint)
        left = [o["Key"] for o in s3.list_objects_v2(Bucket="fading", Prefix="dr/").get("Contents", [])]
        assert any(key.startswith("dr/runs/") for key in left), left
        time.sleep(8)  # the lease expires (6 s, 1 s skew)
        again = _kedro(project, env, "run", "--pipeline", "linear", "--params", "data_root=s3://fading/dr")
        assert again.returncode == 0, again.stderr[-3000:]
        assert "Removed what the interrupted run" in again.stderr
        listed = _kedro(project, env, "runs", "list", "--data-root", "s3://fading/dr")
        assert [line.split()[1] for line in listed.stdout.splitlines()[1:] if line[:1].isdigit()] == ["complete"]
        after = {o["Key"] for o in s3.list_objects_v2(Bucket="fading", Prefix="dr/").get("Contents", [])}
        assert not any("conv" in key for key in after), sorted(after)  # nothing of the failed conv run


def test_a_run_killed_on_this_host_is_dead_at_once(store, project, tmp_path):
    _client(store).create_bucket(Bucket="killed-here")
    env = _env(store)  # the default lease: 30 s, which the runs command does not wait for
    log = tmp_path / "killed.log"
    args = ["run", "--pipeline", "conv", "--params", "data_root=s3://killed-here/dr,conv.epochs=40"]
    with open(log, "w") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "kedro", *args],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for(log, "Running node: train_model: train_model(", run)
            listed = _kedro(project, env, "runs", "list", "--data-root", "s3://killed-here/dr")
            assert listed.stdout.splitlines()[1].split()[1] == "running", listed.stdout
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
        finally:
            run.kill()
    listed = _kedro(project, env, "runs", "list", "--data-root", "s3://killed-here/dr")
    row = listed.stdout.splitlines()[1]
    assert row.split()[1] == "dead" and "killed or cut off before it finished" in row, listed.stdout
    swept = _kedro(project, env, "runs", "retention", "--keep", "3", "--data-root", "s3://killed-here/dr")
    assert swept.returncode == 0 and "removed what the interrupted run" in swept.stdout, swept.stdout
    assert "no runs under" in _kedro(project, env, "runs", "list", "--data-root", "s3://killed-here/dr").stdout

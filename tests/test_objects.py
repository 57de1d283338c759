"""The object-store primitives against a real S3 endpoint: moto's server on 127.0.0.1, through botocore and s3fs."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("s3fs", reason="the [s3] extra (s3fs) is not installed")
pytest.importorskip("moto.server", reason="moto[server] is not installed")

from digit_recognizer.runstore.objects import Lease, LeaseLost, Objects, lease_state, reap  # noqa: E402

from .conftest import S3_CREDENTIALS, s3_bucket  # noqa: E402


@pytest.fixture
def objects(s3_endpoint, monkeypatch, request) -> Objects:
    for name, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = s3_bucket(s3_endpoint, f"runs-{request.node.name}")
    return Objects(f"s3://{bucket}/project", client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)


def test_objects_are_written_whole_read_with_their_etag_and_listed(objects):
    assert objects.get("run/record.json") is None and objects.keys("run") == []
    objects.put("run/record.json", b'{"a": 1}')
    data, etag = objects.get("run/record.json")
    assert data == b'{"a": 1}' and etag
    assert objects.keys("run") == ["run/record.json"]
    objects.delete("run/record.json")
    assert objects.get("run/record.json") is None


def test_create_is_exclusive_even_when_many_try_at_once(objects):
    results = []

    def attempt(n: int) -> None:
        results.append((n, objects.create("claim", f"{n}".encode())))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, won in results if won]
    assert len(winners) == 1 and objects.get("claim")[0] == str(winners[0]).encode()


def test_replace_only_if_unchanged(objects):
    objects.put("x", b"1")
    _, etag = objects.get("x")
    new = objects.replace("x", b"2", etag)
    assert new and objects.get("x")[0] == b"2"
    assert objects.replace("x", b"3", etag) is None  # written against the old version: refused
    assert objects.get("x")[0] == b"2"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_live_lease_is_renewed_and_a_second_holder_refused(objects):
    clock = Clock()
    lease = Lease(objects, "run/lease.json", ttl=30, clock=clock)
    lease.acquire()
    assert lease_state(objects, "run/lease.json", now=clock())[0] == "live"
    with pytest.raises(FileExistsError, match="held by another process"):
        Lease(objects, "run/lease.json", clock=clock).acquire()
    clock.now += 20
    lease.renew()  # before it expires: extended
    clock.now += 20
    lease.check()  # 40 s after it began, still ours
    assert lease_state(objects, "run/lease.json", now=clock())[0] == "live"
    assert not reap(objects, "run/lease.json", now=clock())  # a live run is never declared dead
    lease.release()
    assert lease_state(objects, "run/lease.json")[0] == "none"


def test_an_expired_lease_is_reaped_once_and_its_holder_stops_when_it_wakes(objects):
    clock = Clock()
    lease = Lease(objects, "run/lease.json", ttl=30, clock=clock)
    lease.acquire()
    clock.now += 35  # the holder is paused: no renewal for longer than its lease
    assert lease_state(objects, "run/lease.json", now=clock.now, skew=10)[0] == "live"  # within the skew allowed
    later = clock.now + 10
    assert lease_state(objects, "run/lease.json", now=later, skew=10)[0] == "expired"
    assert reap(objects, "run/lease.json", now=later, skew=10)  # one reaper wins
    assert not reap(objects, "run/lease.json", now=later, skew=10)  # and only one
    assert lease_state(objects, "run/lease.json", now=later)[0] == "reaped"
    with pytest.raises(LeaseLost, match="expired 5.0 s ago"):
        lease.check()  # the holder wakes: it must not write
    with pytest.raises(LeaseLost):
        lease.renew()


def test_a_holder_that_wakes_before_the_reaper_but_after_its_expiry_still_stops(objects):
    clock = Clock()
    lease = Lease(objects, "run/lease.json", ttl=30, clock=clock)
    lease.acquire()
    clock.now += 31
    with pytest.raises(LeaseLost):
        lease.renew()  # too late to renew: someone may already be deleting the run


def test_a_reaper_loses_to_a_renewal_that_came_first(objects):
    clock = Clock()
    lease = Lease(objects, "run/lease.json", ttl=30, clock=clock)
    lease.acquire()
    stale = objects.get("run/lease.json")
    clock.now += 25
    lease.renew()
    # a reaper that read the lease before the renewal and decides on what it read
    assert objects.replace("run/lease.json", b'{"reaped_by": "x"}', stale[1]) is None
    lease.check()


def test_the_heartbeat_renews_in_the_background(objects):
    lease = Lease(objects, "run/lease.json", ttl=0.9)
    lease.acquire()
    first = lease.expires
    lease.start()
    time.sleep(1.5)  # longer than the lease: only renewals keep it
    lease.check()
    assert lease.expires > first
    lease.release()
    assert objects.get("run/lease.json") is None

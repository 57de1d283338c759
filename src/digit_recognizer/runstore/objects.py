"""The run store's primitives where there is no ``flock`` and no rename: whole objects, conditional writes, leases.

On a local disk a run's liveness is a ``flock`` the operating system lets go of when the
process dies, and a file appears whole by a rename. An object store (S3, GCS, Azure Blob, and
the S3-compatible servers) has neither. What it has, and what this module assumes of it:

* **an object appears whole or not at all** (one PUT: a reader sees the old object or the new
  one, never a part);
* **strong read-after-write consistency**: a read or a listing after a successful write sees it;
* **conditional writes**: create only if absent (``If-None-Match: *``) and replace only if
  unchanged (``If-Match: <etag>``).

On these, a run proves it is alive with a :class:`Lease`: an object it creates once and renews
(a conditional replace) every third of its time to live. A reader that finds the lease's expiry
passed, by more than the allowed clock skew, may declare the run dead with :func:`reap`: a
conditional replace of the lease by a tombstone, which only one reaper can win. A holder that
was paused (a stopped VM, a long GC, a lost network) and wakes up after its lease expired finds
out before it writes anything more: :meth:`Lease.check` refuses once the expiry it last wrote has
passed, and its next renewal fails because the lease is no longer the object it wrote. It must
then stop, and never write into a run that another process declared dead.

``docs/object-storage.md`` says which stores provide these properties. Nothing here imports
Kedro; the filesystems come from fsspec (``s3://`` needs the ``[s3]`` extra: s3fs).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from digit_recognizer.errors import UserError
from digit_recognizer.runstore.faults import StoreContext, StoreFault, explain
from digit_recognizer.runstore.locations import bounded, call

logger = logging.getLogger(__name__)

DEFAULT_TTL = 30.0  # seconds a lease lives without renewal
DEFAULT_SKEW = 10.0  # how far apart the clocks of the hosts that share a store may be


class LeaseLost(UserError, RuntimeError):
    """This process's lease expired or was taken: the run was (or may be) declared dead; it must stop writing."""


def _condition(error: BaseException) -> str | None:
    """``"failed"`` for a 412 Precondition Failed (or fsspec's FileExistsError for an exclusive create),
    ``"conflict"`` for a 409 ConditionalRequestConflict (a concurrent conditional write: retry), else None."""
    if isinstance(error, FileExistsError):
        return "failed"
    seen: BaseException | None = error
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "ConditionalRequestConflict" or status == 409:
                return "conflict"
            if code in {"PreconditionFailed", "412"} or status == 412:
                return "failed"
        if "PreconditionFailed" in str(seen) or "Precondition Failed" in str(seen):
            return "failed"
        seen = seen.__cause__ or seen.__context__
    return None


def _conditional(write: Callable[[], None], attempts: int = 5) -> bool:
    """Runs a conditional write: True when it was made, False when its precondition failed.

    A 409 (another conditional write to the key was in flight) is retried after a short wait, as
    AWS documents; the retry then meets the other write's outcome.
    """
    for attempt in range(attempts):
        try:
            write()
            return True
        except FileNotFoundError:
            return False
        except Exception as exc:
            condition = _condition(exc)
            if condition == "failed":
                return False
            if condition != "conflict" or attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    return False


class _Patience:
    """Says in the log that a request is still waiting, every ``after`` seconds until it ends."""

    def __init__(self, after: float, what: str, context: StoreContext) -> None:
        self.after, self.what, self.context = after, what, context
        self.started = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"waiting: {what}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(self.after):
            waits = f"; a request gives up after {self.context.waits}" if self.context.waits else ""
            logger.warning(
                "Still waiting for the object store at %s: %s has waited %.0f s%s",
                self.context.where,
                self.what,
                time.monotonic() - self.started,
                waits,
            )

    def done(self) -> None:
        self._done.set()


class Objects:
    """Whole objects under one prefix of an fsspec store (``s3://bucket/prefix``), by key (``run/lease.json``).

    Every request first checks, once, that the bucket is there and answers (one listing of the
    prefix); a failure of the store is a :class:`~digit_recognizer.runstore.faults.StoreFault`
    naming the bucket, the endpoint or the credentials' source, and a request that waits longer
    than ``patience`` seconds says so in the log while it waits.
    """

    def __init__(
        self,
        url: str,
        *,
        context: StoreContext | None = None,
        patience: float = 5.0,
        limit: float | None = None,
        **storage_options: Any,
    ) -> None:
        from digit_recognizer.runstore.locations import filesystem

        self.url = url.rstrip("/")
        self.fs, self.root = filesystem(self.url, **storage_options)
        self.context = context or StoreContext(url=self.url, options=storage_options)
        self.patience, self.limit = patience, limit  # limit: the longest a request may take, in seconds
        self._reached = False

    def path(self, key: str) -> str:
        return f"{self.root}/{key}"

    @contextmanager
    def request(self, what: str) -> Iterator[None]:
        """A request to the store: checked to reach it first, watched while it waits, its failure explained."""
        if not self._reached:
            self._reach()
        watch = _Patience(self.patience, what, self.context)
        try:
            yield
        except StoreFault:
            raise
        except Exception as exc:
            fault = explain(exc, self.context)
            if fault is None:
                raise
            raise fault from exc
        finally:
            watch.done()

    def _reach(self) -> None:
        """One listing of the prefix (S3): the bucket exists, the endpoint answers, the credentials are taken."""
        if not hasattr(self.fs, "call_s3"):
            self._reached = True
            return
        bucket, prefix, _ = self.fs.split_path(self.root)
        watch = _Patience(self.patience, f"a listing of {self.url}", self.context)
        try:
            self._call("call_s3", "list_objects_v2", Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", MaxKeys=1)
        except Exception as exc:
            fault = explain(exc, self.context)
            if fault is None:
                raise
            raise fault from exc
        finally:
            watch.done()
        self._reached = True

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return call(self.fs, method, *args, limit=self.limit, **kwargs)

    def _bounded(self, coroutine: Any) -> Any:
        return bounded(self.fs, coroutine, self.limit)

    def get(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and the ETag of those bytes, or None when there is none."""
        with self.request(f"a read of {self.path(key)}"):
            return self._get(key)

    def _get(self, key: str) -> tuple[bytes, str] | None:
        path = self.path(key)
        if hasattr(self.fs, "call_s3"):  # S3: one GET returns both (s3fs's public botocore call)
            bucket, name, _ = self.fs.split_path(path)

            async def get() -> tuple[bytes, str]:
                response = await self.fs._call_s3("get_object", Bucket=bucket, Key=name)
                async with response["Body"] as stream:
                    return await stream.read(), str(response["ETag"]).strip('"')

            try:
                return self._bounded(get())
            except FileNotFoundError:
                return None
        while True:  # elsewhere: read between two looks at the ETag, until they agree
            try:
                self.fs.invalidate_cache(path)
                before = self.fs.info(path).get("ETag")
                data = self.fs.cat_file(path)
                self.fs.invalidate_cache(path)
                after = self.fs.info(path).get("ETag")
            except FileNotFoundError:
                return None
            if before == after:
                return data, str(after or "").strip('"')

    def put(self, key: str, data: bytes) -> None:
        """Writes the object whole (one PUT)."""
        with self.request(f"a write of {self.path(key)}"):
            self._call("pipe_file", self.path(key), data)

    def create(self, key: str, data: bytes) -> bool:
        """Writes the object only if there is none (``If-None-Match: *``); False when it was there."""
        with self.request(f"a conditional write of {self.path(key)}"):
            return _conditional(lambda: self._call("pipe_file", self.path(key), data, mode="create"))

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        """Replaces the object only if its ETag is still ``etag``; its new ETag, or None when it changed."""
        written: dict[str, Any] = {}

        def put() -> None:
            written["response"] = self._call("pipe_file", self.path(key), data, IfMatch=f'"{etag}"')

        with self.request(f"a conditional write of {self.path(key)}"):
            if not _conditional(put):
                return None
        response = written.get("response")
        if isinstance(response, dict) and response.get("ETag"):  # S3 says which version it wrote
            return str(response["ETag"]).strip('"')
        found = self.get(key)
        return None if found is None else found[1]

    def delete(self, key: str) -> None:
        with self.request(f"a delete of {self.path(key)}"):
            try:
                self._call("rm_file", self.path(key))
            except FileNotFoundError:
                pass

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix``, sorted."""
        base = self.path(prefix).rstrip("/")
        with self.request(f"a listing of {base}"):
            self.fs.invalidate_cache()
            try:
                found = self._call("find", base)
            except FileNotFoundError:
                return []
        return sorted(path[len(self.root) + 1 :] for path in found)

    def names(self, prefix: str = "") -> list[str]:
        """The names directly under ``prefix``, sorted."""
        base = self.path(prefix).rstrip("/")
        with self.request(f"a listing of {base}"):
            self.fs.invalidate_cache(base)
            try:
                found = self._call("ls", base, detail=False, refresh=True)
            except FileNotFoundError:
                return []
        names = {str(path).rstrip("/").rsplit("/", 1)[-1] for path in found}
        return sorted(name for name in names if name and not name.startswith("."))

    def exists(self, key: str) -> bool:
        path = self.path(key)
        with self.request(f"a look at {path}"):
            self.fs.invalidate_cache(path)
            return bool(self._call("exists", path))

    def size(self, prefix: str) -> int:
        with self.request(f"a listing of {self.path(prefix)}"):
            try:
                return int(self._call("du", self.path(prefix)))
            except FileNotFoundError:
                return 0


def machine() -> str:
    """This machine and process namespace: its boot id and its pid namespace (a pid means the same process only here)."""
    try:
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, TypeError, ValueError):
        return True  # another user's process (or no usable pid): alive, as far as we can tell
    return True


@dataclass
class LeaseInfo:
    """What a lease object says: who holds it, until when (the holder's clock), and whether it was reaped.

    ``machine`` (boot id and pid namespace) lets a process on the same machine tell at once that
    the holder's pid is gone, without waiting for the lease to expire.
    """

    holder: str
    host: str
    pid: int
    expires: float
    reaped_by: str | None = None
    machine: str | None = None

    @classmethod
    def parse(cls, data: bytes) -> LeaseInfo:
        raw = json.loads(data)
        return cls(**{k: raw.get(k) for k in ("holder", "host", "pid", "expires", "reaped_by", "machine")})

    def gone_here(self) -> bool:
        """The holder ran on this machine, in this pid namespace, and its process is gone: dead now."""
        here = machine()
        return bool(here) and self.machine == here and self.host == socket.gethostname() and not pid_alive(self.pid)

    def dump(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()


class Lease:
    """This process's claim that a run (or a part of one) is alive: an object it renews until it lets go.

    ``acquire`` creates the lease object (it fails when one is there); ``start`` renews it from a
    daemon thread every ``ttl / 3`` seconds; ``check`` raises :class:`LeaseLost` once the expiry
    last written has passed or a renewal failed (call it before every write); ``release`` deletes it.
    """

    def __init__(
        self, objects: Objects, key: str, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.time
    ) -> None:
        self.objects, self.key, self.ttl, self.clock = objects, key, ttl, clock
        self.holder = uuid.uuid4().hex
        self.expires = 0.0
        self.lost: str | None = None
        self.failing: str | None = None  # why the last renewal failed (the store), while it fails
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _info(self, expires: float) -> LeaseInfo:
        return LeaseInfo(
            holder=self.holder, host=socket.gethostname(), pid=os.getpid(), expires=expires, machine=machine()
        )

    def acquire(self) -> None:
        expires = self.clock() + self.ttl
        if not self.objects.create(self.key, self._info(expires).dump()):
            raise FileExistsError(f"{self.objects.path(self.key)} is held by another process")
        found = self.objects.get(self.key)
        if found is None or LeaseInfo.parse(found[0]).holder != self.holder:
            raise FileExistsError(f"{self.objects.path(self.key)} was taken as it was made")
        self._etag, self.expires = found[1], expires

    def take(self, found: tuple[bytes, str] | None) -> bool:
        """Takes the lease over from a dead holder: ``found`` is the tombstone (or nothing) last read.

        A conditional replace of exactly that object (or a conditional create where there was
        none), so that of several processes taking it over, one wins. False when another did.
        """
        if found is None:
            try:
                self.acquire()
            except FileExistsError:
                return False
            return True
        data, etag = found
        if not LeaseInfo.parse(data).reaped_by:
            return False  # a live (or not yet reaped) holder's lease is never taken
        expires = self.clock() + self.ttl
        written = self.objects.replace(self.key, self._info(expires).dump(), etag)
        if written is None:
            return False
        self._etag, self.expires = written, expires
        return True

    def renew(self) -> None:
        """Extends the lease by ``ttl``; raises :class:`LeaseLost` if it expired first or is no longer ours."""
        with self._lock:
            self.check()
            expires = self.clock() + self.ttl
            etag = self.objects.replace(self.key, self._info(expires).dump(), self._etag or "")
            if etag is None:
                self.lost = f"the lease {self.objects.path(self.key)} was taken over (the run was declared dead)"
                raise LeaseLost(self.lost)
            self._etag, self.expires = etag, expires

    def check(self) -> None:
        """Raises :class:`LeaseLost` when this process may no longer write for the run."""
        if self.lost:
            raise LeaseLost(self.lost)
        if self.clock() >= self.expires:
            why = f"its renewals failed: {self.failing}" if self.failing else "the process was paused or cut off"
            self.lost = (
                f"the lease {self.objects.path(self.key)} expired {self.clock() - self.expires:.1f} s ago ({why}): "
                "another process may have declared the run dead"
            )
            raise LeaseLost(self.lost)

    def start(self) -> None:
        """Renews the lease from a daemon thread until :meth:`release`."""

        def beat() -> None:
            while not self._stop.wait(self.ttl / 3):
                try:
                    self.renew()
                    self.failing = None
                except LeaseLost as exc:
                    logger.error("%s", exc)
                    return
                except Exception as exc:  # the store or the network: try again at the next beat, while the lease lasts
                    self.failing = str(exc).splitlines()[0]
                    logger.warning(
                        "Could not renew %s (it expires in %.0f s): %s",
                        self.objects.path(self.key),
                        self.expires - self.clock(),
                        self.failing,
                    )

        self._thread = threading.Thread(target=beat, name=f"lease {self.key}", daemon=True)
        self._thread.start()

    def abandon(self) -> None:
        """Stops renewing without a word to the store (it is not answering): the lease expires by itself."""
        self._stop.set()

    def release(self) -> None:
        """Stops renewing and deletes the lease (only while it is still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            found = self.objects.get(self.key)
            if found is not None and LeaseInfo.parse(found[0]).holder == self.holder:
                self.objects.delete(self.key)


def lease_state(
    objects: Objects, key: str, now: float | None = None, skew: float = DEFAULT_SKEW
) -> tuple[str, LeaseInfo | None]:
    """``("live" | "expired" | "reaped" | "none", info)``: expired means past its expiry by more than ``skew``."""
    found = objects.get(key)
    if found is None:
        return "none", None
    info = LeaseInfo.parse(found[0])
    if info.reaped_by:
        return "reaped", info
    now = time.time() if now is None else now
    return ("expired" if now > info.expires + skew or info.gone_here() else "live"), info


def reap(objects: Objects, key: str, now: float | None = None, skew: float = DEFAULT_SKEW) -> bool:
    """Declares the holder of an expired lease dead; True for the one caller that wins.

    The lease is replaced by a tombstone only if it is still the object that expired, so a
    holder that renewed meanwhile keeps its run, two reapers cannot both win, and the holder's
    next renewal fails.
    """
    found = objects.get(key)
    if found is None:
        return False
    data, etag = found
    info = LeaseInfo.parse(data)
    now = time.time() if now is None else now
    if info.reaped_by or (now <= info.expires + skew and not info.gone_here()):
        return False
    tombstone = LeaseInfo(info.holder, info.host, info.pid, info.expires, uuid.uuid4().hex, info.machine)
    return objects.replace(key, tombstone.dump(), etag) is not None

"""Where a run store keeps its runs: a local folder (``flock``) or an object store (leases).

:class:`~digit_recognizer.runstore.store.RunStore` speaks to one small interface,
:class:`Backend`, in keys relative to its root (``<run id>/run.json``):

* whole objects: :meth:`~Backend.read`, :meth:`~Backend.write` (a reader sees the old bytes or the
  new ones, never a part), :meth:`~Backend.append` (a journal, written by its owner only),
  :meth:`~Backend.delete`, :meth:`~Backend.delete_tree`, :meth:`~Backend.names`;
* a new run folder that appears with its files, claimed by one process: :meth:`~Backend.start`;
* liveness: :meth:`~Backend.alive` says whether a live process holds a claim key (``lock``),
  :meth:`~Backend.hold` takes it when none does. A :class:`Claim` is let go with ``release``;
  ``check`` raises before a write when the claim was lost.

:class:`LocalBackend` keeps the runs in a folder: a claim is an ``fcntl.flock`` the operating
system lets go of when the process dies (the better signal where it exists), a new run folder
appears by a rename. :class:`ObjectBackend` keeps them under a URL (``s3://bucket/prefix/runs``):
a claim is a :class:`~digit_recognizer.runstore.objects.Lease` renewed by a heartbeat, and a run
id is claimed by creating its lease with a conditional create. ``docs/object-storage.md`` says
what the store must provide.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

from digit_recognizer.errors import UserError
from digit_recognizer.runstore import locations
from digit_recognizer.runstore.files import atomic_write, try_lock
from digit_recognizer.runstore.settings import RunStoreSettings


class Claim(ABC):
    """A process's hold on a run (or a part of one): alive until released, or until the process dies."""

    def check(self) -> None:  # noqa: B027 - a flock cannot be lost while its process lives
        """Raises :class:`~digit_recognizer.runstore.objects.LeaseLost` when the claim was lost."""

    @abstractmethod
    def release(self) -> None: ...

    def abandon(self) -> None:
        """Lets go without asking the store (it does not answer); an object store's lease then expires by itself."""
        self.release()


class Backend(ABC):
    """Whole objects, new run folders and claims under one root; keys are ``/``-separated."""

    root: locations.Location
    grace: float = 0.0  # seconds after a holder dies before its claim is found dead (none for a flock)

    @abstractmethod
    def where(self, key: str) -> locations.Location:
        """The key's full path or URL, for messages and records."""

    @abstractmethod
    def read(self, key: str) -> bytes | None: ...

    @abstractmethod
    def write(self, key: str, data: bytes, what: str) -> None:
        """Writes the object whole; raises :class:`~digit_recognizer.runstore.files.WriteError` naming ``what``."""

    @abstractmethod
    def append(self, key: str, line: str) -> None:
        """Adds a line to a journal (durably, before the write it announces)."""

    def exists(self, key: str) -> bool:
        return self.read(key) is not None

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def delete_tree(self, prefix: str) -> None:
        """Deletes a run folder (every key under ``prefix``)."""

    @abstractmethod
    def names(self, prefix: str = "") -> list[str]:
        """The names directly under ``prefix`` (run ids at the root; files in a run folder), sorted."""

    @abstractmethod
    def start(self, run_id: str, files: dict[str, bytes], hold: str | None) -> Claim | None:
        """Makes the run folder appear with ``files``, claimed by this process under the key ``hold``.

        A key that ends with ``/`` is a folder (made on a disk; nothing on an object store).

        Raises FileExistsError when the id is taken. With ``hold=None`` the folder is claimed
        only while it is made (an open run of a scheduler, which no process holds).
        """

    @abstractmethod
    def alive(self, key: str) -> bool:
        """Whether a live process holds the claim ``key``."""

    @abstractmethod
    def hold(self, key: str) -> Claim | None:
        """Takes the claim ``key`` when no live process holds it (a dead holder's is taken over), else None."""

    def size(self, prefix: str) -> int:
        return locations.size(self.where(prefix))


class _Flock(Claim):
    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class LocalBackend(Backend):
    """The runs in a folder of this machine (or a filesystem where ``flock`` works across the hosts that share it)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def where(self, key: str) -> Path:
        return self.root / key if key else self.root

    def read(self, key: str) -> bytes | None:
        try:
            return self.where(key).read_bytes()
        except OSError:
            return None

    def exists(self, key: str) -> bool:
        return self.where(key).exists()

    def write(self, key: str, data: bytes, what: str) -> None:
        with atomic_write(self.where(key), what) as temporary:
            temporary.write_bytes(data)

    def append(self, key: str, line: str) -> None:
        with open(self.where(key), "a") as handle:
            handle.write(f"{line}\n")
            handle.flush()
            os.fsync(handle.fileno())

    def delete(self, key: str) -> None:
        self.where(key).unlink(missing_ok=True)

    def delete_tree(self, prefix: str) -> None:
        shutil.rmtree(self.where(prefix), ignore_errors=True)

    def names(self, prefix: str = "") -> list[str]:
        folder = self.where(prefix)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))

    def start(self, run_id: str, files: dict[str, bytes], hold: str | None) -> Claim | None:
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{run_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}"  # threads may start runs too
        staging.mkdir()
        fd = try_lock(staging / hold) if hold else None
        for key, data in files.items():
            if key.endswith("/"):
                (staging / key).mkdir(parents=True, exist_ok=True)
                continue
            (staging / key).parent.mkdir(parents=True, exist_ok=True)
            (staging / key).write_bytes(data)
        try:
            staging.rename(self.root / run_id)
        except OSError as exc:
            if fd is not None:
                os.close(fd)
            shutil.rmtree(staging, ignore_errors=True)
            raise FileExistsError(f"another run already has the id {run_id} ({self.root / run_id} exists)") from exc
        return _Flock(fd) if fd is not None else None

    def alive(self, key: str) -> bool:
        fd = try_lock(self.where(key))
        if fd is None:
            return self.where(key).parent.is_dir()  # held (a missing folder holds nothing)
        os.close(fd)
        return False

    def hold(self, key: str) -> Claim | None:
        run_folder = self.where(key.split("/", 1)[0])
        if "/" in key and run_folder.is_dir():
            self.where(key).parent.mkdir(parents=True, exist_ok=True)  # parts/ of an open run
        fd = try_lock(self.where(key))
        return None if fd is None else _Flock(fd)


class _LeaseClaim(Claim):
    def __init__(self, lease) -> None:
        self.lease = lease

    def check(self) -> None:
        self.lease.check()

    def release(self) -> None:
        self.lease.release()

    def abandon(self) -> None:
        self.lease.abandon()


class StoreError(UserError, RuntimeError):
    """An object store lacks a property the run store needs (conditional writes)."""


class ObjectBackend(Backend):
    """The runs under a URL of an object store (``s3://bucket/prefix/runs``): claims are leases.

    The settings say how long a lease lives without renewal (``lease_ttl``: a killed process's
    run is found dead that long after its last renewal, plus ``clock_skew``, how far apart the
    clocks of the hosts may be) and how long a request may wait.
    """

    def __init__(self, url: str, settings: RunStoreSettings | None = None) -> None:
        from digit_recognizer.runstore.objects import Objects

        settings = settings or RunStoreSettings.build()
        self.root = url.rstrip("/")
        options = settings.options_for(self.root)
        self.objects = Objects(
            self.root,
            context=settings.context_for(self.root),
            patience=settings.patience,
            limit=settings.request_limit,
            **options,
        )
        self.ttl, self.skew = settings.lease_ttl, settings.clock_skew
        self.grace = self.ttl + self.skew + 1.0
        self._journals: dict[str, bytes] = {}  # the journals this backend wrote, as it wrote them
        self._appending = threading.Lock()
        self._verified = False  # the store honours conditional writes (probed once, before the first claim)

    def where(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def read(self, key: str) -> bytes | None:
        found = self.objects.get(key)
        return None if found is None else found[0]

    def exists(self, key: str) -> bool:
        return self.objects.exists(key)

    def write(self, key: str, data: bytes, what: str) -> None:
        from digit_recognizer.runstore.files import WriteError, os_reason

        try:
            self.objects.put(key, data)
        except Exception as exc:
            raise WriteError(f"Could not write {what} to {self.where(key)}: {os_reason(exc)}") from exc

    def append(self, key: str, line: str) -> None:
        """An object cannot grow: the journal is written whole again, with one PUT.

        A journal has one writer (its run, its part or the closing step), so what this backend
        last wrote is what is there: it is read from the store only the first time.
        """
        with self._appending:  # nodes of a ThreadRunner save at once: no line may be lost
            before = self._journals[key] if key in self._journals else (self.read(key) or b"")
            after = before + f"{line}\n".encode()
            self.write(key, after, "the run's journal")
            self._journals[key] = after

    def delete(self, key: str) -> None:
        self._journals.pop(key, None)
        self.objects.delete(key)

    def delete_tree(self, prefix: str) -> None:
        self._journals = {k: v for k, v in self._journals.items() if not k.startswith(f"{prefix}/")}
        for key in self.objects.keys(prefix):
            self.objects.delete(key)
        self.objects.fs.invalidate_cache()

    def size(self, prefix: str) -> int:
        return self.objects.size(prefix)

    def names(self, prefix: str = "") -> list[str]:
        return self.objects.names(prefix)

    def _lease(self, key: str):
        from digit_recognizer.runstore.objects import Lease

        self.verify()
        return Lease(self.objects, key, ttl=self.ttl)

    def verify(self) -> None:
        """Checks once per backend that the store honours conditional writes, before any run is claimed on it.

        A store that ignores ``If-None-Match`` or ``If-Match`` (an old S3-compatible server) would
        let two processes claim one run, or a renewal and a reap both succeed, without a word:
        raises :class:`StoreError` instead. Four requests, under a key no run can have.
        """
        if self._verified:
            return
        key = f".probe/{uuid.uuid4().hex}"
        created = again = False
        found = stale = None
        try:
            created = self.objects.create(key, b"1")
            again = self.objects.create(key, b"2")
            found = self.objects.get(key)
            stale = self.objects.replace(key, b"3", "0" * 32) if found else None
        finally:
            if created:
                self.objects.delete(key)
        problems = []
        if not created or found is None:
            problems.append("a conditional create (If-None-Match: *) of a new object failed")
        if again:
            problems.append("a second conditional create (If-None-Match: *) of the same object succeeded")
        if found is not None and found[0] != b"1":
            problems.append("a conditional create (If-None-Match: *) replaced an existing object")
        if stale is not None:
            problems.append("a conditional replace (If-Match) against a wrong ETag succeeded")
        if problems:
            raise StoreError(
                f"{self.root} cannot hold runs: {'; '.join(problems)}. The run store needs conditional writes "
                "(docs/object-storage.md, 'What the store must provide'); upgrade the store, or keep the runs "
                "on a local folder with DIGIT_RECOGNIZER_RUNS_DIR=data/runs"
            )
        self._verified = True

    def start(self, run_id: str, files: dict[str, bytes], hold: str | None) -> Claim | None:
        lease = self._lease(f"{run_id}/{hold or 'lock'}")
        try:
            lease.acquire()  # the conditional create that claims the id
        except FileExistsError as exc:
            raise FileExistsError(f"another run already has the id {run_id} ({self.where(run_id)} exists)") from exc
        lease.start()
        try:
            for key, data in files.items():
                if key.endswith("/"):
                    continue  # a folder: an object store has none
                self.write(f"{run_id}/{key}", data, f"run {run_id}'s {key}")
        except BaseException:
            lease.release()
            self.delete_tree(run_id)
            raise
        if hold is None:
            lease.release()
            return None
        return _LeaseClaim(lease)

    def alive(self, key: str) -> bool:
        from digit_recognizer.runstore.objects import lease_state

        state, _ = lease_state(self.objects, key, skew=self.skew)
        return state == "live"

    def hold(self, key: str) -> Claim | None:
        from digit_recognizer.runstore.objects import lease_state, reap

        state, _ = lease_state(self.objects, key, skew=self.skew)
        if state == "live":
            return None
        if state == "expired" and not reap(self.objects, key, skew=self.skew):
            return None  # renewed in time, or another process reaped it first
        lease = self._lease(key)
        if not lease.take(self.objects.get(key)):
            return None  # another process took it first
        lease.start()
        return _LeaseClaim(lease)


def backend_for(root: locations.Location, settings: RunStoreSettings | None = None) -> Backend:
    """The backend for a run store's root: a URL is an object store, anything else a local folder."""
    return ObjectBackend(str(root), settings) if locations.is_url(root) else LocalBackend(Path(root))

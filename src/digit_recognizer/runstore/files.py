"""File primitives of the run store: atomic writes, advisory locks, JSON and sizes.

Nothing here knows about runs; :mod:`digit_recognizer.runstore.store` builds on it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path


class WriteError(OSError):
    """A file could not be written; the message names what, where and the system's reason."""


def _os_error(error: BaseException) -> OSError | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def os_reason(error: BaseException) -> str:
    """The operating system's reason behind an error (e.g. 'No space left on device'), if any."""
    found = _os_error(error)
    if found is None:
        return str(error)
    return f"{found.strerror or os.strerror(found.errno)} (errno {errno.errorcode.get(found.errno, found.errno)})"


def temporary_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp")


def move_into_place(temporary: Path, final: Path) -> None:
    """Renames a fully written temporary file (or folder) to its final name, durably."""
    if temporary.is_file():
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
    os.replace(temporary, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@contextmanager
def atomic_write(final: Path, what: str) -> Iterator[Path]:
    """Yields a temporary path to write; renames it to ``final`` once the block succeeds.

    The one way this project writes a file: readers see the old file or the whole new one,
    never a part. A failure removes the temporary file and raises :class:`WriteError` naming
    ``what``, the path and the operating system's reason.
    """
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a full disk, or a file where a folder of the path should be
        raise WriteError(f"Could not write {what} to {final}: {os_reason(exc)}") from exc
    temporary = temporary_name(final)
    try:
        yield temporary
        move_into_place(temporary, final)
    except BaseException as exc:
        remove(temporary)
        if isinstance(exc, Exception) and not isinstance(exc, WriteError) and _os_error(exc) is not None:
            raise WriteError(f"Could not write {what} to {final}: {os_reason(exc)}") from exc
        raise


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on ``path``, or None if someone holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds")


def size(path: Path) -> int:
    """Bytes in a file, or in every file under a folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0

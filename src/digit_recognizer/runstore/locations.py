"""Where a run's outputs are: a path relative to the project (``data/...``) or a URL (``s3://bucket/...``).

Run records and journals keep local outputs relative to the project folder and remote ones as
URLs; these helpers read, measure and delete either (fsspec for URLs; ``s3://`` needs the
``[s3]`` extra), with the storage options they are given (``RunStoreSettings.options_for``):
nothing is taken from a process-wide default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from digit_recognizer.errors import UserError
from digit_recognizer.runstore.files import remove as remove_path
from digit_recognizer.runstore.files import size as path_size

Location = Path | str  # a local path, or a URL


def is_url(location: str | Path) -> bool:
    """``s3://…``, ``gs://…`` and the like; ``file://`` counts as local."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def resolve(project: Path, stored: str | Path) -> Location:
    """A location as a record keeps it, made usable: a URL as it is, a relative path under ``project``."""
    return str(stored) if is_url(stored) else project / str(stored).removeprefix("file://")


def relative(project: Path, location: Location) -> str:
    """A location as a record keeps it: a URL whole, a path under ``project`` relative to it, any other path whole."""
    if isinstance(location, str) and is_url(location):
        return location
    try:
        return str(Path(location).relative_to(project))
    except ValueError:
        return str(location)


def parent(location: Location) -> Location:
    return str(location).rstrip("/").rsplit("/", 1)[0] if is_url(location) else Path(location).parent


class MissingFilesystem(UserError, ImportError):
    """A URL's protocol needs a package that is not installed (``s3://`` without the ``[s3]`` extra)."""


def _missing(url: str, error: ImportError) -> MissingFilesystem:
    protocol = url.split("://", 1)[0]
    if protocol in ("s3", "s3a"):
        needs = 's3fs, the [s3] extra: pip install -e ".[s3]"'
    else:
        needs = f"fsspec's package for {protocol}:// (gcsfs for gs://, adlfs for abfs:// and az://)"
    return MissingFilesystem(f"{url} is on {protocol}://, which needs a package that is not installed: {needs}")


def filesystem(url: str, **options):
    """fsspec's filesystem and path for ``url``; a protocol whose package is missing is a :class:`MissingFilesystem`."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        raise _missing(url, exc) from exc
    if "retries" in (options.get("config_kwargs") or {}) and hasattr(fs, "retries"):
        fs.retries = 1  # botocore's attempts are the retries (RunStoreSettings): s3fs's own five would multiply them
    return fs, path


def filesystem_class(url: str):
    """The fsspec class for ``url``'s protocol (nothing is connected); a missing package raises :class:`MissingFilesystem`."""
    import fsspec

    try:
        return fsspec.get_filesystem_class(url.split("://", 1)[0])
    except ImportError as exc:
        raise _missing(url, exc) from exc


def call(fs: Any, method: str, *args: Any, limit: float | None = None, **kwargs: Any) -> Any:
    """``fs.<method>(...)``; on an async filesystem (s3fs) with a ``limit``, given up on and cancelled after it."""
    if limit is None or not getattr(fs, "async_impl", False):
        return getattr(fs, method)(*args, **kwargs)
    return bounded(fs, getattr(fs, f"_{method}")(*args, **kwargs), limit)


def bounded(fs: Any, coroutine: Any, limit: float | None) -> Any:
    """Runs a coroutine on the filesystem's loop; after ``limit`` seconds it is cancelled and TimeoutError raised.

    botocore's connect and read timeouts bound each attempt's socket waits, not a request that
    never gets its ``100 Continue`` from a stalled server; this bounds the whole request, so that
    it never outlives the lease it writes under.
    """
    import asyncio
    import concurrent.futures

    future = asyncio.run_coroutine_threadsafe(coroutine, fs.loop)
    try:
        return future.result(timeout=limit)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise TimeoutError(f"no answer within {limit:g} s") from None


def exists(location: Location, options: Mapping[str, Any] | None = None, limit: float | None = None) -> bool:
    if not is_url(location):
        return Path(location).exists()
    fs, path = filesystem(str(location), **(options or {}))
    fs.invalidate_cache()
    return bool(call(fs, "exists", path, limit=limit))


def remove(location: Location, options: Mapping[str, Any] | None = None, limit: float | None = None) -> None:
    """Deletes a file or a folder (a prefix, on an object store); nothing to delete is fine."""
    if not is_url(location):
        remove_path(Path(location))
        return
    fs, path = filesystem(str(location), **(options or {}))
    try:
        call(fs, "rm", path, recursive=True, limit=limit)
    except FileNotFoundError:
        pass
    fs.invalidate_cache()


def size(location: Location, options: Mapping[str, Any] | None = None) -> int:
    if not is_url(location):
        return path_size(Path(location))
    fs, path = filesystem(str(location), **(options or {}))
    try:
        return int(fs.du(path))
    except FileNotFoundError:
        return 0


def read_bytes(location: Location, options: Mapping[str, Any] | None = None) -> bytes | None:
    """A file's bytes, or None when it is not there."""
    if not is_url(location):
        return Path(location).read_bytes() if Path(location).is_file() else None
    fs, path = filesystem(str(location), **(options or {}))
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None


def write_bytes(location: Location, data: bytes, what: str, options: Mapping[str, Any] | None = None) -> None:
    """Writes a file whole: an atomic rename on a disk, one PUT on an object store; a failure is a named WriteError."""
    from digit_recognizer.runstore.files import WriteError, atomic_write, os_reason

    if not is_url(location):
        with atomic_write(Path(location), what) as temporary:
            temporary.write_bytes(data)
        return
    fs, path = filesystem(str(location), **(options or {}))
    try:
        fs.pipe_file(path, data)
    except Exception as exc:
        raise WriteError(f"Could not write {what} to {location}: {os_reason(exc)}") from exc

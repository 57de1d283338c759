"""``RunDataset``: a versioned dataset whose every version belongs to one run.

It wraps any file dataset (as Kedro's ``CachedDataset`` wraps one) and adds what a run needs:

* **one version per run**: the run's hooks :meth:`~RunDataset.bind` it to the run, which says
  the version it saves (the run's id) and the version it loads (the run's own, the one given
  with ``--load-versions``, or the latest *complete* run's);
* **atomic saves**: the wrapped dataset writes a temporary name beside the versioned file,
  which is renamed into place once it is whole, so no reader ever sees half a file (on an
  object store, ``s3://…``, where there is no rename, the one PUT of the object does that);
* **a journal**: before the first byte is written the version folder is noted in the run's
  journal, so a run that dies is cleaned up by the next.

Outside a run (a notebook's ``catalog.load``, kedro-viz previews) it behaves as a plain
versioned dataset and loads the newest version folder.

.. code-block:: yaml

    "{architecture}.submission":
      type: digit_recognizer.framework.RunDataset
      filepath: data/07_model_output/{architecture}/submission.csv
      dataset: {type: pandas.CSVDataset, save_args: {index: false}}

.. code-block:: python

    dataset = RunDataset(filepath="data/x.csv", dataset={"type": "pandas.CSVDataset"})
    dataset.bind("x", load=None, save="2026-11-27T02.30.04.512Z", journal=print)
    dataset.save(frame)  # data/x.csv/2026-11-27T02.30.04.512Z/x.csv, whole or not at all
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractDataset, AbstractVersionedDataset, DatasetError, Version

from digit_recognizer.errors import UserError
from digit_recognizer.framework.kedro_compat import set_version
from digit_recognizer.runstore.files import WriteError, atomic_write, remove
from digit_recognizer.runstore.locations import Location, is_url


class OutputWriteError(UserError, DatasetError):
    """An output could not be written (a full disk, say); the message names the dataset, the path and the reason."""


class _Filesystem:
    """The filesystem a dataset on an object store lists and checks its versions with; swapped, not rebuilt.

    A holder of its own (not a closure over the dataset), so that a copy sent to another process
    (a Dask worker) carries the filesystem and nothing of the run.
    """

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def glob(self, pattern: str) -> list[str]:
        return self.fs.glob(pattern)


class RunDataset(AbstractVersionedDataset[Any, Any]):
    """A local file dataset (``dataset``: its type, or its config without ``filepath``), versioned by run."""

    versioned = True  # Kedro gives it a Version whatever the catalog entry says

    def __init__(
        self,
        *,
        filepath: str,
        dataset: str | dict[str, Any],
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._config = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
        if "filepath" in self._config:
            raise DatasetError(f"RunDataset {filepath}: give 'filepath' to the RunDataset, not to the wrapped dataset.")
        if credentials:
            self._config["credentials"] = credentials
        self.metadata = metadata
        self._name = filepath
        self._journal: Callable[[Location], None] | None = None
        self._protocol = ""
        functions: dict[str, Any] = {}
        if is_url(filepath):  # an object store: fsspec lists and checks the versions
            import fsspec
            from kedro.io.core import get_protocol_and_path

            self._protocol, path = get_protocol_and_path(filepath)
            self._store = _Filesystem(fsspec.filesystem(self._protocol, **(credentials or {})))
            functions = {"exists_function": self._store.exists, "glob_function": self._store.glob}
        else:
            path = filepath.removeprefix("file://")
        super().__init__(filepath=PurePosixPath(path), version=version or Version(None, None), **functions)
        preview = getattr(type(self._at(self.folder)), "preview", None)
        if preview is not None:  # kedro-viz reads the preview's type from its signature

            def previewed(*args: Any, **kwargs: Any) -> Any:
                return self._at(self._location(self._get_load_path())).preview(*args, **kwargs)

            self.preview = functools.wraps(preview)(previewed)

    def bind(self, name: str, load: str | None, save: str, journal: Callable[[Location], None] | None) -> None:
        """From now on: load ``load`` (None: the newest version folder), save ``save``, note each new folder in ``journal``."""
        self._name = name
        set_version(self, Version(load, save))
        self._journal = journal

    def use_options(self, options: dict[str, Any]) -> None:
        """Reaches an object store with these storage options (the run store's: credentials and bounded waits)."""
        if self._protocol:
            from digit_recognizer.runstore.locations import filesystem

            self._config["credentials"] = dict(options)
            self._store.fs = filesystem(str(self.folder), **options)[0]

    def _location(self, path: Any) -> Location:
        """A path Kedro computed, as a local Path or a URL."""
        return f"{self._protocol}://{path}" if self._protocol else Path(str(path))

    @property
    def folder(self) -> Location:
        """``<filepath>``: the folder that holds one subfolder per version."""
        return self._location(self._filepath)

    def file(self, version: str) -> Location:
        """``<filepath>/<version>/<file name>``."""
        return self._location(self._get_versioned_path(version))

    def exists_version(self, version: str) -> bool:
        path = self._get_versioned_path(version)
        return bool(self._exists_function(str(path))) if self._protocol else Path(str(path)).exists()

    def _at(self, path: Location) -> AbstractDataset:
        """The wrapped dataset, reading or writing ``path``."""
        return AbstractDataset.from_config(self._name, {**self._config, "filepath": str(path)})

    def load(self) -> Any:
        return self._at(self._location(self._get_load_path())).load()

    def save(self, data: Any) -> None:
        final = self._location(self._get_save_path())  # refuses a version folder that is already there
        if self._journal is not None:
            self._journal(self._folder_of(final))
        if self._protocol:  # one PUT: the object appears whole or not at all
            try:
                self._at(final).save(data)
            except Exception as exc:  # a refused credential, a missing bucket, the network
                reason = str(getattr(exc, "__cause__", None) or exc).splitlines()[0]
                raise OutputWriteError(f"Could not write dataset '{self._name}' to {final}: {reason}") from exc
            self._store.fs.invalidate_cache()
            return
        try:
            with atomic_write(final, f"dataset '{self._name}'") as temporary:
                self._at(temporary).save(data)
        except WriteError as exc:  # Kedro passes a DatasetError on as it is: the message stays one line
            raise OutputWriteError(str(exc)) from exc

    def _folder_of(self, file: Location) -> Location:
        return str(file).rsplit("/", 1)[0] if self._protocol else Path(file).parent

    def for_worker(self, write: bool) -> RunDataset:
        """A copy that another process (a Dask worker) loads or saves with; the run's journal is not sent along.

        With ``write``, the version folder it will write is noted in this run's journal now, so the
        run rolls it back whatever happens to the worker.
        """
        save = self.resolve_save_version()
        if write and self._journal is not None and save is not None:
            self._journal(self._folder_of(self.file(save)))
        copied = copy.copy(self)
        copied._journal = None
        copied.__dict__.pop("preview", None)  # a closure over this object: kedro-viz's, not a worker's
        return copied

    def discard_saved(self) -> None:
        """Deletes this run's version of the dataset, left by an earlier attempt of the node that writes it."""
        save = self.resolve_save_version()
        if save is not None and self.exists_version(save):
            folder = self._folder_of(self.file(save))
            if self._protocol:
                self._store.fs.rm(str(folder), recursive=True)
                self._store.fs.invalidate_cache()
            else:
                remove(Path(folder))

    def _exists(self) -> bool:
        try:
            return self.exists_version(self.resolve_load_version())
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "dataset": self._config.get("type"), "version": self._version}

"""The protected Kedro APIs this project needs, kept in one small module.

Checked against kedro 1.7.0 and kedro-datasets 9.6.0. Kedro has no public way to ask where a
versioned dataset writes, to pin the version it loads after the catalog is built, or to make
its save go through a temporary name, so these few functions reach into
``AbstractVersionedDataset`` (``_filepath``, ``_version``, ``_get_versioned_path``,
``_get_save_path``). Everything else in the project uses public APIs.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractVersionedDataset
from kedro.io.core import DatasetError, Version

CHECKED_WITH = "kedro 1.7.0, kedro-datasets 9.6.0"


def local_versioned(catalog: Any, name: str) -> AbstractVersionedDataset | None:
    """The versioned dataset on the local disk behind ``name`` (looking inside a CachedDataset)."""
    if catalog is None or name == "parameters" or name.startswith("params:") or name not in catalog:
        return None
    dataset = catalog.get(name)
    dataset = getattr(dataset, "_dataset", dataset)  # CachedDataset keeps the real one here
    if not isinstance(dataset, AbstractVersionedDataset) or dataset._version is None:
        return None
    if getattr(dataset, "_protocol", "file") != "file":
        return None
    return dataset


def dataset_root(dataset: AbstractVersionedDataset) -> Path:
    """``<filepath>``: the folder that holds one subfolder per version."""
    return Path(str(dataset._filepath))


def versioned_file(dataset: AbstractVersionedDataset, version: str) -> Path:
    """``<filepath>/<version>/<file name>``."""
    return Path(str(dataset._get_versioned_path(version)))


def pin(dataset: AbstractVersionedDataset, load: str | None, save: str | None) -> None:
    """Makes the dataset load ``load`` and save ``save`` from now on."""
    dataset._version = Version(load, save)
    dataset._clear_version_cache()


def pinned_load(dataset: AbstractVersionedDataset) -> str | None:
    """The load version given with ``--load-versions`` (or by :func:`pin`), if any."""
    return dataset._version.load


def redirect_save(dataset: AbstractVersionedDataset, temporary: Path) -> None:
    """The next save writes ``temporary`` instead of the versioned path (see :func:`end_redirect`)."""
    final = versioned_file(dataset, dataset.resolve_save_version())
    if final.exists():
        raise DatasetError(f"{final} already exists; a versioned save never overwrites.")
    dataset._get_save_path = lambda: PurePosixPath(temporary)  # shadows the method on this instance


def end_redirect(dataset: AbstractVersionedDataset) -> None:
    dataset.__dict__.pop("_get_save_path", None)

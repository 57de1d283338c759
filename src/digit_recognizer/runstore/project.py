"""What the run store needs of the project's configuration, read without Kedro: the data root and its credentials.

``data_root`` is a global (``conf/base/globals.yml``, overridden per environment or per run);
its credentials, where the provider's environment variables or files do not give them, are the
``data_root`` entry of ``credentials.yml`` (``conf/local/credentials.yml``, never in git): the
storage options of the data root's filesystem, e.g. for S3::

    data_root:
      key: ${oc.env:MY_BUCKET_KEY}
      secret: ${oc.env:MY_BUCKET_SECRET}
      client_kwargs: {endpoint_url: https://s3.example.com}

They become this process's default options for that protocol (fsspec's configuration), so every
reader and writer of the data root (the catalog's datasets, the run store, rollback, retention,
the page) uses them; they are never written into a run record or a page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from digit_recognizer.runstore import locations

CREDENTIALS_KEY = "data_root"


def _load(path: Path, environment: bool = False) -> dict[str, Any]:
    """A configuration file as plain data; with ``environment``, ``${oc.env:...}`` resolved, as Kedro does for credentials."""
    if not path.is_file():
        return {}
    from omegaconf import OmegaConf  # Kedro's configuration library
    from omegaconf.resolvers import oc

    registered = not environment or OmegaConf.has_resolver("oc.env")  # Kedro clears it outside credentials
    if not registered:
        OmegaConf.register_new_resolver("oc.env", oc.env)
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {}
    finally:
        if not registered:
            OmegaConf.clear_resolver("oc.env")


def _environments(env: str | None) -> list[str]:
    return ["base", env or os.environ.get("KEDRO_ENV") or "local"]


def configured_data_root(project: Path, env: str | None = None, params: dict[str, Any] | None = None) -> str | None:
    """The ``data_root`` a ``kedro run`` of the project would use.

    ``params`` (runtime parameters, as ``--params`` gives them) first, then ``conf/<env>/globals.yml``
    (``env``: the argument, else ``$KEDRO_ENV``, else ``local``), then ``conf/base/globals.yml``.
    """
    if params and params.get("data_root"):
        return str(params["data_root"])
    found = None
    for folder in _environments(env):
        found = _load(Path(project) / "conf" / folder / "globals.yml").get("data_root") or found
    return str(found) if found else None


def data_root_credentials(project: Path, env: str | None = None) -> dict[str, Any]:
    """The ``data_root`` entry of the project's ``credentials.yml`` (base, then the environment's), or {}."""
    found: dict[str, Any] = {}
    for folder in _environments(env):
        entry = _load(Path(project) / "conf" / folder / "credentials.yml", environment=True).get(CREDENTIALS_KEY)
        if isinstance(entry, dict):
            found.update(entry)
    return found


def use_credentials(url: str, options: dict[str, Any] | None) -> None:
    """Makes ``options`` the defaults of ``url``'s filesystem in this process (explicit arguments still win)."""
    if not options or not locations.is_url(url):
        return
    import fsspec.config

    protocol = url.split("://", 1)[0]
    implementation = locations.filesystem_class(url)
    protocols = implementation.protocol if isinstance(implementation.protocol, (list, tuple)) else [protocol]
    for name in protocols:
        fsspec.config.conf.setdefault(name, {}).update(options)

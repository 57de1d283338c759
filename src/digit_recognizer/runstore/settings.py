"""The run store's settings: one object, built once from the project's configuration and passed down.

Where the runs live, the credentials of the data root, the lease and the clocks, the waits of
every request to an object store, per-protocol storage options: everything the run store, the
``runs`` command, retention, a scheduler's steps and the page need to reach the store. The Kedro
adapter builds it from Kedro's configuration loader (``conf/<env>/runstore.yml``, ``globals.yml``,
the ``data_root`` entry of ``credentials.yml``, ``--params``); nothing here reads a file.

.. code-block:: yaml

    # conf/base/runstore.yml
    lease_ttl: 30          # seconds a lease lives unrenewed on an object store
    clock_skew: 10         # how far apart the hosts' clocks may be
    connect_timeout: 3     # seconds to open a connection to the store
    read_timeout: 5        # seconds to wait for an answer
    retries: 2             # attempts per request (the first and one retry)
    storage_options: {}    # per protocol: {s3: {client_kwargs: {region_name: eu-west-1}}}

.. code-block:: python

    settings = RunStoreSettings(project=Path("."), data_root="s3://bucket/project")
    store = RunStore.from_settings(settings)  # runs under s3://bucket/project/runs

Three environment variables override the configuration for an operator (docs/runs.md has the
table): ``DIGIT_RECOGNIZER_RUNS_DIR``, ``DIGIT_RECOGNIZER_LEASE_TTL``, ``DIGIT_RECOGNIZER_CLOCK_SKEW``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from digit_recognizer.errors import UserError
from digit_recognizer.runstore import locations
from digit_recognizer.runstore.faults import StoreContext, credentials_source, endpoint_of

RUNS_DIR_VARIABLE = "DIGIT_RECOGNIZER_RUNS_DIR"  # the runs there (a folder, or a URL) instead of <data root>/runs
LEASE_TTL_VARIABLE = "DIGIT_RECOGNIZER_LEASE_TTL"
CLOCK_SKEW_VARIABLE = "DIGIT_RECOGNIZER_CLOCK_SKEW"
ENVIRONMENT = {  # variable -> the setting it overrides
    RUNS_DIR_VARIABLE: "runs_dir",
    LEASE_TTL_VARIABLE: "lease_ttl",
    CLOCK_SKEW_VARIABLE: "clock_skew",
}
DEFAULT_DATA_ROOT = "data"
WAITS = {"connect_timeout": 3.0, "read_timeout": 5.0, "retries": 2}  # for a lease of 30 s: 17 s at most


def backoff(attempts: int) -> float:
    """The longest that botocore's standard retry mode sleeps between ``attempts`` attempts (1, 2, 4 ... s)."""
    return float(sum(min(2**i, 20) for i in range(attempts - 1)))


class SettingsError(UserError, ValueError):
    """The run store's configuration is not what it must be; the message names the key."""


class RunStoreSettings(BaseModel):
    """How to reach the run store and the data root it lives under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: Path = Field(default_factory=Path.cwd)  # the folder that relative paths are under
    data_root: str = DEFAULT_DATA_ROOT  # every output, and the runs under <data_root>/runs
    runs_dir: str | None = None  # the runs elsewhere (an operator's override)
    credentials: dict[str, Any] = Field(default_factory=dict, repr=False, exclude=True)  # never in a record
    lease_ttl: float = Field(30.0, gt=0)
    clock_skew: float = Field(10.0, ge=0)
    connect_timeout: float = Field(WAITS["connect_timeout"], gt=0)
    read_timeout: float = Field(WAITS["read_timeout"], gt=0)
    retries: int = Field(WAITS["retries"], ge=1)
    storage_options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def request_limit(self) -> float:
        """The longest one request to an object store can wait: every attempt's connect and read, and the sleeps."""
        return self.retries * (self.connect_timeout + self.read_timeout) + backoff(self.retries)

    @property
    def patience(self) -> float:
        """After how long a request that still waits says so in the log."""
        return max(1.0, min(5.0, self.request_limit / 3))

    @model_validator(mode="after")
    def _waits_fit_the_lease(self) -> RunStoreSettings:
        """A request never outlives the lease it writes under.

        A lease is renewed every third of its time to live, so a write begins with at least two
        thirds of it left: one request, all its attempts, must end within that. When the waits
        are the defaults and the lease is shorter (an operator's, a test's), the defaults shrink
        to fit (one attempt, the budget split 3:5 between connecting and reading); waits set in
        the configuration that do not fit are refused, naming the keys.
        """
        budget = self.lease_ttl * 2 / 3
        if self.request_limit <= budget:
            return self
        if not set(WAITS) & self.model_fields_set:
            attempts = 2 if budget - backoff(2) >= 4 else 1
            each = (budget - backoff(attempts)) / attempts
            fitted = {"retries": attempts, "connect_timeout": each * 3 / 8, "read_timeout": each * 5 / 8}
            for key, value in fitted.items():
                self.__dict__[key] = value
            return self
        raise ValueError(
            f"connect_timeout, read_timeout, retries: one request may wait up to {self.request_limit:g} s "
            f"({self.retries} x ({self.connect_timeout:g} + {self.read_timeout:g}) s, and {backoff(self.retries):g} s "
            f"between attempts), longer than the {budget:g} s a lease of lease_ttl {self.lease_ttl:g} s has left "
            "when a write begins (two thirds of it): lower them, or raise lease_ttl"
        )

    def waits(self) -> str:
        """The waits of one request, in words, for messages."""
        attempts = "1 attempt" if self.retries == 1 else f"{self.retries} attempts"
        return (
            f"{attempts} of {self.connect_timeout:g} s to connect and {self.read_timeout:g} s for an answer, "
            f"{self.request_limit:g} s in all"
        )

    def context_for(self, url: str) -> StoreContext:
        """What a message about ``url``'s store may name: the endpoint, the credentials' source, the waits."""
        options = self.options_for(url)
        return StoreContext(
            url=url,
            endpoint=endpoint_of(options),
            credentials=credentials_source(options),
            waits=self.waits(),
            options={k: v for k, v in options.items() if k in ("client_kwargs", "endpoint_url", "anon")},
        )

    @field_validator("data_root")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not str(value).strip():
            raise ValueError("expected a folder or a URL, got an empty string")
        return str(value)

    @classmethod
    def build(
        cls,
        project: Path | str | None = None,
        data_root: str | None = None,
        config: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> RunStoreSettings:
        """The settings from the configuration's values, overridden by the operator's environment variables.

        ``config``: the ``runstore`` configuration (``conf/<env>/runstore.yml``); ``credentials``:
        the data root's entry of ``credentials.yml``. A bad value is a :class:`SettingsError`
        naming its key.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {**(config or {})}
        values["project"] = Path(project) if project is not None else Path.cwd()
        if data_root:
            values["data_root"] = str(data_root)
        if credentials:
            values["credentials"] = dict(credentials)
        for variable, key in ENVIRONMENT.items():
            if environ.get(variable):
                values[key] = environ[variable]
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                if error["loc"]
                else str(error["msg"]).removeprefix("Value error, ")
                for error in exc.errors()
            )
            raise SettingsError(f"the run store's settings (conf/*/runstore.yml, globals.yml): {problems}") from exc

    @property
    def runs_root(self) -> locations.Location:
        """Where the run folders are: ``runs_dir`` when set, else ``<data_root>/runs``; a local one under ``project``."""
        given = self.runs_dir or f"{self.data_root.rstrip('/')}/runs"
        return given if locations.is_url(given) else self.project / given

    @property
    def data_root_location(self) -> locations.Location:
        return self.data_root if locations.is_url(self.data_root) else self.project / self.data_root

    def options_for(self, url: str) -> dict[str, Any]:
        """The storage options of ``url``'s filesystem: its protocol's options, the credentials and the waits."""
        protocol = url.split("://", 1)[0] if locations.is_url(url) else "file"
        options: dict[str, Any] = {**self.storage_options.get(protocol, {})}
        if locations.is_url(url) and self.data_root.startswith(f"{protocol}://"):
            options.update(self.credentials)  # the data root's credentials, for the runs beside it
        if protocol in ("s3", "s3a"):
            config = dict(options.get("config_kwargs") or {})
            config.setdefault("connect_timeout", self.connect_timeout)
            config.setdefault("read_timeout", self.read_timeout)
            config.setdefault("retries", {"max_attempts": self.retries, "mode": "standard"})
            options["config_kwargs"] = config
        return options

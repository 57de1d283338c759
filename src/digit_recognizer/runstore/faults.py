"""When the store itself fails: what it means to a person, in one message that names the bucket, the endpoint, the credentials.

botocore and s3fs report a missing bucket, an endpoint that does not answer, missing or refused
credentials and a denied request as a dozen exception types, often wrapped in one another
(s3fs turns a ``ClientError`` into a ``PermissionError`` raised from it; Kedro wraps that in a
``DatasetError``). :func:`explain` reads the whole chain and answers with a :class:`StoreFault`:

=====================  ==========================================================================
:class:`BucketMissing`       the bucket does not exist at that endpoint
:class:`StoreUnreachable`    the endpoint refused the connection, or did not answer in time
:class:`EndpointInvalid`     the endpoint is no URL (``127.0.0.1:9000``, without its scheme)
:class:`CredentialsMissing`  no credentials were found (it says where they were looked for)
:class:`CredentialsRefused`  the store refused them (unknown key, wrong secret, expired token)
:class:`AccessDenied`        the credentials are good but may not do this on this prefix
=====================  ==========================================================================

Each is a :class:`~digit_recognizer.errors.UserError`: the commands print its message and exit 1.
Nothing here imports botocore (the ``[s3]`` extra): errors are recognised by their class names
and their responses. A secret is never in a message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digit_recognizer.errors import UserError

_UNREACHABLE = {  # the connection failed or the answer did not come: botocore, aiohttp, asyncio, fsspec
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ProxyConnectionError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ServerTimeoutError",
    "FSTimeoutError",
    "TimeoutError",
    "ConnectionRefusedError",
    "ConnectionResetError",
}
_TIMEOUTS = {"ConnectTimeoutError", "ReadTimeoutError", "ServerTimeoutError", "FSTimeoutError", "TimeoutError"}
_NO_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}
_REFUSED_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
}
_DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "403", "Forbidden"}
_MISSING_BUCKET_CODES = {"NoSuchBucket"}
_BAD_BUCKET_CODES = {"InvalidBucketName"}


class StoreFault(UserError, RuntimeError):
    """The object store failed in a way a person can act on; the message says what to check."""


class BucketMissing(StoreFault):
    """The bucket does not exist at the endpoint."""


class EndpointInvalid(StoreFault):
    """The endpoint is not a URL the client can use (no scheme, say)."""


class StoreUnreachable(StoreFault):
    """The endpoint refused the connection or did not answer within the configured waits."""


class CredentialsMissing(StoreFault):
    """No credentials were found where the store's client looks for them."""


class CredentialsRefused(StoreFault):
    """The store refused the credentials: an unknown key, a wrong secret, an expired token."""


class AccessDenied(StoreFault):
    """The credentials may not do this on this bucket or prefix."""


@dataclass(frozen=True)
class StoreContext:
    """What a message may name: the URL, the endpoint, where the credentials came from, the waits."""

    url: str = ""
    endpoint: str = ""
    credentials: str = ""  # where they came from ("the data_root entry of credentials.yml"), never what they are
    waits: str = ""  # "2 attempts, 3 s to connect, 5 s for an answer"
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def bucket(self) -> str:
        return self.url.split("://", 1)[-1].split("/", 1)[0] if "://" in self.url else ""

    @property
    def where(self) -> str:
        return self.endpoint or endpoint_of(self.options)


def endpoint_of(options: Mapping[str, Any] | None) -> str:
    """The S3 endpoint the client speaks to: the storage options', else AWS's variables, else AWS itself."""
    options = options or {}
    given = (options.get("client_kwargs") or {}).get("endpoint_url") or options.get("endpoint_url")
    given = given or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return str(given) if given else "AWS S3 (no endpoint_url set)"


def credentials_source(options: Mapping[str, Any] | None) -> str:
    """Where the client takes its credentials from, in the order botocore looks (never the values)."""
    options = options or {}
    if options.get("anon"):
        return "none (anonymous access: anon is set in the storage options)"
    if options.get("key") or options.get("secret") or options.get("token"):
        return "the data_root entry of conf/<env>/credentials.yml (key, secret)"
    if options.get("profile"):
        return f"profile {options['profile']!r} of ~/.aws/credentials (the storage options' profile)"
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
    if os.environ.get("AWS_PROFILE"):
        return f"profile {os.environ['AWS_PROFILE']!r} (AWS_PROFILE) of ~/.aws/credentials"
    files = [
        str(path)
        for path in (
            Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser(),
            Path(os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")).expanduser(),
        )
        if path.is_file()
    ]
    if files:
        return f"the default profile of {' or '.join(files)}"
    return "the instance's role (no key in credentials.yml, the environment or ~/.aws)"


WHERE_CREDENTIALS_ARE_LOOKED_FOR = (
    "the data_root entry of conf/<env>/credentials.yml (key, secret), AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY in the environment, AWS_PROFILE or the default profile of ~/.aws/credentials "
    "and ~/.aws/config, and the instance's role"
)


def _origin(url: str) -> str:
    """``http://host:port`` of a request's URL (a bucket's path and query left out)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _names(error: BaseException) -> set[str]:
    return {kind.__name__ for kind in type(error).__mro__}


def _code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = str((response.get("Error") or {}).get("Code") or "")
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return code or (str(status) if status else "")
    return ""


def _operation(error: BaseException) -> str:
    return str(getattr(error, "operation_name", "") or "")


def explain(error: BaseException, context: StoreContext | None = None) -> StoreFault | None:
    """The :class:`StoreFault` behind ``error`` (anywhere in its chain), or None when the store did not fail."""
    context = context or StoreContext()
    for seen in _chain(error):
        if isinstance(seen, StoreFault):
            return seen
    for seen in _chain(error):
        names, code = _names(seen), _code(seen)
        if names & _NO_CREDENTIALS:
            return CredentialsMissing(
                f"no credentials for {context.url or 'the object store'} ({context.where}): looked in "
                f"{WHERE_CREDENTIALS_ARE_LOOKED_FOR}. Put them in one of those places (docs/object-storage.md)"
            )
        if code in _MISSING_BUCKET_CODES or (code in {"404", "NotFound"} and _operation(seen) == "HeadBucket"):
            bucket = context.bucket or str(((getattr(seen, "response", {}) or {}).get("Error") or {}).get("BucketName"))
            return BucketMissing(
                f"the bucket {bucket!r} does not exist at {context.where} ({context.url or 'data_root'}): "
                "create it, or correct data_root (--params data_root=s3://bucket/prefix, or conf/<env>/globals.yml)"
                " and the endpoint (client_kwargs.endpoint_url of the data_root credentials, or AWS_ENDPOINT_URL)"
            )
        if code in _BAD_BUCKET_CODES or (isinstance(seen, ValueError) and "Invalid bucket name" in str(seen)):
            return BucketMissing(
                f"{context.bucket or 'the bucket'!r} is not a valid bucket name ({context.url or 'data_root'}): "
                "3 to 63 lowercase letters, digits, dots and hyphens; correct data_root"
            )
        if isinstance(seen, ValueError) and str(seen).startswith("Invalid endpoint"):
            return EndpointInvalid(
                f"the object store's endpoint is not a URL ({str(seen).split(':', 1)[-1].strip()}): write it with "
                "its scheme, http://host:port or https://host, in client_kwargs.endpoint_url of the data_root "
                "credentials or in AWS_ENDPOINT_URL"
            )
        if code in _REFUSED_CODES:
            return CredentialsRefused(
                f"{context.where} refused the credentials ({code}) for {context.url or 'the object store'}: they "
                f"came from {context.credentials or credentials_source(context.options)}. Check the key and the "
                "secret (or the token's expiry) there"
            )
        if code in _DENIED_CODES:
            return AccessDenied(
                f"access denied ({code}{', ' + _operation(seen) if _operation(seen) else ''}) on "
                f"{context.url or 'the object store'} at {context.where}, with the credentials from "
                f"{context.credentials or credentials_source(context.options)}: they need to list, read, write and "
                "delete objects under that prefix (docs/object-storage.md, 'Permissions')"
            )
        if names & _UNREACHABLE:
            timed_out = bool(names & _TIMEOUTS)
            what = "did not answer in time" if timed_out else "could not be reached"
            waits = f" ({context.waits})" if context.waits else ""
            endpoint = context.endpoint or str((getattr(seen, "kwargs", None) or {}).get("endpoint_url") or "")
            endpoint = _origin(endpoint) or context.where
            return StoreUnreachable(
                f"the object store at {endpoint} {what}{waits}{', for ' + context.url if context.url else ''}: check that it is "
                "up and that the endpoint is right (client_kwargs.endpoint_url of the data_root credentials, or "
                "AWS_ENDPOINT_URL); the waits are connect_timeout, read_timeout and retries in conf/<env>/runstore.yml"
            )
    return None

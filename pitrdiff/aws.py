"""The only place boto3 sessions and clients are made.

Profile, region and endpoint come from :class:`AwsConfig`; anything left unset
falls back to boto3's own resolution (``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL_DYNAMODB``, ``~/.aws/config`` …). Retries use botocore's
``standard`` mode with a generous attempt count, so throttling and 5xx are
retried with exponential backoff and jitter; :func:`count_retries` counts them.

:func:`translate_errors` turns botocore failures into the :mod:`pitrdiff.errors`
tree with a one-line message that never contains credentials.

boto3 and botocore are imported on first use (a help page never needs them).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pitrdiff.errors import (
    AwsError,
    CredentialsError,
    EndpointError,
    InputError,
    PitrdiffError,
    TableNotFoundError,
)

if TYPE_CHECKING:
    import boto3.session
    import botocore.config
    import botocore.exceptions
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
DEFAULT_MAX_ATTEMPTS = 12

# Error codes the service uses for "slow down"; botocore retries them, we count them.
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
        "TooManyRequestsException",
        "SlowDown",
    }
)


@dataclass(frozen=True)
class AwsConfig:
    """Where and as whom to talk to AWS.

    Parameters
    ----------
    profile
        A named profile from the shared config files; ``None`` for boto3's default chain.
    region
        The AWS region; ``None`` for boto3's resolution, then ``us-east-1``.
    endpoint_url
        A DynamoDB-protocol endpoint (a local server, a VPC endpoint); ``None``
        for boto3's resolution, which honours ``AWS_ENDPOINT_URL_DYNAMODB``.
    max_attempts
        Attempts per request, including the first, before a failure is raised;
        ``None`` for ``AWS_MAX_ATTEMPTS`` from the environment, else 12 (an
        unreachable endpoint then takes about two minutes to be reported).
    retry_mode
        botocore's retry mode: ``standard`` or ``adaptive``.
    """

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    max_attempts: int | None = None
    retry_mode: str = "standard"

    def with_endpoint(self, endpoint_url: str | None) -> AwsConfig:
        """Return a copy that talks to ``endpoint_url``."""
        return replace(self, endpoint_url=endpoint_url)

    def to_dict(self) -> dict[str, Any]:
        """Describe the configuration (no secrets: credentials are never held here)."""
        return {
            "profile": self.profile,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "max_attempts": self.max_attempts,
            "retry_mode": self.retry_mode,
        }


_session_lock = threading.Lock()
# botocore's data loader (service models, endpoint rules: read-only JSON, cached
# as loaded), shared by every session this process makes, as the clients of one
# session share it: a fresh session re-reads and re-lists them, 93 ms of CPU per
# DynamoDB client here against 13 ms with the loader shared (the fixed cost that
# kept a 20,000-item export above 0.25x the boto3 loop; bench/bench_export_compare.py).
_loader: Any = None


def session(config: AwsConfig) -> boto3.session.Session:
    """Make a boto3 session for ``config`` (its own credentials; the shared data loader).

    Raises
    ------
    CredentialsError
        When the named profile does not exist.
    """
    global _loader
    import boto3.session
    import botocore.exceptions
    import botocore.session

    with _session_lock:  # boto3 session creation is not thread-safe
        try:
            core = botocore.session.get_session()
            if _loader is None:
                _loader = core.get_component("data_loader")
            else:
                core.register_component("data_loader", _loader)
            sess = boto3.session.Session(
                botocore_session=core, profile_name=config.profile, region_name=config.region
            )
            # botocore reads a profile lazily; name a missing one here, as boto3 once did
            profile = config.profile or os.environ.get("AWS_PROFILE")
            if profile not in (None, "default") and profile not in sess.available_profiles:
                raise botocore.exceptions.ProfileNotFound(profile=profile)
        except botocore.exceptions.ProfileNotFound as exc:
            name = config.profile or os.environ.get("AWS_PROFILE") or exc.kwargs.get("profile")
            raise CredentialsError(f"AWS profile {name!r} is not configured") from exc
        paths = _loader.search_paths  # each boto3 session appends its data folder again
        paths[:] = list(dict.fromkeys(paths))
    return sess


def max_attempts(config: AwsConfig) -> int:
    """Attempts per request: ``config.max_attempts``, ``AWS_MAX_ATTEMPTS``, or 12.

    botocore reads ``AWS_MAX_ATTEMPTS`` only when the client's configuration
    names no attempt count; ours always names one, so the variable is read here.
    """
    if config.max_attempts is not None:
        return max(1, config.max_attempts)
    text = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
    if text:
        try:
            return max(1, int(text))
        except ValueError as exc:
            raise InputError(f"AWS_MAX_ATTEMPTS must be a whole number, not {text!r}") from exc
    return DEFAULT_MAX_ATTEMPTS


def _client_config(config: AwsConfig, max_pool_connections: int) -> botocore.config.Config:
    import botocore.config

    retries: Any = {"total_max_attempts": max_attempts(config), "mode": config.retry_mode}
    return botocore.config.Config(
        retries=retries,
        max_pool_connections=max(10, max_pool_connections),
        connect_timeout=10,
        read_timeout=60,
        tcp_keepalive=True,
    )


def _region(sess: boto3.session.Session, config: AwsConfig) -> str:
    return config.region or sess.region_name or DEFAULT_REGION


def check_endpoint_url(url: str | None, service: str) -> None:
    """Refuse an endpoint URL botocore cannot use, in one line (exit 2).

    Checked where clients are made, for the URL given (``--endpoint-url``,
    ``--s3-endpoint-url``) or, when none is, the one botocore would take from
    ``AWS_ENDPOINT_URL_<SERVICE>`` / ``AWS_ENDPOINT_URL``: botocore raises a
    bare ``ValueError`` for some malformed ones when the client is made and
    fails others (``ftp://x``) only at the first request.

    Parameters
    ----------
    url
        The endpoint given, or ``None``.
    service
        ``dynamodb`` or ``s3``.

    Raises
    ------
    InputError
        When the URL is not ``http://`` or ``https://`` with a host (and a
        valid port, if any).
    """
    from urllib.parse import urlsplit

    import botocore.utils

    option = {"dynamodb": "--endpoint-url", "s3": "--s3-endpoint-url"}[service]
    variable = f"AWS_ENDPOINT_URL_{service.upper()}"
    source = option
    if url is None:
        for name in (variable, "AWS_ENDPOINT_URL"):
            if os.environ.get(name):
                url, source = os.environ[name], name
                break
    if url is None:
        return
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    valid = (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and port_ok
        and url == url.strip()
        and (
            botocore.utils.is_valid_endpoint_url(url) is not None
            or botocore.utils.is_valid_ipv6_endpoint_url(url) is not None
        )
    )
    if not valid:
        raise InputError(
            f"invalid endpoint URL {url[:80]!r} ({source}): "
            "expected http://HOST[:PORT] or https://HOST[:PORT]"
        )


def dynamodb_client(config: AwsConfig, *, max_pool_connections: int = 10) -> DynamoDBClient:
    """Make a low-level DynamoDB client.

    Parameters
    ----------
    config
        Profile, region and endpoint.
    max_pool_connections
        HTTP connections kept open; at least the number of threads that share the client.

    Raises
    ------
    InputError
        A malformed endpoint URL (:func:`check_endpoint_url`).
    """
    check_endpoint_url(config.endpoint_url, "dynamodb")
    sess = session(config)
    client: DynamoDBClient = sess.client(
        "dynamodb",
        region_name=_region(sess, config),
        endpoint_url=config.endpoint_url,
        config=_client_config(config, max_pool_connections),
    )
    announce_retries(client, max_attempts(config))
    return client


def s3_client(
    config: AwsConfig, *, max_pool_connections: int = 10, endpoint_url: str | None = None
) -> S3Client:
    """Make an S3 client (for native DynamoDB exports).

    The endpoint of ``config`` is a DynamoDB endpoint and is not reused for S3;
    pass ``endpoint_url`` (an S3-compatible endpoint, path-style addressing) or
    set ``AWS_ENDPOINT_URL_S3`` instead.

    Raises
    ------
    InputError
        A malformed endpoint URL (:func:`check_endpoint_url`).
    """
    import botocore.config

    check_endpoint_url(endpoint_url, "s3")
    sess = session(config)
    client_config = _client_config(config, max_pool_connections)
    if endpoint_url:
        # Local S3-compatible servers rarely resolve bucket.host names.
        client_config = client_config.merge(botocore.config.Config(s3={"addressing_style": "path"}))
    client: S3Client = sess.client(
        "s3",
        region_name=_region(sess, config),
        endpoint_url=endpoint_url,
        config=client_config,
    )
    announce_retries(client, max_attempts(config))
    return client


# 4xx codes botocore's standard mode retries besides the throttling ones.
_RETRIED_4XX = frozenset(
    {
        "TransactionConflictException",
        "TransactionInProgressException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)


class RetryCounter:
    """Counts the retries botocore makes on a client, thread-safely.

    Attach with :func:`count_retries`; read :attr:`retries` and :attr:`throttles`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retries = 0
        self.throttles = 0

    def _on_needs_retry(self, response: Any = None, attempts: int = 0, **_: Any) -> None:
        # botocore emits needs-retry after every attempt; only failed ones count.
        if response is None:
            return
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        status = getattr(http, "status_code", 200)
        if status < 400 and code is None:
            return
        # A 4xx that is not a throttle (a failed condition, a validation error)
        # is the request's answer, never retried: not a retry.
        if 400 <= status < 500 and code not in THROTTLING_CODES and code not in _RETRIED_4XX:
            return
        with self._lock:
            self.retries += 1
            if code in THROTTLING_CODES:
                self.throttles += 1

    def _on_exception(self, caught_exception: Any = None, response: Any = None, **_: Any) -> None:
        if caught_exception is not None and response is None:
            with self._lock:
                self.retries += 1


def count_retries(client: Any) -> RetryCounter:
    """Attach a :class:`RetryCounter` to a botocore client and return it.

    The counter sees every attempt that failed with a throttle, a 5xx or a
    connection error; the last failed attempt of a request that gives up is
    counted too.
    """
    counter = RetryCounter()

    def hook(**kwargs: Any) -> None:
        if kwargs.get("caught_exception") is not None:
            counter._on_exception(**kwargs)
        else:
            counter._on_needs_retry(**kwargs)

    client.meta.events.register("needs-retry", hook)
    return counter


_STARTED = "pitrdiff_started"
# Retries announced per client before further ones are only counted.
ANNOUNCED_RETRIES = 20


def _failure_reason(response: Any, caught_exception: Any) -> str | None:
    """What went wrong in one attempt worth announcing, or ``None`` (success, a throttle, a 4xx)."""
    if caught_exception is not None:
        return type(caught_exception).__name__
    if response is None:
        return None
    http, parsed = response
    status = getattr(http, "status_code", 200)
    code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
    if status >= 500:
        return f"HTTP {status}" + (f" {code}" if code and code != str(status) else "")
    return None


def announce_retries(client: Any, attempts_allowed: int) -> None:
    """Log (logger ``pitrdiff.aws``, WARNING) each retry of a failed connection or a 5xx.

    One line per retry, as it happens, so an unreachable endpoint is not a
    blank screen; throttles are not announced (they are counted, see
    :func:`count_retries`). The attempt that gives up is marked on the
    exception (``pitrdiff_attempts``, ``pitrdiff_elapsed_s``) so that
    :func:`translate_errors` can say how long and how many attempts it took.
    A long job on a flaky service announces at most :data:`ANNOUNCED_RETRIES`
    retries per client, then says that further ones are only counted.

    Parameters
    ----------
    client
        A botocore client.
    attempts_allowed
        Attempts per request, including the first (:func:`max_attempts`).
    """
    announced = [0]
    lock = threading.Lock()

    def started(context: Any = None, **_: Any) -> None:
        if isinstance(context, dict):
            context[_STARTED] = time.monotonic()

    def hook(
        attempts: int = 0,
        response: Any = None,
        caught_exception: Any = None,
        request_dict: Any = None,
        operation: Any = None,
        **_: Any,
    ) -> None:
        reason = _failure_reason(response, caught_exception)
        if reason is None:
            return
        context = (request_dict or {}).get("context") or {}
        elapsed = time.monotonic() - context.get(_STARTED, time.monotonic())
        name = getattr(operation, "name", "request")
        service = client.meta.service_model.service_id
        if attempts >= attempts_allowed:
            if caught_exception is not None:
                caught_exception.pitrdiff_attempts = attempts
                caught_exception.pitrdiff_elapsed_s = elapsed
            return
        with lock:
            announced[0] += 1
            count = announced[0]
        if count > ANNOUNCED_RETRIES:
            return
        logger.warning(
            "%s %s: %s at %s; retrying (attempt %d of %d failed, %.1f s so far)",
            service,
            name,
            reason,
            client.meta.endpoint_url,
            attempts,
            attempts_allowed,
            elapsed,
        )
        if count == ANNOUNCED_RETRIES:
            logger.warning(
                "%s: %d retries shown; further ones are counted, not shown",
                client.meta.endpoint_url,
                count,
            )

    client.meta.events.register("before-call", started)
    client.meta.events.register("needs-retry", hook)


_TAG = re.compile(r"<[^>]*>")


def one_line(text: str, limit: int = 200) -> str:
    """A service's message as one short line: HTML tags dropped, whitespace folded, cut short.

    A proxy or load balancer answering a 500 with an HTML page must not print
    the page.
    """
    flat = " ".join(_TAG.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _gave_up(exc: BaseException) -> str:
    attempts = getattr(exc, "pitrdiff_attempts", None)
    if attempts is None:
        return ""
    elapsed = float(getattr(exc, "pitrdiff_elapsed_s", 0.0))
    return (
        f" (gave up after {attempts} attempts in {elapsed:.1f} s; AWS_MAX_ATTEMPTS sets the count)"
    )


@contextmanager
def translate_errors(*, table: str | None = None, action: str | None = None) -> Iterator[None]:
    """Turn botocore exceptions raised inside the block into pitrdiff errors.

    Parameters
    ----------
    table
        The table the block works on, named in the message.
    action
        What the block does ("scanning", "restoring"), named in the message.
    """
    import botocore.exceptions

    where = f" while {action}" if action else ""
    try:
        yield
    except PitrdiffError:
        raise
    except botocore.exceptions.ClientError as exc:
        raise error_from_client_error(exc, table=table, where=where) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise CredentialsError(
            "no AWS credentials found: set a profile (--profile), "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance role"
        ) from exc
    except botocore.exceptions.PartialCredentialsError as exc:
        raise CredentialsError(f"incomplete AWS credentials: {exc}") from exc
    except botocore.exceptions.ProfileNotFound as exc:
        raise CredentialsError(f"AWS profile not configured: {exc}") from exc
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectionClosedError,
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
    ) as exc:
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        raise EndpointError(
            f"cannot reach {url or 'the endpoint'}{where}: {type(exc).__name__}{_gave_up(exc)}"
        ) from exc
    except botocore.exceptions.NoRegionError as exc:
        raise InputError("no AWS region configured: pass --region or set AWS_REGION") from exc
    except botocore.exceptions.ParamValidationError as exc:
        raise InputError(f"invalid request{where}: {one_line(str(exc))}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsError(f"AWS request failed{where}: {one_line(str(exc))}{_gave_up(exc)}") from exc


_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
    }
)


def error_from_client_error(
    exc: botocore.exceptions.ClientError, *, table: str | None = None, where: str = ""
) -> PitrdiffError:
    """Map one botocore ``ClientError`` to the pitrdiff error a user should see."""
    error = exc.response.get("Error", {})
    code = one_line(str(error.get("Code", "Unknown")), 80)
    message = one_line(str(error.get("Message", "")))
    # DescribeContinuousBackups and the restore APIs say TableNotFoundException.
    if code in ("ResourceNotFoundException", "TableNotFoundException") and table is not None:
        return TableNotFoundError(table)
    if code in _CREDENTIAL_CODES:
        return CredentialsError(f"AWS refused the credentials{where}: {code}")
    if code == "AccessDeniedException":
        return CredentialsError(f"access denied{where}: {message or code}")
    if code in ("ValidationException", "InvalidParameterValue", "SerializationException"):
        return InputError(f"{code}{where}: {message}")
    text = f"{code}{where}: {message}" if message else f"{code}{where}"
    retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts")
    if retries:
        text += f" (after {retries + 1} attempts)"
    return AwsError(text, code=code)


def client_error_code(exc: BaseException) -> str | None:
    """The service's error code of a botocore ``ClientError``, else ``None``."""
    import botocore.exceptions

    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None

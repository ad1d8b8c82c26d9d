"""A loopback HTTP proxy that injects DynamoDB faults in front of a real test server.

Point a client at :attr:`FaultProxy.url` instead of the server: every request is
forwarded unchanged (headers, body) to ``upstream``, except that, with the
rates you choose and a seeded random generator, the proxy instead

- answers ``400 ProvisionedThroughputExceededException`` (``throttle_rate``),
- answers ``400 ThrottlingException`` (``throttling_rate``),
- answers ``500 InternalServerError`` / ``503 ServiceUnavailable`` (``error_rate``,
  half each),
- resets the connection before forwarding (``reset_rate``: the server never
  sees the request),
- forwards the request, then resets the connection instead of answering
  (``drop_response_rate``: the server applied it, the client does not know),
- delays the request by ``slow_seconds`` before forwarding (``slow_rate``).

At most one fault is chosen per request, in the order above. The bodies are
DynamoDB's JSON error documents, e.g.
``{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
"message":"..."}``, so botocore classifies and retries them as it would in AWS.

Usage::

    with FaultProxy(server.endpoint, seed=1, throttle_rate=0.2, error_rate=0.05) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, ...)
        ...
        assert proxy.counts["throttle"] > 0

``operations`` limits faults to some operations (``{"Scan"}``; the name after the
dot in the ``X-Amz-Target`` header); others are always forwarded.
``max_faults`` caps the faults injected in total; ``skip_first`` forwards the
first N eligible requests untouched. Rates can be changed while running with
:meth:`FaultProxy.configure`.

``validate`` (a callable ``(operation, body) -> (status, type, message) | None``)
refuses requests before they are forwarded, with that error and no
"(injected)" suffix: ``tests/strictproxy.py`` uses it to refuse what AWS
refuses. ``after_response`` (a callable ``(operation, body, status, data)``) runs
after the server answered and before the client hears it: tests use it to land
a write in exactly that window.

``access_key`` makes the proxy check credentials as AWS does (moto and dynalite
accept any): a request signed with another access key id is answered
``400 UnrecognizedClientException`` and counted as ``unauthorized``.

Retries wait up to 20 s each in botocore; in-process tests call
:func:`fast_backoff` (with pytest's ``monkeypatch``) to keep them short.

Counters (:attr:`FaultProxy.counts`, a snapshot dict): ``requests`` (all),
``forwarded`` (reached the server), ``refused`` (by ``validate``), and one per
fault kind: ``throttle``, ``throttling``, ``http500``, ``http503``, ``reset``,
``drop_response``, ``slow``.
:attr:`FaultProxy.injected` is the number of faults that made a request fail
(every kind except ``slow``).
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Collection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

_DDB_PREFIX = "com.amazonaws.dynamodb.v20120810#"
FAULT_KINDS = ("throttle", "throttling", "http500", "http503", "reset", "drop_response", "slow")
FAILING_KINDS = ("throttle", "throttling", "http500", "http503", "reset", "drop_response")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
_ERRORS = {
    "throttle": (
        400,
        _DDB_PREFIX + "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    ),
    "throttling": (
        400,
        "com.amazon.coral.availability#ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    ),
    "http500": (500, _DDB_PREFIX + "InternalServerError", "Internal server error"),
    "http503": (
        503,
        "com.amazon.coral.availability#ServiceUnavailableException",
        "Service unavailable",
    ),
}


class FaultProxy:
    """A threaded loopback proxy injecting faults; use as a context manager.

    Parameters
    ----------
    upstream
        The real server, e.g. ``http://127.0.0.1:8000``.
    seed
        Seed of the random generator that picks faults.
    throttle_rate, throttling_rate, error_rate, reset_rate, drop_response_rate, slow_rate
        Probability per eligible request of each fault (see the module docstring).
    slow_seconds
        The delay of a slow request.
    operations
        Only requests for these operations are eligible; ``None`` for all.
    max_faults
        Stop injecting after this many faults (``None``: no cap).
    skip_first
        Forward the first N eligible requests untouched.
    access_key
        Answer requests signed with any other access key id as AWS does
        (``UnrecognizedClientException``); ``None``: no check.
    """

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        throttle_rate: float = 0.0,
        throttling_rate: float = 0.0,
        error_rate: float = 0.0,
        reset_rate: float = 0.0,
        drop_response_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_seconds: float = 0.2,
        operations: Collection[str] | None = None,
        max_faults: int | None = None,
        skip_first: int = 0,
        access_key: str | None = None,
        validate: Callable[[str | None, bytes], tuple[int, str, str] | None] | None = None,
        after_response: Callable[[str | None, bytes, int, bytes], None] | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream = upstream
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._eligible_seen = 0
        self.slow_seconds = slow_seconds
        self.operations = frozenset(operations) if operations is not None else None
        self.max_faults = max_faults
        self.skip_first = skip_first
        self.access_key = access_key
        self.validate = validate
        self.after_response = after_response
        self._rates: dict[str, float] = {}
        self.configure(
            throttle_rate=throttle_rate,
            throttling_rate=throttling_rate,
            error_rate=error_rate,
            reset_rate=reset_rate,
            drop_response_rate=drop_response_rate,
            slow_rate=slow_rate,
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- control

    def configure(self, **rates: float) -> None:
        """Change fault rates while running, e.g. ``configure(throttle_rate=0)``."""
        names = {
            "throttle_rate": "throttle",
            "throttling_rate": "throttling",
            "error_rate": "error",
            "reset_rate": "reset",
            "drop_response_rate": "drop_response",
            "slow_rate": "slow",
        }
        with self._lock:
            for name, rate in rates.items():
                if name not in names:
                    raise TypeError(f"unknown rate {name!r}; use one of {sorted(names)}")
                if not 0.0 <= rate <= 1.0:
                    raise ValueError(f"{name} must be within 0..1, not {rate}")
                self._rates[names[name]] = float(rate)

    def start(self) -> FaultProxy:
        """Start serving on a free loopback port."""
        handler = type("_BoundHandler", (_Handler,), {"proxy": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="faultproxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (open connections are closed)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- results

    @property
    def url(self) -> str:
        """The proxy's endpoint URL (give it to the client as ``endpoint_url``)."""
        if self._server is None:
            raise RuntimeError("the proxy is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def counts(self) -> dict[str, int]:
        """A snapshot of the counters (``requests``, ``forwarded``, one per fault kind)."""
        with self._lock:
            snapshot = {
                kind: 0
                for kind in ("requests", "forwarded", "unauthorized", "refused", *FAULT_KINDS)
            }
            snapshot.update(self._counts)
            return snapshot

    @property
    def injected(self) -> int:
        """Faults that made a request fail (all kinds but ``slow``)."""
        counts = self.counts
        return sum(counts[kind] for kind in FAILING_KINDS)

    # ---------------------------------------------------------------- internals

    def _count(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    def _choose(self, operation: str | None) -> str | None:
        """Pick the fault for one request (or ``None``), counting it."""
        with self._lock:
            self._counts["requests"] += 1
            if self.operations is not None and operation not in self.operations:
                return None
            self._eligible_seen += 1
            if self._eligible_seen <= self.skip_first:
                return None
            failing = sum(self._counts[kind] for kind in FAILING_KINDS)
            if self.max_faults is not None and failing >= self.max_faults:
                return None
            draw = self._random.random()
            for kind in ("throttle", "throttling", "error", "reset", "drop_response", "slow"):
                rate = self._rates.get(kind, 0.0)
                if draw < rate:
                    if kind == "error":
                        kind = "http500" if self._random.random() < 0.5 else "http503"
                    self._counts[kind] += 1
                    return kind
                draw -= rate
            return None

    def _forward(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        path: str,
        headers: Any,
        body: bytes,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        self._count("forwarded")
        return response.status, response.getheaders(), data

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._upstream_host, self._upstream_port, timeout=60)


def fast_backoff(monkeypatch: Any, seconds: float = 0.01) -> None:
    """Make botocore's retry back-off wait ``seconds`` (tests only).

    Retries still happen for real, through botocore's own retry logic; only the
    waits between attempts (up to 20 s each) are shortened so tests stay fast.
    Pass pytest's ``monkeypatch``; the change is undone after the test.
    """
    import botocore.retries.standard as standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: seconds)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (resets are what this server is for)."""


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet (tests read the counters instead)."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        proxy = self.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target") or ""
        operation = target.rsplit(".", 1)[-1] if target else None
        if proxy.access_key is not None and not self._signed_by(proxy.access_key):
            proxy._count("requests")
            proxy._count("unauthorized")
            self._send_error(
                400,
                "com.amazon.coral.service#UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
            return
        if proxy.validate is not None:
            refusal = proxy.validate(operation, body)
            if refusal is not None:
                proxy._count("requests")
                proxy._count("refused")
                self._send_error(*refusal, injected=False)
                return
        fault = proxy._choose(operation)
        if fault in _ERRORS:
            self._send_error(*_ERRORS[fault])
            return
        if fault == "reset":
            self._reset()
            return
        if fault == "slow":
            threading.Event().wait(proxy.slow_seconds)
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP
        }
        try:
            if self._upstream is None:
                self._upstream = proxy._connect()
            try:
                status, response_headers, data = proxy._forward(
                    self._upstream, self.command, self.path, headers, body
                )
            except (http.client.HTTPException, OSError):
                # A stale keep-alive connection to the server: reconnect once.
                self._upstream.close()
                self._upstream = proxy._connect()
                status, response_headers, data = proxy._forward(
                    self._upstream, self.command, self.path, headers, body
                )
        except (http.client.HTTPException, OSError):
            self._upstream = None
            self._send_error(502, "BadGateway", "the upstream server did not answer")
            return
        if proxy.after_response is not None:
            proxy.after_response(operation, body, status, data)
        if fault == "drop_response":
            self._reset()
            return
        self.send_response(status)
        for name, value in response_headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _signed_by(self, access_key: str) -> bool:
        """Whether the SigV4 ``Authorization`` header names ``access_key``."""
        authorization = self.headers.get("Authorization") or ""
        credential = authorization.partition("Credential=")[2]
        return credential.split("/", 1)[0] == access_key

    def _send_error(
        self, status: int, error_type: str, message: str, injected: bool = True
    ) -> None:
        text = message + (" (injected)" if injected else "")
        body = json.dumps({"__type": error_type, "message": text}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", uuid.uuid4().hex)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        """Close the client connection with a TCP reset (SO_LINGER 0)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

"""An embedded DynamoDB for the demo: moto's server on loopback, with fake credentials.

Nothing leaves the machine: the server listens on 127.0.0.1 on a free port, the
credentials are placeholders set only while the server runs, and moto's Scan
responses are served fast (``fast_scan_responses``) so the demo's exports take
seconds.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

from pitrdiff.errors import InputError, StorageError

log = logging.getLogger("pitrdiff.demo")

MOTO_INSTALL_HINT = (
    "the demo needs moto's server: python3 -m pip install -e '.[demo]' "
    "(or pip install 'moto[server]')"
)


@contextlib.contextmanager
def demo_credentials() -> Iterator[None]:
    """Fake credentials for the embedded server, in this process only, restored after.

    Any profile, session token or endpoint override of the user's is hidden for
    the duration, so nothing can be sent anywhere but the embedded server.
    """
    names = (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
    )
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in names:
            os.environ.pop(name, None)
        os.environ["AWS_ACCESS_KEY_ID"] = "pitrdiff-demo"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "pitrdiff-demo"
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wire_json(value: Any) -> Any:
    """Moto's item values (binary as raw bytes) as DynamoDB JSON values (base64)."""
    if isinstance(value, dict):
        return {k: _wire_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire_json(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


@contextlib.contextmanager
def fast_scan_responses() -> Iterator[bool]:
    """Serialise the embedded server's Scan items directly; yields whether it could.

    moto >= 5.2 serialises every response through a generic, shape-driven
    serializer that costs ~20 ms per order of the sample data, which would make
    the demo's two exports take a minute. Items are already DynamoDB JSON, so
    for Scan the items are encoded directly and the rest of the response still
    goes through moto's serializer; ``tests/test_demo.py`` checks both give the
    same document. Without the expected moto internals nothing is changed.
    """
    try:
        from moto.dynamodb.responses import DynamoResult
    except ImportError:
        yield False
        return
    own = DynamoResult.__dict__.get("execute_result")
    original = getattr(DynamoResult, "execute_result", None)
    if original is None:
        yield False
        return

    def execute_result(self: Any, context: Any) -> Any:
        result = self.result
        name = getattr(getattr(context, "operation_model", None), "name", None)
        if (
            name != "Scan"
            or not isinstance(result, dict)
            or "Items" not in result
            or not hasattr(self, "_result")
        ):
            return original(self, context)
        slim = copy.copy(self)
        slim._result = {**result, "Items": []}
        status, headers, body = original(slim, context)
        document = json.loads(body)
        document["Items"] = _wire_json(result["Items"])
        return status, headers, json.dumps(document)

    setattr(DynamoResult, "execute_result", execute_result)  # noqa: B010 - a patch
    try:
        yield True
    finally:
        if own is not None:
            setattr(DynamoResult, "execute_result", own)  # noqa: B010
        else:
            delattr(DynamoResult, "execute_result")


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """Moto's server on a free 127.0.0.1 port; yields its endpoint URL.

    Raises
    ------
    InputError
        When moto (with its server extra) is not installed.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise InputError(f"moto is not installed: {MOTO_INSTALL_HINT}") from exc
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # no request log lines in the demo's output
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    fast = contextlib.ExitStack()
    if not fast.enter_context(fast_scan_responses()):
        log.info("moto internals differ from the expected ones: scans will be slower")
    server.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise StorageError(f"the embedded server did not start on port {port}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        fast.close()
        quiet.setLevel(level)


# --------------------------------------------------------------------------- helpers

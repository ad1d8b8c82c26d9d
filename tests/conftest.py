"""Test servers on loopback, started by the tests themselves.

- ``moto_server``: moto's ``ThreadedMotoServer`` (DynamoDB with PITR and
  restores, S3), in this process.
- ``dynalite_server``: dynalite (npm, an independent DynamoDB implementation),
  as a Node.js subprocess; installed with ``npm ci`` into ``tests/servers`` if
  the test command has not done so already.
- ``ddb``: parametrised over both, for data-plane tests;
- ``spark``: one local Spark session (two cores, no UI) for the whole session.

Parallel runs (pytest-xdist, ``-n``/``--dist loadgroup`` in pyproject's addopts):
every worker is its own pytest session, so it starts its own servers (on free
ports) only when one of its tests asks for them. Each test file is one
``xdist_group``, so a worker runs a whole file and its module-scoped fixtures
are set up once; the Spark test files share one group, so one JVM starts.

No test reaches AWS: credentials are fake, config files are hidden, and every
client is pointed at a loopback endpoint.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Server

SERVERS_DIR = Path(__file__).parent / "servers"
DYNALITE_BIN = SERVERS_DIR / "node_modules" / ".bin" / "dynalite"
DYNALITE_CLI = SERVERS_DIR / "node_modules" / "dynalite" / "cli.js"
# dynalite crashes when a client dies mid-request; this keeps it up (see the file)
SURVIVE_ABORTS = SERVERS_DIR / "survive-aborted-requests.js"
# Test files that start a Spark session: one xdist group, so one worker (one JVM) runs them.
SPARK_FILES = frozenset(
    {"test_spark_native.py", "test_spark_parity.py", "test_spark_incremental.py"}
)


def pytest_configure(config: pytest.Config) -> None:
    """Register xdist's group marker, so ``--strict-markers`` accepts it without xdist too."""
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one xdist worker")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put each test file in its own xdist group (the Spark files in one)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            name = item.path.name
            group = "spark" if name in SPARK_FILES else item.path.stem
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", autouse=True)
def _offline_aws_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake credentials, no config files, no instance metadata: nothing reaches AWS."""
    home = tmp_path_factory.mktemp("aws-home")
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    # xdist's workers set COLUMNS=80 (a terminal's width): the CLI then renders as
    # for an 80-column terminal. Tests see what a pipe or a CI log gets.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Server]:
    """moto's server on a free loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_for_port(port)
    yield Server("moto", f"http://127.0.0.1:{port}")
    server.stop()


def ensure_dynalite() -> Path:
    """Install dynalite from the committed lock file if the test command has not."""
    if not DYNALITE_BIN.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to install dynalite (Node.js >= 20)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=SERVERS_DIR,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return DYNALITE_BIN


def start_dynalite(port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start dynalite (in memory, tables ACTIVE at once) on ``port``."""
    ensure_dynalite()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("Node.js (>= 20) is needed to run dynalite")
    process = subprocess.Popen(
        [
            node,
            "--require",
            str(SURVIVE_ABORTS),
            str(DYNALITE_CLI),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--createTableMs",
            "0",
            "--deleteTableMs",
            "0",
            "--updateTableMs",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab") if log is not None else subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
    except RuntimeError:
        process.kill()
        raise
    return process


_dynalite: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}


@pytest.fixture(scope="session")
def dynalite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """dynalite on a free loopback port, for the whole session."""
    port = free_port()
    log = tmp_path_factory.mktemp("dynalite") / "dynalite.log"
    process = start_dynalite(port, log)
    _dynalite["session"] = (process, log)
    yield Server("dynalite", f"http://127.0.0.1:{port}")
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(params=["moto", "dynalite"])
def ddb(request: pytest.FixtureRequest) -> Server:
    """Each DynamoDB-protocol test server in turn (data-plane tests run on both)."""
    server: Server = request.getfixturevalue(f"{request.param}_server")
    if request.param == "dynalite":
        process, log = _dynalite["session"]
        if process.poll() is not None:  # say why instead of failing on connection errors
            pytest.fail(f"dynalite exited ({process.returncode}): {log.read_text()[-2000:]}")
    return server


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session for the whole test session (small, quiet, no UI)."""
    pytest.importorskip("pyspark")
    from pitrdiff.spark.session import get_session

    session = get_session("local[2]", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture
def table_name() -> str:
    """A table name no other test uses (the servers live for the whole session)."""
    return f"t-{uuid.uuid4().hex[:12]}"

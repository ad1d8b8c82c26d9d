"""Security: no secret leaks, ``--where`` stays an expression, table data is owner-only.

- A full run (window, restore, export, diff, plan, apply with a conflict, an
  interrupted export's checkpoints, a refused-credentials failure) with
  recognisable fake credentials, every command with ``--debug`` and ``--json``:
  the credentials appear in no stdout, no stderr, no exception, no file.
- Every file and directory that run writes is owner-only (``0600`` / ``0700``)
  under a permissive umask (``022``); so is what ingesting DynamoDB's own S3
  exports (full and incremental) writes.
- ``--where`` (already tried against file reads, ``COPY`` and ``;`` in
  ``test_plan.py``): here the network (a loopback listener sees no
  connection), statements smuggled through ``query()``, the environment
  (``getenv``), DuckDB's home-directory state, and the connection settings it
  runs under (external access off, locked, spilling to a private directory,
  no progress bar), plus the CLI's answer (one line, exit 2, no plan).
"""

from __future__ import annotations

import os
import socket
import stat
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pitrdiff import codec, pitr
from pitrdiff.cli.app import load_commands
from pitrdiff.diff.core import diff_exports
from pitrdiff.errors import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_FAILURE, EXIT_OK, InputError
from pitrdiff.export.dataset import write_export
from pitrdiff.export.scan import export_table
from pitrdiff.recovery.plan import write_plan
from tests.faultproxy import FaultProxy
from tests.helpers import InterruptAfter, Server

KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
TYPES = {"pk": "S", "sk": "N"}
DEFINITIONS = [{"AttributeName": k, "AttributeType": t} for k, t in TYPES.items()]
ACCESS_KEY = "AKIDCANARY7Q3XZZ"
SECRET_KEY = "SECRETCANARY/9f8e7d6c5b4a+ZZ"
SESSION_TOKEN = "TOKENCANARY-5a4b3c2d1e0f-ZZ"
SECRETS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
runner = CliRunner()


def item(n: int, text: str = "ok") -> dict[str, Any]:
    return {"pk": {"S": "k"}, "sk": {"N": str(n)}, "s": {"S": text}, "b": {"B": "AAE="}}


def assert_no_secret(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret[:12]}… leaked in {where}"


@pytest.fixture
def canary_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_full_run_leaks_no_credentials_and_writes_owner_only_files(
    moto_server: Server,
    table_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    canary_credentials: None,
    permissive_umask: None,
) -> None:
    server = moto_server
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    outputs: list[tuple[str, str]] = []

    def run(expected: int, *args: str, endpoint: str = server.endpoint) -> Any:
        result = runner.invoke(
            load_commands(),
            [*args, "--endpoint-url", endpoint, "--region", "us-east-1", "--debug", "--json"],
        )
        outputs.append((f"{args[0]} stdout", result.stdout))
        outputs.append((f"{args[0]} stderr", result.stderr))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            formatted = "".join(traceback.format_exception(result.exception))
            outputs.append((f"{args[0]} exception", formatted))
        assert result.exit_code == expected, result.output
        return result

    # the story: a live table, its restore, an incident, export, diff, plan, apply
    server.create_table(table_name, KEYS, TYPES)
    server.put_items(table_name, [item(n) for n in range(10)])
    pitr.enable_pitr(table_name, aws=server.aws)
    restored = f"{table_name}-restored"
    run(EXIT_OK, "window", table_name)
    run(EXIT_OK, "restore", table_name, "--latest", "--target", restored)
    client = server.client()
    for n in (0, 1, 2):
        client.delete_item(TableName=table_name, Key={"pk": {"S": "k"}, "sk": {"N": str(n)}})
    client.put_item(TableName=table_name, Item=codec.to_botocore(item(3, "damaged")))
    client.put_item(TableName=table_name, Item=codec.to_botocore(item(4, "damaged")))
    client.put_item(TableName=table_name, Item=codec.to_botocore(item(50, "new")))

    run(EXIT_OK, "export", table_name, "--out", str(work / "live"), "--segments", "2")
    run(EXIT_OK, "export", restored, "--out", str(work / "restored"), "--segments", "2")
    diff = work / "diff"
    run(EXIT_DIFFERENCES, "diff", str(work / "live"), str(work / "restored"), "--out", str(diff))
    plan = work / "plan.jsonl"
    run(EXIT_OK, "plan", str(diff), "--out", str(plan), "--include", "deleted,changed,added")
    client.put_item(TableName=table_name, Item=codec.to_botocore(item(4, "edited again")))
    run(EXIT_DIFFERENCES, "apply", str(plan), "--yes")  # item 4: a conflict
    assert (work / "plan.jsonl.journal").exists()
    assert (work / "plan.jsonl.conflicts.jsonl").exists()

    # checkpoints of an interrupted export
    monkeypatch.setenv("PITRDIFF_TEST_SCAN_LIMIT", "2")
    monkeypatch.setenv("PITRDIFF_TEST_PART_BYTES", "10")
    with pytest.raises(KeyboardInterrupt):
        export_table(
            table_name, work / "partial", segments=1, aws=server.aws, progress=InterruptAfter(2)
        )
    assert any((work / "partial" / "state").iterdir())
    assert any((work / "partial" / "data").iterdir())

    # a failure: the service refuses the (canary) key; the message must not repeat it
    with FaultProxy(server.endpoint, access_key="AKIDSOMEONEELSE") as proxy:
        refused = runner.invoke(
            load_commands(),
            ["export", table_name, "--out", str(work / "refused"), "--endpoint-url", proxy.url],
        )
    assert refused.exit_code == EXIT_FAILURE
    outputs.append(("refused stderr", refused.stderr))

    for where, text in outputs:
        assert_no_secret(text, where)
    assert assert_owner_only(work) >= 15
    for path in work.rglob("*"):
        if path.is_file():
            assert_no_secret(path.read_bytes(), str(path.relative_to(work)))


def assert_owner_only(root: Path) -> int:
    """Every file below ``root`` is 0600 and every directory 0700; returns the file count."""
    files = 0
    for path in sorted(root.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        relative = path.relative_to(root)
        if path.is_dir():
            assert mode == 0o700, f"directory {relative} is {oct(mode)}"
        else:
            assert mode == 0o600, f"file {relative} is {oct(mode)}"
            files += 1
    return files


S3EXPORTS = Path(__file__).parent / "data" / "s3exports" / "exports" / "AWSDynamoDB"


def test_native_export_ingestion_writes_owner_only_files(
    tmp_path: Path, permissive_umask: None
) -> None:
    """Datasets made from DynamoDB's own S3 exports (full and incremental) are owner-only too."""
    from pitrdiff.diff.incremental import diff_incremental
    from pitrdiff.export.native import ingest_export

    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    ingest_export(S3EXPORTS / "01761573600000-f0f0f0f0", work / "full", key_schema="pk:S,sk:N")
    diff_incremental(S3EXPORTS / "01761577200000-a1a1a1a1", work / "incr", key_schema="pk:S,sk:N")
    assert assert_owner_only(work) >= 6


def test_refused_credentials_with_debug_leak_nothing(
    moto_server: Server, canary_credentials: None, tmp_path: Path
) -> None:
    """``--debug`` re-raises: the exception and its traceback hold no credential."""
    with FaultProxy(moto_server.endpoint, access_key="AKIDSOMEONEELSE") as proxy:
        result = runner.invoke(
            load_commands(),
            ["window", "Orders", "--endpoint-url", proxy.url, "--region", "us-east-1", "--debug"],
        )
    assert proxy.counts["unauthorized"] >= 1
    assert result.exception is not None and not isinstance(result.exception, SystemExit)
    formatted = "".join(traceback.format_exception(result.exception))
    assert "UnrecognizedClientException" in formatted
    assert_no_secret(formatted + result.output, "the --debug traceback")


# --------------------------------------------------------------------------- --where


@pytest.fixture(scope="module")
def diff_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """restored: items 0..3; live: 2..4 with 3 changed — deleted 0, 1; changed 3; added 4."""
    work = tmp_path_factory.mktemp("where")
    live = [item(2), item(3, "changed"), item(4)]
    for name, items in (("live", live), ("restored", [item(n) for n in range(4)])):
        write_export(
            items, work / name, table_name="Orders", key_schema=KEYS,
            attribute_definitions=DEFINITIONS,
        )  # fmt: skip
    diff_exports(work / "live", work / "restored", work / "diff")
    return work / "diff"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback TCP listener: any connection attempt from --where would land here."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def connections(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


NETWORK = [
    "(SELECT count(*) FROM read_json('http://{addr}/x.json')) > 0",
    "(SELECT count(*) FROM read_parquet('http://{addr}/x.parquet')) > 0",
    "(SELECT count(*) FROM read_csv('http://{addr}/x.csv')) > 0",
    "(SELECT count(*) FROM read_text('http://{addr}/x')) > 0",
    "(SELECT count(*) FROM query('SELECT * FROM read_blob(''http://{addr}/y'')')) > 0",
]


@pytest.mark.parametrize("where", NETWORK)
def test_where_cannot_reach_the_network(
    diff_dir: Path, tmp_path: Path, listener: socket.socket, where: str
) -> None:
    host, port = listener.getsockname()
    out = tmp_path / "plan.jsonl"
    with pytest.raises(InputError, match="cannot read files or reach the network"):
        write_plan(diff_dir, out, where=where.format(addr=f"{host}:{port}"))
    assert connections(listener) == 0
    assert not out.exists()


STATEMENTS = [
    "(SELECT count(*) FROM query('COPY (SELECT 1) TO ''{tmp}/stolen.csv''')) > 0",
    "(SELECT count(*) FROM query('ATTACH ''{tmp}/stolen.db''')) > 0",
    "(SELECT count(*) FROM query('SET enable_external_access = true')) > 0",
    "(SELECT count(*) FROM query('INSTALL httpfs')) > 0",
    "(SELECT count(*) FROM query('LOAD httpfs')) > 0",
    "(SELECT count(*) FROM query('CREATE TABLE stolen AS SELECT 1')) > 0",
    "(SELECT count(*) FROM query('DROP VIEW rows')) > 0",
]


@pytest.mark.parametrize("where", STATEMENTS)
def test_where_cannot_smuggle_statements_through_query(
    diff_dir: Path, tmp_path: Path, where: str
) -> None:
    out = tmp_path / "plan.jsonl"
    with pytest.raises(InputError):
        write_plan(diff_dir, out, where=where.format(tmp=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


LOCAL = [
    "getenv('AWS_SECRET_ACCESS_KEY') IS NOT NULL",
    "(SELECT count(*) FROM glob('/etc/*')) > 0",
    "(SELECT count(*) FROM read_blob('/etc/hostname')) > 0",
    "(SELECT count(*) FROM sniff_csv('/etc/passwd')) > 0",
    "(SELECT count(*) FROM parquet_metadata('{diff}/deleted.parquet')) > 0",
    "(SELECT count(*) FROM duckdb_secrets()) >= 0",
    "(SELECT count(*) FROM duckdb_extensions()) > 0",
    "set_variable('x', 1) IS NULL",
]


@pytest.mark.parametrize("where", LOCAL)
def test_where_cannot_read_the_environment_files_or_duckdb_state(
    diff_dir: Path, tmp_path: Path, where: str
) -> None:
    out = tmp_path / "plan.jsonl"
    with pytest.raises(InputError) as caught:
        write_plan(diff_dir, out, where=where.format(diff=diff_dir))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(("--where", "invalid --where")), message
    assert not out.exists()


def test_where_runs_locked_down_with_a_private_spill_directory(
    diff_dir: Path, tmp_path: Path
) -> None:
    """The settings --where runs under, read by --where itself (all rows selected iff true)."""
    checks = " AND ".join(
        [
            "current_setting('enable_external_access') = false",
            "current_setting('lock_configuration') = true",
            "current_setting('enable_progress_bar') = false",
            "current_setting('temp_directory') LIKE '%pitrdiff-plan-%'",
        ]
    )
    out = tmp_path / "plan.jsonl"
    summary = write_plan(diff_dir, out, where=checks, include="deleted,changed,added")
    assert summary.operations == 4  # deleted 0, 1; changed 3; added 4


def test_cli_refuses_where_with_one_line_and_no_plan(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    result = runner.invoke(
        load_commands(),
        [
            "plan",
            str(diff_dir),
            "--out",
            str(out),
            "--where",
            "(SELECT count(*) FROM read_text('/etc/passwd')) > 0",
        ],
    )
    assert result.exit_code == EXIT_BAD_INPUT
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: --where cannot read files")
    assert "root:" not in result.output  # nothing of the file
    assert not out.exists()

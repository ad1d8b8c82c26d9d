"""``export_table`` / ``pitrdiff export`` against real servers (moto and dynalite).

Every test compares the export with what a plain boto3 scan of the same table
returns (``Server.scan_canonical``) and, where the items are written here, with
the canonical form of the items as written.

Crash tests run ``python -m pitrdiff export`` as a child process and kill it
with SIGKILL at chosen points. They use the test hooks of :mod:`pitrdiff.export.scan`:
``PITRDIFF_TEST_SCAN_DELAY`` (seconds slept after every page, so the kill lands
mid-way), ``PITRDIFF_TEST_SCAN_LIMIT`` (items per page) and
``PITRDIFF_TEST_PART_BYTES`` (part size), which give many small pages and parts.
"""

from __future__ import annotations

import base64
import gc
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pitrdiff import codec
from pitrdiff.cli.app import app, load_commands
from pitrdiff.errors import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    IncompleteExportError,
    RefusedError,
    TableNotFoundError,
)
from pitrdiff.export.dataset import STATE_DIR, load_export, read_manifest
from pitrdiff.export.scan import (
    _EXPORT_GC_THRESHOLD,
    CapacityLimiter,
    default_segments,
    export_table,
)
from pitrdiff.progress import SilentProgress
from tests.faultproxy import FaultProxy, fast_backoff
from tests.helpers import InterruptAfter, Server

ROOT = Path(__file__).resolve().parent.parent
HASH_ONLY = [{"AttributeName": "pk", "KeyType": "HASH"}]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def nested(depth: int) -> dict[str, Any]:
    """A value nested ``depth`` levels (maps and lists alternating) around a number."""
    value: dict[str, Any] = {"N": "7"}
    for level in range(depth - 1):
        value = {"M": {"d": value}} if level % 2 else {"L": [value]}
    return value


def exported(out: Path) -> dict[str, str]:
    """{canonical key: canonical item} of a complete export, checking every row's columns."""
    export = load_export(out, verify=True)
    rows: dict[str, str] = {}
    names = export.key_schema.names
    for batch in export.batches():
        table = batch.to_pylist()
        for row in table:
            item = orjson.loads(row["_item"])
            assert row["_key"] == codec.canonical_key(item, names)
            assert row["_item"] == codec.canonical_json(item)
            assert row["_hash"] == codec.content_hash(row["_item"])
            assert row["_size"] == codec.item_size(item)
            for name in names:
                assert row["key"][name] == codec.key_column_value(item[name])
            assert row["_key"] not in rows, "an item is exported twice"
            rows[row["_key"]] = row["_item"]
    assert export.manifest.items == len(rows)
    return rows


def expected(items: Sequence[Mapping[str, Any]], keys: tuple[str, ...]) -> dict[str, str]:
    return {codec.canonical_key(i, keys): codec.canonical_json(i) for i in items}


# --------------------------------------------------------------------------- types and edges

EDGE_ITEMS: list[dict[str, Any]] = [
    {
        "pk": {"S": "numbers"},
        "sk": {"S": "1"},
        "digits38": {"N": "12345678901234567890123456789012345678"},
        "neg38": {"N": "-0.12345678901234567890123456789012345678"},
        "tiny": {"N": "1E-130"},
        "tiny_neg": {"N": "-1E-130"},
        "huge": {"N": "9.9999999999999999999999999999999999999E+125"},
        "spelled": {"N": "1.50"},
        "zero": {"N": "0"},
        "ns": {"NS": ["10", "2", "-3.5", "1E+2"]},
    },
    {
        "pk": {"S": "binary"},
        "sk": {"S": "2"},
        "zeros": {"B": b64(b"\x00\x00\x00")},
        "mixed": {"B": b64(b"\x00\xff\x10\x00")},
        "empty": {"B": ""},
        "bs": {"BS": [b64(b"\x00"), b64(b"\x00\x00"), b64(b"\xff")]},
    },
    {
        "pk": {"S": "empties"},
        "sk": {"S": "3"},
        "empty_s": {"S": ""},
        "empty_l": {"L": []},
        "empty_m": {"M": {}},
        "null": {"NULL": True},
        "f": {"BOOL": False},
        "t": {"BOOL": True},
        "ss": {"SS": ["b", "a", ""]},
    },
    {
        "pk": {"S": "deep"},
        "sk": {"S": "4"},
        "deep": nested(30),
        "list": {"L": [{"S": "x"}, {"N": "2"}, {"M": {"k": {"SS": ["z", "y"]}}}, {"L": []}]},
    },
    {
        "pk": {"S": "ünïcödé ✓ 日本語 🦆"},
        "sk": {"S": "5"},
        "text": {"S": 'e\u0301 \u00e9 \u0000 "quoted" \\ \n\t 🦆'},
        "名前": {"SS": ["🦆", "日本", "é"]},
        "map": {"M": {"ключ": {"S": "значение"}, "🦆": {"N": "1"}}},
    },
    {
        "pk": {"S": "names"},
        "sk": {"S": "6"},
        "with space": {"S": "a"},
        "a.b": {"S": "dot"},
        "#hash": {"S": "hash"},
        ":colon": {"S": "colon"},
        "name": {"S": "reserved"},
        "size": {"N": "3"},
        "status": {"S": "reserved"},
        "timestamp": {"N": "1700000000"},
        "x": {"M": {"a.b": {"S": "1"}, "#c": {"S": "2"}, ":d": {"S": "3"}, "e f": {"S": "4"}}},
    },
]


def test_every_type_and_edge(ddb: Server, table_name: str, tmp_path: Path) -> None:
    ddb.create_table(table_name)
    ddb.put_items(table_name, EDGE_ITEMS)
    manifest = export_table(table_name, tmp_path / "out", segments=2, aws=ddb.aws)
    assert manifest.complete
    rows = exported(tmp_path / "out")
    assert rows == expected(EDGE_ITEMS, ("pk", "sk")) == ddb.scan_canonical(table_name)
    assert manifest.bytes == sum(codec.item_size(i) for i in EDGE_ITEMS)
    numbers = orjson.loads(rows['{"pk":{"S":"numbers"},"sk":{"S":"1"}}'])
    assert numbers["digits38"] == {"N": "12345678901234567890123456789012345678"}
    assert numbers["tiny"] == {"N": "0." + "0" * 129 + "1"}
    assert numbers["spelled"] == {"N": "1.5"}
    assert numbers["ns"] == {"NS": ["-3.5", "2", "10", "100"]}
    binary = orjson.loads(rows['{"pk":{"S":"binary"},"sk":{"S":"2"}}'])
    assert binary["zeros"] == {"B": "AAAA"} and binary["empty"] == {"B": ""}


def test_items_near_400_kb(ddb: Server, table_name: str, tmp_path: Path) -> None:
    big = [
        {"pk": {"S": f"big{i}"}, "sk": {"S": "x"}, "blob": {"S": "é" * 199_000 + "x" * i}}
        for i in range(3)
    ]
    ddb.create_table(table_name)
    ddb.put_items(table_name, big)
    manifest = export_table(table_name, tmp_path / "out", aws=ddb.aws, part_bytes=500_000)
    assert exported(tmp_path / "out") == expected(big, ("pk", "sk"))
    assert all(398_000 < codec.item_size(i) < 400_000 for i in big)  # moto's limit: 400,000
    assert manifest.items == 3


def test_empty_table(ddb: Server, table_name: str, tmp_path: Path) -> None:
    ddb.create_table(table_name)
    manifest = export_table(table_name, tmp_path / "out", aws=ddb.aws)
    assert manifest.complete and manifest.items == 0 and manifest.files == ()
    assert exported(tmp_path / "out") == {}
    assert load_export(tmp_path / "out").arrow().num_rows == 0
    assert not (tmp_path / "out" / STATE_DIR).exists()


class _GcThresholds(SilentProgress):
    """Records the garbage collector's thresholds whenever a page is reported."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, ...]] = set()

    def advance(self, amount: float = 1, **fields: float) -> None:
        self.seen.add(gc.get_threshold())


def test_gc_is_relaxed_during_the_export_and_restored_after(
    moto_server: Server, table_name: str, tmp_path: Path
) -> None:
    moto_server.create_table(table_name)
    moto_server.put_items(table_name, [{"pk": {"S": "a"}, "sk": {"S": str(i)}} for i in range(5)])
    before = gc.get_threshold()
    progress = _GcThresholds()
    manifest = export_table(table_name, tmp_path / "out", aws=moto_server.aws, progress=progress)
    assert manifest.items == 5
    assert progress.seen == {_EXPORT_GC_THRESHOLD} != {before}
    assert gc.get_threshold() == before


@pytest.mark.parametrize(
    ("key_schema", "types", "items"),
    [
        (HASH_ONLY, {"pk": "S"}, [{"pk": {"S": f"k{i}"}, "v": {"N": str(i)}} for i in range(9)]),
        (
            [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "n", "KeyType": "RANGE"},
            ],
            {"pk": "S", "n": "N"},
            [{"pk": {"S": "a"}, "n": {"N": n}} for n in ("-1.5", "0", "1E+3", "2.50", "1E-130")],
        ),
        (
            [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "b", "KeyType": "RANGE"},
            ],
            {"pk": "N", "b": "B"},
            [{"pk": {"N": "1"}, "b": {"B": b64(bytes([i, 0, 255]))}} for i in range(5)],
        ),
    ],
    ids=["hash-only", "numeric-sort-key", "binary-sort-key"],
)
def test_key_schemas(
    ddb: Server,
    table_name: str,
    tmp_path: Path,
    key_schema: list[dict[str, str]],
    types: dict[str, str],
    items: list[dict[str, Any]],
) -> None:
    ddb.create_table(table_name, key_schema, types)
    ddb.put_items(table_name, items)
    manifest = export_table(table_name, tmp_path / "out", segments=3, aws=ddb.aws)
    names = tuple(k["AttributeName"] for k in key_schema)
    assert exported(tmp_path / "out") == expected(items, names) == ddb.scan_canonical(table_name)
    assert [a.attribute_type for a in manifest.key_schema.attributes] == [types[n] for n in names]
    key = pq.read_schema(tmp_path / "out" / manifest.files[0].path).field("key").type
    for name in names:
        assert str(key.field(name).type) == ("binary" if types[name] == "B" else "string")


# --------------------------------------------------------------------------- bigger tables


def mixed_item(i: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"p{i % 17}"},
        "sk": {"N": str(i)},
        "s": {"S": f"item {i} " + "x" * (i % 50)},
        "n": {"N": f"{i}.{i % 7}0"},
        "b": {"B": b64(bytes([i % 256, 0]))},
        "ss": {"SS": [f"t{j}" for j in range(i % 3 + 1)]},
        "m": {"M": {"l": {"L": [{"N": str(i)}, {"BOOL": i % 2 == 0}, {"NULL": True}]}}},
    }


MIXED = [mixed_item(i) for i in range(400)]


@pytest.fixture(scope="module", params=["moto", "dynalite"])
def mixed_table(request: pytest.FixtureRequest) -> tuple[Server, str]:
    """A table of MIXED items on each server, loaded once per module (tests only read it)."""
    server: Server = request.getfixturevalue(f"{request.param}_server")
    table = f"mixed-{uuid.uuid4().hex[:8]}"
    server.create_table(table, attribute_types={"pk": "S", "sk": "N"})
    server.put_items(table, MIXED)
    return server, table


def test_export_equals_plain_boto3_scan(
    mixed_table: tuple[Server, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, table = mixed_table
    monkeypatch.setenv("PITRDIFF_TEST_SCAN_LIMIT", "37")  # many pages per segment
    manifest = export_table(table, tmp_path / "out", segments=3, aws=server.aws, part_bytes=8000)
    rows = exported(tmp_path / "out")
    assert rows == server.scan_canonical(table) == expected(MIXED, ("pk", "sk"))
    assert len(manifest.files) > 3  # several parts per segment
    assert manifest.source["kind"] == "scan" and manifest.source["segments"] == 3
    assert manifest.stats["retries"] == 0 and manifest.stats["pages"] >= 400 // 37
    assert manifest.stats["consumed_rcu"] > 0
    assert manifest.table["arn"]
    assert not (tmp_path / "out" / STATE_DIR).exists()


def test_complete_export_is_refused_without_overwrite(
    mixed_table: tuple[Server, str], tmp_path: Path
) -> None:
    server, table = mixed_table
    export_table(table, tmp_path / "out", segments=2, aws=server.aws)
    with pytest.raises(RefusedError, match="--overwrite"):
        export_table(table, tmp_path / "out", aws=server.aws)
    manifest = export_table(table, tmp_path / "out", segments=1, aws=server.aws, overwrite=True)
    assert manifest.source["segments"] == 1
    assert len(exported(tmp_path / "out")) == len(MIXED)


def test_throttling_and_faults_are_retried_not_dropped(
    mixed_table: tuple[Server, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, table = mixed_table
    fast_backoff(monkeypatch)
    monkeypatch.setenv("PITRDIFF_TEST_SCAN_LIMIT", "20")
    with FaultProxy(
        server.endpoint,
        seed=11,
        throttle_rate=0.25,
        throttling_rate=0.05,
        error_rate=0.05,
        reset_rate=0.05,
        operations={"Scan"},
    ) as proxy:
        manifest = export_table(
            table, tmp_path / "out", segments=4, aws=server.aws.with_endpoint(proxy.url)
        )
    counts = proxy.counts
    assert proxy.injected >= 5
    assert exported(tmp_path / "out") == server.scan_canonical(table)
    assert manifest.stats["retries"] == proxy.injected
    assert manifest.stats["throttles"] == counts["throttle"] + counts["throttling"]


def test_max_rcu_is_recorded_and_respected_in_page_size(
    mixed_table: tuple[Server, str], tmp_path: Path
) -> None:
    server, table = mixed_table
    manifest = export_table(table, tmp_path / "out", segments=2, max_rcu=500, aws=server.aws)
    assert manifest.source["max_rcu"] == 500
    assert exported(tmp_path / "out") == server.scan_canonical(table)


def test_capacity_limiter_goes_into_debt_and_refuses_nonsense() -> None:
    limiter = CapacityLimiter(10)
    limiter.consume(25)
    assert limiter._tokens < 0  # the next acquire waits until refilled
    with pytest.raises(Exception, match="positive"):
        CapacityLimiter(0)


def test_default_segments() -> None:
    assert default_segments(0) == 4
    assert default_segments(10 * 1024**3) == 10
    assert default_segments(10**15) == 1000


def test_nonexistent_table(ddb: Server, tmp_path: Path) -> None:
    with pytest.raises(TableNotFoundError):
        export_table("no-such-table", tmp_path / "out", aws=ddb.aws)
    assert not (tmp_path / "out").exists()


def test_export_of_a_pitr_restore_records_its_source(
    moto_server: Server, table_name: str, tmp_path: Path
) -> None:
    moto_server.create_table(table_name, attribute_types={"pk": "S", "sk": "N"})
    moto_server.put_items(table_name, MIXED[:5])
    client = moto_server.client()
    client.update_continuous_backups(
        TableName=table_name,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    restored = f"{table_name}-restored"
    client.restore_table_to_point_in_time(
        SourceTableName=table_name, TargetTableName=restored, UseLatestRestorableTime=True
    )
    manifest = export_table(restored, tmp_path / "out", aws=moto_server.aws)
    restore = manifest.table["restore"]
    assert restore["source_table_name"] == table_name
    assert restore["source_table_arn"].endswith(f"/{table_name}")
    assert restore["restore_date_time"]
    assert load_export(tmp_path / "out").manifest.table["restore"] == restore


# --------------------------------------------------------------------------- crash and resume


def _cli_env(**hooks: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PITRDIFF_TEST_")}
    env.update(hooks)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _start_export(server: Server, table: str, out: Path, **hooks: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pitrdiff",
            "export",
            table,
            "--out",
            str(out),
            "--segments",
            "3",
            "--endpoint-url",
            server.endpoint,
            "--region",
            "us-east-1",
            "--quiet",
        ],
        env=_cli_env(**hooks),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _parts(out: Path) -> int:
    data = out / "data"
    return len([p for p in data.iterdir() if p.suffix == ".parquet"]) if data.is_dir() else 0


def _kill_when(process: subprocess.Popen[bytes], ready: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the export never reached the kill point"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_kill_9_at_several_points_then_resume(
    mixed_table: tuple[Server, str], tmp_path: Path
) -> None:
    """SIGKILL before any part, after a few parts and after many; resume gives every item once."""
    server, table = mixed_table
    out = tmp_path / "out"
    hooks = {
        "PITRDIFF_TEST_SCAN_DELAY": "0.03",
        "PITRDIFF_TEST_SCAN_LIMIT": "10",
        "PITRDIFF_TEST_PART_BYTES": "3000",
    }
    kill_points = [lambda: (out / "manifest.json").exists(), lambda: _parts(out) >= 6]
    for ready in kill_points:
        _kill_when(_start_export(server, table, out, **hooks), ready)
        manifest = read_manifest(out)
        assert not manifest.complete
        with pytest.raises(IncompleteExportError):
            load_export(out)
    # A part written just before a crash, never checkpointed: the resume deletes it.
    stray = out / "data" / "seg-0000-009999.parquet"
    stray.write_bytes(b"not listed in any checkpoint")
    finish = _start_export(server, table, out)
    _, stderr = finish.communicate(timeout=120)
    assert finish.returncode == EXIT_OK, stderr.decode()
    assert not stray.exists()
    manifest = read_manifest(out)
    assert manifest.complete and manifest.source["resumes"] == 2
    assert manifest.source["segments"] == 3
    assert exported(out) == server.scan_canonical(table) == expected(MIXED, ("pk", "sk"))


def test_interrupted_export_resumes_in_process(
    mixed_table: tuple[Server, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, table = mixed_table
    out = tmp_path / "out"
    monkeypatch.setenv("PITRDIFF_TEST_SCAN_LIMIT", "15")
    with pytest.raises(KeyboardInterrupt):
        export_table(
            table, out, segments=2, aws=server.aws, part_bytes=2000, progress=InterruptAfter(9)
        )
    assert not read_manifest(out).complete
    assert any((out / STATE_DIR).iterdir())
    other = f"{table}-other"
    server.create_table(other)
    with pytest.raises(RefusedError, match="unfinished export"):
        export_table(other, out, aws=server.aws)
    manifest = export_table(table, out, segments=5, aws=server.aws)  # keeps 2 segments
    assert manifest.source["segments"] == 2 and manifest.source["resumes"] == 1
    assert exported(out) == server.scan_canonical(table)


def test_binary_keys_resume_from_checkpoint(
    dynalite_server: Server, table_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint's LastEvaluatedKey with binary keys survives JSON and the next request.

    dynalite only: moto 5.1 answers HTTP 500 to a segmented Scan whose
    ExclusiveStartKey holds binary (a plain boto3 paginator fails the same way).
    """
    ddb = dynalite_server
    key_schema = [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    ddb.create_table(table_name, key_schema, {"pk": "B", "sk": "B"})
    items = [
        {"pk": {"B": b64(bytes([i % 3, 0]))}, "sk": {"B": b64(bytes([0, i, 255]))}}
        for i in range(30)
    ]
    ddb.put_items(table_name, items)
    monkeypatch.setenv("PITRDIFF_TEST_SCAN_LIMIT", "4")
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        export_table(
            table_name, out, segments=1, aws=ddb.aws, part_bytes=1, progress=InterruptAfter(3)
        )
    (checkpoint,) = (out / STATE_DIR).glob("seg-*.json")
    assert "B" in orjson.loads(checkpoint.read_bytes())["last_evaluated_key"]["pk"]
    export_table(table_name, out, aws=ddb.aws)
    assert exported(out) == expected(items, ("pk", "sk")) == ddb.scan_canonical(table_name)


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli() -> Iterator[CliRunner]:
    """A CLI runner; the log handler the CLI installs (on captured stderr) is undone after."""
    logger = logging.getLogger("pitrdiff")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    load_commands()
    yield CliRunner()
    logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_cli_json_and_refusal(
    mixed_table: tuple[Server, str], tmp_path: Path, cli: CliRunner
) -> None:
    server, table = mixed_table
    out = tmp_path / "out"
    common = ["--endpoint-url", server.endpoint, "--region", "us-east-1"]
    result = cli.invoke(
        app, ["export", table, "--out", str(out), "--segments", "2", "--json", *common]
    )
    assert result.exit_code == EXIT_OK, result.stderr
    document = orjson.loads(result.stdout)
    assert document["items"] == len(MIXED) and document["complete"] is True
    assert document["segments"] == 2 and document["retries"] == 0
    assert document["manifest"]["table_name"] == table
    again = cli.invoke(app, ["export", table, "--out", str(out), *common])
    assert again.exit_code == EXIT_BAD_INPUT
    assert "--overwrite" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    text = cli.invoke(app, ["export", table, "--out", str(out), "--overwrite", *common])
    assert text.exit_code == EXIT_OK, text.stderr
    assert "Export complete" in text.stdout and f"{len(MIXED):,}" in text.stdout


def test_cli_nonexistent_table_is_one_line_exit_2(
    ddb: Server, tmp_path: Path, cli: CliRunner
) -> None:
    result = cli.invoke(
        app,
        ["export", "nope", "--out", str(tmp_path / "o"), "--endpoint-url", ddb.endpoint],
    )
    assert result.exit_code == EXIT_BAD_INPUT
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'nope' does not exist" in lines[0]

"""Faults: throttling, 5xx, resets, lost responses, slow answers, and kill -9.

Everything runs against the real servers behind :class:`tests.faultproxy.FaultProxy`.
What is checked, and why it proves the point:

- export under 20% throttling and 5% 5xx (every operation, not only ``Scan``),
  plus resets, lost responses and slow answers: the exported item set is
  exactly the table's, each key once; every failed attempt is counted in the
  manifest's ``stats`` and the CLI summary; each retry waited through
  botocore's back-off (a recorder counts the waits); the proxy saw exactly
  ``pages + 2 + retries`` requests (DescribeTable and DescribeTimeToLive
  besides the pages), so nothing loops; one test keeps botocore's real
  back-off and checks that time passed between throttles;
- apply under the same faults, with lost responses (the server wrote, the
  client never heard): every operation takes effect exactly once — puts of
  deleted and changed items, deletes of added ones — and none is a conflict;
- kill -9 of ``python -m pitrdiff export`` and ``apply`` at random points
  (several seeds; some runs killed twice, through the proxy with throttling),
  then the same command again: exactly the uninterrupted result.

The table data (key ``pk`` S + ``sk`` N): ``ITEMS`` are 60 items over three
partitions with every type. For apply, the restored state is ``ITEMS`` and
the live table has lost ``sk % 5 == 0`` (deleted, 12), changed ``sk % 5 == 1``
(12) and gained ``ADDED`` (4); the plan puts back deleted and changed items and
deletes the added ones, so the end state is exactly ``ITEMS``.
"""

from __future__ import annotations

import base64
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pitrdiff import codec
from pitrdiff.cli.app import load_commands
from pitrdiff.diff.core import diff_exports
from pitrdiff.errors import EXIT_FAILURE, EXIT_OK
from pitrdiff.export.dataset import load_export, read_manifest, write_export
from pitrdiff.export.scan import export_table
from pitrdiff.recovery.apply import apply_plan
from pitrdiff.recovery.plan import write_plan
from tests.faultproxy import FaultProxy, fast_backoff
from tests.helpers import Server

ROOT = Path(__file__).resolve().parent.parent
KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
TYPES = {"pk": "S", "sk": "N"}
DEFINITIONS = [{"AttributeName": k, "AttributeType": t} for k, t in TYPES.items()]
# The issue's fault mix, used below: 20% throttling (15% ProvisionedThroughput-
# ExceededException + 5% ThrottlingException) and 5% 5xx.


def make_item(n: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"p{n % 3}"},
        "sk": {"N": str(n)},
        "s": {"S": f"é {n} " + "x" * (n * 7 % 200)},
        "n": {"N": f"{n}.50"},
        "b": {"B": base64.b64encode(bytes([n, 0, 255])).decode()},
        "m": {"M": {"l": {"L": [{"N": "1"}, {"SS": ["b", "a"]}]}, "t": {"BOOL": n % 2 == 0}}},
        "nul": {"NULL": True},
        "ns": {"NS": ["1", str(n + 2)]},
    }


ITEMS = [make_item(n) for n in range(60)]
ADDED = [{"pk": {"S": "p9"}, "sk": {"N": str(n)}, "s": {"S": "written after T"}} for n in range(4)]


def changed(item: dict[str, Any]) -> dict[str, Any]:
    damaged = dict(item)
    damaged["s"] = {"S": "damaged"}
    del damaged["ns"]
    return damaged


def live_items() -> list[dict[str, Any]]:
    live = [changed(i) if int(i["sk"]["N"]) % 5 == 1 else i for i in ITEMS]
    return [i for i in live if int(i["sk"]["N"]) % 5 != 0] + ADDED


def canonical(items: list[dict[str, Any]]) -> dict[str, str]:
    return {codec.canonical_key(i, ["pk", "sk"]): codec.canonical_json(i) for i in items}


EXPECTED = canonical(ITEMS)
# The plan's 28 operations: put back deleted and changed items, delete added ones.
OP_KEYS = [k for k, v in canonical(live_items()).items() if EXPECTED.get(k) != v] + [
    k for k in EXPECTED if k not in canonical(live_items())
]


def exported_rows(out: Path) -> list[tuple[str, str]]:
    """Every row of an export as (key, item), duplicates kept (a dict would hide them)."""
    export = load_export(out)
    rows: list[tuple[str, str]] = []
    for part in export.parquet_files:
        table = pq.read_table(part, columns=["_key", "_item"])
        keys, items = table.column("_key").to_pylist(), table.column("_item").to_pylist()
        rows += zip(keys, items, strict=True)
    return rows


def assert_exact_export(out: Path) -> None:
    rows = exported_rows(out)
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys)), "an item was exported twice"
    assert dict(rows) == EXPECTED
    assert read_manifest(out).items == len(EXPECTED)


class BackoffRecorder:
    """Replaces botocore's back-off wait with a short one and counts the waits."""

    def __init__(self, seconds: float = 0.005) -> None:
        self.seconds = seconds
        self.waits = 0
        self._lock = threading.Lock()

    def delay_amount(self, context: Any) -> float:
        with self._lock:
            self.waits += 1
        return self.seconds


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> BackoffRecorder:
    import botocore.retries.standard as standard

    recorder = BackoffRecorder()
    monkeypatch.setattr(
        standard.ExponentialBackoff, "delay_amount", lambda self, ctx: recorder.delay_amount(ctx)
    )
    return recorder


@pytest.fixture
def source_table(ddb: Server, table_name: str) -> tuple[Server, str]:
    ddb.create_table(table_name, KEYS, TYPES)
    ddb.put_items(table_name, ITEMS)
    return ddb, table_name


# --------------------------------------------------------------------------- export under faults


def test_export_under_throttling_and_5xx_is_exact_and_counts_retries(
    source_table: tuple[Server, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backoff: BackoffRecorder,
) -> None:
    server, table = source_table
    monkeypatch.setenv("PITRDIFF_TEST_SCAN_LIMIT", "2")  # ~30 pages: many chances to fail
    with FaultProxy(
        server.endpoint, seed=20, throttle_rate=0.15, throttling_rate=0.05, error_rate=0.05
    ) as proxy:
        result = CliRunner().invoke(
            load_commands(),
            [
                *("export", table, "--out", str(tmp_path / "out"), "--segments", "3", "--json"),
                *("--endpoint-url", proxy.url, "--region", "us-east-1"),
            ],
        )
    assert result.exit_code == EXIT_OK, result.output
    summary = orjson.loads(result.stdout)
    counts = proxy.counts
    stats = read_manifest(tmp_path / "out").stats

    assert_exact_export(tmp_path / "out")
    assert proxy.injected >= 5, counts  # the seed does inject
    # every failed attempt is counted, in the manifest and in the summary
    assert stats["retries"] == summary["retries"] == proxy.injected
    assert stats["throttles"] == summary["throttles"] == counts["throttle"] + counts["throttling"]
    # each retry waited through botocore's back-off: no retry loop of our own
    assert backoff.waits == proxy.injected
    # and nothing else was sent: one DescribeTable, one Scan per page, one per retry
    # DescribeTable, DescribeTimeToLive (the manifest's TTL setting), the pages, the retries
    assert counts["requests"] == stats["pages"] + 2 + stats["retries"]


def test_export_survives_resets_lost_responses_and_slow_answers(
    source_table: tuple[Server, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backoff: BackoffRecorder,
) -> None:
    """A lost Scan response is read again: the page is not skipped nor doubled."""
    server, table = source_table
    monkeypatch.setenv("PITRDIFF_TEST_SCAN_LIMIT", "2")
    with FaultProxy(
        server.endpoint,
        seed=21,
        reset_rate=0.1,
        drop_response_rate=0.1,
        slow_rate=0.2,
        slow_seconds=0.05,
    ) as proxy:
        manifest = export_table(
            table, tmp_path / "out", segments=2, aws=server.aws.with_endpoint(proxy.url)
        )
    counts = proxy.counts
    assert counts["reset"] and counts["drop_response"] and counts["slow"], counts
    assert_exact_export(tmp_path / "out")
    assert manifest.stats["retries"] == counts["reset"] + counts["drop_response"]
    assert backoff.waits == manifest.stats["retries"]
    assert manifest.stats["throttles"] == 0


def test_real_backoff_waits_between_attempts(
    dynalite_server: Server, table_name: str, tmp_path: Path
) -> None:
    """botocore's own back-off (full jitter: up to 1, 2, 4 s) separates three throttles.

    A sanity bound only: the three waits sum to under 50 ms with a probability
    of about 3e-6; a retry loop of our own would not wait at all.
    """
    dynalite_server.create_table(table_name, KEYS, TYPES)
    dynalite_server.put_items(table_name, ITEMS[:5])
    with FaultProxy(
        dynalite_server.endpoint, throttle_rate=1.0, max_faults=3, operations={"Scan"}
    ) as proxy:
        started = time.monotonic()
        manifest = export_table(
            table_name,
            tmp_path / "out",
            segments=1,
            aws=dynalite_server.aws.with_endpoint(proxy.url),
        )
        elapsed = time.monotonic() - started
    assert proxy.counts["throttle"] == manifest.stats["throttles"] == 3
    assert elapsed > 0.05
    assert manifest.stats["elapsed_s"] > 0.05
    assert manifest.items == 5


# --------------------------------------------------------------------------- apply under faults


@pytest.fixture(scope="module")
def plan_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The diff of ``live_items()`` against ``ITEMS`` (local exports, no server)."""
    work = tmp_path_factory.mktemp("fault-diff")
    write_export(
        live_items(), work / "live", table_name="Orders", key_schema=KEYS,
        attribute_definitions=DEFINITIONS,
    )  # fmt: skip
    write_export(
        ITEMS, work / "restored", table_name="Orders-restored", key_schema=KEYS,
        attribute_definitions=DEFINITIONS,
    )  # fmt: skip
    diff_exports(work / "live", work / "restored", work / "diff")
    return work / "diff"


def live_table(server: Server, name: str, plan_source: Path, plan: Path) -> None:
    """A live table in the diffed state and a plan of every class for it."""
    server.create_table(name, KEYS, TYPES)
    server.put_items(name, live_items())
    summary = write_plan(plan_source, plan, include="deleted,changed,added", table=name)
    assert summary.counts == {"deleted": 12, "changed": 12, "added": 4, "put": 24, "delete": 4}


def test_apply_under_faults_takes_every_operation_exactly_once(
    ddb: Server, table_name: str, tmp_path: Path, plan_source: Path, backoff: BackoffRecorder
) -> None:
    plan = tmp_path / "plan.jsonl"
    live_table(ddb, table_name, plan_source, plan)
    with FaultProxy(
        ddb.endpoint,
        seed=22,
        reset_rate=0.05,
        drop_response_rate=0.1,  # written, answer lost: the retry must not write twice
        slow_rate=0.05,
        slow_seconds=0.05,
        throttle_rate=0.15,
        throttling_rate=0.05,
        error_rate=0.05,
    ) as proxy:
        report = apply_plan(plan, aws=ddb.aws.with_endpoint(proxy.url), workers=4)
    counts = proxy.counts
    assert counts["drop_response"] >= 2 and proxy.injected >= 8, counts
    assert ddb.scan_canonical(table_name) == EXPECTED
    assert (report.conflicts, report.failed) == (0, 0), report.issues
    assert report.applied + report.already_done == report.operations == 28
    # a lost answer makes the retry find its own write: already done, not applied twice
    assert report.already_done >= 1
    assert report.retries == proxy.injected
    assert report.throttles == counts["throttle"] + counts["throttling"]
    assert backoff.waits == proxy.injected
    # the journal holds each operation once
    journal = [orjson.loads(x) for x in Path(f"{plan}.journal").read_bytes().splitlines()[1:]]
    assert sorted(x["seq"] for x in journal) == list(range(28))


# --------------------------------------------------------------------------- kill -9 and resume


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pitrdiff", *args, "--region", "us-east-1", "--quiet"],
        env={**_base_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PITRDIFF_TEST_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONFAULTHANDLER"] = "1"
    return env


def kill_when(process: subprocess.Popen[bytes], ready: Any, extra: float) -> bool:
    """SIGKILL ``process`` ``extra`` seconds after ``ready()``; False if it finished first."""
    deadline = time.monotonic() + 60
    while not ready():
        if process.poll() is not None:
            return False
        if time.monotonic() > deadline:
            process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            _, stderr = process.communicate()
            raise AssertionError(f"never reached the kill point:\n{stderr.decode()}")
        time.sleep(0.005)
    time.sleep(extra)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process.returncode == -signal.SIGKILL


def parts(out: Path) -> int:
    data = out / "data"
    return sum(1 for p in data.glob("*.parquet")) if data.is_dir() else 0


@pytest.fixture
def throttling_proxy(dynalite_server: Server) -> Iterator[FaultProxy]:
    """Light throttling for the crash tests (the child processes back off for real)."""
    with FaultProxy(dynalite_server.endpoint, seed=23, throttle_rate=0.05) as proxy:
        yield proxy


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_export_killed_at_random_points_then_resumed_is_exact(
    dynalite_server: Server, table_name: str, tmp_path: Path, throttling_proxy: FaultProxy,
    backoff: BackoffRecorder, monkeypatch: pytest.MonkeyPatch, seed: int,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    dynalite_server.create_table(table_name, KEYS, TYPES)
    dynalite_server.put_items(table_name, ITEMS)
    out = tmp_path / "out"
    args = ["export", table_name, "--out", str(out), "--segments", "3"]
    args += ["--endpoint-url", throttling_proxy.url]
    # 2 items a page, a part per page, 50 ms between pages: 30 parts in about
    # 0.5 s after start-up; every kill lands at least ~0.15 s before the end.
    hooks = {
        "PITRDIFF_TEST_SCAN_DELAY": "0.05",
        "PITRDIFF_TEST_SCAN_LIMIT": "2",
        "PITRDIFF_TEST_PART_BYTES": "500",
    }
    kills = 2 if seed == 3 else 1  # seed 3 is killed twice
    for _ in range(kills):
        target = parts(out) + rng.randint(1, 8)
        process = cli(*args, env=hooks)
        killed = kill_when(process, lambda t=target: parts(out) >= t, rng.uniform(0, 0.05))
        assert killed, "the export ended before its kill point"
        assert not read_manifest(out).complete

    for name, value in hooks.items():  # small pages and parts again, in this process
        monkeypatch.setenv(name, value if name != "PITRDIFF_TEST_SCAN_DELAY" else "0")
    manifest = export_table(
        table_name, out, aws=dynalite_server.aws.with_endpoint(throttling_proxy.url)
    )
    assert manifest.source["resumes"] == kills
    assert_exact_export(out)
    assert not (out / "state").exists()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_apply_killed_at_random_points_then_resumed_is_exact(
    dynalite_server: Server, table_name: str, tmp_path: Path, plan_source: Path,
    throttling_proxy: FaultProxy, backoff: BackoffRecorder, seed: int,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    plan = tmp_path / "plan.jsonl"
    live_table(dynalite_server, table_name, plan_source, plan)
    journal = Path(f"{plan}.journal")
    args = ["apply", str(plan), "--yes", "--workers", "2"]
    args += ["--endpoint-url", throttling_proxy.url]

    def journaled() -> int:
        return len(journal.read_bytes().splitlines()) if journal.exists() else 0

    # 28 operations at 0.2 s each on 2 workers: about 2.8 s; the journal is
    # synced every 0.5 s (its header at once), so kills land before the first
    # sync or up to 0.3 s after one, with operations done but not journaled.
    for _ in range(2 if seed == 3 else 1):  # seed 3 is killed twice
        target = journaled() + rng.choice([0, 1, 1])  # 0: the header; 1: a sync
        process = cli(*args, env={"PITRDIFF_APPLY_DELAY_S": "0.2"})
        killed = kill_when(process, lambda t=target: journaled() > t, rng.uniform(0, 0.3))
        assert killed, "the apply ended before its kill point"
        before = dynalite_server.scan_canonical(table_name)
        assert before != EXPECTED  # killed mid-way
    done_before = sum(1 for k in OP_KEYS if before.get(k) == EXPECTED.get(k))

    report = apply_plan(plan, aws=dynalite_server.aws.with_endpoint(throttling_proxy.url))
    assert (report.conflicts, report.failed) == (0, 0), report.issues
    # what the killed runs did is found done (journal or condition), the rest is applied
    assert (report.already_done, report.applied) == (done_before, 28 - done_before)
    assert dynalite_server.scan_canonical(table_name) == EXPECTED
    # a finished apply run again changes nothing and applies nothing
    again = apply_plan(plan, aws=dynalite_server.aws.with_endpoint(throttling_proxy.url))
    assert (again.applied, again.already_done, again.from_journal) == (0, 28, 28)


# --------------------------------------------------------------------------- endpoints


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("quiet", [False, True])
def test_unreachable_endpoint_shows_each_retry_and_says_how_long(
    monkeypatch: pytest.MonkeyPatch, quiet: bool
) -> None:
    fast_backoff(monkeypatch)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    url = f"http://127.0.0.1:{closed_port()}"
    args = ["window", "orders", "--endpoint-url", url, *(["--quiet"] if quiet else [])]
    result = CliRunner().invoke(load_commands(), args)
    assert result.exit_code == EXIT_FAILURE
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    retries = [] if quiet else [
        f"warning: DynamoDB DescribeContinuousBackups: EndpointConnectionError at {url}; "
        f"retrying (attempt {n} of 3 failed, "
        for n in (1, 2)
    ]  # fmt: skip
    assert len(lines) == len(retries) + 1, result.stderr
    for line, start in zip(lines, retries, strict=False):
        assert line.startswith(start) and line.endswith(" s so far)"), line
    assert re.fullmatch(
        rf"error: cannot reach {url}/ while reading the PITR window: EndpointConnectionError "
        r"\(gave up after 3 attempts in \d+\.\d s; AWS_MAX_ATTEMPTS sets the count\)",
        lines[-1],
    ), lines[-1]


class _HtmlErrors(BaseHTTPRequestHandler):
    """Answers every request 500: an HTML page, or a JSON error whose message is one."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        page = (
            "<html>\n<head><title>500 Internal Server Error</title></head>\n<body>\n"
            + ("<center><h1>500 Internal Server Error</h1></center>\n" * 20)
            + "</body>\n</html>\n"
        )
        if self.server.as_json:  # type: ignore[attr-defined]
            body = orjson.dumps(
                {"__type": "com.amazonaws.dynamodb.v20120810#InternalFailure", "message": page}
            )
            kind = "application/x-amz-json-1.0"
        else:
            body, kind = page.encode(), "text/html"
        self.send_response(500)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("as_json", [False, True])
def test_a_500_html_page_is_one_short_line(monkeypatch: pytest.MonkeyPatch, as_json: bool) -> None:
    fast_backoff(monkeypatch)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlErrors)
    server.as_json = as_json  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        result = CliRunner().invoke(load_commands(), ["window", "t", "--endpoint-url", url, "-q"])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == EXIT_FAILURE
    assert result.stderr.count("\n") == 1, result.stderr
    line = result.stderr.rstrip("\n")
    assert "<" not in line and len(line) < 300, line
    if as_json:
        assert line.startswith(
            "error: InternalFailure while reading the PITR window: 500 Internal Server Error "
            "500 Internal Server Error 500 Internal"
        ), line
        assert line.endswith("… (after 2 attempts)"), line
    else:
        assert line == (
            "error: 500 while reading the PITR window: Internal Server Error (after 2 attempts)"
        )


def test_a_long_run_of_retries_shows_twenty_then_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    fast_backoff(monkeypatch)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "25")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlErrors)
    server.as_json = False  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        result = CliRunner().invoke(load_commands(), ["window", "t", "--endpoint-url", url])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == EXIT_FAILURE
    lines = result.stderr.splitlines()
    retries = [x for x in lines if "retrying (attempt" in x]
    assert [int(re.search(r"attempt (\d+) of 25", x).group(1)) for x in retries] == list(  # type: ignore[union-attr]
        range(1, 21)
    )
    assert lines[20] == f"warning: {url}: 20 retries shown; further ones are counted, not shown"
    assert len(lines) == 22 and lines[21].endswith("(after 25 attempts)"), lines[-1]

"""Every mistake a user can make gets one line, the documented exit code, and no damage.

Each row of :data:`ROWS` is a row of the table in the README's
"## Troubleshooting" section (same symptom text, same exit code); a test fails
when a README row has no test here or a test has no README row.

Each row sets up its case (tables on moto's server, local exports, plans),
snapshots every table the case made and the server's table list, runs the CLI
in-process, then checks:

- the exit code is the documented one (asserted by name, ``EXIT_*``);
- stderr holds exactly one ``error:`` line (rows whose outcome is a report,
  such as an item over 400 KB, name the problem in the report instead), with
  the expected words, and no traceback anywhere;
- no table was created, and every table of the case holds what it held;
- the output the command was asked to write does not exist.

The full and read-only disk rows mount a tiny tmpfs (the tests run as root);
where mounting is not permitted they are skipped, saying so.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from pitrdiff import codec, pitr
from pitrdiff.cli.app import load_commands
from pitrdiff.diff.core import diff_exports
from pitrdiff.errors import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_FAILURE, EXIT_OK
from pitrdiff.export.dataset import load_export, write_export
from pitrdiff.recovery.apply import apply_plan
from pitrdiff.recovery.plan import write_plan
from tests.conftest import free_port
from tests.faultproxy import FaultProxy
from tests.helpers import Server

README = Path(__file__).resolve().parent.parent / "README.md"
KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
HASH_ONLY = [{"AttributeName": "pk", "KeyType": "HASH"}]
TYPES = {"pk": "S", "sk": "N"}
DEFINITIONS = [{"AttributeName": k, "AttributeType": t} for k, t in TYPES.items()]
runner = CliRunner()


def item(n: int, **extra: Any) -> dict[str, Any]:
    return {"pk": {"S": "k"}, "sk": {"N": str(n)}, "v": {"S": f"value {n}"}, **extra}


# --------------------------------------------------------------------------- the case context

# The diff most rows share: items 0..2 were deleted from the live table.
SHARED_LIVE = [item(3), item(4)]
SHARED_RESTORED = [item(n) for n in range(5)]


@pytest.fixture(scope="module")
def shared_diff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("shared")
    for name, items in (("live", SHARED_LIVE), ("restored", SHARED_RESTORED)):
        write_export(
            items, work / name, table_name="Orders", key_schema=KEYS,
            attribute_definitions=DEFINITIONS,
        )  # fmt: skip
    diff_exports(work / "live", work / "restored", work / "diff")
    return work / "diff"


@dataclass
class Case:
    """What one row sets up: the server, tables to watch, the CLI call, outputs to be absent."""

    server: Server
    tmp: Path
    tables: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    absent: list[Path] = field(default_factory=list)
    env: dict[str, str | None] = field(default_factory=dict)
    endpoint: str | None = None
    shared_diff: Path | None = None  # SHARED_LIVE vs SHARED_RESTORED, made once per module

    def name(self, suffix: str = "") -> str:
        return f"bad-{uuid.uuid4().hex[:10]}{suffix}"

    def table(self, items: Sequence[dict[str, Any]] = (), key_schema: Any = KEYS) -> str:
        name = self.name()
        self.server.create_table(name, key_schema, TYPES)
        if items:
            self.server.put_items(name, items)
        self.tables.append(name)
        return name

    def export(
        self, name: str, items: list[dict[str, Any]], key_schema: Any = KEYS, table: str = "Orders"
    ) -> Path:
        out = self.tmp / name
        write_export(
            items,
            out,
            table_name=table,
            key_schema=key_schema,
            attribute_definitions=DEFINITIONS[: len(key_schema)],
        )
        return out

    def diff(self, live: list[dict[str, Any]], restored: list[dict[str, Any]], table: str) -> Path:
        live_dir = self.export("live", live, table=table)
        restored_dir = self.export("restored", restored, table=f"{table}-restored")
        diff_exports(live_dir, restored_dir, self.tmp / "diff")
        return self.tmp / "diff"

    def plan(self, table: str) -> Path:
        """A plan for ``table`` putting back items 0..2 (deleted from the live table)."""
        assert self.shared_diff is not None
        out = self.tmp / "plan.jsonl"
        write_plan(self.shared_diff, out, table=table)
        return out


def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()})")


def _fill(path: Path) -> None:
    """Fill a file system until it has no space left."""
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass  # ENOSPC: full
    finally:
        os.close(fd)


MOUNTS: list[Path] = []


def _mounted(case: Case, options: str, fill: bool = False) -> Path:
    mount = case.tmp / f"mnt-{uuid.uuid4().hex[:6]}"
    _mount_tmpfs(mount, options)
    MOUNTS.append(mount)
    if fill:
        _fill(mount)
    return mount


# --------------------------------------------------------------------------- the rows


def nonexistent_table(case: Case) -> None:
    out = case.tmp / "out"
    case.args = ["export", "no-such-table", "--out", str(out)]
    case.absent = [out]


def pitr_disabled(case: Case) -> None:
    table = case.table([item(1)])
    case.args = ["restore", table, "--latest"]


def naive_time(case: Case) -> None:
    table = case.table([item(1)])
    pitr.enable_pitr(table, aws=case.server.aws)
    case.args = ["restore", table, "--at", "2026-10-27T14:00:00"]


def outside_window(case: Case) -> None:
    table = case.table([item(1)])
    pitr.enable_pitr(table, aws=case.server.aws)
    window = pitr.window(table, aws=case.server.aws)
    assert window.earliest is not None
    too_early = window.earliest - dt.timedelta(hours=1)
    case.args = ["restore", table, "--at", pitr.format_time(too_early) or ""]


def future_time(case: Case) -> None:
    table = case.table([item(1)])
    pitr.enable_pitr(table, aws=case.server.aws)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    case.args = ["restore", table, "--at", pitr.format_time(future) or ""]


def target_exists(case: Case) -> None:
    table = case.table([item(1)])
    existing = case.table([item(2)])
    pitr.enable_pitr(table, aws=case.server.aws)
    case.args = ["restore", table, "--latest", "--target", existing]


def unreachable_endpoint(case: Case) -> None:
    table = "Orders"
    out = case.tmp / "out"
    case.endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    case.env = {"AWS_MAX_ATTEMPTS": "2"}  # fail fast; the default retries ~2 minutes
    case.args = ["export", table, "--out", str(out)]
    case.absent = [out]


def missing_credentials(case: Case) -> None:
    table = "Orders"
    out = case.tmp / "out"
    # the session fixture already hides config files and instance metadata
    case.env = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None}
    case.args = ["export", table, "--out", str(out)]
    case.absent = [out]


PROXIES: list[FaultProxy] = []


def invalid_credentials(case: Case) -> None:
    # moto and dynalite accept any key; the proxy answers as AWS does for an unknown one
    table = case.table([item(1)])
    out = case.tmp / "out"
    proxy = FaultProxy(case.server.endpoint, access_key="AKIDVALID").start()
    PROXIES.append(proxy)
    case.endpoint = proxy.url
    case.env = {"AWS_ACCESS_KEY_ID": "AKIDWRONG"}
    case.args = ["export", table, "--out", str(out)]
    case.absent = [out]


def _diff_args(case: Case, live: Path, restored: Path) -> None:
    out = case.tmp / "diff-out"
    case.args = ["diff", str(live), str(restored), "--out", str(out)]
    case.absent = [out]


def not_an_export(case: Case) -> None:
    folder = case.tmp / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    _diff_args(case, folder, case.export("restored", [item(1)]))


def incomplete_export(case: Case) -> None:
    live = case.export("live", [item(1)])
    manifest = orjson.loads((live / "manifest.json").read_bytes())
    manifest["complete"] = False
    (live / "manifest.json").write_bytes(orjson.dumps(manifest))
    _diff_args(case, live, case.export("restored", [item(1)]))


def _first_part(export: Path) -> Path:
    return next((export / "data").glob("*.parquet"))


def corrupt_part(case: Case) -> None:
    live = case.export("live", [item(n) for n in range(20)])
    part = _first_part(live)
    data = bytearray(part.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    part.write_bytes(bytes(data))
    _diff_args(case, live, case.export("restored", [item(1)]))


def truncated_part(case: Case) -> None:
    live = case.export("live", [item(n) for n in range(20)])
    part = _first_part(live)
    part.write_bytes(part.read_bytes()[:-100])
    _diff_args(case, live, case.export("restored", [item(1)]))


def manifest_checksum(case: Case) -> None:
    live = case.export("live", [item(n) for n in range(20)])
    manifest = orjson.loads((live / "manifest.json").read_bytes())
    manifest["files"][0]["xxh3_128"] = "0" * 32
    (live / "manifest.json").write_bytes(orjson.dumps(manifest))
    _diff_args(case, live, case.export("restored", [item(1)]))


def manifest_items_differ(case: Case) -> None:
    live = case.export("live", [item(n) for n in range(20)])
    manifest = orjson.loads((live / "manifest.json").read_bytes())
    manifest["items"] += 5
    (live / "manifest.json").write_bytes(orjson.dumps(manifest))
    _diff_args(case, live, case.export("restored", [item(1)]))


def manifest_lost_a_part(case: Case) -> None:
    live = case.export("live", [item(n) for n in range(20)])
    manifest = orjson.loads((live / "manifest.json").read_bytes())
    manifest["files"], manifest["items"] = [], 0  # the part is still in data/
    (live / "manifest.json").write_bytes(orjson.dumps(manifest))
    _diff_args(case, live, case.export("restored", [item(1)]))


def export_out_inside_a_dataset(case: Case) -> None:
    table = case.table([item(1)])
    out = case.export("live", [item(1)]) / "data" / "sub"
    case.args = ["export", table, "--out", str(out)]
    case.absent = [out]


def diff_out_inside_a_dataset(case: Case) -> None:
    live = case.export("live", [item(1)])
    _diff_args(case, live, case.export("restored", [item(1)]))
    out = live / "data" / "mydiff"
    case.args[-1], case.absent = str(out), [out]


def overwrite_beside_user_files(case: Case) -> None:
    table = case.table([item(1)])
    out = case.export("mine", [item(1), item(2)])
    (out / "data" / "notes.txt").write_text("my notes\n")
    case.args = ["export", table, "--out", str(out), "--overwrite"]


def negative_memory_limit(case: Case) -> None:
    live = case.export("live", [item(1)])
    _diff_args(case, live, case.export("restored", [item(1)]))
    case.args += ["--memory-limit", "-5GB"]


def different_key_schemas(case: Case) -> None:
    live = case.export("live", [item(1)])
    restored = case.export("restored", [{"pk": {"S": "k"}, "v": {"S": "x"}}], key_schema=HASH_ONLY)
    _diff_args(case, live, restored)


def _apply_args(case: Case, plan: Path, *extra: str) -> None:
    case.args = ["apply", str(plan), "--yes", *extra]


def plan_truncated(case: Case) -> None:
    table = case.table(SHARED_LIVE)
    plan = case.plan(table)
    data = plan.read_bytes()
    plan.write_bytes(data[: len(data) * 2 // 3])
    _apply_args(case, plan)
    case.absent = [Path(f"{plan}.journal")]


def plan_edited(case: Case) -> None:
    table = case.table(SHARED_LIVE)
    plan = case.plan(table)
    plan.write_bytes(plan.read_bytes().replace(b"value 1", b"value X"))
    _apply_args(case, plan)
    case.absent = [Path(f"{plan}.journal")]


def plan_other_table(case: Case) -> None:
    table = case.table(SHARED_LIVE)
    other = case.table()
    plan = case.plan(table)
    # applied to another table (named explicitly) first: the journal records it
    apply_plan(plan, table=other, aws=case.server.aws)
    _apply_args(case, plan)


def max_wcu_too_small(case: Case) -> None:
    table = case.table(SHARED_LIVE)
    plan = case.plan(table)
    _apply_args(case, plan, "--max-wcu", "1e-9")
    case.absent = [Path(f"{plan}.journal")]


def plan_other_key_schema(case: Case) -> None:
    table = case.table(SHARED_LIVE)
    hash_only = case.table(key_schema=HASH_ONLY)
    plan = case.plan(table)
    _apply_args(case, plan, "--table", hash_only)
    case.absent = [Path(f"{plan}.journal")]


def item_over_400kb(case: Case) -> None:
    table = case.table([item(2)])
    too_big = item(1, blob={"S": "w" * (401 * 1024)})
    diff = case.diff([item(2)], [too_big, item(2)], table)
    plan = case.tmp / "plan.jsonl"
    write_plan(diff, plan)
    _apply_args(case, plan)


def invalid_where(case: Case) -> None:
    diff = case.shared_diff
    assert diff is not None
    out = case.tmp / "plan.jsonl"
    case.args = ["plan", str(diff), "--out", str(out), "--where", "nosuchcolumn = 1"]
    case.absent = [out]


def where_fails_while_it_runs(case: Case) -> None:
    diff = case.shared_diff
    assert diff is not None
    out = case.tmp / "plan.jsonl"
    where = "CAST(attr_text(restored_item, 'v') AS INTEGER) > 0"  # 'value 0' is no integer
    case.args = ["plan", str(diff), "--out", str(out), "--where", where]
    case.absent = [out]


def _plan_args(case: Case, out: Path, *extra: str) -> None:
    assert case.shared_diff is not None
    case.args = ["plan", str(case.shared_diff), "--out", str(out), *extra]


def plan_out_inside_a_dataset(case: Case) -> None:
    live = case.export("live", [item(1)])
    _plan_args(case, live / "manifest.json")  # its bytes are checked by the export row tests


def plan_out_a_dataset_directory(case: Case) -> None:
    live = case.export("live", [item(1)])
    _plan_args(case, live)


def keys_file_missing(case: Case) -> None:
    out = case.tmp / "plan.jsonl"
    _plan_args(case, out, "--keys", str(case.tmp / "nosuch.csv"))
    case.absent = [out]


def plan_out_not_a_plan(case: Case) -> None:
    notes = case.tmp / "notes.txt"
    notes.write_text("my notes\n")
    _plan_args(case, notes)


def plan_out_holds_a_plan(case: Case) -> None:
    plan = case.plan("Orders")
    _plan_args(case, plan)


def plan_out_holds_an_applied_plan(case: Case) -> None:
    plan = case.plan("Orders")
    Path(f"{plan}.journal").write_text('{"kind":"journal"}\n')
    _plan_args(case, plan, "--overwrite")


def keys_match_nothing(case: Case) -> None:
    keys = case.tmp / "keys.csv"
    keys.write_text("pk,sk\nk,1\n k,2\n")  # a stray space
    _plan_args(case, case.tmp / "plan.jsonl", "--keys", str(keys))


def full_disk_export(case: Case) -> None:
    table = case.table([item(n) for n in range(5)])
    out = _mounted(case, "size=64k", fill=True) / "export"
    case.args = ["export", table, "--out", str(out)]


def full_disk_diff(case: Case) -> None:
    live = case.export("live", [item(n) for n in range(5)])
    restored = case.export("restored", [item(n) for n in range(3, 9)])
    out = _mounted(case, "size=64k", fill=True) / "diff"
    case.args = ["diff", str(live), str(restored), "--out", str(out)]


def full_disk_plan(case: Case) -> None:
    diff = case.shared_diff
    assert diff is not None
    out = _mounted(case, "size=64k", fill=True) / "plan.jsonl"
    case.args = ["plan", str(diff), "--out", str(out)]
    case.absent = [out]


def full_disk_apply(case: Case) -> None:
    table = case.table(SHARED_LIVE)
    mount = _mounted(case, "size=64k")
    plan = mount / "plan.jsonl"
    plan.write_bytes(case.plan(table).read_bytes())
    _fill(mount)  # the journal beside the plan cannot be written
    _apply_args(case, plan)


def read_only_diff(case: Case) -> None:
    live = case.export("live", [item(n) for n in range(5)])
    restored = case.export("restored", [item(n) for n in range(3, 9)])
    out = _mounted(case, "size=64k,ro") / "diff"
    case.args = ["diff", str(live), str(restored), "--out", str(out)]
    case.absent = [out]


def read_only_export(case: Case) -> None:
    table = case.table([item(n) for n in range(5)])
    out = _mounted(case, "size=64k,ro") / "export"
    case.args = ["export", table, "--out", str(out)]
    case.absent = [out]


def read_only_plan(case: Case) -> None:
    diff = case.shared_diff
    assert diff is not None
    out = _mounted(case, "size=64k,ro") / "plan.jsonl"
    case.args = ["plan", str(diff), "--out", str(out)]
    case.absent = [out]


@dataclass(frozen=True)
class Row:
    """One troubleshooting row: its setup, exit code and the words its message holds."""

    setup: Callable[[Case], None]
    exit_code: int
    words: str
    error_line: bool = True  # False: the outcome is a report, not an error line
    server: str = "dynalite"  # PITR rows need moto's control plane


ROWS: dict[str, Row] = {
    "table does not exist": Row(nonexistent_table, EXIT_BAD_INPUT, "does not exist"),
    "PITR is off for the table": Row(pitr_disabled, EXIT_BAD_INPUT, "off", server="moto"),
    "restore time without a time zone": Row(naive_time, EXIT_BAD_INPUT, "no zone", server="moto"),
    "restore time outside the restorable window": Row(
        outside_window, EXIT_BAD_INPUT, "outside the restorable window", server="moto"
    ),
    "restore time in the future": Row(future_time, EXIT_BAD_INPUT, "in the future", server="moto"),
    "restore target table already exists": Row(
        target_exists, EXIT_BAD_INPUT, "already exists", server="moto"
    ),
    "endpoint unreachable": Row(unreachable_endpoint, EXIT_FAILURE, "cannot reach"),
    "no credentials": Row(missing_credentials, EXIT_FAILURE, "no AWS credentials"),
    "credentials refused": Row(invalid_credentials, EXIT_FAILURE, "refused the credentials"),
    "directory is not an export": Row(not_an_export, EXIT_BAD_INPUT, "is not an export"),
    "export is incomplete": Row(incomplete_export, EXIT_BAD_INPUT, "not complete"),
    "Parquet part corrupt": Row(corrupt_part, EXIT_BAD_INPUT, "checksum"),
    "Parquet part truncated": Row(truncated_part, EXIT_BAD_INPUT, "truncated"),
    "manifest checksum does not match a part": Row(manifest_checksum, EXIT_BAD_INPUT, "checksum"),
    "export manifest counts other items than its parts": Row(
        manifest_items_differ, EXIT_BAD_INPUT, "the manifest says"
    ),
    "export data/ holds a part its manifest does not list": Row(
        manifest_lost_a_part, EXIT_BAD_INPUT, "the manifest does not list"
    ),
    "export --out inside an export or diff": Row(
        export_out_inside_a_dataset, EXIT_BAD_INPUT, "inside the export dataset"
    ),
    "diff --out inside an export or diff": Row(
        diff_out_inside_a_dataset, EXIT_BAD_INPUT, "inside the export dataset"
    ),
    "--overwrite of a dataset beside files pitrdiff did not write": Row(
        overwrite_beside_user_files, EXIT_BAD_INPUT, "pitrdiff did not write"
    ),
    "negative or zero --memory-limit": Row(
        negative_memory_limit, EXIT_BAD_INPUT, "give a positive size"
    ),
    "exports have different key schemas": Row(different_key_schemas, EXIT_BAD_INPUT, "key"),
    "plan truncated": Row(plan_truncated, EXIT_BAD_INPUT, "truncated"),
    "plan edited": Row(plan_edited, EXIT_BAD_INPUT, "line"),
    "plan already applied to another table": Row(plan_other_table, EXIT_BAD_INPUT, "journal"),
    "apply --max-wcu too small": Row(
        max_wcu_too_small, EXIT_BAD_INPUT, "--max-wcu must be at least 1 unit per second"
    ),
    "table's key schema differs from the plan's": Row(
        plan_other_key_schema, EXIT_BAD_INPUT, "the plan's is"
    ),
    "item over 400 KB in a plan": Row(
        item_over_400kb, EXIT_DIFFERENCES, "400 KB", error_line=False
    ),
    "invalid --where expression": Row(invalid_where, EXIT_BAD_INPUT, "invalid --where"),
    "--where fails while it runs": Row(
        where_fails_while_it_runs, EXIT_BAD_INPUT, "invalid --where expression 'CAST("
    ),
    "plan --out inside an export or diff": Row(
        plan_out_inside_a_dataset, EXIT_BAD_INPUT, "inside the export dataset"
    ),
    "plan --out is an export or diff directory": Row(
        plan_out_a_dataset_directory, EXIT_BAD_INPUT, "give --out a file name outside it"
    ),
    "--keys or --exclude-keys file missing or a directory": Row(
        keys_file_missing, EXIT_BAD_INPUT, "does not exist"
    ),
    "plan --out is a file that is not a plan": Row(
        plan_out_not_a_plan, EXIT_BAD_INPUT, "is not a pitrdiff plan"
    ),
    "plan --out holds a plan": Row(plan_out_holds_a_plan, EXIT_BAD_INPUT, "pass --overwrite"),
    "plan --out holds a plan that was applied": Row(
        plan_out_holds_an_applied_plan, EXIT_BAD_INPUT, "was applied"
    ),
    "--keys lists keys in no row of the diff": Row(
        keys_match_nothing, EXIT_OK, "matching no deleted row", error_line=False
    ),
    "export --out on a full disk": Row(full_disk_export, EXIT_FAILURE, "no space left"),
    "diff --out on a full disk": Row(full_disk_diff, EXIT_FAILURE, "no space left"),
    "plan --out on a full disk": Row(full_disk_plan, EXIT_FAILURE, "no space left"),
    "apply with the plan on a full disk": Row(full_disk_apply, EXIT_FAILURE, "no space left"),
    "export --out on a read-only disk": Row(read_only_export, EXIT_FAILURE, "read-only"),
    "diff --out on a read-only disk": Row(read_only_diff, EXIT_FAILURE, "read-only"),
    "plan --out on a read-only disk": Row(read_only_plan, EXIT_FAILURE, "read-only"),
}


# --------------------------------------------------------------------------- the README table


def readme_rows() -> dict[str, tuple[int, str]]:
    """``{symptom: (exit code, message)}`` of the README's troubleshooting table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows: dict[str, tuple[int, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 4 or set(cells[0]) <= set("-: "):
            continue
        if cells[0] == "symptom":
            continue
        match = re.match(r"`?(\d+)`?", cells[2])
        assert match, f"README troubleshooting row {cells[0]!r}: no exit code in {cells[2]!r}"
        rows[cells[0].replace("\\|", "|").strip("`")] = (int(match.group(1)), cells[1])
    return rows


def test_readme_rows_and_tests_are_the_same_list() -> None:
    documented = readme_rows()
    assert sorted(documented) == sorted(ROWS), (
        f"README rows without a test: {sorted(set(documented) - set(ROWS))}; "
        f"tests without a README row: {sorted(set(ROWS) - set(documented))}"
    )
    for symptom, row in ROWS.items():
        exit_code, message = documented[symptom]
        assert exit_code == row.exit_code, f"README exit code of {symptom!r}"
        assert row.words in message, f"README message of {symptom!r} lacks {row.words!r}"


# --------------------------------------------------------------------------- running a row


@pytest.fixture(autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    # The CLI's log handler writes to the stream CliRunner closed: drop it.
    logger = logging.getLogger("pitrdiff")
    logger.handlers = []
    logger.propagate = True
    for proxy in PROXIES:
        proxy.stop()
    PROXIES.clear()
    for mount in MOUNTS:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
    MOUNTS.clear()


def snapshot(server: Server, tables: list[str]) -> tuple[set[str], dict[str, dict[str, str]]]:
    names: set[str] = set()
    for page in server.client().get_paginator("list_tables").paginate():
        names.update(page["TableNames"])
    return names, {t: server.scan_canonical(t) for t in tables}


def run_cli(case: Case, monkeypatch: pytest.MonkeyPatch, *extra: str) -> Any:
    for name, value in case.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    endpoint = case.endpoint or case.server.endpoint
    args = [*case.args, "--endpoint-url", endpoint, "--region", "us-east-1", *extra]
    return runner.invoke(load_commands(), args)


@pytest.mark.parametrize("symptom", list(ROWS))
def test_bad_input_gets_one_line_and_its_exit_code_and_writes_nothing(
    symptom: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    shared_diff: Path,
) -> None:
    row = ROWS[symptom]
    server: Server = request.getfixturevalue(f"{row.server}_server")
    case = Case(server, tmp_path, shared_diff=shared_diff)
    row.setup(case)
    before = snapshot(server, case.tables)

    result = run_cli(case, monkeypatch)

    output = result.stdout + result.stderr
    assert result.exit_code == row.exit_code, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    if row.error_line:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.stderr
        assert row.words in errors[0], result.stderr
        assert len(errors[0]) < 400, errors[0]
        assert result.stdout == ""
    else:
        assert row.words in output
    monkeypatch.undo()  # the snapshot reads with the test's own credentials
    assert snapshot(server, case.tables) == before
    for path in case.absent:
        assert not path.exists(), f"{path} was written"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    """``--debug`` re-raises: Python prints the traceback (and exits 1)."""
    case = Case(Server("none", "http://127.0.0.1:9"), tmp_path)
    not_an_export(case)
    result = subprocess.run(
        [sys.executable, "-m", "pitrdiff", *case.args, "--debug"],
        capture_output=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    stderr = result.stderr.decode()
    assert "Traceback (most recent call last)" in stderr
    assert "ExportError" in stderr
    assert result.returncode != 0
    without = subprocess.run(
        [sys.executable, "-m", "pitrdiff", *case.args],
        capture_output=True,
        check=False,
    )
    assert without.returncode == EXIT_BAD_INPUT
    assert without.stderr.decode().count("\n") == 1
    assert "Traceback" not in without.stderr.decode()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_after_a_full_disk_the_same_commands_succeed_once_space_is_freed(
    dynalite_server: Server, tmp_path: Path
) -> None:
    """What a full disk leaves behind never blocks re-running the same command."""
    case = Case(dynalite_server, tmp_path)
    table = case.table([item(n) for n in range(5)])
    live = case.export("live", [item(n) for n in range(5)])
    restored = case.export("restored", [item(n) for n in range(3, 9)])
    mount = _mounted(case, "size=256k")
    _fill(mount)
    endpoint = ["--endpoint-url", dynalite_server.endpoint, "--region", "us-east-1"]
    commands = [
        ["export", table, "--out", str(mount / "export"), *endpoint],
        ["diff", str(live), str(restored), "--out", str(mount / "diff")],
    ]
    try:
        for args in commands:
            assert runner.invoke(load_commands(), args).exit_code == EXIT_FAILURE
        (mount / "filler").unlink()
        for args, code in zip(commands, (EXIT_OK, EXIT_DIFFERENCES), strict=True):
            result = runner.invoke(load_commands(), args)
            assert result.exit_code == code, result.stderr
    finally:
        logging.getLogger("pitrdiff").handlers = []
    assert len(dynalite_server.scan_canonical(table)) == 5


def test_export_that_fills_the_disk_midway_resumes_exactly_after_freeing_space(
    dynalite_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts and checkpoints written before the disk filled are kept; the rest is read again."""
    case = Case(dynalite_server, tmp_path)
    rng = random.Random(8)
    items = [
        item(n, blob={"B": base64.b64encode(rng.randbytes(1000)).decode()}) for n in range(200)
    ]
    table = case.table(items)
    mount = _mounted(case, "size=1m")
    (mount / "filler").write_bytes(b"\0" * (920 * 1024))  # ~100 KB left: part of the export fits
    monkeypatch.setenv("PITRDIFF_TEST_PART_BYTES", "20000")
    monkeypatch.setenv("PITRDIFF_TEST_SCAN_LIMIT", "10")
    out = mount / "export"
    args = ["export", table, "--out", str(out), "--segments", "2", "--json"]
    args += ["--endpoint-url", dynalite_server.endpoint, "--region", "us-east-1"]
    try:
        full = runner.invoke(load_commands(), args)
        assert full.exit_code == EXIT_FAILURE, full.output
        assert "no space left" in full.stderr
        assert any((out / "data").glob("*.parquet"))  # it failed midway, not at the start
        (mount / "filler").unlink()
        resumed = runner.invoke(load_commands(), args)
        assert resumed.exit_code == EXIT_OK, resumed.stderr
    finally:
        logging.getLogger("pitrdiff").handlers = []
    assert orjson.loads(resumed.stdout)["resumes"] == 1
    exported = [codec.canonical_json(i) for i in load_export(out).items()]
    assert len(exported) == len(set(exported)) == 200  # each item once
    assert set(exported) == set(dynalite_server.scan_canonical(table).values())

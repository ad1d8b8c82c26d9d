"""Plans: selection, file format, verification, ``--where`` safety, key lists, ``--out``.

The data (``LIVE`` / ``RESTORED``, key ``pk`` S + ``sk`` N) and its differences:

- deleted (in restored, not in live): ``acme/1``, ``acme/2``, ``zeta/1``
- changed: ``acme/3`` (qty 1 -> 5), ``zeta/2`` (tags)
- added: ``acme/9``
- unchanged: ``zeta/3``
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from pitrdiff import codec
from pitrdiff.cli.app import load_commands
from pitrdiff.diff.core import diff_exports
from pitrdiff.errors import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_TERMINATED,
    DiffError,
    InputError,
    PlanError,
    RefusedError,
)
from pitrdiff.export.dataset import file_checksum, write_export
from pitrdiff.recovery.plan import load_plan, write_plan

KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "N"},
]
runner = CliRunner()


def item(pk: str, sk: int, **attributes: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}, **attributes}


RESTORED = [
    item("acme", 1, tenant={"S": "acme"}, qty={"N": "1.50"}),
    item("acme", 2, tenant={"S": "acme"}, blob={"B": "AAE="}),
    item("acme", 3, tenant={"S": "acme"}, qty={"N": "1"}),
    item("zeta", 1, tenant={"S": "zeta"}),
    item("zeta", 2, tenant={"S": "zeta"}, tags={"SS": ["a", "b"]}),
    item("zeta", 3, tenant={"S": "zeta"}),
]
LIVE = [
    item("acme", 3, tenant={"S": "acme"}, qty={"N": "5"}),
    item("zeta", 2, tenant={"S": "zeta"}, tags={"SS": ["a"]}),
    item("zeta", 3, tenant={"S": "zeta"}),
    item("acme", 9, tenant={"S": "acme"}),
]


def make_diff(
    tmp_path: Path,
    live: list[dict[str, Any]],
    restored: list[dict[str, Any]],
    live_ttl: dict[str, Any] | None = None,
) -> Path:
    """Exports from plain items (write_export), diffed by the real diff_exports."""
    for name, items in (("live", live), ("restored", restored)):
        write_export(
            items,
            tmp_path / name,
            table_name="Orders" if name == "live" else "Orders-restored",
            key_schema=KEY_SCHEMA,
            attribute_definitions=ATTRIBUTES,
            ttl=live_ttl if name == "live" else None,
        )
    diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    return tmp_path / "diff"


def plan_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def op_keys(path: Path) -> list[tuple[str, str, str]]:
    return [
        (op["class"], op["key"]["pk"]["S"], op["key"]["sk"]["N"])
        for op in plan_lines(path)
        if op["kind"] == "op"
    ]


def canonical_key(pk: str, sk: int) -> str:
    return codec.canonical_key({"pk": {"S": pk}, "sk": {"N": str(sk)}}, ["pk", "sk"])


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if "pitrdiff-tmp" in p.name)


def own_spill_dirs() -> list[str]:
    """This process's plan spill directories still in the system temp directory."""
    marker = f"-{os.getpid()}-"
    return [p.name for p in Path(tempfile.gettempdir()).glob("pitrdiff-plan-*") if marker in p.name]


@pytest.fixture(scope="module")
def diff_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One diff for the module: a plan never writes into it (the tests check that too)."""
    return make_diff(tmp_path_factory.mktemp("orders"), LIVE, RESTORED)


# --------------------------------------------------------------------------- the plan file


def test_default_plan_restores_deleted_items_only(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    summary = write_plan(diff_dir, out)
    assert summary.operations == 3
    assert summary.counts == {"deleted": 3, "put": 3, "delete": 0}
    assert summary.table == "Orders"
    assert summary.warnings == ()
    lines = plan_lines(out)
    header, ops, trailer = lines[0], lines[1:-1], lines[-1]
    assert header["kind"] == "header" and header["format"] == "pitrdiff-plan"
    assert header["table"] == "Orders"
    assert [k["AttributeName"] for k in header["key_schema"]] == ["pk", "sk"]
    assert header["counts"] == {"operations": 3, "deleted": 3, "put": 3, "delete": 0}
    assert header["selection"] == {"include": ["deleted"], "where": None}
    assert header["checks"] == {
        "unrestorable": {"operations": 0, "sample": []},
        "ttl": {"attribute": None, "expiring_within_a_day": 0, "sample": []},
    }
    assert header["diff"]["counts"]["deleted"] == 3
    assert [op["seq"] for op in ops] == [0, 1, 2]
    assert all(op["op"] == "put" and op["expected"] is None for op in ops)
    # the restored item, canonical (1.50 -> 1.5), in key order
    assert ops[0]["item"] == codec.loads(codec.canonical_json(RESTORED[0]))
    assert op_keys(out) == [
        ("deleted", "acme", "1"),
        ("deleted", "acme", "2"),
        ("deleted", "zeta", "1"),
    ]
    assert trailer == {"kind": "trailer", "operations": 3, "xxh3_128": summary.checksum}
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert temp_files(tmp_path) == []


def test_include_all_classes_and_expected_states(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    summary = write_plan(diff_dir, out, include="deleted,changed,added")
    assert summary.counts == {
        "deleted": 3,
        "changed": 2,
        "added": 1,
        "put": 5,
        "delete": 1,
    }
    ops = {(o["class"], o["key"]["pk"]["S"], o["key"]["sk"]["N"]): o for o in plan_lines(out)[1:-1]}
    changed = ops[("changed", "acme", "3")]
    assert changed["op"] == "put"
    assert changed["item"]["qty"] == {"N": "1"}
    assert changed["expected"]["qty"] == {"N": "5"}  # the live item as observed
    added = ops[("added", "acme", "9")]
    assert added["op"] == "delete" and "item" not in added
    assert added["expected"] == codec.loads(codec.canonical_json(LIVE[3]))
    plan = load_plan(out)
    assert plan.operation_count == 6
    assert [o.item_class for o in plan.operations()] == ["deleted"] * 3 + ["changed"] * 2 + [
        "added"
    ]


def test_where_selects_by_json_path_of_either_version(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    where = (
        "json_extract_string(coalesce(restored_item, live_item), '$.tenant.S') = 'acme' "
        "AND class <> 'added'"
    )
    summary = write_plan(diff_dir, out, include=("deleted", "changed", "added"), where=where)
    assert op_keys(out) == [
        ("deleted", "acme", "1"),
        ("deleted", "acme", "2"),
        ("changed", "acme", "3"),
    ]
    assert summary.selection["where"] == where
    # columns of changed rows: the signature and the attribute-level changes
    write_plan(diff_dir, out, include="changed", where="signature = 'tags'", overwrite=True)
    assert op_keys(out) == [("changed", "zeta", "2")]
    write_plan(
        diff_dir, out, include="changed", where="len(changes) = 1 AND key.sk = '3'", overwrite=True
    )
    assert op_keys(out) == [("changed", "acme", "3")]
    # the attr macros Diff.sql has work in --where too
    write_plan(diff_dir, out, where="attr_text(restored_item, 'tenant') = 'zeta'", overwrite=True)
    assert op_keys(out) == [("deleted", "zeta", "1")]
    write_plan(
        diff_dir,
        out,
        include="changed",
        where="attr_type(live_item, 'tags') = 'SS'",
        overwrite=True,
    )
    assert op_keys(out) == [("changed", "zeta", "2")]


def test_plan_from_a_diff_object(diff_dir: Path, tmp_path: Path) -> None:
    from pitrdiff.diff.core import load_diff

    summary = write_plan(load_diff(diff_dir), tmp_path / "plan.jsonl", include=["added"])
    assert summary.counts == {"added": 1, "put": 0, "delete": 1}


def test_selection_of_nothing_is_an_empty_plan(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    summary = write_plan(diff_dir, out, where="key.pk = 'nobody'")
    assert summary.empty and summary.operations == 0
    assert load_plan(out).operation_count == 0


# --------------------------------------------------------------------------- --where


@pytest.mark.parametrize(
    "where",
    [
        "(SELECT count(*) FROM read_csv('/etc/passwd')) > 0",
        "(SELECT count(*) FROM read_text('/etc/passwd')) > 0",
        "read_csv('/etc/passwd') IS NOT NULL",
        "(SELECT count(*) FROM 'http://127.0.0.1:9/x.csv') > 0",
        "(SELECT count(*) FROM read_parquet('{diff}/deleted.parquet')) > 0",
        "COPY rows TO '{tmp}/stolen.csv'",
        "true) UNION ALL (SELECT * FROM rows",
        "true; COPY rows TO '{tmp}/stolen.csv'",
        "true; SELECT 1",
        "nosuchcolumn = 1",
        "",
    ],
)
def test_where_is_an_expression_without_external_access(
    diff_dir: Path, tmp_path: Path, where: str
) -> None:
    out = tmp_path / "plan.jsonl"
    text = where.format(diff=diff_dir, tmp=tmp_path)
    with pytest.raises(InputError) as caught:
        write_plan(diff_dir, out, where=text)
    assert "\n" not in str(caught.value)
    assert not out.exists()
    assert not (tmp_path / "stolen.csv").exists()
    assert temp_files(tmp_path) == []


def test_where_is_parsed_not_searched(diff_dir: Path, tmp_path: Path) -> None:
    """A ';' or '--' inside a string literal or a comment is part of one expression."""
    out = tmp_path / "plan.jsonl"
    summary = write_plan(diff_dir, out, where="attr_text(restored_item, 'tenant') <> 'a;b'")
    assert summary.operations == 3
    summary = write_plan(
        diff_dir, out, where="attr_text(restored_item, 'tenant') = 'a;b' -- x", overwrite=True
    )
    assert summary.operations == 0


def test_where_is_evaluated_once_per_row(tmp_path: Path) -> None:
    """``random() < 0.5``: the header's counts are the operations written, class by class."""
    restored = [item("k", n, v={"N": str(n)}) for n in range(300)]
    live = [item("k", n, v={"N": str(n + 1)}) for n in range(0, 300, 3)]
    diff = make_diff(tmp_path, live, restored)
    out = tmp_path / "plan.jsonl"
    for _ in range(3):
        summary = write_plan(
            diff, out, include="deleted,changed", where="random() < 0.5", overwrite=True
        )
        header, ops = plan_lines(out)[0], plan_lines(out)[1:-1]
        written = Counter(op["class"] for op in ops)
        assert header["counts"]["deleted"] == written["deleted"] == summary.counts["deleted"]
        assert header["counts"]["changed"] == written["changed"] == summary.counts["changed"]
        assert header["counts"]["operations"] == len(ops) == load_plan(out).operation_count
        assert 0 < len(ops) < 300


def test_where_failing_while_it_runs_names_the_expression(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    where = "CAST(attr_text(restored_item, 'tenant') AS INTEGER) > 0"
    with pytest.raises(InputError) as caught:
        write_plan(diff_dir, out, where=where)
    message = str(caught.value)
    assert message.startswith(f"invalid --where expression '{where}': Conversion Error"), message
    assert "cannot read diff" not in message and "\n" not in message
    assert not out.exists()
    assert temp_files(tmp_path) == [] and own_spill_dirs() == []


def test_where_reading_rows_again_is_refused_naming_it(diff_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^invalid --where expression .*reads rows again"):
        write_plan(diff_dir, tmp_path / "p.jsonl", where="_key IN (SELECT _key FROM rows)")


# --------------------------------------------------------------------------- key lists


def test_keys_file_csv_and_json_lines(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    csv_keys = tmp_path / "keys.csv"
    csv_keys.write_text("pk,sk\nacme,2\nzeta,1.0\nacme,2\n")
    summary = write_plan(diff_dir, out, keys=csv_keys)
    assert op_keys(out) == [("deleted", "acme", "2"), ("deleted", "zeta", "1")]
    assert summary.selection["keys"] == {
        "source": str(csv_keys),
        "xxh3_128": file_checksum(csv_keys),
        "listed": 3,
        "distinct": 2,
        "unmatched": 0,
        "unmatched_sample": [],
    }
    plain = tmp_path / "keys.jsonl"
    plain.write_text('{"pk": "acme", "sk": 1}\n{"pk": {"S": "acme"}, "sk": {"N": "3"}}\n')
    write_plan(diff_dir, out, keys=plain, include="deleted,changed", overwrite=True)
    assert op_keys(out) == [("deleted", "acme", "1"), ("changed", "acme", "3")]
    bad = tmp_path / "bad.csv"
    bad.write_text("pk\nacme\n")
    with pytest.raises(InputError, match="must name the key attributes"):
        write_plan(diff_dir, tmp_path / "other.jsonl", keys=bad)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("excel.csv", "pk,sk\r\nacme,2\r\n"),  # Excel "CSV UTF-8"
        ("powershell.jsonl", '{"pk": "acme", "sk": 2}\n'),  # PowerShell 5 Out-File -Encoding utf8
    ],
)
def test_keys_file_with_a_byte_order_mark(
    diff_dir: Path, tmp_path: Path, name: str, text: str
) -> None:
    keys = tmp_path / name
    keys.write_bytes(b"\xef\xbb\xbf" + text.encode())
    summary = write_plan(diff_dir, tmp_path / "plan.jsonl", keys=keys)
    assert op_keys(tmp_path / "plan.jsonl") == [("deleted", "acme", "2")]
    assert summary.keys_unmatched == 0


def test_keys_that_match_nothing_are_counted_and_shown(diff_dir: Path, tmp_path: Path) -> None:
    """A leading space, a typo, and a key of another class (acme/3 is changed)."""
    keys = tmp_path / "keys.csv"
    keys.write_text("pk,sk\nacme,2\n acme,1\nnobody,1\nacme,3\n")
    out = tmp_path / "plan.jsonl"
    summary = write_plan(diff_dir, out, keys=keys, where="key.pk = 'zeta'")
    assert summary.operations == 0  # acme/2 is listed and in the diff: --where left it out
    sample = [canonical_key(" acme", 1), canonical_key("nobody", 1), canonical_key("acme", 3)]
    assert summary.keys_unmatched == 3
    assert list(summary.keys_unmatched_sample) == sample
    assert plan_lines(out)[0]["selection"]["keys"]["unmatched"] == 3
    assert summary.warnings[0].startswith("listed keys matching no deleted row of the diff")
    assert ": 3, e.g. " in summary.warnings[0]
    result = runner.invoke(
        load_commands(),
        ["plan", str(diff_dir), "--out", str(tmp_path / "cli.jsonl"), "--keys", str(keys)],
    )
    assert result.exit_code == EXIT_OK, result.output
    assert "warning: listed keys matching no deleted row" in result.stderr
    assert canonical_key("nobody", 1) in result.stderr


def test_exclude_keys_is_a_deny_list_recorded_in_the_header(diff_dir: Path, tmp_path: Path) -> None:
    deny = tmp_path / "erased.csv"
    deny.write_text("pk,sk\nacme,1\nacme,3\nnobody,9\n")
    out = tmp_path / "plan.jsonl"
    summary = write_plan(diff_dir, out, include="deleted,changed", exclude_keys=deny)
    assert op_keys(out) == [
        ("deleted", "acme", "2"),
        ("deleted", "zeta", "1"),
        ("changed", "zeta", "2"),
    ]
    assert summary.excluded == 2
    assert summary.counts == {"deleted": 2, "changed": 1, "put": 3, "delete": 0}
    assert plan_lines(out)[0]["selection"]["exclude_keys"] == {
        "source": str(deny),
        "xxh3_128": file_checksum(deny),
        "listed": 3,
        "distinct": 3,
        "removed": 2,
    }
    # only candidates count as removed: --where had already left acme/1 out
    summary = write_plan(diff_dir, out, exclude_keys=deny, where="key.pk = 'zeta'", overwrite=True)
    assert (summary.operations, summary.excluded) == (1, 0)
    # a deny list given from Python, with --keys naming a denied key
    summary = write_plan(
        diff_dir,
        out,
        keys=[{"pk": "acme", "sk": 1}, {"pk": "acme", "sk": 2}],
        exclude_keys=[{"pk": {"S": "acme"}, "sk": {"N": "1"}}],
        overwrite=True,
    )
    assert op_keys(out) == [("deleted", "acme", "2")]
    assert summary.excluded == 1
    assert summary.selection["exclude_keys"]["source"] == "(keys given in Python)"
    result = runner.invoke(
        load_commands(),
        ["plan", str(diff_dir), "--out", str(tmp_path / "cli.jsonl"), "--exclude-keys", str(deny)],
    )
    assert result.exit_code == EXIT_OK, result.output
    assert "removed 1 operations" in result.stdout


# --------------------------------------------------------------------------- --out


def _refusal_case(case: str, tmp_path: Path, diff_dir: Path) -> tuple[Path, list[Path], str]:
    """(--out, files that must stay byte-identical, words of the refusal)."""
    plan = tmp_path / "old-plan.jsonl"
    if case == "the diff's manifest":
        return diff_dir / "manifest.json", [diff_dir / "manifest.json"], "inside the diff dataset"
    if case == "a new file inside the diff":
        return diff_dir / "plan.jsonl", [], "inside the diff dataset"
    if case == "an export's part":
        part = next((diff_dir.parent / "live" / "data").glob("*.parquet"))
        return part, [part], "inside the export dataset"
    if case == "inside a native export's copy":
        native = tmp_path / "AWSDynamoDB" / "01234-abcd"
        (native / "data").mkdir(parents=True)
        (native / "manifest-summary.json").write_text('{"version": "2020-06-30"}')
        return native / "data" / "plan.jsonl", [], "inside the native DynamoDB export dataset"
    if case == "a file that is not a plan":
        notes = tmp_path / "notes.txt"
        notes.write_text("my notes\n")
        return notes, [notes], "is not a pitrdiff plan"
    if case == "a directory":
        (tmp_path / "folder").mkdir()
        return tmp_path / "folder", [], "is a directory"
    write_plan(diff_dir, plan)
    if case == "a plan without --overwrite":
        return plan, [plan], "pass --overwrite"
    journal = Path(f"{plan}.journal")
    journal.write_text('{"kind":"journal"}\n')
    return plan, [plan, journal], "was applied"


OUT_REFUSALS = [
    "the diff's manifest",
    "a new file inside the diff",
    "an export's part",
    "inside a native export's copy",
    "a file that is not a plan",
    "a directory",
    "a plan without --overwrite",
    "an applied plan, even with --overwrite",
]


@pytest.mark.parametrize("case", OUT_REFUSALS)
def test_out_never_overwrites_silently(diff_dir: Path, tmp_path: Path, case: str) -> None:
    out, kept, words = _refusal_case(case, tmp_path, diff_dir)
    before = {p: p.read_bytes() for p in kept}
    existed = out.exists()
    with pytest.raises(RefusedError) as caught:
        write_plan(diff_dir, out, overwrite=case.startswith("an applied plan"))
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert {p: p.read_bytes() for p in kept} == before
    assert out.exists() == existed
    result = runner.invoke(load_commands(), ["plan", str(diff_dir), "--out", str(out)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.count("error:") == 1 and result.stdout == ""


def test_overwrite_replaces_a_plan(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    write_plan(diff_dir, out)
    summary = write_plan(diff_dir, out, include="added", overwrite=True)
    assert op_keys(out) == [("added", "acme", "9")]
    assert load_plan(out).checksum == summary.checksum


# --------------------------------------------------------------------------- interruptions


def test_interrupted_plan_leaves_nothing_behind(
    diff_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pitrdiff.recovery import plan as plan_module

    real = plan_module._op_line
    calls: list[int] = []

    def interrupt_second(*args: Any) -> bytes:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(plan_module, "_op_line", interrupt_second)
    out = tmp_path / "plan.jsonl"
    with pytest.raises(KeyboardInterrupt):
        write_plan(diff_dir, out)
    assert not out.exists()
    assert temp_files(tmp_path) == [] and own_spill_dirs() == []


def test_interrupt_while_duckdb_reads_the_diff_is_an_interrupt(
    diff_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raised in the Arrow stream DuckDB pulls from, it comes out as KeyboardInterrupt.

    (Through the stream it would surface as an OSError: a disk error, exit 3.)
    """
    from pitrdiff.recovery.keys import KeyList

    def interrupt(self: KeyList, column: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(KeyList, "contains", interrupt)
    out = tmp_path / "plan.jsonl"
    with pytest.raises(KeyboardInterrupt):
        write_plan(diff_dir, out, keys=[{"pk": "acme", "sk": 1}])
    assert not out.exists()
    assert temp_files(tmp_path) == [] and own_spill_dirs() == []


SLOW_PLAN = textwrap.dedent(
    """
    import sys, time
    from pitrdiff.recovery import plan
    real = plan._op_line
    def slow(*args):
        time.sleep(0.5)
        return real(*args)
    plan._op_line = slow
    from pitrdiff.cli import main
    main(sys.argv[1:])
    """
)


def _start_slow_plan(diff: Path, out: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_PLAN, "plan", str(diff), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not temp_files(out.parent):  # the body file exists once operations are written
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the plan never started writing"
        time.sleep(0.05)
    return child


def test_sigterm_removes_the_temp_files_and_exits_143(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    child = _start_slow_plan(diff_dir, out)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == EXIT_TERMINATED, stderr
    assert stderr.count("error:") == 1 and "Traceback" not in stderr
    assert not out.exists()
    assert temp_files(tmp_path) == []
    marker = f"-{child.pid}-"
    assert not [p for p in Path(tempfile.gettempdir()).glob("pitrdiff-plan-*") if marker in p.name]


def test_a_rerun_removes_what_kill_9_left(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    child = _start_slow_plan(diff_dir, out)
    child.kill()
    child.communicate(timeout=60)
    left = temp_files(tmp_path)
    assert left  # the body file of the killed run
    marker = f"-{child.pid}-"
    assert [p for p in Path(tempfile.gettempdir()).glob("pitrdiff-plan-*") if marker in p.name]
    write_plan(diff_dir, out)
    assert temp_files(tmp_path) == []
    assert not [p for p in Path(tempfile.gettempdir()).glob("pitrdiff-plan-*") if marker in p.name]


# --------------------------------------------------------------------------- the command line


def test_quiet_prints_nothing_but_errors(diff_dir: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys.csv"
    keys.write_text("pk,sk\nnobody,1\n")  # a warning without --quiet
    args = ["plan", str(diff_dir), "--out", str(tmp_path / "p.jsonl"), "--keys", str(keys)]
    result = runner.invoke(load_commands(), [*args, "--quiet"])
    assert result.exit_code == EXIT_OK
    assert (result.stdout, result.stderr) == ("", "")
    loud = runner.invoke(load_commands(), [*args, "--overwrite"])
    assert "warning:" in loud.stderr and "Plan" in loud.stdout
    failed = runner.invoke(load_commands(), [*args, "--quiet"])  # exists: refused
    assert failed.exit_code == EXIT_BAD_INPUT
    assert failed.stdout == "" and failed.stderr.startswith("error:")


def test_cli_json_summary(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    result = runner.invoke(load_commands(), ["plan", str(diff_dir), "--out", str(out), "--json"])
    assert result.exit_code == EXIT_OK
    document = orjson.loads(result.stdout)
    assert document["operations"] == 3 and document["warnings"] == []
    assert document["checksum"] == load_plan(out).checksum


# --------------------------------------------------------------------------- checks before apply


def test_puts_that_ttl_would_delete_again_are_reported(tmp_path: Path) -> None:
    now = int(time.time())
    restored = [
        item("s", 1, expires={"N": str(now + 3600)}),  # an hour away: TTL deletes it again
        item("s", 2, expires={"N": str(now + 10 * 86400)}),  # ten days away
        item("s", 3, expires={"S": str(now + 3600)}),  # not a Number: TTL ignores it
        item("s", 4),
    ]
    ttl = {"attribute": "expires", "status": "ENABLED", "source": "DescribeTimeToLive"}
    diff = make_diff(tmp_path, [], restored, live_ttl=ttl)
    summary = write_plan(diff, tmp_path / "plan.jsonl")
    assert summary.operations == 4
    assert summary.ttl_attribute == "expires"
    assert (summary.ttl_expiring, summary.ttl_expiring_sample) == (1, (canonical_key("s", 1),))
    assert "whose TTL (expires) is past or less than a day away" in summary.warnings[0]
    assert plan_lines(tmp_path / "plan.jsonl")[0]["checks"]["ttl"] == {
        "attribute": "expires",
        "expiring_within_a_day": 1,
        "sample": [canonical_key("s", 1)],
    }


def test_items_ttl_removed_stay_out_unless_included(tmp_path: Path) -> None:
    """Issue 13's Sessions case: TTL removed the session, a bug removed the order."""
    now = int(time.time())
    restored = [
        item("session", 1, expires={"N": str(now - 3 * 86400)}),
        item("order", 1, total={"N": "10"}),
    ]
    ttl = {"attribute": "expires", "status": "ENABLED", "source": "DescribeTimeToLive"}
    diff = make_diff(tmp_path, [], restored, live_ttl=ttl)
    out = tmp_path / "plan.jsonl"
    summary = write_plan(diff, out)
    assert op_keys(out) == [("deleted", "order", "1")]
    assert summary.available["expired"] == 1 and summary.warnings == ()
    summary = write_plan(diff, out, include="deleted,expired", overwrite=True)
    assert op_keys(out) == [("deleted", "order", "1"), ("expired", "session", "1")]
    assert summary.counts == {"deleted": 1, "expired": 1, "put": 2, "delete": 0}
    ops = list(load_plan(out).operations())
    assert (ops[1].op, ops[1].item_class, ops[1].expected) == ("put", "expired", None)
    # put back, it is past its TTL: TTL will delete it again
    assert (summary.ttl_expiring, summary.ttl_expiring_sample) == (
        1,
        (canonical_key("session", 1),),
    )
    result = runner.invoke(
        load_commands(),
        ["plan", str(diff), "--out", str(tmp_path / "cli.jsonl"), "--include", "expired"],
    )
    assert result.exit_code == EXIT_OK, result.output
    assert "put back items TTL removed" in result.stdout
    assert "warning: items put back whose TTL (expires)" in result.stderr


def test_operations_over_aws_limits_are_reported_before_apply(tmp_path: Path) -> None:
    too_big = item("big", 1, blob={"S": "w" * (401 * 1024)})
    diff = make_diff(tmp_path, [], [too_big, item("ok", 1)])
    summary = write_plan(diff, tmp_path / "plan.jsonl")
    assert summary.operations == 2 and summary.unrestorable == 1
    (first,) = summary.unrestorable_sample
    assert first["key"] == canonical_key("big", 1) and first["seq"] == 0
    assert "400 KB" in first["reason"]
    assert summary.warnings[0].startswith("operations no single safe request can do")
    assert plan_lines(tmp_path / "plan.jsonl")[0]["checks"]["unrestorable"]["operations"] == 1


# --------------------------------------------------------------------------- memory


PEAK = textwrap.dedent(
    """
    import sys, threading, psutil
    from pitrdiff.recovery.plan import write_plan
    # sampled, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
    process, peak, done = psutil.Process(), [0], threading.Event()
    def sample():
        while not done.wait(0.005):
            peak[0] = max(peak[0], process.memory_info().rss)
    sampler = threading.Thread(target=sample)
    sampler.start()
    summary = write_plan(sys.argv[1], sys.argv[2])
    done.set()
    sampler.join()
    print(summary.operations, peak[0] // 1024)
    """
)


def test_memory_limit_reaches_duckdb(diff_dir: Path, tmp_path: Path) -> None:
    """--memory-limit 64MB is DuckDB's memory_limit (61.0 MiB as DuckDB shows 64 MB)."""
    where = "current_setting('memory_limit') = '61.0 MiB'"
    summary = write_plan(diff_dir, tmp_path / "p.jsonl", where=where, memory_limit="64MB")
    assert summary.operations == 3
    result = runner.invoke(
        load_commands(),
        ["plan", str(diff_dir), "--out", str(tmp_path / "q.jsonl"), "--where", where,
         "--memory-limit", "64MB", "--json"],
    )  # fmt: skip
    assert result.exit_code == EXIT_OK and orjson.loads(result.stdout)["operations"] == 3


def test_batches_hold_about_8_mb_whatever_the_items_size(tmp_path: Path) -> None:
    """2,048 rows of small items; fewer of large ones (memory is a few batches)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pitrdiff.recovery.selection import batch_rows

    rows = {}
    for size in (100, 100_000):
        path = tmp_path / f"{size}.parquet"
        pq.write_table(
            pa.table({"restored_item": [f"{i:09d}" * (size // 9) for i in range(200)]}), path
        )
        rows[size] = batch_rows(pq.read_metadata(path))
    assert rows[100] == 2048
    assert 70 <= rows[100_000] <= 90  # 8 MiB / ~100 KB


def test_peak_memory_does_not_grow_with_the_plan(tmp_path: Path) -> None:
    """17,000 vs 68,000 deleted items of 1 KB (17 MB vs 68 MB): peak RSS within 25 MB.

    Both class files span several row groups: what a plan
    holds at a time is a few batches, whatever the plan's size. Before
    plans were streamed, the larger plan's peak was over 100 MB higher.
    """
    peaks = {}
    for n in (17_000, 68_000):
        work = tmp_path / str(n)
        work.mkdir()
        restored = ({"pk": {"S": f"i{i:06d}"}, "body": {"S": f"{i:06d}" * 170}} for i in range(n))
        for name, items in (("live", iter(())), ("restored", restored)):
            write_export(
                items, work / name, table_name="T", key_schema=KEY_SCHEMA[:1],
                attribute_definitions=ATTRIBUTES[:1],
            )  # fmt: skip
        diff_exports(work / "live", work / "restored", work / "diff")
        done = subprocess.run(
            [sys.executable, "-c", PEAK, str(work / "diff"), str(work / "plan.jsonl")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        operations, peak_kb = (int(v) for v in done.stdout.split())
        assert operations == n
        peaks[n] = peak_kb / 1024
    assert peaks[68_000] - peaks[17_000] < 25, peaks


# --------------------------------------------------------------------------- verification


def test_bad_inputs(diff_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown class"):
        write_plan(diff_dir, tmp_path / "p", include="deleted,removed")
    with pytest.raises(DiffError):
        write_plan(tmp_path, tmp_path / "p")
    with pytest.raises(InputError, match="invalid memory limit"):
        write_plan(diff_dir, tmp_path / "p", memory_limit="lots")
    assert not (tmp_path / "p").exists()


def _tamper(path: Path, how: str) -> None:
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    if how == "edited byte":
        at = data.index(b'"acme"') + 2
        path.write_bytes(data[:at] + b"X" + data[at + 1 :])
    elif how == "truncated mid-line":
        path.write_bytes(data[: len(data) - len(lines[-1]) - 10])
    elif how == "trailer removed":
        path.write_bytes(b"".join(lines[:-1]))
    elif how == "operation removed":
        path.write_bytes(b"".join(lines[:1] + lines[2:]))
    elif how == "trailer count edited":
        path.write_bytes(
            b"".join(lines[:-1]) + lines[-1].replace(b'"operations":3', b'"operations":2')
        )
    elif how == "line appended":
        path.write_bytes(data + lines[1])
    elif how == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize(
    "how",
    [
        "edited byte",
        "truncated mid-line",
        "trailer removed",
        "operation removed",
        "trailer count edited",
        "line appended",
        "empty",
    ],
)
def test_tampered_plan_is_refused_naming_the_line(diff_dir: Path, tmp_path: Path, how: str) -> None:
    out = tmp_path / "plan.jsonl"
    write_plan(diff_dir, out)
    load_plan(out)
    _tamper(out, how)
    with pytest.raises(PlanError) as caught:
        load_plan(out)
    message = str(caught.value)
    assert "\n" not in message
    assert "line" in message or "empty" in message


@pytest.mark.parametrize("dataset", ["live", "diff"])
def test_out_naming_a_dataset_directory_suggests_a_path_it_accepts(
    diff_dir: Path, tmp_path: Path, dataset: str
) -> None:
    """``plan --out EXPORT_DIR``: the suggestion is beside the dataset, and it is accepted."""
    target = diff_dir.parent / dataset
    kind = "export" if dataset == "live" else "diff"
    with pytest.raises(RefusedError) as caught:
        write_plan(diff_dir, target)
    suggested = target.with_name(f"{dataset}.plan.jsonl")
    assert str(caught.value) == (
        f"{target} is the {kind} dataset, a directory: give --out a file name outside it, "
        f"e.g. {suggested}"
    )
    result = runner.invoke(load_commands(), ["plan", str(diff_dir), "--out", str(target)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.count("error:") == 1 and result.stdout == ""
    try:
        assert write_plan(diff_dir, suggested).operations == 3
    finally:
        suggested.unlink(missing_ok=True)
    # An ordinary directory: its plan.jsonl is suggested, and accepted.
    (tmp_path / "plans").mkdir()
    with pytest.raises(RefusedError, match=f"e.g. {tmp_path / 'plans' / 'plan.jsonl'}$"):
        write_plan(diff_dir, tmp_path / "plans")
    assert write_plan(diff_dir, tmp_path / "plans" / "plan.jsonl").operations == 3


@pytest.mark.parametrize("limit", ["-1KB", "-5GB", "0MB", "lots"])
def test_negative_zero_or_garbage_memory_limit_is_refused(
    diff_dir: Path, tmp_path: Path, limit: str
) -> None:
    out = tmp_path / "plan.jsonl"
    with pytest.raises(InputError, match=f"invalid memory limit '{limit}': give a positive size"):
        write_plan(diff_dir, out, memory_limit=limit)
    assert not out.exists()
    args = ["plan", str(diff_dir), "--out", str(out), "--memory-limit", limit]
    result = runner.invoke(load_commands(), args)
    assert result.exit_code == EXIT_BAD_INPUT, result.stderr
    assert result.stderr.count("error:") == 1 and not out.exists()


@pytest.mark.parametrize("option", ["keys", "exclude_keys"])
def test_keys_file_missing_or_a_directory_is_bad_input(
    diff_dir: Path, tmp_path: Path, option: str
) -> None:
    """A path the user gave that does not exist, or is a directory: exit 2, not 3."""
    flag = "--" + option.replace("_", "-")
    out = tmp_path / "plan.jsonl"
    for path, words in (
        (tmp_path / "nosuch.csv", "does not exist: give the path of a CSV or JSON Lines file"),
        (tmp_path, "is a directory, not a keys file"),
    ):
        with pytest.raises(InputError) as caught:
            write_plan(diff_dir, out, **{option: path})
        assert str(caught.value) == f"{flag} {path} {words}"
        assert type(caught.value) is InputError and caught.value.exit_code == EXIT_BAD_INPUT
        result = runner.invoke(load_commands(), ["plan", str(diff_dir), "--out", str(out), flag,
                                                 str(path)])  # fmt: skip
        assert result.exit_code == EXIT_BAD_INPUT, result.stderr
        assert result.stderr.count("error:") == 1
        assert not out.exists()


def test_a_diff_whose_manifest_was_edited_is_refused(diff_dir: Path, tmp_path: Path) -> None:
    """Counts that disagree with one another, or with the class file's Parquet footer."""
    import shutil

    def edited(name: str, rows: int, *, everywhere: bool) -> Path:
        root = tmp_path / name
        shutil.copytree(diff_dir, root)
        manifest = orjson.loads((root / "manifest.json").read_bytes())
        manifest["files"]["deleted"]["rows"] = rows
        if everywhere:  # the manifest agrees with itself: only the footer tells
            manifest["counts"]["deleted"] = rows
            manifest["summary"]["counts"]["deleted"] = rows
        (root / "manifest.json").write_bytes(orjson.dumps(manifest))
        return root

    root = edited("one", 7, everywhere=False)
    with pytest.raises(DiffError, match=r"manifest.json does not match its class files \(edited"):
        write_plan(root, tmp_path / "one.jsonl")
    root = edited("all", 7, everywhere=True)
    with pytest.raises(DiffError) as refused:
        write_plan(root, tmp_path / "all.jsonl")
    assert str(refused.value) == (
        f"diff {root}: deleted.parquet does not match the manifest (edited): it holds 3 rows, "
        "the manifest says 7"
    )
    assert not (tmp_path / "one.jsonl").exists() and not (tmp_path / "all.jsonl").exists()

"""The diff engine, the diff dataset, the summary and ``pitrdiff diff``.

Each case in ``tests/data/diff_cases/*.json`` holds the live items, the restored
items and the expected classification and changes (its ``description`` says
what differs). Exports are built with ``pitrdiff.write_export``; no server is
needed (the diff reads files only).

Golden files in ``tests/golden/`` pin the terminal rendering and ``report.md``;
regenerate them with ``PITRDIFF_REGEN_GOLDEN=1 python3 -m pytest tests/test_diff.py``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

import pitrdiff
from pitrdiff import codec
from pitrdiff.cli.app import load_commands
from pitrdiff.cli.diff import summary_group
from pitrdiff.diff.changes import Change, diff_json
from pitrdiff.diff.core import CHANGE_TYPE, Diff, diff_exports, diff_schema, load_diff
from pitrdiff.errors import (
    EXIT_BAD_INPUT,
    EXIT_DIFFERENCES,
    EXIT_OK,
    DiffError,
    ExportError,
    IncompleteExportError,
    InputError,
    RefusedError,
    SchemaMismatchError,
)
from pitrdiff.export.dataset import load_export

CASES_DIR = Path(__file__).parent / "data" / "diff_cases"
GOLDEN_DIR = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in CASES_DIR.glob("*.json"))
runner = CliRunner()


def load_case(name: str) -> dict[str, Any]:
    return json.loads((CASES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def build(tmp: Path, case: dict[str, Any]) -> tuple[Path, Path]:
    """Write the case's live and restored exports under ``tmp``; return their paths."""
    live, restored = tmp / "live", tmp / "restored"
    common = {
        "key_schema": case["key_schema"],
        "attribute_definitions": case.get("attribute_definitions"),
    }
    pitrdiff.write_export(case["live"], live, table_name=case["table_name"], **common)
    pitrdiff.write_export(
        case["restored"],
        restored,
        table_name=case.get("restored_table_name", case["table_name"] + "-restored"),
        **common,
    )
    return live, restored


def key_names(case: dict[str, Any]) -> list[str]:
    return [k["AttributeName"] for k in case["key_schema"]]


def ckey(case: dict[str, Any], key: dict[str, Any]) -> str:
    return codec.canonical_key(key, key_names(case))


def golden(name: str, actual: str) -> None:
    path = GOLDEN_DIR / name
    if os.environ.get("PITRDIFF_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"golden file {path} missing: run with PITRDIFF_REGEN_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- every case


@pytest.mark.parametrize("name", CASES)
def test_case_classification_and_changes(tmp_path: Path, name: str) -> None:
    case = load_case(name)
    expected = case["expected"]
    live, restored = build(tmp_path, case)
    diff = diff_exports(live, restored, tmp_path / "diff")

    counts = diff.manifest.counts
    assert counts == {
        "deleted": len(expected["deleted"]),
        "changed": len(expected["changed"]),
        "added": len(expected["added"]),
        "expired": 0,
        "unchanged": expected["unchanged"],
    }
    assert diff.summary.same == (
        not (expected["deleted"] or expected["changed"] or expected["added"])
    )

    deleted = diff.arrow("deleted").to_pylist()
    assert [r["_key"] for r in deleted] == sorted(ckey(case, k) for k in expected["deleted"])
    added = diff.arrow("added").to_pylist()
    assert [r["_key"] for r in added] == sorted(ckey(case, k) for k in expected["added"])

    # Deleted rows carry the restored item, added rows the live item, exactly.
    restored_by_key = {codec.canonical_key(i, key_names(case)): i for i in case["restored"]}
    live_by_key = {codec.canonical_key(i, key_names(case)): i for i in case["live"]}
    for row in deleted:
        assert row["restored_item"] == codec.canonical_json(restored_by_key[row["_key"]])
        assert row["restored_hash"] == codec.content_hash(row["restored_item"])
        assert row["restored_size"] == codec.item_size(restored_by_key[row["_key"]])
    for row in added:
        assert row["live_item"] == codec.canonical_json(live_by_key[row["_key"]])
        assert row["live_hash"] == codec.content_hash(row["live_item"])

    changed = {r["_key"]: r for r in diff.arrow("changed").to_pylist()}
    assert sorted(changed) == sorted(ckey(case, c["key"]) for c in expected["changed"])
    for want in expected["changed"]:
        row = changed[ckey(case, want["key"])]
        got = [[c["path"], c["kind"], c["old"], c["new"]] for c in row["changes"]]
        assert got == want["changes"], want["key"]
        assert row["signature"] == want["signature"]
        assert row["live_item"] == codec.canonical_json(live_by_key[row["_key"]])
        assert row["restored_item"] == codec.canonical_json(restored_by_key[row["_key"]])
        assert row["live_hash"] != row["restored_hash"]


@pytest.mark.parametrize("name", CASES)
def test_case_dataset_layout_matches_format(tmp_path: Path, name: str) -> None:
    case = load_case(name)
    live, restored = build(tmp_path, case)
    out = tmp_path / "diff"
    diff = diff_exports(live, restored, out)
    key_schema = diff.key_schema
    for cls in ("deleted", "changed", "added", "expired"):
        path = out / f"{cls}.parquet"
        assert pq.read_schema(path).remove_metadata() == diff_schema(key_schema, cls)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "manifest.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "report.md").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "report.html").stat().st_mode) == 0o600
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["format"] == "pitrdiff-diff"
    assert manifest["complete"] is True
    assert set(manifest["files"]) == {"deleted", "changed", "added", "expired"}
    assert manifest["live"]["path"] == str(live)
    assert manifest["live"]["table_name"] == case["table_name"]
    assert manifest["restored"]["path"] == str(restored)
    classes = {"deleted", "changed", "added", "expired", "unchanged"}
    assert set(manifest["counts"]) == set(manifest["bytes"]) == classes
    assert "total_s" in manifest["timings"]
    assert manifest["summary"]["counts"] == manifest["counts"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_bytes_per_class_add_up(tmp_path: Path) -> None:
    case = load_case("every_class")
    live, restored = build(tmp_path, case)
    diff = diff_exports(live, restored, tmp_path / "diff")
    size = codec.item_size
    by_key = {ckey(case, {n: i[n] for n in key_names(case)}): i for i in case["restored"]}
    assert diff.manifest.bytes["deleted"] == size(by_key['{"pk":{"S":"t1"},"sk":{"N":"2"}}'])
    assert diff.manifest.bytes["added"] == size(case["live"][2])
    assert diff.manifest.bytes["changed"] == size(case["restored"][0])
    assert diff.manifest.bytes["unchanged"] == size(case["live"][1])


# --------------------------------------------------------------------------- the Diff object


def test_dataframes_decode_values(tmp_path: Path) -> None:
    case = load_case("every_type")
    live, restored = build(tmp_path, case)
    diff = load_diff(diff_exports(live, restored, tmp_path / "diff").path)

    deleted = diff.deleted()
    assert list(deleted["pk"]) == ["gone"]
    row = deleted.iloc[0]
    assert row["n"] == Decimal("-0.001")
    assert row["b"] == b""
    assert row["ns"] == {Decimal("12345678901234567890123456789012345678")}
    assert row["m"] == {"deep": {"er": [Decimal(1)]}}
    assert row["z"] is None
    assert row["restored_item"] == codec.canonical_json(case["restored"][3])
    assert list(deleted.columns[:1]) == ["pk"]

    changed = diff.changed()
    assert list(changed["pk"]) == ["a", "b", "c"]
    assert changed.iloc[0]["s"] == "x"  # the restored side by default
    assert diff.changed(side="live").iloc[0]["s"] == "y"
    assert changed.iloc[0]["changes"][0]["path"] == "b"
    assert changed.iloc[0]["signature"] == "b, bs, l[*], m.k, n, ns, s, ss, t"

    table = diff.added(arrow=True)
    assert table.schema == diff_schema(diff.key_schema, "added")
    assert table.column("_key").to_pylist() == ['{"pk":{"S":"new"}}']


def test_number_key_columns_are_decimals(tmp_path: Path) -> None:
    case = load_case("every_class")
    live, restored = build(tmp_path, case)
    diff = diff_exports(live, restored, tmp_path / "diff")
    frame = diff.changed(decode=False)
    assert list(frame["sk"]) == [Decimal(1)]
    assert "price" not in frame.columns
    assert list(frame.columns[:4]) == ["pk", "sk", "signature", "changes"]


def test_sql_views_and_macros(tmp_path: Path) -> None:
    case = load_case("incident")
    live, restored = build(tmp_path, case)
    diff = diff_exports(live, restored, tmp_path / "diff")
    frame = diff.sql(
        "SELECT attr_text(restored_item, 'tenant') AS tenant, count(*) AS n "
        "FROM deleted GROUP BY ALL"
    )
    assert frame.to_dict("records") == [{"tenant": "t2", "n": 2}]
    frame = diff.sql(
        "SELECT json_extract_string(restored_item, '$.price.N') AS old, "
        "attr_text(live_item, 'price') AS new, attr_type(live_item, 'items') AS t, "
        "attr_num(live_item, 'price') AS approx "
        "FROM changed WHERE _key = ?",
        ['{"order_id":{"S":"o5"},"tenant":{"S":"t1"}}'],
    )
    assert frame.to_dict("records") == [{"old": "15.5", "new": "155", "t": "L", "approx": 155.0}]
    frame = diff.sql(
        "SELECT c.path, count(*) AS n FROM changed, unnest(changes) AS u(c) "
        "GROUP BY ALL ORDER BY n DESC, 1"
    )
    assert frame.iloc[0].to_dict() == {"path": "price", "n": 5}
    assert diff.sql("SELECT count(*) AS n FROM live")["n"][0] == len(case["live"])
    assert diff.sql("SELECT count(*) AS n FROM restored")["n"][0] == len(case["restored"])


def test_sql_says_when_an_input_export_is_gone(tmp_path: Path) -> None:
    case = load_case("every_class")
    live, restored = build(tmp_path, case)
    diff = diff_exports(live, restored, tmp_path / "diff")
    live.rename(tmp_path / "moved")
    assert diff.sql("SELECT count(*) AS n FROM deleted")["n"][0] == 1
    with pytest.raises(DiffError, match="live export is no longer at the path"):
        diff.sql("SELECT count(*) FROM live")
    with pytest.raises(DiffError, match="SQL error"):
        diff.sql("SELECT nonsense FROM deleted")


def test_explain_accepts_key_forms(tmp_path: Path) -> None:
    case = load_case("every_class")
    live, restored = build(tmp_path, case)
    diff = diff_exports(live, restored, tmp_path / "diff")
    for key in (
        {"pk": "t1", "sk": 1},
        {"pk": {"S": "t1"}, "sk": {"N": "1.0"}},
        '{"sk":{"N":"1"},"pk":{"S":"t1"}}',
        {"pk": "t1", "sk": Decimal("1.00")},
    ):
        explained = diff.explain(key)
        assert explained.kind == "changed"
        assert [c.path for c in explained.changes] == ["price"]
    assert "price" in str(explained) and "modified" in str(explained)
    assert "<table>" in explained._repr_html_()
    assert "values_changed" in explained.deepdiff().to_dict()
    assert diff.explain({"pk": "t1", "sk": 2}).kind == "deleted"
    assert diff.explain({"pk": "t3", "sk": 4}).kind == "added"
    unchanged = diff.explain({"pk": "t2", "sk": 3})
    assert unchanged.kind == "unchanged"
    assert unchanged.live_item == codec.canonical_json(case["live"][1])
    assert diff.explain({"pk": "nobody", "sk": 9}).kind == "absent"
    with pytest.raises(InputError):
        diff.explain("t1")  # a pk+sk table needs both attributes


def test_explain_on_hash_only_table_takes_bare_value(tmp_path: Path) -> None:
    case = load_case("hash_only_binary")
    live, restored = build(tmp_path, case)
    diff = diff_exports(live, restored, tmp_path / "diff")
    assert diff.explain(b"\x01").kind == "changed"
    assert diff.explain(b"\x00").kind == "deleted"
    assert diff.summary.top_partitions[0].value in {"AA==", "AQ==", "/w=="}


def test_repr_html_and_repr(tmp_path: Path) -> None:
    case = load_case("incident")
    live, restored = build(tmp_path, case)
    diff = diff_exports(live, restored, tmp_path / "diff")
    assert "2 deleted, 6 changed, 1 added" in repr(diff)
    assert "<code>price</code>" in diff._repr_html_()


def test_summary_contents(tmp_path: Path) -> None:
    case = load_case("incident")
    live, restored = build(tmp_path, case)
    summary = diff_exports(live, restored, tmp_path / "diff").summary
    assert [(s.signature, s.items) for s in summary.top_signatures] == [
        ("price", 4),
        ("items[*].qty", 1),
        ("price, status", 1),
    ]
    assert summary.signature_sentence() == "6 items changed; 4 of them only in `price`."
    assert [(a.path, a.kind, a.items) for a in summary.top_attributes] == [
        ("price", "modified", 5),
        ("items[*].qty", "modified", 1),
        ("status", "modified", 1),
    ]
    assert [(p.value, p.deleted, p.changed, p.added) for p in summary.top_partitions] == [
        ("t1", 0, 5, 0),
        ("t2", 2, 0, 0),
        ("t3", 0, 1, 1),
    ]
    assert summary.samples["deleted"] == (
        '{"order_id":{"S":"o1"},"tenant":{"S":"t2"}}',
        '{"order_id":{"S":"o2"},"tenant":{"S":"t2"}}',
    )
    assert type(summary).from_dict(summary.to_dict()) == summary


# --------------------------------------------------------------------------- golden files


def _golden_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Diff:
    monkeypatch.chdir(tmp_path)
    case = load_case("incident")
    build(Path("."), case)
    return diff_exports("live", "restored", "diff")


def test_golden_terminal_rendering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    diff = _golden_diff(tmp_path, monkeypatch)
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None, force_terminal=False)
    console.print(summary_group(diff.summary))
    golden("diff_summary.txt", buffer.getvalue())


def test_golden_report_md(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    diff = _golden_diff(tmp_path, monkeypatch)
    golden("diff_report.md", (diff.path / "report.md").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- refusals and warnings


def test_refuses_a_path_that_is_not_an_export(tmp_path: Path) -> None:
    live, _ = build(tmp_path, load_case("every_class"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match=r"restored export: .* is not an export"):
        diff_exports(live, tmp_path / "empty", tmp_path / "diff")
    with pytest.raises(ExportError, match="not a directory"):
        diff_exports(tmp_path / "nowhere", live, tmp_path / "diff")
    assert not (tmp_path / "diff").exists()


def test_refuses_an_incomplete_export(tmp_path: Path) -> None:
    live, restored = build(tmp_path, load_case("every_class"))
    manifest = orjson.loads((restored / "manifest.json").read_bytes())
    manifest["complete"] = False
    (restored / "manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(IncompleteExportError, match="not complete"):
        diff_exports(live, restored, tmp_path / "diff")


def test_refuses_a_corrupt_part(tmp_path: Path) -> None:
    live, restored = build(tmp_path, load_case("every_class"))
    part = next((live / "data").iterdir())
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="checksum"):
        diff_exports(live, restored, tmp_path / "diff")


def test_refuses_different_key_schemas(tmp_path: Path) -> None:
    case = load_case("every_class")
    live, _ = build(tmp_path, case)
    other = tmp_path / "other"
    pitrdiff.write_export(
        [{"pk": {"S": "a"}}], other, table_name="Orders-restored", key_schema=case["key_schema"][:1]
    )
    with pytest.raises(SchemaMismatchError, match="different key schemas"):
        diff_exports(live, other, tmp_path / "diff")
    typed = tmp_path / "typed"
    pitrdiff.write_export(
        [{"pk": {"S": "a"}, "sk": {"S": "1"}}],
        typed,
        table_name="Orders-restored",
        key_schema=case["key_schema"],
    )
    with pytest.raises(SchemaMismatchError):
        diff_exports(live, typed, tmp_path / "diff")


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    case = load_case("every_class")
    live, restored = build(tmp_path, case)
    out = tmp_path / "diff"
    first = diff_exports(live, restored, out)
    with pytest.raises(RefusedError, match="--overwrite"):
        diff_exports(live, restored, out)
    again = diff_exports(restored, restored, out, overwrite=True)
    assert again.summary.same and not first.summary.same
    assert load_diff(out).summary.same
    # An export, or any non-empty directory that is not a diff, is never overwritten.
    with pytest.raises(RefusedError, match="not a diff"):
        diff_exports(live, restored, live, overwrite=True)
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    with pytest.raises(RefusedError, match="not empty"):
        diff_exports(live, restored, tmp_path / "stuff", overwrite=True)
    assert (tmp_path / "stuff" / "notes.txt").read_text() == "mine"


def test_an_interrupted_diff_is_replaced_without_overwrite(tmp_path: Path) -> None:
    live, restored = build(tmp_path, load_case("every_class"))
    out = tmp_path / "diff"
    diff_exports(live, restored, out)
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    manifest["complete"] = False
    (out / "manifest.json").write_bytes(orjson.dumps(manifest))
    (out / ".changed.parquet.abc.tmp").write_bytes(b"partial")
    diff = diff_exports(live, restored, out)
    assert diff.manifest.complete
    assert sorted(p.name for p in out.iterdir()) == [
        "added.parquet",
        "changed.parquet",
        "deleted.parquet",
        "expired.parquet",
        "manifest.json",
        "report.html",
        "report.md",
    ]


def test_load_diff_refuses_broken_datasets(tmp_path: Path) -> None:
    live, restored = build(tmp_path, load_case("every_class"))
    out = tmp_path / "diff"
    diff_exports(live, restored, out)
    with pytest.raises(DiffError, match="is an export"):
        load_diff(live)
    with pytest.raises(DiffError, match=r"no manifest\.json"):
        load_diff(tmp_path)
    data = bytearray((out / "changed.parquet").read_bytes())
    data[100] ^= 0xFF
    (out / "changed.parquet").write_bytes(bytes(data))
    with pytest.raises(DiffError, match=r"changed\.parquet does not match"):
        load_diff(out)
    load_diff(out, verify=False)
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    manifest["complete"] = False
    (out / "manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(DiffError, match="not complete"):
        load_diff(out)


def test_warns_when_names_look_unrelated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    case = dict(load_case("every_class"), restored_table_name="Invoices-restored")
    live, restored = build(tmp_path, case)
    with caplog.at_level(logging.WARNING, logger="pitrdiff"):
        diff = diff_exports(live, restored, tmp_path / "diff")
    assert any("do not look related" in r.getMessage() for r in caplog.records)
    assert diff.manifest.counts["deleted"] == 1  # a warning, not a refusal


def test_warns_when_restored_from_another_table_or_live_is_older(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    case = load_case("every_class")
    live = tmp_path / "live"
    restored = tmp_path / "restored"
    pitrdiff.write_export(
        case["live"],
        live,
        table_name="Orders",
        key_schema=case["key_schema"],
        source={"started_at": "2026-10-27T10:00:00Z"},
    )
    pitrdiff.write_export(
        case["restored"],
        restored,
        table_name="Orders-restored",
        key_schema=case["key_schema"],
        table={
            "restore": {
                "source_table_name": "Payments",
                "restore_date_time": "2026-10-27T12:00:00Z",
            }
        },
    )
    with caplog.at_level(logging.WARNING, logger="pitrdiff"):
        diff_exports(live, restored, tmp_path / "diff")
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "restored from 'Payments', not from the live table 'Orders'" in messages


def test_warns_when_live_export_predates_restore_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    case = load_case("every_class")
    live, restored = build(tmp_path, case)
    manifest = orjson.loads((restored / "manifest.json").read_bytes())
    manifest["table"]["restore"] = {
        "source_table_name": "Orders",
        "restore_date_time": "2999-01-01T00:00:00Z",
    }
    (restored / "manifest.json").write_bytes(orjson.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="pitrdiff"):
        diff_exports(live, restored, tmp_path / "diff")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "before the restore time" in messages[0]


def test_no_warning_for_a_table_and_its_restore(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live, restored = build(tmp_path, load_case("every_class"))
    with caplog.at_level(logging.WARNING, logger="pitrdiff"):
        diff_exports(live, restored, tmp_path / "diff", memory_limit="256MB", temp_dir=tmp_path)
    assert caplog.records == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("pitrdiff-")]


# --------------------------------------------------------------------------- write_diff_dataset


def test_write_diff_dataset_from_arrow_rows(tmp_path: Path) -> None:
    """Another producer (incremental exports) writes diffs through the same function."""
    key_schema = pitrdiff.KeySchema.from_boto(
        [{"AttributeName": "pk", "KeyType": "HASH"}],
        [{"AttributeName": "pk", "AttributeType": "S"}],
    )
    old = codec.canonical_json({"pk": {"S": "a"}, "v": {"N": "1"}})
    new = codec.canonical_json({"pk": {"S": "a"}, "v": {"N": "2"}})
    import pyarrow as pa

    changed = pa.table(
        {
            "_key": ['{"pk":{"S":"a"}}'],
            "pk": ["a"],
            "live_item": [new],
            "restored_item": [old],
            "live_hash": pa.array([codec.content_hash(new)], pa.uint64()),
            "restored_hash": pa.array([codec.content_hash(old)], pa.uint64()),
            "live_size": [codec.item_size(orjson.loads(new))],
            "restored_size": [codec.item_size(orjson.loads(old))],
        }
    )
    diff = pitrdiff.write_diff_dataset(
        tmp_path / "diff",
        key_schema=key_schema,
        table_name="T",
        deleted=None,
        changed=changed,
        added=diff_schema(key_schema, "added").empty_table(),
        unchanged_count=7,
        inputs={"live": {"url": "s3://b/p", "table_name": "T"}, "restored": {"table_name": "T"}},
    )
    loaded = load_diff(diff.path)
    assert loaded.manifest.counts == {
        "deleted": 0, "changed": 1, "added": 0, "expired": 0, "unchanged": 7,
    }  # fmt: skip
    row = loaded.arrow("changed").to_pylist()[0]
    assert row["key"] == {"pk": "a"}  # derived from _key; the top-level "pk" is dropped
    assert row["signature"] == "v"
    assert row["changes"] == [
        {"path": "v", "kind": "modified", "old": '{"N":"1"}', "new": '{"N":"2"}'}
    ]
    assert loaded.arrow("changed").schema.field("changes").type == CHANGE_TYPE
    assert loaded.manifest.live == {"url": "s3://b/p", "table_name": "T"}
    with pytest.raises(InputError, match="lack the column 'live_item'"):
        pitrdiff.write_diff_dataset(
            tmp_path / "bad",
            key_schema=key_schema,
            table_name="T",
            deleted=None,
            changed=changed.drop_columns(["live_item"]),
            added=None,
            unchanged_count=0,
            inputs={},
        )


# --------------------------------------------------------------------------- command line


def invoke(*args: str) -> Any:
    return runner.invoke(load_commands(), ["diff", *args])


def stderr_of(result: Any) -> str:
    """stderr with the terminal's line wrapping undone."""
    return " ".join(result.stderr.split())


def test_cli_exit_codes(tmp_path: Path) -> None:
    live, restored = build(tmp_path / "a", load_case("every_class"))
    result = invoke(str(live), str(restored), "--out", str(tmp_path / "d1"))
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    assert "1 deleted, 1 changed, 1 added, 1 unchanged" in result.stdout

    same_live, same_restored = build(tmp_path / "b", load_case("equivalent_spellings"))
    result = invoke(str(same_live), str(same_restored), "--out", str(tmp_path / "d2"))
    assert result.exit_code == EXIT_OK, result.output

    result = invoke(str(live), str(tmp_path), "--out", str(tmp_path / "d3"))
    assert result.exit_code == EXIT_BAD_INPUT
    assert "is not an export" in stderr_of(result)

    result = invoke(str(live), str(restored), "--out", str(tmp_path / "d1"))
    assert result.exit_code == EXIT_BAD_INPUT
    assert "--overwrite" in stderr_of(result)
    result = invoke(str(live), str(restored), "--out", str(tmp_path / "d1"), "--overwrite")
    assert result.exit_code == EXIT_DIFFERENCES


def test_cli_json_is_one_document(tmp_path: Path) -> None:
    live, restored = build(tmp_path, load_case("incident"))
    result = invoke(
        str(live),
        str(restored),
        "--out",
        str(tmp_path / "d"),
        "--json",
        "--memory-limit",
        "256MB",
        "--temp-dir",
        str(tmp_path),
    )
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    document = json.loads(result.stdout)
    assert document["same"] is False
    assert document["summary"]["counts"] == {
        "deleted": 2, "changed": 6, "added": 1, "expired": 0, "unchanged": 0,
    }  # fmt: skip
    assert document["summary"]["top_signatures"][0] == {"signature": "price", "items": 4}
    assert document["report"].endswith("report.md")


def test_cli_bad_memory_limit_is_bad_input(tmp_path: Path) -> None:
    live, restored = build(tmp_path, load_case("every_class"))
    result = invoke(
        str(live), str(restored), "--out", str(tmp_path / "d"), "--memory-limit", "lots"
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert "memory-limit" in stderr_of(result)


def test_report_md_escapes_names_and_values() -> None:
    from pitrdiff.diff.report import DiffSummary, PartitionCount, SignatureCount, render_markdown

    summary = DiffSummary(
        "T|x_y",
        "T",
        "T-r",
        "p|k",
        deleted=1,
        changed=2,
        added=0,
        unchanged=0,
        top_signatures=(SignatureCount('"a|b", x`y', 2),),
        top_partitions=(PartitionCount("v|`1", 1, 2, 0),),
        samples={"deleted": ('{"p|k":{"S":"v|``1"}}',)},
    )
    text = render_markdown(summary, live="exports/live")
    assert "# pitrdiff report: T\\|x\\_y" in text
    assert "- live: `T` (`exports/live`)" in text
    assert 'all of them in exactly `` "a|b", x`y ``.' in text
    assert '| 2 | `` "a\\|b", x`y `` |' in text
    assert "| `` v\\|`1 `` | 3 | 1 | 2 | 0 |" in text
    assert "## Most affected `p|k` values" in text
    assert '- deleted: ``` {"p|k":{"S":"v|``1"}} ```' in text


# --------------------------------------------------------------------------- property


_values = st.one_of(
    st.builds(lambda n: {"N": n}, st.sampled_from(["1", "1.0", "1.50", "15E-1", "2", "-0", "0"])),
    st.builds(lambda s: {"S": s}, st.sampled_from(["a", "b", "é"])),
    st.builds(lambda s: {"SS": s}, st.lists(st.sampled_from(["x", "y"]), min_size=1, max_size=3)),
    st.builds(
        lambda v: {"L": v},
        st.lists(st.builds(lambda n: {"N": n}, st.sampled_from(["1", "2"])), max_size=2),
    ),
)
_bodies = st.dictionaries(st.sampled_from(["v", "w", "a.b"]), _values, max_size=2)
_keyed = st.dictionaries(
    st.tuples(st.sampled_from(["p", "q"]), st.sampled_from(["1", "2", "3.0"])), _bodies, max_size=5
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(live=_keyed, restored=_keyed)
def test_classification_matches_a_reference(
    tmp_path_factory: pytest.TempPathFactory,
    live: dict[tuple[str, str], dict[str, Any]],
    restored: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Any two small tables: classes as a plain Python comparison of canonical items says."""
    tmp = tmp_path_factory.mktemp("prop")
    schema = [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    defs = [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
    ]

    def items(table: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"pk": {"S": pk}, "sk": {"N": sk}, **body} for (pk, sk), body in table.items()]

    pitrdiff.write_export(
        items(live), tmp / "l", table_name="T", key_schema=schema, attribute_definitions=defs
    )
    pitrdiff.write_export(
        items(restored), tmp / "r", table_name="T-r", key_schema=schema, attribute_definitions=defs
    )
    diff = diff_exports(tmp / "l", tmp / "r", tmp / "d")

    names = ["pk", "sk"]
    live_c = {codec.canonical_key(i, names): codec.canonical_json(i) for i in items(live)}
    rest_c = {codec.canonical_key(i, names): codec.canonical_json(i) for i in items(restored)}
    assert [r["_key"] for r in diff.arrow("deleted").to_pylist()] == sorted(
        rest_c.keys() - live_c.keys()
    )
    assert [r["_key"] for r in diff.arrow("added").to_pylist()] == sorted(
        live_c.keys() - rest_c.keys()
    )
    changed = sorted(k for k in live_c.keys() & rest_c.keys() if live_c[k] != rest_c[k])
    rows = diff.arrow("changed").to_pylist()
    assert [r["_key"] for r in rows] == changed
    for row in rows:
        want, signature = diff_json(rest_c[row["_key"]], live_c[row["_key"]])
        assert [Change(**c) for c in row["changes"]] == want and want
        assert row["signature"] == signature
    unchanged = len(live_c.keys() & rest_c.keys()) - len(changed)
    assert diff.manifest.counts["unchanged"] == unchanged


def test_refuses_an_export_holding_a_key_twice(tmp_path: Path) -> None:
    case = load_case("every_class")
    _, restored = build(tmp_path, case)
    # A corrupt export (write_export does not deduplicate): t1/1 twice, differently.
    twice = tmp_path / "twice"
    pitrdiff.write_export(
        [*case["live"], {"pk": {"S": "t1"}, "sk": {"N": "1"}, "price": {"N": "99"}}],
        twice,
        table_name="Orders",
        key_schema=case["key_schema"],
        attribute_definitions=case["attribute_definitions"],
    )
    with pytest.raises(ExportError, match=r"^live export .* holds the key .* more than once"):
        diff_exports(twice, restored, tmp_path / "diff")
    # The same corruption on the other side names the restored export.
    with pytest.raises(ExportError, match=r"^restored export .* holds the key .* more than once"):
        diff_exports(restored, twice, tmp_path / "diff2")


# --------------------------------------------------------------------------- TTL and T


def _ttl_case(tmp_path: Path, at: int | None = None) -> tuple[Path, Path, int]:
    """Issue 13's case: table Sessions (pk S), TTL enabled on ``expires`` in live.

    Restored (the state at T) holds, live holds none of them:
    - ``session#1``: expired 3 days before the live export: **expired** (TTL removed it);
    - ``order#1``: no TTL attribute: **deleted** (a bug removed it);
    - ``session#2``: ``expires`` is a String: never expires: deleted;
    - ``session#3``: expired more than five years ago: TTL ignores it: deleted;
    - ``session#4``: expires tomorrow: deleted (not expired yet).
    Both hold ``cart#1``: live ``v`` 2 and expired an hour ago (TTL lags), restored ``v`` 1:
    changed, flagged as past its TTL. ``at`` pins the live export's time (epoch seconds).
    """
    import time

    now = int(time.time()) if at is None else at
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]

    def item(pk: str, **attrs: Any) -> dict[str, Any]:
        return {"pk": {"S": pk}, **attrs}

    restored_items = [
        item("session#1", expires={"N": str(now - 3 * 86400)}),
        item("order#1", total={"N": "10"}),
        item("session#2", expires={"S": str(now - 86400)}),
        item("session#3", expires={"N": str(now - 6 * 366 * 86400)}),
        item("session#4", expires={"N": str(now + 86400)}),
        item("cart#1", v={"N": "1"}, expires={"N": str(now + 7 * 86400)}),
    ]
    live_items = [item("cart#1", v={"N": "2"}, expires={"N": str(now - 3600)})]
    live, restored = tmp_path / "live", tmp_path / "restored"
    pitrdiff.write_export(
        live_items,
        live,
        table_name="Sessions",
        key_schema=schema,
        ttl={"attribute": "expires", "status": "ENABLED"},
    )
    pitrdiff.write_export(
        restored_items,
        restored,
        table_name="Sessions-restored",
        key_schema=schema,
        table={
            "restore": {
                "source_table_name": "Sessions",
                "restore_date_time": "2026-11-27T10:00:00Z",
            }
        },
        ttl={"attribute": None, "status": "DISABLED"},  # a restore does not carry TTL
    )
    if at is not None:
        doc = orjson.loads((live / "manifest.json").read_bytes())
        doc["source"]["started_at"] = "2026-11-30T12:00:00.000Z"
        assert at == 1796040000  # that moment
        (live / "manifest.json").write_bytes(orjson.dumps(doc))
    return live, restored, now


def test_ttl_expired_items_are_their_own_class(tmp_path: Path) -> None:
    live, restored, _ = _ttl_case(tmp_path)
    diff = diff_exports(live, restored, tmp_path / "diff")
    assert diff.manifest.counts == {
        "deleted": 4, "changed": 1, "added": 0, "expired": 1, "unchanged": 0,
    }  # fmt: skip
    assert [r["key"]["pk"] for r in diff.arrow("expired").to_pylist()] == ["session#1"]
    assert [r["key"]["pk"] for r in diff.arrow("deleted").to_pylist()] == [
        "order#1", "session#2", "session#3", "session#4",
    ]  # fmt: skip
    assert diff.arrow("expired").schema == diff.arrow("deleted").schema
    as_of = load_export(live).manifest.source["started_at"]
    summary = diff.summary
    assert (summary.expired, summary.facts.ttl_attribute, summary.facts.ttl_as_of) == (
        1, "expires", as_of,
    )  # fmt: skip
    assert summary.facts.changed_past_ttl == 1
    assert summary.facts.restore_time == "2026-11-27T10:00:00Z"
    assert summary.headline() == "4 deleted, 1 changed, 0 added, 0 unchanged, 1 expired"
    report = (diff.path / "report.md").read_text(encoding="utf-8")
    assert "- T (the restored table's restore time): 2026-11-27T10:00:00Z\n" in report
    assert (
        f"- 1 of the 5 deleted items had expired by TTL (`expires` before {as_of}): not lost.\n"
        in report
    )
    assert (
        "- 1 changed item is past its TTL in live and not yet deleted: TTL will remove it.\n"
        in (report)
    )
    assert "| expired | 1 |" in report
    # The notebook API, SQL and explain know the class.
    assert list(diff.expired()["pk"]) == ["session#1"]
    rows = diff.sql("SELECT key.pk AS pk, attr_num(restored_item, 'expires') > 0 AS n FROM expired")
    assert rows.to_dict("records") == [{"pk": "session#1", "n": True}]
    explained = diff.explain("session#1")
    assert explained.kind == "expired" and str(explained).startswith("expired: ")
    assert diff.explain("order#1").kind == "deleted"
    assert load_diff(diff.path).summary.to_dict() == summary.to_dict()


def test_ttl_attribute_given_when_the_exports_do_not_record_it(tmp_path: Path) -> None:
    live, restored, _ = _ttl_case(tmp_path)
    doc = orjson.loads((live / "manifest.json").read_bytes())
    doc["ttl"] = None
    (live / "manifest.json").write_bytes(orjson.dumps(doc))
    plain = diff_exports(live, restored, tmp_path / "plain")
    assert plain.manifest.counts["expired"] == 0 and plain.manifest.counts["deleted"] == 5
    assert plain.summary.facts.ttl_attribute is None
    assert "expired by TTL" not in (plain.path / "report.md").read_text(encoding="utf-8")
    given = diff_exports(live, restored, tmp_path / "given", ttl_attribute="expires")
    assert given.manifest.counts["expired"] == 1


def test_an_older_diff_format_is_refused_in_one_line(tmp_path: Path) -> None:
    live, restored = build(tmp_path, load_case("every_class"))
    diff = diff_exports(live, restored, tmp_path / "diff")
    doc = orjson.loads((diff.path / "manifest.json").read_bytes())
    doc["format_version"] = 1
    (diff.path / "manifest.json").write_bytes(orjson.dumps(doc))
    with pytest.raises(DiffError) as info:
        load_diff(diff.path)
    assert str(info.value) == (
        "this diff has format version 1, written by an older pitrdiff (this one reads 2); "
        "re-run `pitrdiff diff` to diff again"
    )
    with pytest.raises(RefusedError):
        diff_exports(live, restored, diff.path)
    assert diff_exports(live, restored, diff.path, overwrite=True).manifest.complete


# --------------------------------------------------------------------------- interrupts, leftovers


def _leftovers(*roots: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for root in roots
        for p in root.rglob("*")
        if "pitrdiff-" in p.name or p.name.endswith(".tmp")
    )


def test_an_interrupted_diff_leaves_nothing_half_written(tmp_path: Path) -> None:
    from tests.helpers import InterruptAfter

    live, restored = build(tmp_path, load_case("every_class"))
    out, temp = tmp_path / "diff", tmp_path / "tmp"
    temp.mkdir()
    with pytest.raises(KeyboardInterrupt):
        diff_exports(live, restored, out, temp_dir=temp, progress=InterruptAfter(1))
    assert _leftovers(out, temp) == []
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]  # complete: false
    assert not orjson.loads((out / "manifest.json").read_bytes())["complete"]
    # The interrupted diff is replaced without --overwrite.
    assert diff_exports(live, restored, out, temp_dir=temp).manifest.complete


def test_a_rerun_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    """kill -9 runs no cleanup: its temp files and spill folders are swept by the next run."""
    from pitrdiff import files

    live, restored = build(tmp_path, load_case("every_class"))
    out, temp = tmp_path / "diff", tmp_path / "tmp"
    diff_exports(live, restored, out)
    temp.mkdir()
    dead = f"{files._host_tag()}-999999999-x"  # a process that cannot exist
    (out / f".deleted.parquet.pitrdiff-tmp-{dead}").write_bytes(b"partial")
    (temp / f"pitrdiff-diff-{dead}" / f"pitrdiff-engine-{dead}").mkdir(parents=True)
    (temp / f"pitrdiff-diff-{dead}" / f"pitrdiff-engine-{dead}" / "spill.bin").write_bytes(b"x")
    (temp / f"pitrdiff-diff-{dead}" / f"pitrdiff-summary-{dead}").mkdir()
    diff_exports(live, restored, out, temp_dir=temp, overwrite=True)
    assert _leftovers(out, temp) == []


def test_duckdb_interrupts_and_limits_become_pitrdiff_errors() -> None:
    import duckdb

    from pitrdiff.diff.sql import duckdb_errors
    from pitrdiff.errors import Interrupted, StorageError

    with pytest.raises(Interrupted) as interrupted, duckdb_errors("the diff"):
        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")
    assert str(interrupted.value) == "interrupted; the diff was not finished"
    with pytest.raises(Interrupted), duckdb_errors("the diff"):
        raise RuntimeError("Query interrupted")
    with pytest.raises(InputError) as info, duckdb_errors("the diff"):
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to pin\nPossible ...")
    assert str(info.value) == (
        "the diff ran out of memory within DuckDB's limit (Out of Memory Error: failed to pin); "
        "raise --memory-limit"
    )
    with (
        pytest.raises(StorageError, match="could not use its files: IO Error: No space"),
        duckdb_errors("the diff"),
    ):
        raise duckdb.IOException("IO Error: No space left on device")


def test_declared_key_types_that_contradict_the_data_are_refused(tmp_path: Path) -> None:
    """Both manifests edited to declare ``sk`` a String while the items hold Numbers."""
    from pitrdiff.errors import CodecError

    live, restored = build(tmp_path, load_case("every_class"))
    for export in (live, restored):
        doc = orjson.loads((export / "manifest.json").read_bytes())
        for attribute in doc["key_schema"]:
            attribute["AttributeType"] = "S"
        (export / "manifest.json").write_bytes(orjson.dumps(doc))
    with pytest.raises(CodecError) as info:
        diff_exports(live, restored, tmp_path / "diff")
    assert str(info.value) == (
        'a differing item {"pk":{"S":"t1"},"sk":{"N":"2"}}: key attribute \'sk\' is N but the '
        "key schema declares S (declared types must match the data)"
    )


def test_golden_report_md_with_ttl_and_t(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    live, restored, _ = _ttl_case(Path("."), at=1796040000)
    diff = diff_exports(live.name, restored.name, "diff")
    golden("diff_report_ttl.md", (diff.path / "report.md").read_text(encoding="utf-8"))


def test_ttl_setting_recorded_by_a_scan_export_drives_the_expired_class(
    moto_server: Any, tmp_path: Path
) -> None:
    """Issue 13's case on moto's server: TTL enabled on the live table, none on the restore."""
    import time

    from pitrdiff.export.scan import export_table

    now = int(time.time())
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    moto_server.create_table("Sessions", schema)
    moto_server.create_table("Sessions-restored", schema)
    client = moto_server.client()
    client.update_time_to_live(
        TableName="Sessions",
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"},
    )
    moto_server.put_items(
        "Sessions-restored",
        [
            {"pk": {"S": "session#1"}, "expires": {"N": str(now - 3 * 86400)}},
            {"pk": {"S": "order#1"}, "total": {"N": "10"}},
        ],
    )
    export_table("Sessions", tmp_path / "live", segments=1, aws=moto_server.aws)
    export_table("Sessions-restored", tmp_path / "restored", segments=1, aws=moto_server.aws)
    assert load_export(tmp_path / "live").manifest.ttl == {
        "attribute": "expires", "status": "ENABLED", "source": "DescribeTimeToLive",
    }  # fmt: skip
    assert load_export(tmp_path / "restored").manifest.ttl_attribute is None
    diff = diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    assert [r["key"]["pk"] for r in diff.arrow("deleted").to_pylist()] == ["order#1"]
    assert [r["key"]["pk"] for r in diff.arrow("expired").to_pylist()] == ["session#1"]
    assert "1 of the 2 deleted items had expired by TTL (`expires` before " in (
        diff.path / "report.md"
    ).read_text(encoding="utf-8")


def test_diff_out_inside_a_dataset_is_refused(tmp_path: Path) -> None:
    """An export's ``data/``, an export, a diff: no diff is written inside any of them."""
    live, restored = build(tmp_path, load_case("every_class"))
    diff_exports(live, restored, tmp_path / "diff")
    for out, kind, dataset in (
        (live / "data" / "mydiff", "export", live),
        (restored / "newdiff", "export", restored),
        (tmp_path / "diff" / "again", "diff", tmp_path / "diff"),
    ):
        with pytest.raises(RefusedError) as caught:
            diff_exports(live, restored, out)
        assert str(caught.value) == (
            f"refusing to write a diff inside the {kind} dataset {dataset}: "
            "choose an --out outside it"
        )
        assert not out.exists()
    result = invoke(str(live), str(restored), "--out", str(live / "data" / "mydiff"))
    assert result.exit_code == EXIT_BAD_INPUT
    assert stderr_of(result).count("error:") == 1 and "inside the export dataset" in stderr_of(
        result
    )
    assert not (live / "data" / "mydiff").exists()


def test_diff_overwrite_never_deletes_files_pitrdiff_did_not_write(tmp_path: Path) -> None:
    live, restored = build(tmp_path, load_case("every_class"))
    out = tmp_path / "diff"
    diff_exports(live, restored, out)
    (out / "notes.txt").write_text("mine")
    (out / "plans").mkdir()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(RefusedError) as caught:
        diff_exports(restored, restored, out, overwrite=True)
    assert str(caught.value) == (
        f"{out} holds 2 file(s) pitrdiff did not write (notes.txt, plans/); --overwrite "
        "replaces only the diff itself and never deletes them: move them away or choose "
        "another --out"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    (out / "notes.txt").unlink()
    (out / "plans").rmdir()
    assert diff_exports(restored, restored, out, overwrite=True).summary.same


@pytest.mark.parametrize("limit", ["-5GB", "-1KB", "0GB", "0", "GB", "-1"])
def test_negative_zero_or_garbage_memory_limit_is_refused(tmp_path: Path, limit: str) -> None:
    """DuckDB reads a negative size as no limit at all: refused before any work."""
    live, restored = build(tmp_path, load_case("every_class"))
    with pytest.raises(InputError) as caught:
        diff_exports(live, restored, tmp_path / "d", memory_limit=limit)
    assert str(caught.value) == (
        f"invalid memory limit {limit!r}: give a positive size, e.g. --memory-limit 1GB "
        "(a negative or zero limit would remove the bound or stop every query)"
    )
    assert not (tmp_path / "d").exists()
    result = invoke(str(live), str(restored), "--out", str(tmp_path / "d"), "--memory-limit",
                    limit)  # fmt: skip
    assert result.exit_code == EXIT_BAD_INPUT, stderr_of(result)
    assert stderr_of(result).count("error:") == 1 and "invalid memory limit" in stderr_of(result)

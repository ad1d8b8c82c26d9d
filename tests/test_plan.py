"""Plans: selection, file format, verification, ``--where`` safety, ``--keys``.

The data (``LIVE`` / ``RESTORED``, key ``pk`` S + ``sk`` N) and its differences:

- deleted (in restored, not in live): ``acme/1``, ``acme/2``, ``zeta/1``
- changed: ``acme/3`` (qty 1 -> 5), ``zeta/2`` (tags)
- added: ``acme/9``
- unchanged: ``zeta/3``
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest

from pitrdiff import codec
from pitrdiff.diff.core import diff_exports
from pitrdiff.errors import DiffError, InputError, PlanError
from pitrdiff.export.dataset import write_export
from pitrdiff.recovery.plan import load_plan, write_plan

KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "N"},
]


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


def make_diff(tmp_path: Path, live: list[dict[str, Any]], restored: list[dict[str, Any]]) -> Path:
    """Exports from plain items (write_export), diffed by the real diff_exports."""
    for name, items in (("live", live), ("restored", restored)):
        write_export(
            items,
            tmp_path / name,
            table_name="Orders" if name == "live" else "Orders-restored",
            key_schema=KEY_SCHEMA,
            attribute_definitions=ATTRIBUTES,
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


@pytest.fixture
def diff_dir(tmp_path: Path) -> Path:
    return make_diff(tmp_path, LIVE, RESTORED)


def test_default_plan_restores_deleted_items_only(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    summary = write_plan(diff_dir, out)
    assert summary.operations == 3
    assert summary.counts == {"deleted": 3, "put": 3, "delete": 0}
    assert summary.table == "Orders"
    lines = plan_lines(out)
    header, ops, trailer = lines[0], lines[1:-1], lines[-1]
    assert header["kind"] == "header" and header["format"] == "pitrdiff-plan"
    assert header["table"] == "Orders"
    assert [k["AttributeName"] for k in header["key_schema"]] == ["pk", "sk"]
    assert header["counts"]["operations"] == 3
    assert header["selection"] == {"include": ["deleted"], "where": None}
    assert header["diff"]["counts"]["deleted"] == 3
    assert [op["seq"] for op in ops] == [0, 1, 2]
    assert all(op["op"] == "put" and op["expected"] is None for op in ops)
    # the restored item, canonical (1.50 -> 1.5)
    assert ops[0]["item"] == codec.loads(codec.canonical_json(RESTORED[0]))
    assert trailer == {"kind": "trailer", "operations": 3, "xxh3_128": summary.checksum}
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


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
    write_plan(diff_dir, out, include="changed", where="signature = 'tags'")
    assert op_keys(out) == [("changed", "zeta", "2")]
    write_plan(diff_dir, out, include="changed", where="len(changes) = 1 AND sk = '3'")
    assert op_keys(out) == [("changed", "acme", "3")]
    # the attr macros Diff.sql has work in --where too
    write_plan(diff_dir, out, where="attr_text(restored_item, 'tenant') = 'zeta'")
    assert op_keys(out) == [("deleted", "zeta", "1")]
    write_plan(diff_dir, out, include="changed", where="attr_type(live_item, 'tags') = 'SS'")
    assert op_keys(out) == [("changed", "zeta", "2")]


def test_plan_from_a_diff_object(diff_dir: Path, tmp_path: Path) -> None:
    from pitrdiff.diff.core import load_diff

    summary = write_plan(load_diff(diff_dir), tmp_path / "plan.jsonl", include=["added"])
    assert summary.counts == {"added": 1, "put": 0, "delete": 1}


def test_selection_of_nothing_is_an_empty_plan(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    summary = write_plan(diff_dir, out, where="pk = 'nobody'")
    assert summary.empty and summary.operations == 0
    assert load_plan(out).operation_count == 0


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
        "true -- comment",
        "nosuchcolumn = 1",
        "",
    ],
)
def test_where_is_an_expression_without_external_access(
    diff_dir: Path, tmp_path: Path, where: str
) -> None:
    out = tmp_path / "plan.jsonl"
    text = where.format(diff=diff_dir, tmp=tmp_path)
    if text == "true -- comment":
        # a trailing comment is harmless inside an expression: it still parses as one
        write_plan(diff_dir, out, where=text)
        return
    with pytest.raises(InputError) as caught:
        write_plan(diff_dir, out, where=text)
    assert "\n" not in str(caught.value)
    assert not out.exists()
    assert not (tmp_path / "stolen.csv").exists()


def test_keys_file_csv_and_json_lines(diff_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    csv_keys = tmp_path / "keys.csv"
    csv_keys.write_text("pk,sk\nacme,2\nzeta,1.0\nnobody,1\n")
    summary = write_plan(diff_dir, out, keys=csv_keys)
    assert op_keys(out) == [("deleted", "acme", "2"), ("deleted", "zeta", "1")]
    assert summary.selection["keys_listed"] == 3
    plain = tmp_path / "keys.jsonl"
    plain.write_text('{"pk": "acme", "sk": 1}\n{"pk": {"S": "acme"}, "sk": {"N": "3"}}\n')
    write_plan(diff_dir, out, keys=plain, include="deleted,changed")
    assert op_keys(out) == [("deleted", "acme", "1"), ("changed", "acme", "3")]
    bad = tmp_path / "bad.csv"
    bad.write_text("pk\nacme\n")
    with pytest.raises(InputError, match="must name the key attributes"):
        write_plan(diff_dir, out, keys=bad)


def test_bad_inputs(diff_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown class"):
        write_plan(diff_dir, tmp_path / "p", include="deleted,removed")
    with pytest.raises(DiffError):
        write_plan(tmp_path, tmp_path / "p")
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

"""Key attributes named like pitrdiff's own columns and SQL names, in any letter case.

DynamoDB allows any attribute name of 1 to 255 bytes as a key. pitrdiff's own
column names are fixed (``_key``, ``_item``, ``_hash``, ``_size``, ``key``;
diff: ``_key``, ``key``, ``live_item`` …; plan: ``class``) and the key values
live inside the ``key`` struct, so no key name can collide with them, in any
letter case (DuckDB's and Spark's identifiers ignore case).

Each table below is keyed by two of those names (partition, sort) and holds
four items: ``a`` deleted, ``b`` changed (``v`` 1 -> 2), ``c`` added, ``d``
unchanged. The local test runs every name in three letter cases through
``write_export``, ``diff_exports``, ``Diff.sql``, ``explain`` and ``write_plan``
with a ``--where`` on the key; the server test runs a few tables through a
scan export on moto, the diff, a plan of every class and ``apply``, and checks
that the live table ends equal to the restored one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from pitrdiff import codec
from pitrdiff.diff.core import diff_exports
from pitrdiff.errors import DiffError
from pitrdiff.export.dataset import load_export, write_export
from pitrdiff.export.scan import export_table
from pitrdiff.recovery.apply import apply_plan
from pitrdiff.recovery.plan import write_plan
from tests.helpers import Server

# Every column and SQL name pitrdiff itself uses (datasets, views, macros, plan lines).
OWN_NAMES = [
    "_key", "_item", "_hash", "_size", "key", "class", "cls", "signature", "changes",
    "live_item", "restored_item", "live_hash", "restored_hash", "live_size", "restored_size",
    "rows", "attr", "attr_type", "attr_text", "attr_num", "deleted", "changed", "added",
    "expired", "unchanged", "live", "restored", "classes", "live_sel", "restored_sel",
    "_keys", "path", "kind", "old", "new", "seq", "op", "item", "expected",
]  # fmt: skip


def cases(name: str) -> list[str]:
    """The name in three letter cases: as is, upper, and with the first letter swapped."""
    first = next((i for i, c in enumerate(name) if c.isalpha()), 0)
    swapped = name[:first] + name[first].swapcase() + name[first + 1 :]
    return list(dict.fromkeys([name, name.upper(), swapped]))


VARIANTS = [v for name in OWN_NAMES for v in cases(name)]
# Pairs (partition key, sort key): each variant once as partition key, the next one as sort key.
PAIRS = [(VARIANTS[i], VARIANTS[(i + 1) % len(VARIANTS)]) for i in range(0, len(VARIANTS), 2)]


def items(pk: str, sk: str, side: str) -> list[dict[str, Any]]:
    """The four items of a table keyed (pk S, sk N): a deleted, b changed, c added, d same."""

    def item(p: str, v: str) -> dict[str, Any]:
        # The items also carry attributes named like our columns (and like the keys).
        extra = {"class": {"S": "gold"}, "live_item": {"S": "x"}, "KEY": {"S": "k"}}
        return {
            **{n: x for n, x in extra.items() if n not in (pk, sk)},
            pk: {"S": p},
            sk: {"N": "7"},
            "v": {"N": v},
        }

    if side == "restored":
        return [item("a", "1"), item("b", "1"), item("d", "1")]
    return [item("b", "2"), item("c", "1"), item("d", "1")]


def key_schema(pk: str, sk: str) -> list[dict[str, str]]:
    return [{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}]


def sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def plan_ops(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return [(x["op"], x["class"], x["key"]) for x in lines if x["kind"] == "op"]


@pytest.mark.parametrize(("pk", "sk"), PAIRS, ids=[f"{p}+{s}" for p, s in PAIRS])
def test_own_names_as_keys_locally(tmp_path: Path, pk: str, sk: str) -> None:
    schema = key_schema(pk, sk)
    for side in ("live", "restored"):
        write_export(items(pk, sk, side), tmp_path / side, table_name="T", key_schema=schema)
    export = load_export(tmp_path / "restored")
    assert export.arrow().column_names == ["_key", "_item", "_hash", "_size", "key"]
    assert export.arrow().column("key").to_pylist()[0] == {pk: "a", sk: "7"}

    diff = diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    assert diff.manifest.counts == {
        "deleted": 1, "changed": 1, "added": 1, "expired": 0, "unchanged": 1,
    }  # fmt: skip
    frame = diff.deleted()
    assert list(frame[pk if pk not in frame.columns[2:] else f"{pk}_attr"]) == ["a"]

    # Diff.sql: the key struct by field name, and the macros on items and keys.
    rows = diff.sql(
        f"SELECT key.{sql_name(pk)} AS p, attr_text(_key, ?) AS s, class_ FROM "
        "(SELECT *, 'deleted' AS class_ FROM deleted UNION ALL BY NAME "
        "SELECT *, 'added' AS class_ FROM added) ORDER BY p",
        [sk],
    )
    assert rows.to_dict("records") == [
        {"p": "a", "s": "7", "class_": "deleted"},
        {"p": "c", "s": "7", "class_": "added"},
    ]
    changed = diff.sql("SELECT signature, attr_text(live_item, 'v') AS v FROM changed")
    assert changed.to_dict("records") == [{"signature": "v", "v": "2"}]

    # explain, in every key form.
    assert diff.explain({pk: "a", sk: 7}).kind == "deleted"
    explained = diff.explain({pk: {"S": "b"}, sk: {"N": "7"}})
    assert (explained.kind, explained.signature) == ("changed", "v")
    assert diff.explain(codec.canonical_key({pk: {"S": "c"}, sk: {"N": "7"}}, [pk, sk])).kind == (
        "added"
    )
    assert diff.explain({pk: "d", sk: 7}).kind == "unchanged"

    # A plan of every class, selected on the key struct.
    out = tmp_path / "plan.jsonl"
    write_plan(
        tmp_path / "diff",
        out,
        include="deleted,changed,added",
        where=f"key.{sql_name(pk)} IN ('a', 'b', 'c') AND class <> 'expired'",
    )
    assert plan_ops(out) == [
        ("put", "deleted", {pk: {"S": "a"}, sk: {"N": "7"}}),
        ("put", "changed", {pk: {"S": "b"}, sk: {"N": "7"}}),
        ("delete", "added", {pk: {"S": "c"}, sk: {"N": "7"}}),
    ]


def test_keys_differing_only_in_letter_case(tmp_path: Path) -> None:
    """Partition key ``pk``, sort key ``PK``: SQL cannot tell ``key.pk`` from ``key.PK``.

    The struct keeps both fields (DuckDB shows the second as ``PK_1``);
    ``attr_text(_key, 'PK')`` reads either exactly.
    """
    schema = key_schema("pk", "PK")
    live = [{"pk": {"S": "a"}, "PK": {"S": "z"}, "v": {"N": "1"}}]
    write_export(live, tmp_path / "live", table_name="T", key_schema=schema)
    write_export([], tmp_path / "restored", table_name="T", key_schema=schema)
    diff = diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    assert diff.arrow("added").column("key").to_pylist() == [{"pk": "a", "PK": "z"}]
    rows = diff.sql(
        "SELECT attr_text(_key, 'pk') AS lower, attr_text(_key, 'PK') AS upper FROM added"
    )
    assert rows.to_dict("records") == [{"lower": "a", "upper": "z"}]
    assert diff.explain({"pk": "a", "PK": "z"}).kind == "added"
    with pytest.raises(DiffError, match="SQL error"):
        diff.sql("SELECT key.nope FROM added")


SERVER_PAIRS = [
    ("class", "signature"),
    ("CLS", "Changes"),
    ("_KEY", "_Item"),
    ("live_item", "KEY"),
    ("Rows", "restored_item"),
]


@pytest.mark.parametrize(("pk", "sk"), SERVER_PAIRS, ids=[f"{p}+{s}" for p, s in SERVER_PAIRS])
def test_own_names_as_keys_through_export_plan_apply(
    moto_server: Server, tmp_path: Path, pk: str, sk: str
) -> None:
    live, restored = f"live-{pk}-{sk}".replace("_", "x"), f"rest-{pk}-{sk}".replace("_", "x")
    types = {pk: "S", sk: "N"}
    for table, side in ((live, "live"), (restored, "restored")):
        moto_server.create_table(table, key_schema(pk, sk), types)
        moto_server.put_items(table, items(pk, sk, side))
    aws = moto_server.aws
    export_table(live, tmp_path / "live", segments=2, aws=aws)
    export_table(restored, tmp_path / "restored", segments=2, aws=aws)
    diff = diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    assert (diff.summary.deleted, diff.summary.changed, diff.summary.added) == (1, 1, 1)
    assert diff.explain({pk: "b", sk: 7}).signature == "v"

    plan = tmp_path / "plan.jsonl"
    write_plan(tmp_path / "diff", plan, include="deleted,changed,added")
    report = apply_plan(plan, aws=aws)
    assert report.to_dict()["conflicts"] == 0
    export_table(live, tmp_path / "after", segments=1, aws=aws)
    after = diff_exports(tmp_path / "after", tmp_path / "restored", tmp_path / "diff-after")
    assert after.same and after.summary.unchanged == 3


def test_items_carrying_the_key_name_in_another_case(moto_server: Server, tmp_path: Path) -> None:
    """A table keyed ``pk`` whose items also carry ``PK`` (an ordinary attribute)."""
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    restored_items = [{"pk": {"S": f"p{i}"}, "PK": {"S": f"other{i}"}} for i in range(3)]
    live_items = [restored_items[0], {"pk": {"S": "p1"}, "PK": {"S": "edited"}}]
    for table, rows in (("pkLive", live_items), ("pkRestored", restored_items)):
        moto_server.create_table(table, schema)
        moto_server.put_items(table, rows)
    aws = moto_server.aws
    export_table("pkLive", tmp_path / "live", segments=1, aws=aws)
    export_table("pkRestored", tmp_path / "restored", segments=1, aws=aws)
    diff = diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    assert diff.manifest.counts["deleted"] == 1 and diff.manifest.counts["changed"] == 1
    assert diff.explain("p1").signature == "PK"
    frame = diff.changed()
    assert list(frame["pk"]) == ["p1"] and list(frame["PK"]) == ["other1"]
    assert diff.sql("SELECT key.pk AS k FROM deleted").to_dict("records") == [{"k": "p2"}]
    plan = tmp_path / "plan.jsonl"
    write_plan(tmp_path / "diff", plan, include="deleted,changed", where="key.pk <> 'zz'")
    assert [op[2] for op in plan_ops(plan)] == [{"pk": {"S": "p2"}}, {"pk": {"S": "p1"}}]
    apply_plan(plan, aws=aws)
    export_table("pkLive", tmp_path / "after", segments=1, aws=aws)
    assert diff_exports(tmp_path / "after", tmp_path / "restored", tmp_path / "d2").same


@pytest.mark.parametrize("partition_type", ["S", "N"])
def test_case_only_key_names_with_a_binary_sort_key(tmp_path: Path, partition_type: str) -> None:
    """``pk`` (S or N) and ``PK`` (B): the plan of every class and ``--where`` on ``key.PK_1``.

    DuckDB refuses a struct with fields ``pk`` and ``PK``; the rows view names the
    second ``PK_1``, as ``Diff.sql`` shows it.
    """
    schema = key_schema("pk", "PK")

    def item(i: int, x: int) -> dict[str, Any]:
        first = {"S": f"k{i}"} if partition_type == "S" else {"N": str(i)}
        return {"pk": first, "PK": {"B": bytes([i, 0, 255])}, "x": {"N": str(x)}}

    write_export([item(2, 100), item(3, 3), item(20, 20)], tmp_path / "live", table_name="T",
                 key_schema=schema)  # fmt: skip
    write_export([item(i, i) for i in range(4)], tmp_path / "restored", table_name="T",
                 key_schema=schema)  # fmt: skip
    diff = diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    assert (diff.summary.deleted, diff.summary.changed, diff.summary.added) == (2, 1, 1)
    assert diff.sql("SELECT key.PK_1 AS b FROM deleted ORDER BY b").to_dict("records") == [
        {"b": bytes([0, 0, 255])},
        {"b": bytes([1, 0, 255])},
    ]

    def key(i: int) -> dict[str, Any]:
        return codec.canonical_key(item(i, 0), ["pk", "PK"])

    write_plan(tmp_path / "diff", tmp_path / "all.jsonl", include="deleted,changed,added")
    assert [(op, cls, k) for op, cls, k in plan_ops(tmp_path / "all.jsonl")] == [
        ("put", "deleted", orjson.loads(key(0))),
        ("put", "deleted", orjson.loads(key(1))),
        ("put", "changed", orjson.loads(key(2))),
        ("delete", "added", orjson.loads(key(20))),
    ]
    write_plan(
        tmp_path / "diff",
        tmp_path / "where.jsonl",
        include="deleted,changed",
        where="key.PK_1 = '\\x01\\x00\\xFF'::BLOB OR class = 'changed'",
    )
    assert [k for _, _, k in plan_ops(tmp_path / "where.jsonl")] == [
        orjson.loads(key(1)),
        orjson.loads(key(2)),
    ]

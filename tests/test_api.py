"""The Python API the notebooks use, against sample_data/ and tiny hand-made exports.

sample_data/ holds the demo's story (``sample_data/expected.json`` says what it
contains): 3,000 seed orders restored at T; then every order of
TENANT#initech deleted (500), ``total`` x100 on 120 orders of acme and globex
(5 of them later updated legitimately), 60 legitimate status updates and 40
new orders. So the diff has 500 deleted, 175 changed, 40 added, 2,325 unchanged.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

import pitrdiff
from pitrdiff import codec
from pitrdiff.errors import DiffError
from pitrdiff.export.dataset import decoded_frame, read_manifest, write_manifest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
EXPECTED = json.loads((SAMPLE / "expected.json").read_text())
RAW_EXPORT_COLUMNS = ["_key", "_item", "_hash", "_size"]
ACME_3 = {"pk": "TENANT#acme", "sk": "ORDER#000003"}  # legitimately updated: status etc.
INITECH_1 = {"pk": "TENANT#initech", "sk": "ORDER#000001"}  # deleted by the cleanup


@pytest.fixture(scope="module")
def diff() -> pitrdiff.Diff:
    return pitrdiff.load_diff(SAMPLE / "diff")


@pytest.fixture(scope="module")
def live_frame() -> pd.DataFrame:
    return pitrdiff.load_export(SAMPLE / "live").to_pandas()


# --------------------------------------------------------------------------- sample data


def test_sample_data_is_intact_and_as_documented(diff: pitrdiff.Diff) -> None:
    for side in ("live", "restored"):
        pitrdiff.load_export(SAMPLE / side, verify=True)
    s = diff.summary
    assert (s.deleted, s.changed, s.added, s.unchanged) == (500, 175, 40, 2325)
    assert {x.signature: x.items for x in s.top_signatures} == EXPECTED["diff"]["signatures"]
    plan = pitrdiff.load_plan(SAMPLE / "plan.jsonl")
    assert plan.operation_count == EXPECTED["plan_operations"] == 620
    assert plan.counts["deleted"] == 500 and plan.counts["changed"] == 120


def test_sample_data_tells_the_demo_story() -> None:
    from pitrdiff import demo

    assert EXPECTED["cleaned_tenant"] == demo.CLEANED_TENANT
    assert EXPECTED["corrupted_tenants"] == list(demo.CORRUPTED_TENANTS)
    assert EXPECTED["corrupted_attribute"] == demo.CORRUPTED_ATTRIBUTE
    assert EXPECTED["repair_where"] == demo.REPAIR_WHERE
    # The restore was taken right after seeding: the restored export is the seed.
    seed = {codec.canonical_json(i) for i in demo.seed_items(SAMPLE / "seed_items.jsonl.gz")}
    restored = pitrdiff.load_export(SAMPLE / "restored").arrow(["_item"]).column(0).to_pylist()
    assert set(restored) == seed and len(restored) == len(seed) == 3000


def test_sample_data_is_small() -> None:
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 4 * 1024 * 1024


# --------------------------------------------------------------------------- exports


def test_export_frame_has_keys_then_decoded_attributes_then_raw(live_frame: pd.DataFrame) -> None:
    columns = list(live_frame.columns)
    assert columns[:2] == ["pk", "sk"]
    assert columns[-4:] == RAW_EXPORT_COLUMNS
    attributes = columns[2:-4]
    assert attributes == sorted(attributes)
    assert {"total", "line_items", "customer", "payment_token", "warehouse_ids"} <= set(attributes)
    assert len(live_frame) == 2540


def test_export_frame_decodes_every_type(live_frame: pd.DataFrame) -> None:
    row = live_frame.set_index(["pk", "sk"]).loc[("TENANT#acme", "ORDER#000003")]
    item = codec.loads(row["_item"])
    assert isinstance(row["total"], Decimal) and row["total"] == Decimal(item["total"]["N"])
    assert isinstance(row["payment_token"], bytes) and len(row["payment_token"]) == 16
    assert isinstance(row["warehouse_ids"], set)
    assert all(isinstance(v, Decimal) for v in row["warehouse_ids"])
    assert isinstance(row["customer"], dict) and isinstance(row["customer"]["vip"], bool)
    assert isinstance(row["line_items"], list)
    assert isinstance(row["line_items"][0]["unit_price"], Decimal)
    assert row["status"] == "SHIPPED"  # the legitimate update after T
    # Every non-key attribute of the item is a column holding exactly its decoded value.
    for name, typed in item.items():
        if name not in ("pk", "sk"):
            assert row[name] == codec.to_python(typed), name


def test_export_frame_absent_attributes_are_none(live_frame: pd.DataFrame) -> None:
    without_tags = live_frame[live_frame["_item"].map(lambda t: '"tags"' not in t)]
    assert len(without_tags) > 0
    assert without_tags["tags"].map(lambda v: v is None).all()
    with_sets = live_frame["attachments"].dropna()
    assert len(with_sets) > 0 and all(
        isinstance(s, set) and all(isinstance(b, bytes) for b in s) for s in with_sets
    )


def test_export_raw_frame_and_arrow_have_the_format_columns() -> None:
    export = pitrdiff.load_export(SAMPLE / "restored")
    raw = export.to_pandas(decode=False)
    table = export.arrow()
    assert isinstance(table, pa.Table)
    assert sorted(raw.columns) == sorted(table.column_names) == sorted([*RAW_EXPORT_COLUMNS, "key"])
    assert len(raw) == table.num_rows == 3000


def _write(tmp_path: Path, items: list[dict[str, Any]], schema: list[dict[str, str]]) -> Any:
    pitrdiff.write_export(items, tmp_path / "e", table_name="T", key_schema=schema)
    return pitrdiff.load_export(tmp_path / "e")


def test_number_and_binary_keys_come_out_as_decimal_and_bytes(tmp_path: Path) -> None:
    items = [
        codec.item_from_python({"id": b"\x00\x01", "n": Decimal("1.50"), "v": "a"}),
        codec.item_from_python({"id": b"\xff", "n": 10, "v": "b"}),
    ]
    export = _write(
        tmp_path,
        items,
        [{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
    )
    frame = export.to_pandas().sort_values("v")
    assert list(frame["id"]) == [b"\x00\x01", b"\xff"]
    assert list(frame["n"]) == [Decimal("1.5"), Decimal("10")]
    assert all(isinstance(v, Decimal) for v in frame["n"])
    assert list(frame["v"]) == ["a", "b"]


def test_attribute_named_like_a_raw_column_gets_a_suffix(tmp_path: Path) -> None:
    items = [codec.item_from_python({"pk": "a", "_hash": "mine", "_item": 7})]
    frame = _write(tmp_path, items, [{"AttributeName": "pk", "KeyType": "HASH"}]).to_pandas()
    assert frame["_hash_attr"].tolist() == ["mine"]
    assert frame["_item_attr"].tolist() == [Decimal(7)]
    assert frame["_hash"].tolist() == [codec.content_hash(codec.canonical_json(items[0]))]


def test_empty_export_frame_has_the_key_and_raw_columns(tmp_path: Path) -> None:
    export = _write(tmp_path, [], [{"AttributeName": "pk", "KeyType": "HASH"}])
    frame = export.to_pandas()
    assert frame.empty and list(frame.columns) == ["pk", *RAW_EXPORT_COLUMNS]


def test_decoded_frame_is_shared_by_exports_and_diffs(diff: pitrdiff.Diff) -> None:
    restored = pitrdiff.load_export(SAMPLE / "restored").to_pandas().set_index("_key")
    deleted = diff.deleted().set_index("_key")
    names = [c for c in deleted.columns if c not in ("restored_item", "restored_hash")]
    names = [c for c in names if c != "restored_size"]
    pd.testing.assert_frame_equal(
        deleted[names], restored.loc[deleted.index, names], check_dtype=False
    )


# --------------------------------------------------------------------------- diff tables


def test_diff_tables_layout(diff: pitrdiff.Diff) -> None:
    deleted, changed, added = diff.deleted(), diff.changed(), diff.added()
    assert (len(deleted), len(changed), len(added)) == (500, 175, 40)
    assert list(deleted.columns[:2]) == ["pk", "sk"]
    assert list(deleted.columns[-4:]) == ["_key", "restored_item", "restored_hash", "restored_size"]
    assert list(changed.columns[:4]) == ["pk", "sk", "signature", "changes"]
    assert list(added.columns[-4:]) == ["_key", "live_item", "live_hash", "live_size"]
    assert set(deleted["pk"]) == {EXPECTED["cleaned_tenant"]}
    assert added["sk"].str.startswith("ORDER#9").all()


def test_changed_sides_show_the_x100_bug_exactly(diff: pitrdiff.Diff) -> None:
    at_t = diff.changed().set_index("_key")
    live = diff.changed(side="live").set_index("_key")
    only_total = at_t.index[at_t["signature"] == "total"]
    assert len(only_total) == 120
    assert (live.loc[only_total, "total"] == at_t.loc[only_total, "total"] * 100).all()
    assert (live.loc[only_total, "updated_at"] == at_t.loc[only_total, "updated_at"]).all()
    change = at_t.loc[only_total[0], "changes"][0]
    assert change["path"] == "total" and change["kind"] == "modified"


def test_diff_tables_as_arrow(diff: pitrdiff.Diff) -> None:
    table = diff.changed(arrow=True)
    assert isinstance(table, pa.Table) and table.num_rows == 175
    assert "signature" in table.column_names and "status" not in table.column_names
    assert diff.deleted(decode=False).columns.tolist() == [
        "pk",
        "sk",
        "_key",
        "restored_item",
        "restored_hash",
        "restored_size",
    ]


def test_changed_side_must_be_live_or_restored(diff: pitrdiff.Diff) -> None:
    with pytest.raises(pitrdiff.PitrdiffError):
        diff.changed(side="both")


# --------------------------------------------------------------------------- SQL


def test_sql_views_and_attribute_macros(
    diff: pitrdiff.Diff, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # the diff records ``live`` relative to sample_data/
    counts = diff.sql(
        "SELECT (SELECT count(*) FROM deleted) AS deleted, (SELECT count(*) FROM changed) AS "
        "changed, (SELECT count(*) FROM added) AS added, (SELECT count(*) FROM live) AS live, "
        "(SELECT count(*) FROM restored) AS restored"
    )
    assert counts.iloc[0].tolist() == [500, 175, 40, 2540, 3000]
    row = diff.sql(
        "SELECT attr(restored_item, 'total') AS a, attr_type(restored_item, 'total') AS t, "
        "attr_text(restored_item, 'total') AS x, attr_num(restored_item, 'total') AS f, "
        "attr_text(restored_item, 'gift') AS g, attr_text(restored_item, 'customer') AS m, "
        "attr_text(restored_item, 'no_such') AS n FROM deleted WHERE key.sk = ?",
        [INITECH_1["sk"]],
    ).iloc[0]
    assert json.loads(row["a"]) == {"N": row["x"]} and row["t"] == "N"
    assert Decimal(row["x"]) == Decimal(str(row["f"]))
    assert row["g"] in ("true", "false")
    assert row["m"] is None and row["n"] is None


def test_sql_unnests_changes(diff: pitrdiff.Diff) -> None:
    paths = diff.sql(
        "SELECT c.path AS path, count(*) AS n FROM (SELECT unnest(changes) AS c FROM changed) "
        "GROUP BY ALL ORDER BY n DESC, path"
    )
    assert paths.values.tolist() == [
        ["total", 120],
        ["status", 55],
        ["updated_at", 55],
        ["version", 55],
    ]


def test_sql_views_follow_a_diff_moved_with_its_exports(tmp_path: Path) -> None:
    for name in ("diff", "live", "restored"):
        shutil.copytree(SAMPLE / name, tmp_path / name)
    moved = pitrdiff.load_diff(tmp_path / "diff")
    assert moved.sql("SELECT count(*) AS n FROM live")["n"][0] == 2540
    # A different export at the recorded place is not taken for the recorded one.
    manifest = read_manifest(tmp_path / "live")
    write_manifest(tmp_path / "live", manifest.__class__(**{**vars(manifest), "created_at": "x"}))
    with pytest.raises(DiffError, match="live"):
        moved.sql("SELECT count(*) FROM live")
    assert moved.sql("SELECT count(*) AS n FROM deleted")["n"][0] == 500


def test_sql_error_is_a_diff_error(diff: pitrdiff.Diff) -> None:
    with pytest.raises(DiffError, match="SQL error"):
        diff.sql("SELECT no_such_column FROM deleted")


def test_plan_where_has_the_same_macros(diff: pitrdiff.Diff, tmp_path: Path) -> None:
    where = "attr_text(restored_item, 'updated_at') >= '2026-10-20T00:00:00Z'"
    expected = diff.sql(f"SELECT count(*) AS n FROM deleted WHERE {where}")["n"][0]
    plan = pitrdiff.write_plan(diff, tmp_path / "plan.jsonl", where=where)
    assert plan.operations == expected == 175


# --------------------------------------------------------------------------- explain


def test_explain_changed_item_in_every_key_form(diff: pitrdiff.Diff) -> None:
    canonical = codec.canonical_key(codec.item_from_python(ACME_3), ("pk", "sk"))
    wire = codec.item_from_python(ACME_3)
    explanations = [diff.explain(k) for k in (ACME_3, canonical, wire)]
    assert explanations[0] == explanations[1] == explanations[2]
    e = explanations[0]
    assert e.kind == "changed" and e.signature == "status, updated_at, version"
    assert [c.path for c in e.changes] == ["status", "updated_at", "version"]
    html = e._repr_html_()
    assert "<table>" in html and "updated_at" in html and "&quot;" in html  # escaped JSON
    assert "status" in str(e)
    dd = e.deepdiff()
    assert set(dd["values_changed"]) == {"root['status']", "root['updated_at']", "root['version']"}


def test_explain_other_classes(diff: pitrdiff.Diff) -> None:
    assert diff.explain(INITECH_1).kind == "deleted"
    assert diff.explain(INITECH_1).restored_item is not None
    assert diff.explain({"pk": "TENANT#acme", "sk": "ORDER#900000"}).kind == "added"
    unchanged = diff.explain({"pk": "TENANT#acme", "sk": "ORDER#000001"})
    assert unchanged.kind == "unchanged" and unchanged.to_dict()["class"] == "unchanged"
    assert "<b>deleted</b>" in diff.explain(INITECH_1)._repr_html_()


def test_diff_renders_in_a_notebook(diff: pitrdiff.Diff) -> None:
    html = diff._repr_html_()
    assert "500" in html and "2,325" in html and "<code>total</code>" in html


# --------------------------------------------------------------------------- public surface


def test_public_names_resolve_and_are_documented() -> None:
    for name in pitrdiff.__all__:
        value = getattr(pitrdiff, name)
        assert value.__doc__, name
    for method in ("to_pandas", "arrow", "items", "verify"):
        assert getattr(pitrdiff.Export, method).__doc__, method
    for method in ("deleted", "changed", "added", "sql", "explain", "connect", "arrow"):
        assert getattr(pitrdiff.Diff, method).__doc__, method
    assert decoded_frame.__doc__
    assert "Explanation" in pitrdiff.__all__

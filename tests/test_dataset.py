"""The export dataset: write_export / load_export, verification, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from pitrdiff import codec
from pitrdiff.errors import (
    CodecError,
    ExportError,
    IncompleteExportError,
    InputError,
    RefusedError,
)
from pitrdiff.export.dataset import (
    MANIFEST_NAME,
    KeySchema,
    load_export,
    read_manifest,
    remove_unlisted_parts,
    write_export,
)

PK_SK = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]

# Ten items: every key distinct; item 3 spells a number non-canonically ("2.50"),
# which the dataset stores as "2.5".
ITEMS: list[dict[str, Any]] = [
    {"pk": {"S": f"p{i % 3}"}, "sk": {"N": str(i)}, "v": {"S": "x" * (i * 10)}} for i in range(10)
]
ITEMS[3]["price"] = {"N": "2.50"}


def write(out: Path, **kwargs: Any) -> Any:
    return write_export(ITEMS, out, table_name="Orders", key_schema=PK_SK, **kwargs)


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    manifest = write(tmp_path / "e", part_bytes=200)
    assert manifest.complete and manifest.items == 10 and len(manifest.files) > 1
    assert manifest.bytes == sum(codec.item_size(i) for i in ITEMS)
    export = load_export(tmp_path / "e", verify=True)
    assert export.table_name == "Orders"
    assert export.key_schema.names == ("pk", "sk")
    assert [a.attribute_type for a in export.key_schema.attributes] == ["S", "N"]
    assert sorted(codec.canonical_json(i) for i in export.items()) == sorted(
        codec.canonical_json(i) for i in ITEMS
    )
    rows = export.arrow().to_pylist()
    assert set(rows[0]) == {"_key", "_item", "_hash", "_size", "key"}
    (row,) = [r for r in rows if r["key"]["sk"] == "3"]
    assert row["key"] == {"pk": "p0", "sk": "3"}
    assert '"price":{"N":"2.5"}' in row["_item"]
    assert row["_key"] == '{"pk":{"S":"p0"},"sk":{"N":"3"}}'
    assert row["_hash"] == codec.content_hash(row["_item"])
    assert read_manifest(tmp_path / "e").to_dict() == manifest.to_dict()


def test_verify_catches_a_truncated_part(tmp_path: Path) -> None:
    manifest = write(tmp_path / "e", part_bytes=200)
    part = tmp_path / "e" / manifest.files[0].path
    part.write_bytes(part.read_bytes()[:-10])
    with pytest.raises(ExportError, match="truncated"):
        load_export(tmp_path / "e", verify=True)


def test_verify_catches_an_edited_part(tmp_path: Path) -> None:
    manifest = write(tmp_path / "e")
    part = tmp_path / "e" / manifest.files[0].path
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    part.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="checksum"):
        load_export(tmp_path / "e", verify=True)


def test_verify_catches_a_missing_part(tmp_path: Path) -> None:
    manifest = write(tmp_path / "e")
    (tmp_path / "e" / manifest.files[0].path).unlink()
    with pytest.raises(ExportError, match="missing"):
        load_export(tmp_path / "e", verify=True)


def test_incomplete_export_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "e")
    path = tmp_path / "e" / MANIFEST_NAME
    doc = orjson.loads(path.read_bytes())
    doc["complete"] = False
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(IncompleteExportError):
        load_export(tmp_path / "e")
    assert load_export(tmp_path / "e", require_complete=False).manifest.items == 10


def test_second_export_is_refused_unless_overwrite(tmp_path: Path) -> None:
    write(tmp_path / "e")
    with pytest.raises(RefusedError, match="--overwrite"):
        write(tmp_path / "e")
    manifest = write_export(
        ITEMS[:2], tmp_path / "e", table_name="Orders", key_schema=PK_SK, overwrite=True
    )
    assert manifest.items == 2
    assert load_export(tmp_path / "e", verify=True).manifest.items == 2


def test_a_directory_that_is_not_an_export_is_never_touched(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("precious")
    with pytest.raises(RefusedError, match="not an export"):
        write(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "keep.txt").read_text() == "precious"
    with pytest.raises(ExportError, match=r"no manifest\.json"):
        load_export(tmp_path / "mine")


def test_invalid_item_is_named_and_nothing_is_complete(tmp_path: Path) -> None:
    bad = [*ITEMS[:2], {"pk": {"S": "p"}, "sk": {"N": "1E-131"}}]
    with pytest.raises(CodecError, match="item 2"):
        write_export(bad, tmp_path / "e", table_name="Orders", key_schema=PK_SK)
    assert not read_manifest(tmp_path / "e").complete


def test_key_schema_checks() -> None:
    with pytest.raises(InputError, match="HASH"):
        KeySchema.from_boto([{"AttributeName": "sk", "KeyType": "RANGE"}])
    # Any name DynamoDB allows is a valid key name, pitrdiff's own column names too.
    assert KeySchema.from_boto([{"AttributeName": "_key", "KeyType": "HASH"}]).names == ("_key",)
    with pytest.raises(InputError, match="1 to 255 UTF-8 bytes"):
        KeySchema.from_boto([{"AttributeName": "é" * 128, "KeyType": "HASH"}])
    with pytest.raises(InputError, match="a key is S, N or B"):
        KeySchema.from_boto(
            [{"AttributeName": "pk", "KeyType": "HASH"}],
            [{"AttributeName": "pk", "AttributeType": "BOOL"}],
        )
    schema = KeySchema.from_boto(
        list(reversed(PK_SK)), [{"AttributeName": "sk", "AttributeType": "N"}]
    )
    assert schema.names == ("pk", "sk") and schema.to_boto() == PK_SK
    assert KeySchema.from_list(schema.to_list()) == schema


def test_remove_unlisted_parts(tmp_path: Path) -> None:
    manifest = write(tmp_path / "e", part_bytes=200)
    stray = tmp_path / "e" / "data" / "seg-0001-000007.parquet"
    stray.write_bytes(b"left by a crash")
    removed = remove_unlisted_parts(tmp_path / "e", [f.path for f in manifest.files])
    assert removed == ["data/seg-0001-000007.parquet"]
    load_export(tmp_path / "e", verify=True)


def test_files_are_owner_only(tmp_path: Path) -> None:
    manifest = write(tmp_path / "e")
    assert (tmp_path / "e" / MANIFEST_NAME).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "e" / manifest.files[0].path).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "e" / "data").stat().st_mode & 0o777 == 0o700


def test_declared_key_types_must_match_the_data(tmp_path: Path) -> None:
    """sk is declared S, item 0 holds a Number: one line naming key and types."""
    with pytest.raises(CodecError) as info:
        write_export(
            ITEMS,
            tmp_path / "e",
            table_name="Orders",
            key_schema=PK_SK,
            attribute_definitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
    assert str(info.value) == (
        'item {"pk":{"S":"p0"},"sk":{"N":"0"}}: key attribute \'sk\' is N but the key schema '
        "declares S (declared types must match the data)"
    )
    assert not read_manifest(tmp_path / "e").complete
    # Inferred from the first item, then held: a later item of another type is refused.
    mixed = [{"pk": {"S": "a"}}, {"pk": {"N": "1"}}]
    with pytest.raises(CodecError, match="key attribute 'pk' is N but the key schema declares S"):
        write_export(mixed, tmp_path / "m", table_name="T", key_schema=PK_SK[:1])


def test_an_older_export_format_is_refused_in_one_line(tmp_path: Path) -> None:
    write(tmp_path / "e")
    path = tmp_path / "e" / MANIFEST_NAME
    doc = orjson.loads(path.read_bytes())
    doc["format_version"] = 1
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(ExportError) as info:
        load_export(tmp_path / "e")
    assert str(info.value) == (
        "this export has format version 1, written by an older pitrdiff (this one reads 2); "
        "re-run `pitrdiff export` to export again"
    )


def test_ttl_setting_round_trips_through_the_manifest(tmp_path: Path) -> None:
    from dataclasses import replace

    from pitrdiff.export.dataset import write_manifest

    manifest = write(tmp_path / "e")
    assert manifest.ttl is None and manifest.ttl_attribute is None
    ttl = {"attribute": "expires", "status": "ENABLED"}
    write_manifest(tmp_path / "e", replace(manifest, ttl=ttl))
    again = read_manifest(tmp_path / "e")
    assert again.ttl == ttl and again.ttl_attribute == "expires"
    assert again.identity()["ttl"] == ttl
    disabled = replace(again, ttl={"attribute": "expires", "status": "DISABLED"})
    assert disabled.ttl_attribute is None


def _edit_manifest(root: Path, **changes: Any) -> None:
    path = root / MANIFEST_NAME
    doc = orjson.loads(path.read_bytes())
    doc.update(changes)
    path.write_bytes(orjson.dumps(doc))


def test_a_manifest_that_lost_a_part_or_miscounts_is_refused(tmp_path: Path) -> None:
    """``items`` must equal the listed parts' rows; ``data/`` holds no unlisted part."""
    manifest = write(tmp_path / "e", part_bytes=200)
    first, *rest = manifest.files
    assert rest, "the test needs several parts"
    # One entry dropped (its rows gone from the count too): the part is unlisted.
    _edit_manifest(
        tmp_path / "e",
        files=[f.to_dict() for f in rest],
        items=sum(f.rows for f in rest),
    )
    with pytest.raises(IncompleteExportError) as caught:
        load_export(tmp_path / "e")
    assert str(caught.value) == (
        f"export {tmp_path / 'e'}: data/ holds 1 part(s) the manifest does not list, "
        f"e.g. {first.path} (edited manifest, or parts copied in); re-run the export"
    )
    # One entry dropped, items left as they were: the count disagrees first.
    _edit_manifest(tmp_path / "e", items=10)
    with pytest.raises(IncompleteExportError, match="the manifest says 10 items but its parts "
                       f"hold {10 - first.rows} rows"):  # fmt: skip
        load_export(tmp_path / "e")
    # Every part listed, but items raised by 5.
    _edit_manifest(tmp_path / "e", files=[f.to_dict() for f in manifest.files], items=15)
    with pytest.raises(IncompleteExportError, match="says 15 items but its parts hold 10 rows"):
        load_export(tmp_path / "e")
    _edit_manifest(tmp_path / "e", items=10)
    assert load_export(tmp_path / "e", verify=True).manifest.items == 10
    # An incomplete export (being written, or resumed) is not checked this way.
    _edit_manifest(tmp_path / "e", items=0, files=[], complete=False)
    assert load_export(tmp_path / "e", require_complete=False).manifest.items == 0


def test_export_out_inside_a_dataset_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "e")
    (tmp_path / "native").mkdir()
    (tmp_path / "native" / "manifest-summary.json").write_text("{}")
    for out, kind in (
        (tmp_path / "e" / "sub", "export"),
        (tmp_path / "e" / "data" / "deeper" / "x", "export"),
        (tmp_path / "native" / "mine", "native DynamoDB export"),
    ):
        with pytest.raises(RefusedError) as caught:
            write(out)
        dataset = tmp_path / ("native" if kind.startswith("native") else "e")
        assert str(caught.value) == (
            f"refusing to write an export inside the {kind} dataset {dataset}: "
            "choose an --out outside it"
        )
        assert not out.exists()


def test_overwrite_removes_only_what_pitrdiff_wrote(tmp_path: Path) -> None:
    root = tmp_path / "e"
    manifest = write(root, part_bytes=200)
    parts = sorted(p.name for p in (root / "data").iterdir())
    assert len(parts) == len(manifest.files) > 1
    # A file of the user's beside the parts, and a directory: refused, nothing removed.
    for extra in (root / "data" / "notes.txt", root / "mine" / "keep.txt", root / "README"):
        extra.parent.mkdir(exist_ok=True)
        extra.write_text("precious")
    with pytest.raises(RefusedError) as caught:
        write(root, overwrite=True)
    assert str(caught.value) == (
        f"{root} holds 3 file(s) pitrdiff did not write (README, data/notes.txt, mine/); "
        "--overwrite replaces only the export itself and never deletes them: move them away "
        "or choose another --out"
    )
    assert sorted(p.name for p in (root / "data").iterdir()) == sorted([*parts, "notes.txt"])
    assert (root / "mine" / "keep.txt").read_text() == "precious"
    assert read_manifest(root).to_dict() == manifest.to_dict()
    # Once they are moved away, --overwrite replaces the export (and its leftovers).
    for extra in (root / "data" / "notes.txt", root / "mine" / "keep.txt", root / "README"):
        extra.unlink()
    (root / "mine").rmdir()
    (root / "state").mkdir()
    (root / "state" / "seg-000001.json").write_text("{}")
    (root / "data" / "seg-0001-000007.parquet").write_bytes(b"left by a crash")
    again = write_export(ITEMS[:2], root, table_name="Orders", key_schema=PK_SK, overwrite=True)
    assert sorted(p.name for p in root.iterdir()) == ["data", "manifest.json"]
    assert [f"data/{p.name}" for p in (root / "data").iterdir()] == [f.path for f in again.files]
    assert load_export(root, verify=True).manifest.items == 2


def test_parts_carry_key_statistics_only_and_no_dictionaries(tmp_path: Path) -> None:
    """The writer's settings (bench/bench_export_compare.py measured them): the key columns
    have min/max statistics (readers prune parts by key), the item, hash and size none,
    and no column is dictionary-encoded (canonical items rarely repeat)."""
    import pyarrow.parquet as pq

    manifest = write(tmp_path / "e")
    meta = pq.read_metadata(tmp_path / "e" / manifest.files[0].path)
    group = meta.row_group(0)
    columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    with_stats = sorted(name for name, c in columns.items() if c.is_stats_set)
    assert with_stats == ["_key", "key.pk", "key.sk"]
    assert [name for name, c in columns.items() if c.dictionary_page_offset] == []

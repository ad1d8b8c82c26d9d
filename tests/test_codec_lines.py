"""The C line encoder (pitrdiff/_canon_json.c) against the Python path.

``codec.encode_lines`` parses native export lines (``{"Item": {...}}``) straight
from their JSON text. For every line it takes, the record must equal what
``orjson.loads`` and the Python walk's ``encode_record`` give; every line it is
not sure of it must leave (return its index) so the Python path gives the
record or the error. These tests compare the two on generated items in several
JSON spellings (orjson's, ``json.dumps`` with ``\\u`` escapes, spaces, shuffled
names), on escapes and unicode, on the inputs it must leave, and on mutated
lines; and ingestion through it against ingestion through the Python path.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitrdiff import codec
from pitrdiff.errors import ExportError
from pitrdiff.export.dataset import load_export
from pitrdiff.export.native import ingest_export
from tests.test_codec import _settings, items, scramble_item

try:
    from pitrdiff import _canon
except ImportError:  # pragma: no cover - only where no C compiler was present
    _canon = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(
    _canon is None or not codec.COMPILED, reason="pitrdiff._canon not built or disabled"
)

BUILD = Path(__file__).parent / "data" / "s3exports" / "build.py"


def python_fields(line: bytes, names: tuple[str, ...]) -> tuple[Any, ...]:
    """The record's fields by the Python path, or ("error", type name)."""
    try:
        document = orjson.loads(line)
        record = codec._encode_record_python(document["Item"], names)
    except Exception as exc:
        return ("error", type(exc).__name__)
    return (record.key, record.item, record.hash, record.size, *record.key_values)


def encode(
    lines: list[bytes],
    names: tuple[str, ...] = ("pk", "sk"),
    declared: tuple[str | None, ...] | None = None,
    room: int = 1 << 40,
    start: int = 0,
) -> tuple[tuple[int, int, int, int], list[tuple[Any, ...]]]:
    """codec.encode_lines into fresh columns: its result and the records as tuples."""
    columns: tuple[list[Any], ...] = ([], [], [], [])
    key_values: tuple[list[Any], ...] = tuple([] for _ in names)
    result = codec.encode_lines(lines, start, names, declared, (*columns, key_values), room)  # type: ignore[arg-type]
    count = result[1]
    assert all(len(c) == count for c in (*columns, *key_values))  # all columns or none
    records = [tuple(c[i] for c in (*columns, *key_values)) for i in range(count)]
    return result, records


def agrees(line: bytes, names: tuple[str, ...] = ("pk", "sk")) -> bool:
    """Encode one line; if the C encoder takes it, its record must be the Python one."""
    (following, count, characters, size), records = encode([line], names)
    expected = python_fields(line, names)
    if following == 0:
        assert count == 0 and records == []
        return False
    assert expected[0] != "error", (line, expected)
    assert records == [expected], line
    assert characters == len(expected[1]) and size == expected[3]
    return True


def wire(value: Any) -> Any:
    """bytes (scramble_item's binary) as base64 text: JSON has no bytes."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def spellings(item: dict[str, Any]) -> list[bytes]:
    """One item's line as orjson writes it, with \\u escapes, and with spaces."""
    document = {"Item": wire(item)}
    return [
        orjson.dumps(document),
        json.dumps(document, ensure_ascii=True).encode(),
        json.dumps(document, ensure_ascii=False, separators=(" , ", " :\t")).encode(),
    ]


_keys = st.one_of(
    st.text(max_size=6).map(lambda s: {"S": s}),
    st.integers(-(10**40), 10**40).map(lambda n: {"N": str(n)}),
    st.binary(max_size=6).map(lambda b: {"B": base64.b64encode(b).decode()}),
)


@_settings
@given(items, _keys, _keys, st.integers(0, 2**32))
def test_generated_items_agree_in_every_spelling(
    item: dict[str, Any], pk: Any, sk: Any, seed: int
) -> None:
    for whole in ({**item, "pk": pk, "sk": sk}, {**scramble_item(item, seed), "pk": pk, "sk": sk}):
        for line in spellings(whole):
            taken = agrees(line)
            # valid input is taken; only what the Python path refuses is left
            assert taken == (python_fields(line, ("pk", "sk"))[0] != "error"), line


@_settings
@given(items, _keys, st.integers(0, 2**32))
def test_one_attribute_keys_and_declared_types(item: dict[str, Any], pk: Any, seed: int) -> None:
    line = orjson.dumps({"Item": {**wire(scramble_item(item, seed)), "pk": pk}})
    expected = python_fields(line, ("pk",))
    (tag,) = pk
    result, records = encode([line], ("pk",), (tag,))
    assert records == ([] if expected[0] == "error" else [expected])
    other = "N" if tag == "S" else "S"
    assert encode([line], ("pk",), (other,))[0][:2] == (0, 0)  # the Python path names it
    assert encode([line], ("pk",), (None,))[0][1] == result[1]  # undeclared: not checked


@_settings
@given(items, st.data())
def test_mutated_lines_are_taken_only_when_the_python_path_agrees(
    item: dict[str, Any], data: st.DataObject
) -> None:
    line = bytearray(orjson.dumps({"Item": {**wire(item), "pk": {"S": "k"}, "sk": {"N": "1"}}}))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(line) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        byte = data.draw(st.sampled_from(list(b'{}[]":,\\ u0aE-.\x00\x1f\x7f\x80\xc3\xed\xff')))
        if action == "flip":
            line[at] = byte
        elif action == "delete":
            del line[at]
        elif action == "insert":
            line.insert(at, byte)
        else:
            del line[at:]
        if not line:
            return
    agrees(bytes(line))


@pytest.mark.parametrize(
    "text",
    [
        'quote " backslash \\ slash /',
        "controls \x00 \x01 \x08 \t \n \x0b \x0c \r \x1f and del \x7f",
        "unicode é ß 東京 \u2028 \U0001f600 \uffff",
        "é first, then \x00",  # an escape at the start: nothing decoded before it
        "",
    ],
)
def test_escapes_are_written_as_orjson_writes_them(text: str) -> None:
    item = {"pk": {"S": text}, "sk": {"N": "1"}, text or "x": {"SS": [text, "a", text]}}
    for line in [*spellings(item), orjson.dumps({"Item": item}).replace(b"/", b"\\/")]:
        assert agrees(line), line


@pytest.mark.parametrize(
    "line",
    [
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"1"},"x":{"S":"1"},"x":{"S":"2"}}}',  # duplicate name
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"1"},"m":{"M":{"y":{"S":"1"},"y":{"N":"2"}}}}}',
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"1"}},"Other":1}',  # more than the item
        b'{"Item":{"pk":{"S":"\\ud800"},"sk":{"N":"1"}}}',  # a lone surrogate
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"\\u0031"}}}',  # an escape in a number
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"1"},"s":{"SS":[]}}}',  # an empty set
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"1"},"n":{"NULL":false}}}',
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"1"},"b":{"B":"AQ"}}}',  # unpadded base64
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"1"},"t":{"S":"a","N":"1"}}}',  # two tags
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"1E200"}}}',  # out of range
        b'{"Item":{"pk":{"S":"a"},"sk":{"BOOL":true}}}',  # not a key type
        b'{"Item":{"pk":{"S":"a"}}}',  # no sort key
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"1"},"":{"S":"x"}}}',  # empty name
        b'{"Item":{"pk":{"S":"a\xff"},"sk":{"N":"1"}}}',  # invalid UTF-8
        b'{"Item":{"pk":{"S":"a\xed\xa0\x80"},"sk":{"N":"1"}}}',  # an encoded surrogate
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":"1"}}} x',  # trailing text
        b'{"Item":{"pk":{"S":"a"},"sk":{"N":1}}}',  # a JSON number
        b"[]",
    ],
)
def test_lines_it_is_not_sure_of_are_left_to_the_python_path(line: bytes) -> None:
    (following, count, _, _), _ = encode([line])
    assert (following, count) == (0, 0)


def test_nesting_at_the_limit() -> None:
    value: dict[str, Any] = {"S": "bottom"}
    for _ in range(31):
        value = {"M": {"a": value}}
    fine = orjson.dumps({"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "doc": value}})
    assert agrees(fine)
    deeper = orjson.dumps({"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "doc": {"L": [value]}}})
    assert not agrees(deeper)  # 33 levels: the Python path refuses it


def test_it_stops_at_the_room_given_and_resumes() -> None:
    lines = [orjson.dumps({"Item": {"pk": {"S": f"k{i}"}, "sk": {"N": str(i)}}}) for i in range(10)]
    width = len(codec.encode_record(orjson.loads(lines[0])["Item"], ("pk", "sk")).item)
    (following, count, characters, _), first = encode(lines, room=3 * width)
    assert (following, count, characters) == (3, 3, 3 * width)
    (following, count, _, _), rest = encode(lines, start=3)
    assert (following, count) == (10, 7)
    assert first + rest == [python_fields(line, ("pk", "sk")) for line in lines]
    assert encode(lines, room=0)[0][:2] == (0, 0)


def test_keys_it_does_not_handle_go_to_the_python_path() -> None:
    line = orjson.dumps({"Item": {"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}}})
    assert encode([line], ("a", "b", "c"))[0][:2] == (0, 0)  # DynamoDB keys have 1 or 2
    assert encode([b"not json", line], ("a",))[0][:2] == (0, 0)
    assert encode([b"not json", line], ("a",), start=1)[0][:2] == (2, 1)
    assert encode([bytearray(line)], ("a",))[0][:2] == (0, 0)  # type: ignore[list-item]


# --------------------------------------------------------------------------- ingestion


def _build() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("s3exports_build", BUILD)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(path: Path) -> list[tuple[Any, ...]]:
    table = load_export(path).arrow().sort_by("_key")
    return list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


def test_ingestion_through_both_paths_writes_the_same_dataset(tmp_path: Path) -> None:
    """Lines the C encoder takes and lines it leaves (non-canonical base64, which the
    Python path respells), across many batches and parts: the same rows, counts and
    sizes as the Python path alone; an error mid-batch names its line."""
    build = _build()

    def item(f: int, i: int) -> dict[str, Any]:
        extra = {"blob": {"B": "AR=="}} if i % 7 == 3 else {"n": {"N": f"{i}.50E-3"}}
        return {**build.order(f"t{f}", i), **extra}

    files = [[item(f, i) for i in range(3000)] for f in range(2)]
    export_dir = Path(build.write_full_export(tmp_path / "src", files, export_id="01-both"))
    kwargs: dict[str, Any] = {"key_schema": "pk:S,sk:N", "workers": 1, "part_bytes": 50_000}
    fast = ingest_export(export_dir, tmp_path / "c", **kwargs)
    compiled = codec._compiled
    codec._compiled = None
    try:
        slow = ingest_export(export_dir, tmp_path / "py", **kwargs)
    finally:
        codec._compiled = compiled
    assert fast.items == slow.items == 6000 and fast.bytes == slow.bytes
    assert len(fast.files) > 2 and len(slow.files) > 2  # parts cut at different items
    assert _rows(tmp_path / "c") == _rows(tmp_path / "py")

    files[1][2345]["bad"] = {"N": "1E200"}
    bad = Path(build.write_full_export(tmp_path / "bad", files, export_id="01-bad"))
    with pytest.raises(ExportError, match=r"\.json\.gz: line 2346: item .*outside DynamoDB"):
        ingest_export(bad, tmp_path / "bad-out", **kwargs)
    shutil.rmtree(tmp_path / "src")


# --------------------------------------------------------------------------- Scan responses


def scan_body(items: list[dict[str, Any]], **envelope: Any) -> bytes:
    return orjson.dumps({"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.5},
                         "Count": len(items), "Items": items, **envelope})  # fmt: skip


def test_items_of_a_scan_response_are_encoded_from_its_text() -> None:
    items = [
        {"pk": {"S": f"k{i}"}, "sk": {"N": f"{i}.0"}, "b": {"BS": ["AQ==", "AA=="]}}
        for i in range(5)
    ]
    last = {"pk": {"S": "k4"}, "sk": {"N": "4"}}
    for body in (
        scan_body(items, LastEvaluatedKey=last, ScannedCount=5),
        json.dumps({"Items": items, "Count": 5}, indent=2).encode(),  # spaces, Items first
    ):
        span = codec.items_span(body)
        assert span is not None
        start, end = span
        assert orjson.loads(body[start:end]) == items
        assert orjson.loads(body[:start] + b"[]" + body[end:])["Items"] == []
        columns: tuple[list[Any], ...] = ([], [], [], [])
        key_values: tuple[list[Any], ...] = ([], [])
        count, characters, size, complete = codec.encode_items(
            body,
            start,
            end,
            ("pk", "sk"),
            ("S", "N"),
            (*columns, key_values),  # type: ignore[arg-type]
        )
        assert (count, complete) == (5, True)
        expected = [codec.encode_record(i, ("pk", "sk")) for i in items]
        assert columns[1] == [r.item for r in expected]
        assert key_values[1] == ["0", "1", "2", "3", "4"]
        assert size == sum(r.size for r in expected)
        assert characters == sum(len(r.item) for r in expected)
    empty = scan_body([])
    start, end = codec.items_span(empty) or (0, 0)
    assert codec.encode_items(empty, start, end, ("pk",), None, ([], [], [], [], ([],)))[3]


@pytest.mark.parametrize(
    "body",
    [
        b'{"Count":1}',  # no Items
        b'{"\\u0049tems":[],"Count":0}',  # an escaped name: left to orjson
        # two Items (orjson keeps the last, maybe escaped): a phantom item otherwise
        b'{"Items":[{"pk":{"S":"x"}}],"Items":[]}',
        b'{"Items":[{"pk":{"S":"x"}}],"It\\u0065ms":[]}',
        b'{"Items":[],"Count":1,"Items":[]}',
        b'{"Items":{}}',
        b"[]",
        b'{"Items":[] "Count":0}',
        b'{"Items":[]}trailing',
    ],
)
def test_scan_bodies_it_does_not_read(body: bytes) -> None:
    assert codec.items_span(body) is None


def test_an_item_it_leaves_stops_the_page_there() -> None:
    items = [{"pk": {"S": "a"}}, {"pk": {"S": "b"}, "x": {"B": "AR=="}}, {"pk": {"S": "c"}}]
    body = scan_body(items)
    start, end = codec.items_span(body) or (0, 0)
    columns: Any = ([], [], [], [], ([],))
    assert codec.encode_items(body, start, end, ("pk",), ("S",), columns) == (1, 16, 3, False)
    assert columns[4] == (["a"],)


def test_the_export_handler_keeps_items_as_text_and_falls_back(monkeypatch: Any) -> None:
    from pitrdiff.export.scan import RawItems, _raw_scan_parse

    items = [{"pk": {"S": "a"}}]
    body = scan_body(items, LastEvaluatedKey={"pk": {"S": "a"}})
    response, parsed = {"status_code": 200, "body": body}, {}  # type: ignore[var-annotated]
    _raw_scan_parse(response, parsed)
    assert isinstance(parsed["Items"], RawItems) and parsed["Items"].parse() == items
    assert parsed["LastEvaluatedKey"] == {"pk": {"S": "a"}} and parsed["Count"] == 1
    assert response["body"] == b""  # botocore parses nothing more
    for odd in (body[:-1] + b',"Items":[{"pk":{"S":"b"}}]}', b'{"\\u0049tems":[]}'):
        response, parsed = {"status_code": 200, "body": odd}, {}
        _raw_scan_parse(response, parsed)
        assert parsed["Items"] == orjson.loads(odd)["Items"]  # parsed whole, as before
    error = {"status_code": 400, "body": b'{"__type":"x"}'}
    _raw_scan_parse(error, parsed := {})
    assert parsed == {} and error["body"]  # errors stay botocore's


def test_an_export_falls_back_mid_page_and_writes_the_same_rows(
    dynalite_server: Any, table_name: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """The C encoder leaving item 3 of every page: the rest of the page goes through the
    Python path, and the export is exactly the one the Python path alone writes."""
    from pitrdiff.export.scan import export_table

    dynalite_server.create_table(table_name)
    items = [
        {"pk": {"S": f"k{i % 7}"}, "sk": {"S": str(i)}, "n": {"NS": ["1.50", "2E3"]},
         "b": {"B": base64.b64encode(bytes([i % 256]) * 20).decode()}}
        for i in range(300)
    ]  # fmt: skip
    dynalite_server.put_items(table_name, items)
    real = codec._compiled_items
    calls = []

    def three_at_most(body: bytes, start: int, end: int, *args: Any) -> Any:
        columns = args[2:6] + tuple(args[6])
        before = [len(c) for c in columns]
        count, _, _, complete = real(body, start, end, *args)  # type: ignore[misc]
        kept = min(count, 3)
        characters = sum(len(s) for s in columns[1][before[1] : before[1] + kept])
        size = sum(columns[3][before[3] : before[3] + kept])
        for column, length in zip(columns, before, strict=True):
            del column[length + kept :]
        calls.append(count)
        return kept, characters, size, complete and kept == count

    monkeypatch.setenv("PITRDIFF_TEST_SCAN_LIMIT", "40")  # pages of 40 items
    monkeypatch.setattr(codec, "_compiled_items", three_at_most)
    mixed = export_table(table_name, tmp_path / "mixed", segments=2, aws=dynalite_server.aws)
    monkeypatch.setattr(codec, "_compiled", None)
    python = export_table(table_name, tmp_path / "python", segments=2, aws=dynalite_server.aws)
    assert len(calls) >= 8 and max(calls) == 40  # pages were cut short
    assert (mixed.items, mixed.bytes) == (python.items, python.bytes) == (300, python.bytes)
    assert _rows(tmp_path / "mixed") == _rows(tmp_path / "python")

"""The C walk (pitrdiff/_canon.c) against the Python walk of pitrdiff.codec.

The C walk must return, for every item it accepts, the same canonical form and
item size as ``codec._canonicalize_python``; for everything else it returns
None and ``codec.canonicalize`` runs the Python walk, so errors stay exactly
the same. These tests compare the two on generated items of every type, on
number spellings at DynamoDB's limits, on unicode, on nesting at the limit and
on invalid input, and check the fallback when the module is absent.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitrdiff import codec
from tests.test_codec import GOLDEN_SHAPES, _settings, items, scramble_item, values

try:
    from pitrdiff import _canon
except ImportError:  # pragma: no cover - only where no C compiler was present
    _canon = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
needs_compiled = pytest.mark.skipif(
    _canon is None, reason="pitrdiff._canon was not built (no C compiler at install time)"
)


def test_extension_is_built_where_a_c_compiler_is_present() -> None:
    if not sys.platform.startswith("linux") or not (shutil.which("gcc") or shutil.which("cc")):
        pytest.skip("no C compiler here: the Python walk is the expected path")
    assert _canon is not None, 'pitrdiff._canon missing: run python3 -m pip install -e ".[dev]"'
    expected = os.environ.get("PITRDIFF_NO_COMPILED", "") in ("", "0")
    assert codec.COMPILED is expected
    assert (codec._compiled is _canon.canonicalize) is expected


def outcome(function: Any, item: Any) -> tuple[Any, ...]:
    """What a walk gives: the canonical JSON and size, or the error's type and text."""
    try:
        canon, size = function(item)
    except Exception as exc:
        return ("error", type(exc), str(exc))
    return ("ok", orjson.dumps(canon, option=orjson.OPT_SORT_KEYS), size)


def check(item: Any, *, handled: bool) -> tuple[Any, ...]:
    """Compare the walks on ``item``; ``handled``: the C walk must accept it."""
    python = outcome(codec._canonicalize_python, item)
    assert outcome(codec.canonicalize, item) == python  # the public path, C then fallback
    compiled = _canon.canonicalize(item)
    if handled:
        assert compiled is not None, item
        assert ("ok", orjson.dumps(compiled[0], option=orjson.OPT_SORT_KEYS), compiled[1]) == (
            python
        )
    else:
        assert compiled is None
    return python


# --------------------------------------------------------------------------- generated items


@needs_compiled
@_settings
@given(items)
def test_generated_items_agree_and_canonical_input_is_returned_as_is(item: dict[str, Any]) -> None:
    check(item, handled=True)
    canonical = orjson.loads(codec.canonical_json(item))
    compiled = _canon.canonicalize(canonical)
    assert compiled is not None
    assert compiled[0] is canonical  # nothing copied when nothing changes
    assert compiled[1] == codec._canonicalize_python(canonical)[1]


@needs_compiled
@_settings
@given(items, st.integers(0, 2**32))
def test_respelled_items_agree(item: dict[str, Any], seed: int) -> None:
    """Shuffled maps and sets, duplicates, number respellings, binary as bytes."""
    check(scramble_item(item, seed), handled=True)


@needs_compiled
@_settings
@given(st.lists(values, min_size=1, max_size=6))
def test_generated_values_in_lists_agree(elements: list[dict[str, Any]]) -> None:
    check({"l": {"L": elements}, "m": {"M": {"": {"L": elements}}}}, handled=True)


@needs_compiled
@_settings
@given(st.lists(st.binary(max_size=7), min_size=1, max_size=8))
def test_binary_sets_sort_by_bytes(blobs: list[bytes]) -> None:
    texts = [base64.b64encode(b).decode() for b in blobs]
    check({"bs": {"BS": texts}}, handled=True)
    check({"bs": {"BS": blobs + texts[:1]}}, handled=True)  # bytes (botocore's form) too
    check({"b": {"B": blobs[0]}}, handled=True)


@needs_compiled
@pytest.mark.parametrize("shape", sorted(GOLDEN_SHAPES))
def test_golden_canonical_strings(shape: str) -> None:
    item, canonical, hash_value, size = GOLDEN_SHAPES[shape]
    compiled = _canon.canonicalize(item)
    assert compiled is not None
    assert orjson.dumps(compiled[0], option=orjson.OPT_SORT_KEYS).decode() == canonical
    assert compiled[1] == size
    record = codec.encode_record(item, ["pk", "sk"])
    assert (record.item, record.hash, record.size) == (canonical, hash_value, size)


# --------------------------------------------------------------------------- records


def python_record(item: Any, key_names: Any) -> tuple[Any, ...]:
    """``encode_record``'s fields (or error) with the Python walk only."""
    compiled = codec._compiled
    codec._compiled = None
    try:
        record = codec.encode_record(item, key_names)
    except Exception as exc:
        return ("error", type(exc), str(exc))
    finally:
        codec._compiled = compiled
    return fields(record)


def fields(record: codec.Record) -> tuple[Any, ...]:
    return (record.key, record.item, record.hash, record.size, record.key_values, record.key_types)


_keys = st.one_of(
    st.text(max_size=6).map(lambda s: {"S": s}),
    st.integers(-(10**40), 10**40).map(lambda n: {"N": str(n)}),
    st.binary(max_size=6).map(lambda b: {"B": base64.b64encode(b).decode()}),
    st.binary(max_size=6).map(lambda b: {"B": b}),
)


@needs_compiled
@_settings
@given(items, _keys, _keys, st.integers(0, 2**32))
def test_records_agree(item: dict[str, Any], pk: Any, sk: Any, seed: int) -> None:
    for whole in ({**item, "pk": pk, "sk": sk}, {**scramble_item(item, seed), "pk": pk}):
        for names in (("pk", "sk"), ["pk"], ("sk", "pk")):
            expected = python_record(whole, names)
            record = _canon.encode_record(whole, names)
            if expected[0] == "error":  # a number key beyond 38 digits, or no sk
                assert record is None
                with pytest.raises(expected[1], match="^" + re.escape(expected[2]) + "$"):
                    codec.encode_record(whole, names)
            else:
                assert record is not None
                assert fields(record) == expected
                assert fields(codec.encode_record(whole, names)) == expected


@needs_compiled
@pytest.mark.parametrize(
    ("item", "names", "message"),
    [
        ({"pk": {"S": "a"}}, ("sk",), "item has no key attribute 'sk'"),
        ({"pk": {"BOOL": True}}, ("pk",), "key attribute 'pk' is not of type S, N or B"),
        ({"pk": {"SS": ["a"]}}, ["pk"], "key attribute 'pk' is not of type S, N or B"),
        ({"pk": {"N": "1E200"}}, ("pk",), "number '1E200' is outside DynamoDB's range"),
    ],
)
def test_record_errors_fall_back_to_the_same_error(item: Any, names: Any, message: str) -> None:
    assert _canon.encode_record(item, names) is None
    with pytest.raises(codec.CodecError, match="^" + re.escape(message)):
        codec.encode_record(item, names)


@needs_compiled
def test_record_key_columns() -> None:
    item = {"pk": {"B": b"\x00\xff"}, "sk": {"N": "1E1"}, "x": {"SS": ["b", "a"]}}
    record = _canon.encode_record(item, ("pk", "sk"))
    assert record is not None
    assert fields(record) == (
        '{"pk":{"B":"AP8="},"sk":{"N":"10"}}',
        '{"pk":{"B":"AP8="},"sk":{"N":"10"},"x":{"SS":["a","b"]}}',
        codec.content_hash('{"pk":{"B":"AP8="},"sk":{"N":"10"},"x":{"SS":["a","b"]}}'),
        2 + 2 + 2 + 2 + 1 + 2,
        (b"\x00\xff", "10"),
        ("B", "N"),
    )
    assert _canon.encode_record(item, "pk") is None  # names neither tuple nor list


# --------------------------------------------------------------------------- numbers

VALID_NUMBERS = [
    "0",
    "-0",
    "-0.0",
    "+0",
    "0E+500",
    "0E-1234567",
    "007",
    "-007",
    "5.",
    ".5",
    "+1.5",
    "1.50",
    "100.000",
    "-1.000E2",
    "15E-1",
    "1E+0000000000000005",
    "12345678901234567890123456789012345678",
    "-1234567890123456789012345678901234567.8",
    "123456789012345678901234567890123456780000",
    "0.00012345678901234567890123456789012345678",
    "1" + "0" * 125,
    "9.9999999999999999999999999999999999999E+125",
    "1E125",
    "12E124",
    "1E-130",
    "-1E-130",
    "10E-131",
    "0.1E-129",
    "-0." + "0" * 129 + "1",
    "1." + "0" * 60,
    "6.89E-77",
    "2.66e+39",
]
INVALID_NUMBERS = [
    "",
    ".",
    "-",
    "+",
    "e5",
    "1e",
    "1e+",
    "1E5.0",
    "1.2.3",
    "--1",
    "+-1",
    " 1",
    "1 ",
    "1_000",
    "0x10",
    "NaN",
    "Infinity",
    "١",
    "²",
    "123456789012345678901234567890123456789",
    "1E126",
    "12E125",
    "1E-131",
    "0.1E-130",
    "1E+1234567",
    "1E-1234567",
]


@needs_compiled
@pytest.mark.parametrize("text", VALID_NUMBERS)
def test_valid_number_spellings_agree(text: str) -> None:
    result = check({"n": {"N": text}}, handled=True)
    assert result[0] == "ok"
    check({"s": {"NS": [text, "1", text, "-3.5"]}}, handled=True)
    check({"l": {"L": [{"N": text}]}}, handled=True)


@needs_compiled
@pytest.mark.parametrize("text", INVALID_NUMBERS)
def test_invalid_number_spellings_fall_back_to_the_same_error(text: str) -> None:
    result = check({"n": {"N": text}}, handled=False)
    assert result[:2] == ("error", codec.CodecError)
    check({"s": {"NS": ["1", text]}}, handled=False)


@needs_compiled
def test_number_sets_sort_by_value() -> None:
    texts = ["10", "9.5", "-1E-130", "-2", "0", "1E125", "-1E125", "0.5", "0.05", "2", "-0.5"]
    result = check({"s": {"NS": texts}}, handled=True)
    assert result[1] == (
        b'{"s":{"NS":["-1' + b"0" * 125 + b'","-2","-0.5","-0.' + b"0" * 129 + b'1","0",'
        b'"0.05","0.5","2","9.5","10","1' + b"0" * 125 + b'"]}}'
    )


# --------------------------------------------------------------------------- text


@needs_compiled
@pytest.mark.parametrize(
    "text",
    ["", "plain", "é", "東京", "😀 emoji", "a\x00b", "\x00", "ÿ\x7f\x80", "\u07ff\u0800\uffff"],
)
def test_unicode_and_nul_agree(text: str) -> None:
    check({"s": {"S": text}, text or "name": {"SS": [text, "z", text]}}, handled=True)
    check({"m": {"M": {text: {"S": text}}}}, handled=True)


@needs_compiled
@pytest.mark.parametrize(
    "item",
    [
        {"s": {"S": "a\ud800"}},
        {"a\udfff": {"S": "x"}},
        {"s": {"SS": ["a", "\ud800"]}},
        {"m": {"M": {"\ud800": {"NULL": True}}}},
    ],
    ids=["value", "name", "set", "map-name"],
)
def test_lone_surrogates_fall_back_to_the_same_error(item: dict[str, Any]) -> None:
    assert check(item, handled=False)[:2] == ("error", UnicodeEncodeError)


# ------------------------------------------------------------- nesting and invalid input


def nested(depth: int) -> dict[str, Any]:
    """An item whose innermost M is at ``depth`` (the attribute itself is depth 1)."""
    value: dict[str, Any] = {"M": {"x": {"S": "leaf"}}}
    for level in range(depth - 1):
        value = {"L": [value]} if level % 2 else {"M": {"k": value}}
    return {"a": value}


@needs_compiled
@pytest.mark.parametrize("depth", [1, 30, 31])
def test_nesting_within_the_limit_agrees(depth: int) -> None:
    assert check(nested(depth), handled=True)[0] == "ok"


@needs_compiled
@pytest.mark.parametrize("depth", [32, 33])
def test_nesting_beyond_the_limit_falls_back(depth: int) -> None:
    assert check(nested(depth), handled=False) == (
        "error",
        codec.CodecError,
        "item nests deeper than DynamoDB's 32 levels",
    )


@needs_compiled
@pytest.mark.parametrize(
    "item",
    [
        {"s": {"SS": []}},
        {"s": {"NS": []}},
        {"s": {"BS": []}},
        {"": {"S": "x"}},
        {"a": {"X": "1"}},
        {"a": {"S": "1", "N": "1"}},
        {"a": {}},
        {"a": {"S": 1}},
        {"a": {"BOOL": 1}},
        {"a": {"NULL": False}},
        {"a": {"M": [1]}},
        {"a": {"L": {"x": 1}}},
        {"a": {"SS": ["x", 1]}},
        {"a": {"SS": "x"}},
        {"a": {"N": 5}},
        {"a": {"B": "AA"}},
        {"a": {"B": "A==="}},
        {"a": {"B": "é"}},
        {"a": {"M": {1: {"S": "x"}}}},
        {1: {"S": "x"}},
        {"a": "S"},
        {"a": {"BS": ["AA==", "AA"]}},
    ],
)
def test_invalid_input_falls_back_to_the_same_error(item: dict[Any, Any]) -> None:
    assert check(item, handled=False)[0] == "error"


@needs_compiled
@pytest.mark.parametrize(
    "item",
    [
        {"a": {"B": "AB=="}},  # non-canonical padding bits: re-encoded by Python
        {"a": {"B": bytearray(b"\x01")}},
        {"a": {"B": memoryview(b"\x01")}},
        {"a": {"L": ({"S": "x"},)}},
        {"a": types.MappingProxyType({"S": "x"})},
        {"a": {"M": types.MappingProxyType({"x": {"S": "y"}})}},
        {"a": {"SS": ("y", "x")}},
    ],
)
def test_uncommon_valid_input_is_left_to_python(item: dict[str, Any]) -> None:
    assert check(item, handled=False)[0] == "ok"


@needs_compiled
def test_non_dict_items_are_left_to_python() -> None:
    assert _canon.canonicalize(types.MappingProxyType({"a": {"S": "x"}})) is None
    assert _canon.canonicalize([1]) is None
    assert _canon.canonicalize({}) == ({}, 0)


# --------------------------------------------------------------------------- fallback


def run_codec(code: str, **env: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
    ).stdout.strip()


FALLBACK_CHECK = (
    "from pitrdiff import codec\n"
    "print(codec.COMPILED, codec.canonical_json({'n': {'N': '1.50'}, 'b': {'B': b'\\x00'}}))\n"
    "try:\n"
    "    codec.canonical_json({'s': {'SS': []}})\n"
    "except codec.CodecError as exc:\n"
    "    print(exc)\n"
)


def test_python_walk_when_the_module_is_absent() -> None:
    blocked = "import sys; sys.modules['pitrdiff._canon'] = None\n"  # import raises ImportError
    assert run_codec(blocked + FALLBACK_CHECK).splitlines() == [
        'False {"b":{"B":"AA=="},"n":{"N":"1.5"}}',
        "SS must not be empty: DynamoDB has no empty sets",
    ]


def test_python_walk_when_disabled_by_the_environment() -> None:
    assert run_codec(FALLBACK_CHECK, PITRDIFF_NO_COMPILED="1").splitlines()[0].startswith("False")


def test_python_walk_in_process_when_the_hook_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "_compiled", None)
    for item, canonical, _hash, size in GOLDEN_SHAPES.values():
        assert codec.canonical_json(item) == canonical
        assert codec.item_size(item) == size


# A signal handler runs at the first Python code the C walk calls (building the
# Record); its KeyboardInterrupt must come out, not be cleared into a fallback.
_SIGNAL_DURING_WALK = """
import os, signal, threading
from pitrdiff import codec
assert codec.COMPILED
calls = []
python_path = codec._encode_record_python
codec._encode_record_python = lambda *a: (calls.append(1), python_path(*a))[1]
item = {"pk": {"S": "k"}, "big": {"L": [{"N": "1.50"} for _ in range(400_000)]}}
threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    codec.encode_record(item, ["pk"])
    print("lost", len(calls))
except KeyboardInterrupt:
    print("interrupted", len(calls))
"""

# A garbage-collector finalizer that empties a list the walk copies (key names,
# an unsorted SS, a list whose element changes): no crash, the Python answer.
_FINALIZER_EMPTIES = """
import gc
from pitrdiff import codec
assert codec.COMPILED
target = {target}
item = {item}
class Killer:
    def __del__(self):
        target.clear()
gc.collect(); gc.disable()
k = Killer(); k.cycle = k; del k
gc.set_threshold(1); gc.enable()
try:
    result = repr({call})
except Exception as exc:
    result = type(exc).__name__
gc.set_threshold(700)
print(result)
"""


@needs_compiled
def test_a_signal_during_the_c_walk_is_raised_not_swallowed() -> None:
    done = subprocess.run([sys.executable, "-c", _SIGNAL_DURING_WALK], capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    assert done.stdout.split() == ["interrupted", "0"]


@needs_compiled
@pytest.mark.parametrize(
    ("target", "item", "call"),
    [
        ('["pk"] * 64', '{"pk": {"S": "k"}}', "codec.encode_record(item, target).key"),
        ('["b", "a", "c"]', '{"a": {"SS": target}}', "codec.canonicalize(item)"),
        ('[{"N": "1.50"}, {"N": "2"}]', '{"a": {"L": target}}', "codec.canonicalize(item)"),
    ],
)
def test_a_finalizer_that_empties_what_the_c_walk_copies_does_not_crash(
    target: str, item: str, call: str
) -> None:
    script = _FINALIZER_EMPTIES.format(target=target, item=item, call=call)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]  # a segfault is -11
    assert done.stdout.strip()

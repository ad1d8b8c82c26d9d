"""The codec: canonical DynamoDB JSON, content hash, item size, Python values.

Pins the canonical rules table of docs/FORMAT.md row by row, the number limits,
golden hashes, and (with hypothesis) round trips and canonical invariance.
"""

from __future__ import annotations

import base64
import random
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pitrdiff import codec
from pitrdiff.codec import (
    canonical_json,
    canonical_value_json,
    content_hash,
    encode_record,
    item_from_python,
    item_size,
    item_to_python,
    normalize_number,
)
from pitrdiff.errors import CodecError

# --------------------------------------------------------------------------- the rules table


@pytest.mark.parametrize(
    ("item", "canonical"),
    [
        # map keys sorted by code point (item level and inside M)
        ({"b": {"S": "1"}, "a": {"S": "2"}}, '{"a":{"S":"2"},"b":{"S":"1"}}'),
        (
            {"m": {"M": {"é": {"NULL": True}, "z": {"NULL": True}}}},
            '{"m":{"M":{"z":{"NULL":true},"é":{"NULL":true}}}}',
        ),
        # numbers in plain notation
        ({"n": {"N": "1.50"}}, '{"n":{"N":"1.5"}}'),
        ({"n": {"N": "15E-1"}}, '{"n":{"N":"1.5"}}'),
        ({"n": {"N": "+1.5"}}, '{"n":{"N":"1.5"}}'),
        ({"n": {"N": "-0.0"}}, '{"n":{"N":"0"}}'),
        ({"n": {"N": "1E+3"}}, '{"n":{"N":"1000"}}'),
        ({"n": {"N": "1E-5"}}, '{"n":{"N":"0.00001"}}'),
        ({"n": {"N": "007"}}, '{"n":{"N":"7"}}'),
        ({"n": {"N": "5."}}, '{"n":{"N":"5"}}'),
        # binary as padded base64 of the raw bytes
        ({"b": {"B": b"\x00"}}, '{"b":{"B":"AA=="}}'),
        ({"b": {"B": "AA=="}}, '{"b":{"B":"AA=="}}'),
        # sets sorted and de-duplicated after normalising
        ({"s": {"NS": ["10", "2", "2.0"]}}, '{"s":{"NS":["2","10"]}}'),
        ({"s": {"SS": ["b", "a", "b", "é", "z"]}}, '{"s":{"SS":["a","b","z","é"]}}'),
        ({"s": {"BS": [b"\x01", "AA==", b"\x00"]}}, '{"s":{"BS":["AA==","AQ=="]}}'),
        # lists keep their order
        ({"l": {"L": [{"N": "2"}, {"N": "1"}]}}, '{"l":{"L":[{"N":"2"},{"N":"1"}]}}'),
        # BOOL and NULL
        ({"t": {"BOOL": True}, "u": {"NULL": True}}, '{"t":{"BOOL":true},"u":{"NULL":true}}'),
        # compact, UTF-8, non-ASCII not escaped, quotes/backslashes/controls escaped
        ({"s": {"S": "é"}}, '{"s":{"S":"é"}}'),
        ({"s": {"S": 'a"b\\c\n\x01'}}, '{"s":{"S":"a\\"b\\\\c\\n\\u0001"}}'),
    ],
)
def test_canonical_rules_of_format_md(item: dict[str, Any], canonical: str) -> None:
    assert canonical_json(item) == canonical


@pytest.mark.parametrize(
    "item",
    [{"s": {"SS": []}}, {"s": {"NS": []}}, {"s": {"BS": []}}],
)
def test_empty_sets_are_refused(item: dict[str, Any]) -> None:
    with pytest.raises(CodecError, match="empty"):
        canonical_json(item)


def test_canonical_key_and_hash_of_format_md() -> None:
    item = {"sk": {"N": "1.50"}, "pk": {"S": "a"}, "x": {"S": "y"}}
    assert codec.canonical_key(item, ["pk", "sk"]) == '{"pk":{"S":"a"},"sk":{"N":"1.5"}}'
    record = encode_record(item, ["pk", "sk"])
    assert record.key == '{"pk":{"S":"a"},"sk":{"N":"1.5"}}'
    assert record.hash == content_hash(record.item) == content_hash(record.item.encode())
    assert record.key_values == ("a", "1.5")
    assert record.key_types == ("S", "N")
    binary = encode_record({"pk": {"B": b"\x00\xff"}, "sk": {"N": "1E1"}}, ["pk", "sk"])
    assert binary.key_values == (b"\x00\xff", "10")
    assert binary.key_types == ("B", "N")
    assert binary.key == '{"pk":{"B":"AP8="},"sk":{"N":"10"}}'


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("-1234567890123456789012345678901234567.8", "-1234567890123456789012345678901234567.8"),
        ("1" + "0" * 50, "1" + "0" * 50),  # one significant digit, many zeros
        ("1." + "0" * 60, "1"),
        ("1E-130", "0." + "0" * 129 + "1"),
        ("-1E-130", "-0." + "0" * 129 + "1"),
        (
            "9.9999999999999999999999999999999999999E+125",
            "99999999999999999999999999999999999999" + "0" * 88,
        ),
        ("0E+500", "0"),
        ("-0E-99999999999999", "0"),
        (".5", "0.5"),
        ("-007", "-7"),
        ("+0.0012300E2", "0.123"),
        ("1" + "0" * 125, "1" + "0" * 125),  # the largest power of ten
        ("-0." + "0" * 129 + "1", "-0." + "0" * 129 + "1"),  # canonical, 132 characters
    ],
)
def test_numbers_within_dynamodb_limits(text: str, canonical: str) -> None:
    assert normalize_number(text) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "123456789012345678901234567890123456789",  # 39 significant digits
        "1.23456789012345678901234567890123456789",
        "1E-131",
        "1E+126",
        "-1E+126",
        "NaN",
        "Infinity",
        "",
        "1e",
        " 1",
        "1 ",
        "0x10",
        "1_000",
        "١",  # a non-ASCII digit
        "²",  # str.isdigit() says yes
        "-",
        ".",
        "+-1",
        "1E+99999999999999",
        "1" + "0" * 126,  # 1E+126, canonical spelling
        "0." + "0" * 130 + "1",  # 1E-131, canonical spelling
        "-" + "1" * 39,  # 39 significant digits, canonical spelling
    ],
)
def test_numbers_outside_dynamodb_limits_are_refused(text: str) -> None:
    with pytest.raises(CodecError):
        normalize_number(text)


def test_numbers_must_be_strings() -> None:
    with pytest.raises(CodecError, match="string"):
        canonical_json({"n": {"N": 1}})


def test_floats_are_refused_with_a_fix() -> None:
    with pytest.raises(CodecError, match="Decimal"):
        item_from_python({"x": 1.5})
    with pytest.raises(CodecError):
        item_from_python({"x": Decimal("NaN")})
    with pytest.raises(CodecError, match="empty"):
        item_from_python({"x": set()})
    with pytest.raises(CodecError):
        item_from_python({"x": {1, "a"}})


@pytest.mark.parametrize(
    "item",
    [
        {"x": {"S": 1}},
        {"x": {"BOOL": "true"}},
        {"x": {"NULL": False}},
        {"x": {"Q": "1"}},
        {"x": {"S": "a", "N": "1"}},
        {"x": "plain"},
        {"x": {"B": "not base64!"}},
        {"x": {"SS": ["a", 1]}},
        {"x": {"M": []}},
        {"x": {"L": {}}},
        {"": {"S": "empty name"}},
    ],
)
def test_invalid_values_are_refused(item: dict[str, Any]) -> None:
    with pytest.raises(CodecError):
        canonical_json(item)


def test_nesting_limit() -> None:
    value: dict[str, Any] = {"N": "1"}
    for _ in range(31):
        value = {"L": [value]}
    canonical_json({"x": value})  # 32 levels: allowed
    with pytest.raises(CodecError, match="32"):
        canonical_json({"x": {"M": {"y": value}}})


def test_key_attributes_must_be_key_types() -> None:
    with pytest.raises(CodecError, match="S, N or B"):
        encode_record({"pk": {"BOOL": True}}, ["pk"])
    with pytest.raises(CodecError, match="no key attribute"):
        encode_record({"x": {"S": "a"}}, ["pk"])


# --------------------------------------------------------------------------- size and hash


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"a": {"S": "abc"}}, 1 + 3),
        ({"é": {"S": "é"}}, 2 + 2),
        ({"n": {"N": "123"}}, 1 + 3),  # ceil(3 / 2) + 1
        ({"n": {"N": "1000"}}, 1 + 2),  # one significant digit
        ({"n": {"N": "0.00012"}}, 1 + 2),
        ({"n": {"N": "-0.0012300"}}, 1 + 3),
        ({"n": {"N": "1" * 38}}, 1 + 20),
        ({"n": {"N": "-12.5"}}, 1 + 3),
        ({"n": {"N": "0"}}, 1 + 2),  # one significant digit
        ({"b": {"B": b"\x00\x01\x02"}}, 1 + 3),
        ({"t": {"BOOL": True}, "u": {"NULL": True}}, 2 + 2),
        ({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}, 1 + 3 + (1 + 2) + (1 + 2)),
        ({"m": {"M": {"k": {"S": "v"}}}}, 1 + 3 + (1 + 1 + 1)),
        ({"s": {"SS": ["a", "bb", "a"]}}, 1 + 3),
        ({"s": {"NS": ["1", "22"]}}, 1 + 2 + 2),
        ({"s": {"L": []}, "m": {"M": {}}}, 2 + 3 + 3),
    ],
)
def test_item_size_follows_aws_rules(item: dict[str, Any], size: int) -> None:
    assert item_size(item) == size
    assert encode_record({"pk": {"S": ""}, **item}, ["pk"]).size == size + 2


GOLDEN_HASHES = {
    '{"pk":{"S":"a"}}': 10577375778084453420,
    '{"n":{"N":"1.5"},"pk":{"S":"a"},"sk":{"S":"1"}}': 6930817847455078109,
    '{"b":{"B":"AA=="},"l":{"L":[{"NULL":true}]},"s":{"SS":["x","é"]}}': 11351689247681145613,
}


def test_hash_is_pinned() -> None:
    """xxh3-64 of the canonical UTF-8 bytes; these values must never change."""
    for text, value in GOLDEN_HASHES.items():
        assert content_hash(text) == value
    spelled = {"sk": {"S": "1"}, "pk": {"S": "a"}, "n": {"N": "15E-1"}}
    assert content_hash(canonical_json(spelled)) == 6930817847455078109


# --------------------------------------------------------------------------- golden items per shape

# One item of each benchmark shape (bench/shapes.py), spelled non-canonically where
# the shape allows it. Their canonical strings, hashes and sizes were produced by the
# recursive codec of release 1 and must never change: an optimised codec must
# give byte-identical output.
_WIDE = {
    f"a{199 - a:03d}": ({"S": f"v{a}"}, {"N": str(a * 7)}, {"BOOL": a % 2 == 0})[a % 3]
    for a in range(198)
}
GOLDEN_SHAPES: dict[str, tuple[dict[str, Any], str, int, int]] = {
    "flat": (
        {
            "sk": {"N": "0042"},
            "pk": {"S": "user#00042"},
            "email": {"S": "user42@example.com"},
            "balance": {"N": "1234.50"},
            "verified": {"BOOL": False},
            "deleted_at": {"NULL": True},
            "bio": {"S": 'says "hi"\\n\tthen\x01 leaves'},
            "Zeta": {"S": ""},
        },
        '{"Zeta":{"S":""},"balance":{"N":"1234.5"},"bio":{"S":"says \\"hi\\"\\\\n\\tthen\\u0001 '
        'leaves"},"deleted_at":{"NULL":true},"email":{"S":"user42@example.com"},'
        '"pk":{"S":"user#00042"},"sk":{"N":"42"},"verified":{"BOOL":false}}',
        10920777680204231229,
        101,
    ),
    "nested": (
        {
            "pk": {"S": "doc#1"},
            "sk": {"N": "1"},
            "größe": {"S": "東京 café"},
            "doc": {
                "M": {
                    "title": {"S": "alpha bravo"},
                    "meta": {
                        "M": {
                            "tags": {"SS": ["Zürich", "alpha", "Zürich", "Alpha"]},
                            "rev": {"N": "7.0"},
                            "flags": {"L": [{"BOOL": True}, {"NULL": True}, {"L": []}, {"M": {}}]},
                        }
                    },
                    "sections": {
                        "L": [
                            {
                                "M": {
                                    "n": {"N": "2"},
                                    "h": {"S": "b"},
                                    "ids": {"NS": ["30", "4", "4.0"]},
                                }
                            },
                            {"M": {"h": {"S": "a"}, "n": {"N": "1E0"}, "é": {"B": b"\xff\x00"}}},
                        ]
                    },
                }
            },
            "thumb": {"B": "AAECAw=="},
        },
        '{"doc":{"M":{"meta":{"M":{"flags":{"L":[{"BOOL":true},{"NULL":true},{"L":[]},'
        '{"M":{}}]},"rev":{"N":"7"},"tags":{"SS":["Alpha","Zürich","alpha"]}}},'
        '"sections":{"L":[{"M":{"h":{"S":"b"},"ids":{"NS":["4","30"]},"n":{"N":"2"}}},'
        '{"M":{"h":{"S":"a"},"n":{"N":"1"},"é":{"B":"/wA="}}}]},"title":{"S":"alpha bravo"}}},'
        '"größe":{"S":"東京 café"},"pk":{"S":"doc#1"},"sk":{"N":"1"},"thumb":{"B":"AAECAw=="}}',
        3007795262012147405,
        166,
    ),
    "binary": (
        {
            "pk": {"S": "blob#1"},
            "sk": {"N": "1"},
            "raw": {"B": bytes(range(250, 256)) + b"\x00"},
            "text": {"B": "aGVsbG8gd29ybGQ="},
            "chunks": {"BS": ["AQ==", b"\x00\x01", "AA==", b"\x01", b"\xff"]},
            "empty": {"B": ""},
        },
        '{"chunks":{"BS":["AA==","AAE=","AQ==","/w=="]},"empty":{"B":""},"pk":{"S":"blob#1"},'
        '"raw":{"B":"+vv8/f7/AA=="},"sk":{"N":"1"},"text":{"B":"aGVsbG8gd29ybGQ="}}',
        1944239686312370955,
        53,
    ),
    "numbers": (
        {
            "pk": {"S": "metric#1"},
            "sk": {"N": "-0.0"},
            "total": {"N": "12345678901234567890123456789012345678"},
            "precise": {"N": "-1234567890123456789.0123456789012345678"},
            "tiny": {"N": "1.25E-120"},
            "huge": {"N": "9.5e+125"},
            "rate": {"N": "+007.500"},
            "scaled": {"N": "120E3"},
            "point": {"N": ".5"},
            "samples": {"NS": ["1E2", "99.9", "-1E-130", "100", "1e+2", "-3", "0.001E3"]},
            "series": {"L": [{"N": "1e1"}, {"N": "-0"}, {"N": "10.010"}]},
        },
        '{"huge":{"N":"95' + "0" * 124 + '"},"pk":{"S":"metric#1"},"point":{"N":"0.5"},'
        '"precise":{"N":"-1234567890123456789.0123456789012345678"},"rate":{"N":"7.5"},'
        '"samples":{"NS":["-3","-0.' + "0" * 129 + '1","1","99.9","100"]},'
        '"scaled":{"N":"120000"},"series":{"L":[{"N":"10"},{"N":"0"},{"N":"10.01"}]},'
        '"sk":{"N":"0"},"tiny":{"N":"0.' + "0" * 119 + '125"},'
        '"total":{"N":"12345678901234567890123456789012345678"}}',
        4597123663886911623,
        137,
    ),
    "wide": (
        {"pk": {"S": "wide#1"}, "sk": {"N": "1"}, **_WIDE},
        "{"
        + ",".join(
            f'"{name}":{orjson.dumps(_WIDE[name]).decode()}'
            for name in sorted(_WIDE)
            if name < "pk"
        )
        + ',"pk":{"S":"wide#1"},"sk":{"N":"1"}}',
        5878240623870771098,
        1285,
    ),
}


@pytest.mark.parametrize("shape", sorted(GOLDEN_SHAPES))
def test_golden_canonical_string_per_shape(shape: str) -> None:
    item, canonical, hash_value, size = GOLDEN_SHAPES[shape]
    record = encode_record(item, ["pk", "sk"])
    assert record.item == canonical
    assert record.hash == hash_value
    assert record.size == size
    assert canonical_json(item) == canonical
    assert item_size(item) == size
    assert record.key == codec.canonical_key(item, ["pk", "sk"])
    again = encode_record(orjson.loads(canonical), ["pk", "sk"])  # canonical input, fast paths
    assert (again.item, again.hash, again.size) == (canonical, hash_value, size)


# --------------------------------------------------------------------------- Python values


def test_python_values() -> None:
    item = {
        "n": {"N": "1.50"},
        "b": {"B": "AAE="},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": ["AA=="]},
        "m": {"M": {"x": {"NULL": True}, "l": {"L": [{"BOOL": False}]}}},
    }
    values = item_to_python(item)
    assert values == {
        "n": Decimal("1.5"),
        "b": b"\x00\x01",
        "ss": {"a", "b"},
        "ns": {Decimal(1), Decimal("2.5")},
        "bs": {b"\x00"},
        "m": {"x": None, "l": [False]},
    }
    assert canonical_json(item_from_python(values)) == canonical_json(item)
    assert canonical_value_json({"N": "1.50"}) == '{"N":"1.5"}'


# --------------------------------------------------------------------------- hypothesis

_significands = st.integers(min_value=1, max_value=10**38 - 1)


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """A valid DynamoDB number in canonical spelling."""
    significand = draw(_significands)
    digits = len(str(significand))
    exponent = draw(st.integers(min_value=-130 - digits + 1, max_value=125 - digits + 1))
    sign = draw(st.sampled_from(["", "-"]))
    zero = draw(st.integers(0, 20)) == 0
    return "0" if zero else normalize_number(f"{sign}{significand}E{exponent}")


def respell(number: str, rng: random.Random) -> str:
    """Another spelling of the same number."""
    value = Decimal(number)
    choice = rng.randrange(5)
    if choice == 0:
        return f"{value:E}"
    if choice == 1:
        return number + ("0" if "." in number else ".0")
    if choice == 2:
        return ("-" if number.startswith("-") else "+") + "00" + number.lstrip("-")
    if choice == 3:
        sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        return ("-" if sign else "") + "".join(map(str, digits)) + "000" + f"E{exponent - 3}"
    return number


_text = st.text(max_size=12)
_binary = st.binary(max_size=12)

_scalars = st.one_of(
    _text.map(lambda s: {"S": s}),
    numbers().map(lambda n: {"N": n}),
    _binary.map(lambda b: {"B": base64.b64encode(b).decode()}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(_text, min_size=1, max_size=4).map(lambda v: {"SS": v}),
    st.lists(numbers(), min_size=1, max_size=4).map(lambda v: {"NS": v}),
    st.lists(_binary, min_size=1, max_size=4).map(
        lambda v: {"BS": [base64.b64encode(b).decode() for b in v]}
    ),
)
values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda v: {"L": v}),
        st.dictionaries(_text, inner, max_size=4).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)
items = st.dictionaries(st.text(min_size=1, max_size=8), values, min_size=1, max_size=6)


def scramble(value: Any, rng: random.Random) -> Any:
    """The same typed value spelled differently: map order, set order and duplicates,
    number spellings, binary as bytes instead of base64."""
    ((tag, inner),) = value.items()
    if tag == "M":
        keys = list(inner)
        rng.shuffle(keys)
        return {"M": {k: scramble(inner[k], rng) for k in keys}}
    if tag == "L":
        return {"L": [scramble(v, rng) for v in inner]}
    if tag == "N":
        return {"N": respell(inner, rng)}
    if tag == "B":
        return {"B": base64.b64decode(inner) if rng.random() < 0.5 else inner}
    if tag in ("SS", "NS", "BS"):
        elements = [*inner, rng.choice(inner)]
        rng.shuffle(elements)
        if tag == "NS":
            elements = [respell(e, rng) for e in elements]
        if tag == "BS":
            elements = [base64.b64decode(e) if rng.random() < 0.5 else e for e in elements]
        return {tag: elements}
    return value


def scramble_item(item: dict[str, Any], seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    names = list(item)
    rng.shuffle(names)
    return {name: scramble(item[name], rng) for name in names}


_settings = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(items, st.integers(0, 2**32))
def test_canonical_form_ignores_spelling(item: dict[str, Any], seed: int) -> None:
    other = scramble_item(item, seed)
    assert canonical_json(other) == canonical_json(item)
    assert content_hash(canonical_json(other)) == content_hash(canonical_json(item))
    assert item_size(other) == item_size(item)


@_settings
@given(items)
def test_round_trip_wire_python_wire(item: dict[str, Any]) -> None:
    canonical = canonical_json(item)
    assert canonical_json(item_from_python(item_to_python(item))) == canonical
    again = orjson.loads(canonical)
    assert canonical_json(again) == canonical  # canonical text is a fixed point
    record = encode_record({**again, "\x00pk": {"S": "k"}}, ["\x00pk"])
    assert record.item == canonical_json({**item, "\x00pk": {"S": "k"}})


@_settings
@given(st.lists(values, min_size=2, max_size=4, unique_by=canonical_value_json))
def test_list_order_matters(elements: list[dict[str, Any]]) -> None:
    forward = canonical_json({"l": {"L": elements}})
    backward = canonical_json({"l": {"L": elements[::-1]}})
    assert forward != backward


@_settings
@given(numbers(), st.integers(0, 2**32))
def test_numbers_respelled_normalise_back(number: str, seed: int) -> None:
    rng = random.Random(seed)
    assert normalize_number(respell(number, rng)) == number
    assert Decimal(normalize_number(number)) == Decimal(number)

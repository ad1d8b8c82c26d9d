"""Attribute-level changes and change signatures (pitrdiff.diff.changes)."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pitrdiff import codec
from pitrdiff.diff.changes import (
    Change,
    diff_items,
    diff_json,
    fold_path,
    name_segment,
    signature_of,
)


def pairs(changes: list[Change]) -> list[tuple[str, str]]:
    return [(c.path, c.kind) for c in changes]


def test_equal_items_have_no_changes() -> None:
    item = {"pk": {"S": "a"}, "m": {"M": {"l": {"L": [{"N": "1"}]}}}}
    assert diff_items(item, item) == ([], "")


def test_top_level_kinds_and_direction() -> None:
    """``added`` = present in live only; old is restored, new is live."""
    restored = {"pk": {"S": "a"}, "gone": {"S": "x"}, "n": {"N": "1"}, "t": {"N": "1"}}
    live = {"pk": {"S": "a"}, "new": {"BOOL": True}, "n": {"N": "2"}, "t": {"S": "1"}}
    changes, signature = diff_items(restored, live)
    assert changes == [
        Change("gone", "removed", '{"S":"x"}', None),
        Change("n", "modified", '{"N":"1"}', '{"N":"2"}'),
        Change("new", "added", None, '{"BOOL":true}'),
        Change("t", "type-changed", '{"N":"1"}', '{"S":"1"}'),
    ]
    assert signature == "gone, n, new, t"


def test_nested_maps_and_lists() -> None:
    restored = {
        "address": {"M": {"city": {"S": "Lyon"}, "geo": {"M": {"lat": {"N": "1"}}}}},
        "items": {"L": [{"M": {"price": {"N": "1"}}}, {"M": {"price": {"N": "2"}}}, {"S": "x"}]},
    }
    live = {
        "address": {"M": {"city": {"S": "Paris"}, "geo": {"M": {"lat": {"N": "1"}}}}},
        "items": {"L": [{"M": {"price": {"N": "3"}}}, {"M": {"price": {"N": "4"}}}]},
    }
    changes, signature = diff_items(restored, live)
    assert pairs(changes) == [
        ("address.city", "modified"),
        ("items[0].price", "modified"),
        ("items[1].price", "modified"),
        ("items[2]", "removed"),
    ]
    assert signature == "address.city, items[*], items[*].price"


def test_list_grows() -> None:
    changes, signature = diff_items({"l": {"L": []}}, {"l": {"L": [{"S": "a"}, {"S": "b"}]}})
    assert changes == [
        Change("l[0]", "added", None, '{"S":"a"}'),
        Change("l[1]", "added", None, '{"S":"b"}'),
    ]
    assert signature == "l[*]"


def test_sets_are_one_modification_of_the_attribute() -> None:
    changes, signature = diff_items(
        {"ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1"]}},
        {"ss": {"SS": ["a"]}, "ns": {"NS": ["1", "2"]}},
    )
    assert changes == [
        Change("ns", "modified", '{"NS":["1"]}', '{"NS":["1","2"]}'),
        Change("ss", "modified", '{"SS":["a","b"]}', '{"SS":["a"]}'),
    ]
    assert signature == "ns, ss"


def test_names_that_need_quoting() -> None:
    assert name_segment("city") == "city"
    assert name_segment("_a-b9") == "_a-b9"
    for name, quoted in [
        ("a.b", '"a.b"'),
        ("#x", '"#x"'),
        ("with space", '"with space"'),
        ("[0]", '"[0]"'),
        ('q"uote', '"q\\"uote"'),
        ("9lives", '"9lives"'),
        ("é", '"é"'),
    ]:
        assert name_segment(name) == quoted
    changes, signature = diff_items(
        {"a.b": {"M": {"[0]": {"L": [{"N": "1"}]}}}},
        {"a.b": {"M": {"[0]": {"L": [{"N": "2"}]}}}},
    )
    assert pairs(changes) == [('"a.b"."[0]"[0]', "modified")]
    assert signature == '"a.b"."[0]"[*]'


def test_fold_path_leaves_quoted_names_alone() -> None:
    assert fold_path("items[12].price") == "items[*].price"
    assert fold_path('"a[1]"[2]."b\\"[3]"') == '"a[1]"[*]."b\\"[3]"'
    assert fold_path("plain") == "plain"


def test_signature_is_sorted_and_deduplicated() -> None:
    assert signature_of(["b", "a", "b", "items[*]"]) == "a, b, items[*]"
    assert signature_of([]) == ""


def test_diff_json_compares_canonical_strings() -> None:
    restored = codec.canonical_json({"n": {"N": "1.50"}, "s": {"SS": ["b", "a"]}})
    live = codec.canonical_json({"s": {"SS": ["a", "b"]}, "n": {"N": "15E-1"}})
    assert diff_json(restored, live) == ([], "")


# --------------------------------------------------------------------------- properties

_names = st.text(alphabet='ab.[]" _é#0', min_size=1, max_size=4)
_numbers = st.decimals(
    allow_nan=False, allow_infinity=False, places=3, min_value=-1000, max_value=1000
)
_scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=5)),
    st.builds(lambda n: {"N": str(n)}, _numbers),
    st.builds(lambda b: {"B": b}, st.binary(max_size=3)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=3), min_size=1, max_size=3)),
    st.builds(lambda s: {"NS": [str(n) for n in s]}, st.sets(_numbers, min_size=1, max_size=3)),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.builds(lambda d: {"M": d}, st.dictionaries(_names, inner, max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
    ),
    max_leaves=8,
)
_items = st.dictionaries(_names, _values, max_size=4)


def _canonical(item: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(codec.canonical_json(item))
    return result


def _top_name(path: str) -> str:
    if path.startswith('"'):
        name, _ = json.JSONDecoder().raw_decode(path)
        return str(name)
    match = re.match(r"[^.\[]+", path)
    assert match
    return match.group(0)


@settings(max_examples=100, deadline=None)
@given(_items, _items)
def test_changes_are_empty_iff_items_are_equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    ca, cb = _canonical(a), _canonical(b)
    changes, signature = diff_items(ca, cb)
    assert (not changes) == (codec.canonical_json(a) == codec.canonical_json(b))
    assert (signature == "") == (not changes)
    # Every changed path starts at an attribute that differs, and every
    # differing attribute has at least one change.
    differing = {n for n in ca.keys() | cb.keys() if ca.get(n) != cb.get(n)}
    assert {_top_name(c.path) for c in changes} == differing
    for change in changes:
        assert change.kind in ("added", "removed", "modified", "type-changed")
        assert (change.old is None) == (change.kind == "added")
        assert (change.new is None) == (change.kind == "removed")
        for side in (change.old, change.new):
            if side is not None:
                assert codec.canonical_value_json(json.loads(side)) == side


@settings(max_examples=100, deadline=None)
@given(_items)
def test_an_item_never_differs_from_itself(a: dict[str, Any]) -> None:
    assert diff_items(_canonical(a), _canonical(a)) == ([], "")

"""Attribute-level changes of a changed item, and its change signature.

Both versions of a changed item are compared in canonical wire form (see
``docs/FORMAT.md``), so equivalent spellings (``1.50`` and ``1.5``, sets in
another order) are never changes. The walk is a plain recursion over the two
parsed items: a few microseconds per item pair, where deepdiff takes about
half a millisecond (``bench/bench_diff.py`` measures both).

Rules
-----
- Paths: top-level names bare (``price``), nested map keys joined with ``.``
  (``address.city``), list elements as ``[i]`` (``tags[2]``); a name that is not
  a plain identifier (``[A-Za-z_][A-Za-z0-9_-]*``) is written as a JSON string
  (``"a.b"[0]."#x"``).
- Kinds: ``added`` (present in live, absent in restored), ``removed`` (present
  in restored, absent in live), ``modified`` (same type, other value),
  ``type-changed`` (another type tag, e.g. ``N`` became ``S``).
- ``old`` is the restored value, ``new`` the live one, each as canonical
  DynamoDB JSON of the typed value (``{"N":"1.5"}``), ``None`` where absent.
- Maps (``M``) are walked key by key and lists (``L``) index by index (an
  element inserted at the front shows as every later index modified plus one
  added at the end: lists are positional in DynamoDB too). Sets (``SS``,
  ``NS``, ``BS``) are single values: a set that gained or lost elements is one
  ``modified`` change of the set attribute, with both whole sets.
- The **change signature** is the sorted, de-duplicated changed paths with
  list indexes folded to ``[*]``, joined with ``", "`` (``items[*].price, status``).
"""

from __future__ import annotations

import functools
import re
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson

KINDS = ("added", "removed", "modified", "type-changed")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_DUMPS = orjson.OPT_SORT_KEYS


@dataclass(frozen=True)
class Change:
    """One attribute-level change of a changed item.

    Attributes
    ----------
    path
        Where the change is (``address.city``, ``tags[2]``).
    kind
        ``added``, ``removed``, ``modified`` or ``type-changed``.
    old
        The restored value as canonical DynamoDB JSON (``{"N":"1.5"}``), or ``None``.
    new
        The live value as canonical DynamoDB JSON, or ``None``.
    """

    path: str
    kind: str
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        """The Parquet / JSON form: ``{"path", "kind", "old", "new"}``."""
        return {"path": self.path, "kind": self.kind, "old": self.old, "new": self.new}


@functools.lru_cache(maxsize=65536)
def name_segment(name: str) -> str:
    """Write one attribute or map-key name as a path segment (quoted when not plain).

    Examples
    --------
    >>> name_segment("city"), name_segment("a.b")
    ('city', '"a.b"')
    """
    if _PLAIN_NAME.fullmatch(name):
        return name
    return orjson.dumps(name).decode("utf-8")


def _dump(typed: Any) -> str:
    return orjson.dumps(typed, option=_DUMPS).decode("utf-8")


class _Walk:
    """Appends the changes of item pairs to flat columns (path, kind, old, new)."""

    __slots__ = ("folded", "kinds", "news", "olds", "paths")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.kinds: list[str] = []
        self.olds: list[str | None] = []
        self.news: list[str | None] = []
        self.folded: set[str] = set()

    def add(self, path: str, folded: str, kind: str, old: Any, new: Any) -> None:
        self.paths.append(path)
        self.kinds.append(kind)
        self.olds.append(None if old is None else _dump(old))
        self.news.append(None if new is None else _dump(new))
        self.folded.add(folded)

    def mapping(
        self, restored: Mapping[str, Any], live: Mapping[str, Any], prefix: str, fprefix: str
    ) -> None:
        # The usual case (same names on both sides) needs no set union; sorting
        # names already in order (parsed canonical JSON) is a linear check.
        both = restored.keys()
        names = sorted(both if both == live.keys() else both | live.keys())
        for name in names:
            old = restored.get(name)
            new = live.get(name)
            if old == new:
                continue
            segment = name_segment(name)
            self.value(old, new, prefix + segment, fprefix + segment)

    def value(self, old: Any, new: Any, path: str, folded: str) -> None:
        if old is None:
            self.add(path, folded, "added", None, new)
            return
        if new is None:
            self.add(path, folded, "removed", old, None)
            return
        ((old_tag, old_value),) = old.items()
        ((new_tag, new_value),) = new.items()
        if old_tag != new_tag:
            self.add(path, folded, "type-changed", old, new)
        elif old_tag == "M":
            self.mapping(old_value, new_value, path + ".", folded + ".")
        elif old_tag == "L":
            self.sequence(old_value, new_value, path, folded + "[*]")
        else:
            self.add(path, folded, "modified", old, new)

    def sequence(self, old: list[Any], new: list[Any], path: str, folded: str) -> None:
        common = min(len(old), len(new))
        for index in range(common):
            if old[index] != new[index]:
                self.value(old[index], new[index], f"{path}[{index}]", folded)
        for index in range(common, len(old)):
            self.add(f"{path}[{index}]", folded, "removed", old[index], None)
        for index in range(common, len(new)):
            self.add(f"{path}[{index}]", folded, "added", None, new[index])

    def signature(self) -> str:
        signature = signature_of(self.folded)
        self.folded = set()
        return signature


class ChangeColumns:
    """Attribute-level changes of many item pairs, collected as Arrow columns.

    The diff writer feeds it one batch of changed rows at a time, then takes
    :meth:`arrays`: a ``list<struct<path, kind, old, new>>`` column and a
    signature column, built without a Python object per change.
    """

    def __init__(self) -> None:
        self._walk = _Walk()
        self._offsets = [0]
        self._signatures: list[str] = []

    def add_json(self, restored: str | bytes, live: str | bytes) -> None:
        """Add one pair given as canonical JSON strings."""
        self._walk.mapping(orjson.loads(restored), orjson.loads(live), "", "")
        self._offsets.append(len(self._walk.paths))
        self._signatures.append(self._walk.signature())

    def arrays(self, change_type: Any) -> tuple[Any, Any]:
        """``(changes, signatures)`` as Arrow arrays; ``change_type`` is the list type."""
        import pyarrow as pa

        w = self._walk
        structs = pa.StructArray.from_arrays(
            [
                string_array(w.paths),
                string_array(w.kinds),
                string_array(w.olds),
                string_array(w.news),
            ],
            fields=list(change_type.value_type),
        )
        offsets = pa.Array.from_buffers(
            pa.int32(), len(self._offsets), [None, pa.py_buffer(array("i", self._offsets))]
        )
        changes = pa.ListArray.from_arrays(offsets, structs, type=change_type)
        return changes, string_array(self._signatures)


def string_array(values: Sequence[str | None]) -> Any:
    """An Arrow ``string`` array of Python strings (``None`` is null), built from buffers.

    The same array as ``pa.array(values, pa.string())``, which imports pandas
    on its first call if it is installed (pyarrow checks whether a list is
    "array-like"): about 0.25 s of a diff's start that nothing else needs.

    Raises
    ------
    OverflowError
        When the strings hold 2 GiB or more of UTF-8 (32-bit offsets).
    """
    import pyarrow as pa

    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = array("i", accumulate(map(len, encoded), initial=0))
    validity = None
    if any(v is None for v in values):
        import numpy as np

        present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
        validity = pa.py_buffer(np.packbits(present, bitorder="little"))
    return pa.StringArray.from_buffers(
        len(values), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)), validity
    )


def diff_items(restored: Mapping[str, Any], live: Mapping[str, Any]) -> tuple[list[Change], str]:
    """Compare two versions of one item (canonical wire form).

    Parameters
    ----------
    restored
        The item as it was at T (from the restored table).
    live
        The item as it is now.

    Returns
    -------
    tuple
        ``(changes, signature)``: the attribute-level changes in path order,
        and the change signature (``""`` when the items are equal).

    Examples
    --------
    >>> changes, signature = diff_items(
    ...     {"pk": {"S": "a"}, "tags": {"L": [{"S": "x"}]}, "n": {"N": "1"}},
    ...     {"pk": {"S": "a"}, "tags": {"L": [{"S": "y"}]}},
    ... )
    >>> [(c.path, c.kind) for c in changes], signature
    ([('n', 'removed'), ('tags[0]', 'modified')], 'n, tags[*]')
    """
    walk = _Walk()
    walk.mapping(restored, live, "", "")
    changes = [
        Change(path, kind, old, new)
        for path, kind, old, new in zip(walk.paths, walk.kinds, walk.olds, walk.news, strict=True)
    ]
    return changes, walk.signature()


def diff_json(restored: str | bytes, live: str | bytes) -> tuple[list[Change], str]:
    """:func:`diff_items` on two canonical JSON strings (as stored in the datasets)."""
    return diff_items(orjson.loads(restored), orjson.loads(live))


def signature_of(folded_paths: Iterable[str]) -> str:
    """Join folded paths into a change signature: sorted, de-duplicated, ``", "``."""
    return ", ".join(sorted(set(folded_paths)))


def fold_path(path: str) -> str:
    """Fold the list indexes of a path to ``[*]`` (outside quoted names).

    Examples
    --------
    >>> fold_path('items[3].price'), fold_path('"a[1]"[2]')
    ('items[*].price', '"a[1]"[*]')
    """
    out: list[str] = []
    index = 0
    while index < len(path):
        char = path[index]
        if char == '"':
            end = index + 1
            while end < len(path) and path[end] != '"':
                end += 2 if path[end] == "\\" else 1
            out.append(path[index : end + 1])
            index = end + 1
        elif char == "[":
            end = path.index("]", index)
            out.append("[*]")
            index = end + 1
        else:
            out.append(char)
            index += 1
    return "".join(out)

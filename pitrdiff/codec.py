"""Canonical DynamoDB JSON, content hash, item size and Python values.

Items arrive in DynamoDB's low-level JSON ("wire form"): a mapping of attribute
name to a one-key mapping ``{tag: value}`` with ``tag`` one of ``S N B BOOL NULL
M L SS NS BS``. Binary values may be base64 text (as on the wire and in S3
exports) or ``bytes`` (as botocore returns them); both are accepted.

The canonical form (the rules are in ``docs/FORMAT.md`` and pinned by tests):

- map keys (the item's attribute names, and ``M`` keys) sorted by code point;
- numbers in one plain spelling: no exponent, no leading zeros, no trailing
  fractional zeros, no ``+``, ``0`` for zero (``1.50``, ``1.5``, ``15E-1`` → ``1.5``);
- binary as standard padded base64 of the bytes;
- ``SS`` sorted by code point, ``NS`` by numeric value, ``BS`` by bytes, each
  de-duplicated (after normalising, so ``["1", "1.0"]`` is one number);
- lists keep their order;
- compact JSON (no spaces), UTF-8, non-ASCII characters not escaped.

Two items are equal iff their canonical strings are equal; the content hash is
xxh3-64 of the canonical UTF-8 bytes. Numbers never pass through ``float``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

import orjson
import xxhash
from xxhash import xxh3_64_intdigest

from pitrdiff.errors import CodecError

_compiled: Callable[[Any], tuple[dict[str, Any], int] | None] | None = None
_compiled_encode: Callable[[Any, Sequence[str]], Record | None] | None = None
_compiled_lines: Callable[..., tuple[int, int, int, int]] | None = None
_compiled_items: Callable[..., tuple[int, int, int, bool]] | None = None
_items_span: Callable[[bytes], tuple[int, int] | None] | None = None
if os.environ.get("PITRDIFF_NO_COMPILED", "") in ("", "0"):
    try:  # built by `pip install` when a C compiler is present (setup.py: optional)
        from pitrdiff import _canon

        _compiled = _canon.canonicalize
        _compiled_encode = _canon.encode_record
        _compiled_lines = _canon.encode_lines
        _compiled_items = _canon.encode_items
        _items_span = _canon.items_span
    except ImportError:  # not built: the Python walk below does everything
        _compiled = _compiled_encode = _compiled_lines = _compiled_items = _items_span = None
COMPILED: bool = _compiled is not None
"""True when :func:`canonicalize` and the encoders run the C code of ``pitrdiff._canon``.

The C walk handles well-formed common input and returns the same objects as
the Python walk; on anything else (errors included) the Python walk runs on
the item. Set ``PITRDIFF_NO_COMPILED=1`` before import to use Python only;
setting ``codec._compiled`` to None does it in a running process.
"""

S, N, B, BOOL, NULL, M, L, SS, NS, BS = "S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"
TYPE_TAGS = (S, N, B, BOOL, NULL, M, L, SS, NS, BS)
KEY_TYPES = (S, N, B)

MAX_SIGNIFICANT_DIGITS = 38
MIN_EXPONENT = -130  # smallest magnitude 1E-130
MAX_EXPONENT = 125  # largest magnitude 9.99…E+125
MAX_ITEM_SIZE = 400 * 1024

Item = dict[str, Any]
"""An item in low-level DynamoDB JSON: attribute name → ``{tag: value}``."""

# re.ASCII: \d must not match other scripts' digits ("١" is not a DynamoDB number).
# Groups: sign, whole digits, fraction digits, exponent.
_NUMBER_RE = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?", re.ASCII)
# The canonical spelling: no exponent, no leading zeros, no trailing fractional
# zeros, no "+", "0" for zero. Up to 38 characters such a spelling cannot exceed
# 38 digits or DynamoDB's range; longer ones are checked by _canonical_size.
_CANONICAL_RE = re.compile(r"-?(?:[1-9]\d*(?:\.\d*[1-9])?|0\.\d*[1-9])|0", re.ASCII)
_canonical_match = _CANONICAL_RE.fullmatch
_SHORT_NUMBER_CACHE_SIZE = 1 << 16
_MAX_EXPONENT_DIGITS = 6  # longer exponents are out of range (or the number is zero)
_DUMPS_OPTIONS = orjson.OPT_SORT_KEYS


# Canonical number spellings seen recently → their item-size bytes. A lookup is
# cheaper than validating again; only valid canonical spellings are entered, so
# a hit means "valid and canonical". Cleared when full.
_short_number_sizes: dict[str, int] = {}


def _canonical_size(text: str) -> int | None:
    """Item-size bytes of ``text`` if it is a valid number in canonical spelling, else None.

    Only string operations (no ``Decimal``): this is the hot path of number-heavy
    items, whose numbers arrive canonical from DynamoDB. A valid spelling is
    remembered in the cache.
    """
    negative = text[:1] == "-"
    body = text[1:] if negative else text
    if body.isdigit() and body.isascii():  # an integer (isdigit alone admits "١" and "²")
        if body[0] == "0" and (len(body) > 1 or negative):  # "007", "-0"
            return None
        digits = len(body.rstrip("0"))
        adjusted = len(body) - 1
    elif not _canonical_match(text):
        return None
    elif body[0] == "0":  # "0.000ddd"
        fraction = body[2:]
        significant = fraction.lstrip("0")
        digits = len(significant)
        adjusted = len(significant) - len(fraction) - 1
    else:
        whole, _, fraction = body.partition(".")
        adjusted = len(whole) - 1
        digits = len(whole) + len(fraction) if fraction else len(whole.rstrip("0"))
    if digits > MAX_SIGNIFICANT_DIGITS or not MIN_EXPONENT <= adjusted <= MAX_EXPONENT:
        return None
    size = (max(digits, 1) + 1) // 2 + 1  # AWS: about 1 byte per 2 significant digits, + 1
    if len(_short_number_sizes) >= _SHORT_NUMBER_CACHE_SIZE:
        _short_number_sizes.clear()
    _short_number_sizes[text] = size
    return size


def _number_size_of(text: Any) -> int | None:
    """Size of a canonical valid number (cached), None when ``text`` is anything else."""
    if type(text) is not str:
        return None
    size = _short_number_sizes.get(text)
    return size if size is not None else _canonical_size(text)


def normalize_number(text: str) -> str:
    """Validate a DynamoDB number and return its canonical spelling.

    Parameters
    ----------
    text
        The number as DynamoDB JSON spells it (``"1.50"``, ``"15E-1"``, ``"-0"``).

    Returns
    -------
    str
        The plain canonical spelling (``"1.5"``, ``"1.5"``, ``"0"``).

    Raises
    ------
    CodecError
        When ``text`` is not a number, has more than 38 significant digits, or
        lies outside DynamoDB's range (1E-130 to 9.99…E+125 in magnitude).
    """
    if type(text) is not str:
        raise CodecError(f"a DynamoDB number must be a string, not {type(text).__name__}")
    if text in _short_number_sizes or (text and _canonical_size(text) is not None):
        return text
    match = _NUMBER_RE.fullmatch(text)
    if match is None or not (match.group(2) or match.group(3)):
        raise CodecError(f"not a DynamoDB number: {text[:60]!r}")
    sign, whole, fraction, exponent_text = match.groups()
    fraction = fraction or ""
    # value = (whole + fraction) * 10 ** (exponent - len(fraction)); done on digit strings,
    # never through float (and without Decimal, which costs several µs per number).
    all_digits = (whole + fraction).lstrip("0")
    if not all_digits:
        return "0"
    digits = all_digits.rstrip("0")
    exponent = len(all_digits) - len(digits) - len(fraction)
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        raise CodecError(
            f"number {text[:60]!r} has {len(digits)} significant digits; DynamoDB keeps 38"
        )
    if exponent_text is not None:
        if len(exponent_text.lstrip("+-").lstrip("0")) > _MAX_EXPONENT_DIGITS:
            exponent = MAX_EXPONENT * 10 if exponent_text[0] != "-" else MIN_EXPONENT * 10
        else:
            exponent += int(exponent_text)
    adjusted = exponent + len(digits) - 1
    if not MIN_EXPONENT <= adjusted <= MAX_EXPONENT:
        raise CodecError(f"number {text[:60]!r} is outside DynamoDB's range (1E-130 to 1E+126)")
    if exponent >= 0:
        body = digits + "0" * exponent
    elif -exponent >= len(digits):
        body = "0." + "0" * (-exponent - len(digits)) + digits
    else:
        body = digits[:exponent] + "." + digits[exponent:]
    return "-" + body if sign == "-" else body


def _number_size(canonical: str) -> int:
    # AWS: about 1 byte per two significant digits, plus 1 byte.
    digits = len(canonical.lstrip("-0.").replace(".", "").rstrip("0")) or 1
    return (digits + 1) // 2 + 1


# --------------------------------------------------------------------------- binary


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CodecError(f"binary value is not valid base64: {value[:40]!r}") from exc
    raise CodecError(f"a DynamoDB binary must be base64 text or bytes, not {type(value).__name__}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- canonical form


def _text_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _canon_map(
    value: dict[str, Any], depth: int, names: str = "map keys"
) -> tuple[dict[str, Any] | None, int]:
    """Canonical values of a map's entries: ``(copy, or None when already canonical, size)``.

    The size counts the names and the values (not the map's own 3 + n bytes).
    Raises CodecError for a non-string name (saying ``names``); the caller
    checks empty names.
    """
    try:  # every name's bytes at once
        joined = "".join(value)
        size = len(joined) if joined.isascii() else len(joined.encode("utf-8"))
    except TypeError:
        name = next(name for name in value if not isinstance(name, str))
        raise CodecError(f"{names} must be strings, not {name!r:.40}") from None
    out: dict[str, Any] | None = None
    for name, inner in value.items():
        # Hot path, written out in _canon_map and _canon_list alike on purpose: a
        # shared helper costs a call per value (measured, bench/bench_export.py).
        if type(inner) is dict and len(inner) == 1:  # inline S, cached canonical N, BOOL
            text = inner.get(S)
            if type(text) is str:
                size += len(text) if text.isascii() else len(text.encode("utf-8"))
                continue
            text = inner.get(N)
            if type(text) is str:
                inner_size = _short_number_sizes.get(text) or _canonical_size(text)
                if inner_size is not None:
                    size += inner_size
                    continue
            elif type(inner.get(BOOL)) is bool:
                size += 1
                continue
        canon, inner_size = _canon_value(inner, depth + 1)
        size += inner_size
        if canon is not inner:
            if out is None:
                out = dict(value)
            out[name] = canon
    return out, size


def _canon_list(value: list[Any], depth: int) -> tuple[list[Any] | None, int]:
    """Canonical elements of a list: ``(copy, or None when already canonical, size)``."""
    elements: list[Any] | None = None
    size = 0
    for index, inner in enumerate(value):
        # Hot path, written out in _canon_map and _canon_list alike on purpose: a
        # shared helper costs a call per value (measured, bench/bench_export.py).
        if type(inner) is dict and len(inner) == 1:  # inline S, cached canonical N, BOOL
            text = inner.get(S)
            if type(text) is str:
                size += len(text) if text.isascii() else len(text.encode("utf-8"))
                continue
            text = inner.get(N)
            if type(text) is str:
                inner_size = _short_number_sizes.get(text) or _canonical_size(text)
                if inner_size is not None:
                    size += inner_size
                    continue
            elif type(inner.get(BOOL)) is bool:
                size += 1
                continue
        canon, inner_size = _canon_value(inner, depth + 1)
        size += inner_size
        if canon is not inner:
            if elements is None:
                elements = list(value)
            elements[index] = canon
    return elements, size


def _canon_binary(value: Any) -> tuple[str | None, int]:
    """``(canonical base64 or None when value already is, byte count)`` of a binary value."""
    if type(value) is str:
        # Text that decodes and re-encodes to itself is valid canonical base64.
        try:
            raw = binascii.a2b_base64(value)
        except (binascii.Error, ValueError):
            raw = None
        if raw is not None and binascii.b2a_base64(raw, newline=False) == value.encode():
            return None, len(raw)
    raw = _to_bytes(value)
    return _b64(raw), len(raw)


def _canon_value(typed: Any, depth: int) -> tuple[dict[str, Any], int]:
    """Return ``(canonical typed value, size in bytes)`` of one typed value.

    This is the hot loop of every export: the common cases come first and
    return the input object itself when it is already canonical.
    """
    if type(typed) is not dict or len(typed) != 1:
        if isinstance(typed, Mapping) and len(typed) == 1:
            typed = dict(typed)
        else:
            raise CodecError(
                f"a DynamoDB value must be a one-key mapping {{tag: value}}: {typed!r:.80}"
            )
    for tag in typed:
        value = typed[tag]
    if tag == S:
        if type(value) is not str:
            raise CodecError(f"S value must be a string, not {type(value).__name__}")
        # isascii() is O(1) in CPython; only non-ASCII text needs encoding to count bytes.
        return typed, (len(value) if value.isascii() else len(value.encode("utf-8")))
    if tag == N:
        size = _number_size_of(value)
        if size is not None:
            return typed, size
        number = normalize_number(value)
        return {N: number}, _number_size(number)
    if tag in (M, L):
        if depth >= 32:
            raise CodecError("item nests deeper than DynamoDB's 32 levels")
        if tag == M:
            if type(value) is not dict:
                if not isinstance(value, Mapping):
                    raise CodecError(f"M value must be a mapping, not {type(value).__name__}")
                value = dict(value)
                typed = {M: value}
            entries: dict[str, Any] | list[Any] | None
            entries, size = _canon_map(value, depth)
        else:
            if type(value) is not list:
                if not isinstance(value, tuple):
                    raise CodecError(f"L value must be a list, not {type(value).__name__}")
                value = list(value)
                typed = {L: value}
            entries, size = _canon_list(value, depth)
        return (typed if entries is None else {tag: entries}), size + 3 + len(value)
    if tag == BOOL:
        if type(value) is not bool:
            raise CodecError(f"BOOL value must be true or false, not {value!r:.40}")
        return typed, 1
    if tag == NULL:
        if value is not True:
            raise CodecError(f"NULL value must be true, not {value!r:.40}")
        return typed, 1
    if tag == B:
        text, size = _canon_binary(value)
        return (typed if text is None else {B: text}), size
    if tag in (SS, NS, BS):
        return _canon_set(typed, tag, value)
    raise CodecError(f"unknown DynamoDB type tag {tag!r}")


def _canon_set(typed: dict[str, Any], tag: str, value: Any) -> tuple[dict[str, Any], int]:
    """Canonical SS, NS or BS (``typed`` itself when already canonical).

    Elements are normalised, de-duplicated and sorted.
    """
    elements = value if type(value) is list and value else _set_elements(tag, value)
    if tag == SS:
        if set(map(type, elements)) != {str}:
            raise CodecError("SS elements must be strings")
        unique = sorted(set(elements))
        return (typed if unique == value else {SS: unique}), _text_size("".join(unique))
    if tag == NS:
        numbers: dict[str, int] = {}
        for text in elements:
            size = _number_size_of(text)
            if size is None:
                text = normalize_number(text)
                size = _number_size(text)
            numbers[text] = size
        ordered = list(numbers)
        if len(ordered) > 1:
            try:  # canonical integers order as ints, far cheaper than Decimal
                ordered.sort(key=int)
            except ValueError:
                ordered.sort(key=Decimal)
        return (typed if ordered == value else {NS: ordered}), sum(numbers.values())
    blobs: dict[bytes, str] = {}
    for element in elements:
        text, _ = _canon_binary(element)
        if text is None:
            blobs[binascii.a2b_base64(element)] = element
        else:
            blobs[base64.b64decode(text)] = text
    ordered_blobs = sorted(blobs)
    texts = [blobs[raw] for raw in ordered_blobs]
    return (typed if texts == value else {BS: texts}), sum(map(len, ordered_blobs))


def _set_elements(tag: str, value: Any) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise CodecError(f"{tag} value must be a list")
    elements = list(value)
    if not elements:
        raise CodecError(f"{tag} must not be empty: DynamoDB has no empty sets")
    return elements


def canonicalize(item: Mapping[str, Any]) -> tuple[Item, int]:
    """Return the canonical wire form of an item and its size in bytes.

    The returned mapping is not yet key-sorted; :func:`dumps` sorts keys (in C,
    with orjson). It shares unchanged parts with ``item`` (``item`` itself when
    already canonical): treat it as read-only.

    Parameters
    ----------
    item
        A low-level DynamoDB JSON item.

    Returns
    -------
    tuple
        ``(canonical item, item size)``; the size follows AWS's item-size rules.

    Raises
    ------
    CodecError
        When the item is not valid DynamoDB data.
    """
    if _compiled is not None:
        result = _compiled(item)
        if result is not None:
            return result
    return _canonicalize_python(item)


def _canonicalize_python(item: Mapping[str, Any]) -> tuple[Item, int]:
    """:func:`canonicalize` in Python: the reference, and the path of every error."""
    if type(item) is not dict:
        if not isinstance(item, Mapping):
            raise CodecError(f"an item must be a mapping, not {type(item).__name__}")
        item = dict(item)
    if "" in item:
        raise CodecError("attribute names must be non-empty strings, not ''")
    out, size = _canon_map(item, 0, "attribute names")
    return (cast(Item, item) if out is None else out), size


def dumps(canonical: Mapping[str, Any]) -> str:
    """Serialise an already canonical item (or value) to its canonical JSON string."""
    return orjson.dumps(canonical, option=_DUMPS_OPTIONS).decode("utf-8")


def canonical_json(item: Mapping[str, Any]) -> str:
    """Return the canonical DynamoDB JSON string of an item.

    Examples
    --------
    >>> canonical_json({"b": {"N": "1.50"}, "a": {"SS": ["y", "x", "y"]}})
    '{"a":{"SS":["x","y"]},"b":{"N":"1.5"}}'
    """
    return dumps(canonicalize(item)[0])


def canonical_value_json(typed: Mapping[str, Any]) -> str:
    """Return the canonical JSON of one typed value: ``{"N": "1.50"}`` → ``{"N":"1.5"}``."""
    return dumps(_canon_value(dict(typed), 1)[0])


def key_of(item: Mapping[str, Any], key_names: Sequence[str]) -> Item:
    """Return the key attributes of an item (canonical values), checking they are keys.

    Raises
    ------
    CodecError
        When a key attribute is missing or not of a key type (S, N, B).
    """
    key: Item = {}
    for name in key_names:
        typed = item.get(name)
        if typed is None:
            raise CodecError(f"item has no key attribute {name!r}")
        canon, _ = _canon_value(typed, 1)
        (tag,) = canon
        if tag not in KEY_TYPES:
            raise CodecError(f"key attribute {name!r} has type {tag}; keys are S, N or B")
        key[name] = canon
    return key


def canonical_key(item: Mapping[str, Any], key_names: Sequence[str]) -> str:
    """Return the canonical JSON of an item's key: the join key of exports and diffs."""
    return dumps(key_of(item, key_names))


def content_hash(canonical: str | bytes) -> int:
    """Return the content hash (xxh3-64 of the canonical UTF-8 bytes) as an unsigned int."""
    data = canonical.encode("utf-8") if isinstance(canonical, str) else canonical
    return int(xxhash.xxh3_64_intdigest(data))


def item_size(item: Mapping[str, Any]) -> int:
    """Return an item's size in bytes by AWS's documented item-size rules.

    Attribute names count their UTF-8 bytes; strings their UTF-8 bytes; binary
    its raw bytes; numbers about one byte per two significant digits plus one;
    ``BOOL`` and ``NULL`` one byte; lists and maps 3 bytes plus 1 byte per element.
    """
    return canonicalize(item)[1]


# --------------------------------------------------------------------------- records


def key_column_value(typed: Mapping[str, Any]) -> str | bytes:
    """The value of a key attribute as stored in its dataset column.

    ``S`` and ``N`` are text (the canonical number spelling, exact); ``B`` is bytes.
    """
    ((tag, value),) = typed.items()
    if tag == B:
        return _to_bytes(value)
    return str(value)


class Record:
    """One item as the export dataset stores it.

    Attributes
    ----------
    key
        Canonical JSON of the key attributes (the join key).
    item
        Canonical JSON of the whole item.
    hash
        xxh3-64 of ``item``'s UTF-8 bytes.
    size
        Item size in bytes (AWS rules).
    key_values
        The key attribute values as stored in their columns, in key-schema order.
    key_types
        The key attributes' type tags (``"S"``, ``"N"`` or ``"B"``), in key-schema
        order: a writer checks declared key types with them without parsing ``key``.
    """

    __slots__ = ("hash", "item", "key", "key_types", "key_values", "size")

    def __init__(
        self,
        key: str,
        item: str,
        hash: int,
        size: int,
        key_values: tuple[str | bytes, ...],
        key_types: tuple[str, ...] = (),
    ) -> None:
        self.key = key
        self.item = item
        self.hash = hash
        self.size = size
        self.key_values = key_values
        self.key_types = key_types


def encode_record(item: Mapping[str, Any], key_names: Sequence[str]) -> Record:
    """Canonicalise an item once and derive everything the export stores of it.

    Raises
    ------
    CodecError
        When the item is invalid or lacks a key attribute.
    """
    if _compiled is not None and _compiled_encode is not None:
        record = _compiled_encode(item, key_names)
        if record is not None:
            return record
    return _encode_record_python(item, key_names)


def _encode_record_python(item: Mapping[str, Any], key_names: Sequence[str]) -> Record:
    """:func:`encode_record` after :func:`canonicalize`: the reference, and every error path."""
    canon, size = canonicalize(item)
    key: Item = {}
    key_values: list[str | bytes] = []
    key_types: list[str] = []
    for name in key_names:
        typed = canon.get(name)
        if typed is None:
            raise CodecError(f"item has no key attribute {name!r}")
        for tag in typed:
            value = typed[tag]
        if tag in (S, N):
            key_values.append(value)
        elif tag == B:
            key_values.append(binascii.a2b_base64(value))  # canonical base64 by now
        else:
            raise CodecError(f"key attribute {name!r} is not of type S, N or B")
        key_types.append(tag)
        key[name] = typed
    text = orjson.dumps(canon, option=_DUMPS_OPTIONS)
    return Record(
        orjson.dumps(key, option=_DUMPS_OPTIONS).decode("utf-8"),
        text.decode("utf-8"),
        xxh3_64_intdigest(text),
        size,
        tuple(key_values),
        tuple(key_types),
    )


Columns = tuple[list[str], list[str], list[int], list[int], tuple[list[str | bytes], ...]]
"""A dataset writer's column lists: keys, items, hashes, sizes, one list per key attribute."""


def encodes_text() -> bool:
    """Whether :func:`encode_lines` and :func:`encode_items` run (the C code is in use)."""
    return _compiled is not None and _compiled_lines is not None and _compiled_items is not None


def encode_lines(
    lines: list[bytes],
    start: int,
    key_names: tuple[str, ...],
    declared: tuple[str | None, ...] | None,
    columns: Columns,
    room: int,
) -> tuple[int, int, int, int]:
    """Encode native export lines into column lists, in C, as far as it can go.

    Each of ``lines[start:]`` is one line of a DynamoDB export to S3 (DynamoDB
    JSON, ``{"Item": {...}}``). For each, what :func:`encode_record` gives for
    its item (key JSON, item JSON, hash, size, key values) is appended to
    ``columns`` (keys, items, hashes, sizes, and one list per key attribute),
    parsed straight from the JSON text by ``pitrdiff._canon`` without Python
    objects for the item. It stops once ``room`` characters of items were added
    or at the first line it leaves to the Python path (``orjson.loads`` and
    :func:`encode_record` then give the same record or the error): anything
    outside the common subset, a key attribute missing or of a type other than
    ``declared`` (type tags in key order, or None not to check). Without the C
    extension it encodes nothing.

    Returns
    -------
    tuple of int
        ``(next, count, characters, size_sum)``: the first line not encoded,
        how many were, the characters of their item JSON and the sum of their
        sizes (bytes, AWS rules).
    """
    if _compiled is None or _compiled_lines is None:
        return start, 0, 0, 0
    keys, items, hashes, sizes, key_values = columns
    return _compiled_lines(
        lines, start, key_names, declared, keys, items, hashes, sizes, key_values, room
    )


def items_span(body: bytes) -> tuple[int, int] | None:
    """Where the ``"Items"`` array is in a ``Scan`` response body, for :func:`encode_items`.

    ``(start, end)`` such that ``body[start:end]`` is the array, or None (no C
    code, or a body it does not read). Only the array is validated (by
    :func:`encode_items`); the caller parses ``body[:start] + b"[]" + body[end:]``.
    """
    if _compiled is None or _compiled_items is None or _items_span is None:
        return None
    return _items_span(body)


def encode_items(
    body: bytes,
    start: int,
    end: int,
    key_names: tuple[str, ...],
    declared: tuple[str | None, ...] | None,
    columns: Columns,
) -> tuple[int, int, int, bool]:
    """:func:`encode_lines` for the items of a JSON array (a ``Scan`` response's ``Items``).

    ``body[start:end]`` is the array (:func:`items_span`); its items, in wire
    form, are encoded in C into ``columns`` until one needs the Python path.

    Returns
    -------
    tuple
        ``(count, characters, size_sum, complete)``: how many items were encoded
        (the first ones), the characters of their item JSON, the sum of their
        sizes (bytes), and whether that was the whole array; when not,
        ``orjson.loads(body[start:end])[count:]`` is left to :func:`encode_record`.
    """
    if _compiled is None or _compiled_items is None:
        return 0, 0, 0, False
    keys, items, hashes, sizes, key_values = columns
    return _compiled_items(
        body, start, end, key_names, declared, keys, items, hashes, sizes, key_values
    )


if _compiled is not None:  # what the C encode_record calls, as _encode_record_python does
    _canon.configure(orjson.dumps, _DUMPS_OPTIONS, xxh3_64_intdigest, Record)


def loads(text: str | bytes) -> Item:
    """Parse canonical (or any) DynamoDB JSON text into a wire-form item."""
    value = orjson.loads(text)
    if not isinstance(value, dict):
        raise CodecError("DynamoDB JSON item must be an object")
    return value


# --------------------------------------------------------------------------- Python values


def to_python(typed: Mapping[str, Any]) -> Any:
    """Decode one typed value to a plain Python value.

    ``N`` → :class:`~decimal.Decimal`, ``B`` → ``bytes``, ``SS``/``NS``/``BS`` →
    ``set``, ``M`` → ``dict``, ``L`` → ``list``, ``NULL`` → ``None``.
    """
    ((tag, value),) = typed.items()
    if tag in (S, BOOL):
        return value
    if tag == N:
        return Decimal(normalize_number(value))
    if tag == NULL:
        return None
    if tag == M:
        return {name: to_python(inner) for name, inner in value.items()}
    if tag == L:
        return [to_python(inner) for inner in value]
    if tag == B:
        return _to_bytes(value)
    if tag == SS:
        return set(value)
    if tag == NS:
        return {Decimal(normalize_number(n)) for n in value}
    if tag == BS:
        return {_to_bytes(b) for b in value}
    raise CodecError(f"unknown DynamoDB type tag {tag!r}")


def item_to_python(item: Mapping[str, Any]) -> dict[str, Any]:
    """Decode a whole item to plain Python values (see :func:`to_python`)."""
    return {name: to_python(typed) for name, typed in item.items()}


def from_python(value: Any) -> dict[str, Any]:
    """Encode a plain Python value as a typed DynamoDB value (wire form).

    Raises
    ------
    CodecError
        For ``float`` (use :class:`~decimal.Decimal` or a string, so no digit is
        lost), NaN or infinity, empty or mixed sets, and unsupported types.
    """
    if value is None:
        return {NULL: True}
    if isinstance(value, bool):
        return {BOOL: value}
    if isinstance(value, int):
        return {N: normalize_number(str(value))}
    if isinstance(value, float):
        raise CodecError(
            "float values are not accepted: they are inexact; use decimal.Decimal or int"
        )
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CodecError(f"DynamoDB numbers are finite, not {value}")
        return {N: normalize_number(str(value))}
    if isinstance(value, str):
        return {S: value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {B: _b64(bytes(value))}
    if isinstance(value, Mapping):
        return {M: {str(k): from_python(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {L: [from_python(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        if not value:
            raise CodecError("DynamoDB has no empty sets")
        if all(isinstance(v, str) for v in value):
            return {SS: sorted(value)}
        if all(isinstance(v, (int, Decimal)) and not isinstance(v, bool) for v in value):
            return {NS: [from_python(v)[N] for v in value]}
        if all(isinstance(v, (bytes, bytearray)) for v in value):
            return {BS: [_b64(bytes(v)) for v in value]}
        raise CodecError("a set must hold only strings, only numbers or only binary")
    raise CodecError(f"cannot store a {type(value).__name__} in DynamoDB")


def item_from_python(values: Mapping[str, Any]) -> Item:
    """Encode a mapping of plain Python values as a wire-form item."""
    return {name: from_python(v) for name, v in values.items()}


def to_botocore(item: Mapping[str, Any]) -> Item:
    """Return a copy of a wire-form item that botocore's client accepts (binary as bytes)."""
    return {name: _botocore_value(typed) for name, typed in item.items()}


def _botocore_value(typed: Mapping[str, Any]) -> dict[str, Any]:
    ((tag, value),) = typed.items()
    if tag == B:
        return {B: _to_bytes(value)}
    if tag == BS:
        return {BS: [_to_bytes(v) for v in value]}
    if tag == M:
        return {M: {k: _botocore_value(v) for k, v in value.items()}}
    if tag == L:
        return {L: [_botocore_value(v) for v in value]}
    return {tag: value}

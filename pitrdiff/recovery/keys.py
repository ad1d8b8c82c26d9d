"""Key lists for plans: ``--keys`` (only these keys) and ``--exclude-keys`` (never these).

A key list is a CSV file whose header row names the key attributes, or a JSON
Lines file with one key per line, either plain values (``{"pk": "a", "sk": 1}``)
or DynamoDB JSON (``{"pk": {"S": "a"}, "sk": {"N": "1"}}``); binary key values
are base64 text. A UTF-8 byte-order mark (Excel's "CSV UTF-8", Windows
PowerShell 5's ``Out-File``) is accepted. From Python, a list may also be any
iterable of such mappings.

Every key is turned into its canonical form (docs/FORMAT.md section 1), so
``1.0`` and ``1`` name the same number key. The canonical keys are held in
memory (about 150 bytes a key, for a set lookup per row); the diff's rows are
streamed past them.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import xxhash

from pitrdiff import codec
from pitrdiff.errors import CodecError, InputError
from pitrdiff.export.dataset import KeySchema, file_checksum
from pitrdiff.files import storage_error

if TYPE_CHECKING:
    import pyarrow as pa

KeySource = Union[str, "os.PathLike[str]", Iterable[Mapping[str, Any]]]
"""A key list: a file path, or an iterable of keys (plain values or DynamoDB JSON)."""

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class KeyList:
    """A key list, canonical and de-duplicated.

    Attributes
    ----------
    keys
        The distinct canonical keys, in first-listed order.
    listed
        Keys listed (rows or lines), duplicates included.
    source
        The file's path, or ``"(keys given in Python)"``.
    checksum
        xxh3-128 (hex) of the file's bytes; of the canonical keys, one per line,
        for keys given in Python.
    """

    keys: tuple[str, ...]
    listed: int
    source: str
    checksum: str
    members: frozenset[str] = field(repr=False)

    def contains(self, column: pa.Array | pa.ChunkedArray) -> pa.Array:
        """A boolean mask: which of ``column``'s canonical keys are in the list.

        A set lookup per row: Arrow's ``is_in`` would hash the whole list again
        for every batch.
        """
        import pyarrow as pa

        members = self.members
        return pa.array([key in members for key in column.to_pylist()], pa.bool_())

    def missing_from(self, found: set[str]) -> tuple[int, list[str]]:
        """How many listed keys are not in ``found``, and the first few of them."""
        absent = [key for key in self.keys if key not in found]
        return len(absent), absent[:SAMPLE_SIZE]

    def to_dict(self) -> dict[str, Any]:
        """The list's identity as a plan header records it."""
        return {
            "source": self.source,
            "xxh3_128": self.checksum,
            "listed": self.listed,
            "distinct": len(self.keys),
        }


def load_key_list(source: KeySource, key_schema: KeySchema, *, option: str) -> KeyList:
    """Read a key list into canonical keys.

    Parameters
    ----------
    source
        A CSV or JSON Lines file (see the module docstring), or an iterable of
        key mappings.
    key_schema
        The diff's key schema: names and types of the key attributes.
    option
        The option it came from (``--keys``, ``--exclude-keys``), for messages.

    Raises
    ------
    InputError
        When the file is neither format, or a key lacks an attribute or has a bad value.
    StorageError
        When the file cannot be read.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        keys: Iterator[str] = read_keys_file(path, key_schema, option=option)
        label, digest = str(path), None
    else:
        keys = _keys_from_mappings(source, key_schema, option)
        label, digest = "(keys given in Python)", xxhash.xxh3_128()
    distinct: dict[str, None] = {}  # insertion-ordered set
    listed = 0
    for key in keys:
        listed += 1
        distinct.setdefault(key, None)
        if digest is not None:
            digest.update(key.encode() + b"\n")
    checksum = digest.hexdigest() if digest is not None else file_checksum(Path(label))
    return KeyList(
        keys=tuple(distinct),
        listed=listed,
        source=label,
        checksum=checksum,
        members=frozenset(distinct),
    )


def _keys_from_mappings(
    keys: Iterable[Mapping[str, Any]], key_schema: KeySchema, option: str
) -> Iterator[str]:
    for number, key in enumerate(keys, start=1):
        if not isinstance(key, Mapping):
            raise InputError(f"{option}: key {number} is not a mapping of key attributes")
        yield _key_from_values(key, key_schema, f"{option} key {number}")


def read_keys_file(
    path: str | os.PathLike[str], key_schema: KeySchema, *, option: str = "keys file"
) -> Iterator[str]:
    """Yield the canonical keys listed in a keys file.

    Parameters
    ----------
    path
        A CSV file whose header row names the key attributes, or a JSON Lines
        file with one key per line (see the module docstring). A UTF-8
        byte-order mark is skipped.
    key_schema
        The diff's key schema: names and types of the key attributes.
    option
        The option the file came from, for messages.

    Raises
    ------
    InputError
        When the path does not exist or is a directory (a user's mistake, exit 2),
        the file is neither format, is not UTF-8, or a key lacks an attribute or
        has a bad value; the message names the line.
    StorageError
        When the file exists but cannot be read (permissions, I/O).
    """
    source = Path(path)
    where = f"{option} {source}"
    try:
        # utf-8-sig: a byte-order mark at the start is not part of the first name
        handle = open(source, encoding="utf-8-sig", newline="")  # noqa: SIM115 - with below
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise InputError(
            f"{where} does not exist: give the path of a CSV or JSON Lines file"
        ) from exc
    except IsADirectoryError as exc:
        raise InputError(f"{where} is a directory, not a keys file") from exc
    except OSError as exc:
        raise storage_error(exc, source, "read keys file") from exc
    try:
        with handle:
            first = handle.readline()
            handle.seek(0)
            if first.lstrip().startswith("{"):
                yield from _json_lines_keys(handle, key_schema, where)
            else:
                yield from _csv_keys(handle, key_schema, where)
    except UnicodeDecodeError as exc:
        raise InputError(f"{where} is not UTF-8 text (save it as UTF-8)") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{where} is a directory, not a keys file") from exc
    except OSError as exc:
        raise storage_error(exc, source, "read keys file") from exc


def _json_lines_keys(handle: Iterable[str], key_schema: KeySchema, where: str) -> Iterator[str]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line, parse_float=Decimal)
        except ValueError as exc:
            raise InputError(f"{where} line {number} is not JSON") from exc
        if not isinstance(doc, dict):
            raise InputError(f"{where} line {number} is not a JSON object")
        yield _key_from_values(doc, key_schema, f"{where} line {number}")


def _csv_keys(handle: Iterable[str], key_schema: KeySchema, where: str) -> Iterator[str]:
    reader = csv.DictReader(handle)
    names = reader.fieldnames or []
    missing = [n for n in key_schema.names if n not in names]
    if missing:
        raise InputError(
            f"{where}: the CSV header must name the key attributes "
            f"{', '.join(key_schema.names)} (missing {', '.join(missing)}; "
            f"the header has {', '.join(repr(n) for n in names) or 'nothing'})"
        )
    for number, row in enumerate(reader, start=2):
        yield _key_from_values(row, key_schema, f"{where} line {number}")


def _key_from_values(doc: Mapping[str, Any], key_schema: KeySchema, where: str) -> str:
    key: dict[str, Any] = {}
    for attribute in key_schema.attributes:
        if attribute.name not in doc or doc[attribute.name] is None:
            raise InputError(f"{where}: no key attribute {attribute.name!r}")
        value = doc[attribute.name]
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in codec.KEY_TYPES:
            typed: dict[str, Any] = dict(value)
        else:
            tag = attribute.attribute_type or "S"
            if isinstance(value, (bool, dict, list)):
                raise InputError(f"{where}: {attribute.name!r} is not a key value")
            typed = {tag: str(value)}
        if attribute.attribute_type and next(iter(typed)) != attribute.attribute_type:
            raise InputError(
                f"{where}: {attribute.name!r} must be of type {attribute.attribute_type}"
            )
        key[attribute.name] = typed
    try:
        return codec.canonical_key(key, key_schema.names)
    except CodecError as exc:
        raise InputError(f"{where}: {exc}") from exc

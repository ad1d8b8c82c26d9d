"""A table's primary key and the fixed columns of pitrdiff's datasets.

:class:`KeySchema` knows the key attributes (partition key first), their types,
and the ``key`` struct column that holds their values in the export and diff
datasets (``docs/FORMAT.md`` §2, §3). pitrdiff's own column names are fixed
(:data:`COLUMNS`), so a key attribute may have any name DynamoDB allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from pitrdiff.errors import CodecError, InputError

KEY_COLUMN = "_key"
ITEM_COLUMN = "_item"
HASH_COLUMN = "_hash"
SIZE_COLUMN = "_size"
KEY_STRUCT_COLUMN = "key"
COLUMNS = (KEY_COLUMN, ITEM_COLUMN, HASH_COLUMN, SIZE_COLUMN, KEY_STRUCT_COLUMN)
"""Every column of a part: fixed, whatever the key attributes are called."""
RESERVED_COLUMNS = (KEY_COLUMN, ITEM_COLUMN, HASH_COLUMN, SIZE_COLUMN)


# --------------------------------------------------------------------------- key schema


@dataclass(frozen=True)
class KeyAttribute:
    """One attribute of a table's primary key.

    Attributes
    ----------
    name
        The attribute name.
    key_type
        ``HASH`` (partition key) or ``RANGE`` (sort key).
    attribute_type
        ``S``, ``N`` or ``B``; ``None`` when not known (an empty ``write_export``).
    """

    name: str
    key_type: str
    attribute_type: str | None = None


@dataclass(frozen=True)
class KeySchema:
    """A table's primary key: the partition key, then the sort key if any."""

    attributes: tuple[KeyAttribute, ...]

    @classmethod
    def from_boto(
        cls,
        key_schema: Sequence[Mapping[str, str]],
        attribute_definitions: Sequence[Mapping[str, str]] | None = None,
    ) -> KeySchema:
        """Build from boto3's ``KeySchema`` (and optionally ``AttributeDefinitions``).

        Raises
        ------
        InputError
            When the schema has no ``HASH`` key, more than one of a kind, a
            name DynamoDB does not allow (1 to 255 UTF-8 bytes), or a type
            other than ``S``, ``N``, ``B``.
        """
        types = {d["AttributeName"]: d["AttributeType"] for d in attribute_definitions or ()}
        by_kind: dict[str, KeyAttribute] = {}
        for entry in key_schema:
            try:
                name, kind = entry["AttributeName"], entry["KeyType"]
            except (KeyError, TypeError) as exc:
                raise InputError(
                    "a key schema is a list of {'AttributeName': ..., 'KeyType': 'HASH'|'RANGE'}"
                ) from exc
            if kind not in ("HASH", "RANGE") or kind in by_kind:
                raise InputError(f"invalid key schema: {list(key_schema)!r}")
            if not isinstance(name, str) or not 1 <= len(name.encode("utf-8")) <= 255:
                raise InputError(
                    f"key attribute name {name!r} is not 1 to 255 UTF-8 bytes (DynamoDB's rule)"
                )
            if types.get(name) not in (None, "S", "N", "B"):
                raise InputError(
                    f"key attribute {name!r} has type {types[name]!r}; a key is S, N or B"
                )
            by_kind[kind] = KeyAttribute(name, kind, types.get(name))
        if "HASH" not in by_kind:
            raise InputError(f"key schema has no HASH key: {list(key_schema)!r}")
        ordered = [by_kind["HASH"]] + ([by_kind["RANGE"]] if "RANGE" in by_kind else [])
        return cls(tuple(ordered))

    @property
    def names(self) -> tuple[str, ...]:
        """Key attribute names, partition key first."""
        return tuple(a.name for a in self.attributes)

    @property
    def declared_types(self) -> tuple[str, ...] | None:
        """Every key attribute's type tag, in key order; None when one is unknown."""
        types = tuple(a.attribute_type for a in self.attributes)
        return tuple(t for t in types if t) if all(types) else None

    @property
    def partition_key(self) -> str:
        """The partition (HASH) key's name."""
        return self.attributes[0].name

    @property
    def sort_key(self) -> str | None:
        """The sort (RANGE) key's name, if the table has one."""
        return self.attributes[1].name if len(self.attributes) > 1 else None

    def to_boto(self) -> list[dict[str, str]]:
        """boto3's ``KeySchema`` form."""
        return [{"AttributeName": a.name, "KeyType": a.key_type} for a in self.attributes]

    def to_list(self) -> list[dict[str, str | None]]:
        """The manifest form: boto3's form plus ``AttributeType``."""
        return [
            {"AttributeName": a.name, "KeyType": a.key_type, "AttributeType": a.attribute_type}
            for a in self.attributes
        ]

    @classmethod
    def from_list(cls, entries: Sequence[Mapping[str, Any]]) -> KeySchema:
        """Inverse of :meth:`to_list`."""
        defs = [
            {"AttributeName": e["AttributeName"], "AttributeType": e["AttributeType"]}
            for e in entries
            if e.get("AttributeType")
        ]
        return cls.from_boto(entries, defs)

    def same_keys(self, other: KeySchema) -> bool:
        """Tell whether two schemas name the same keys with compatible types."""
        if self.names != other.names:
            return False
        for mine, theirs in zip(self.attributes, other.attributes, strict=True):
            if mine.key_type != theirs.key_type:
                return False
            known = mine.attribute_type and theirs.attribute_type
            if known and mine.attribute_type != theirs.attribute_type:
                return False
        return True

    def describe(self) -> str:
        """Human form, e.g. ``pk (HASH, S), sk (RANGE, N)``."""
        return ", ".join(
            f"{a.name} ({a.key_type}{', ' + a.attribute_type if a.attribute_type else ''})"
            for a in self.attributes
        )

    def key_struct_type(self) -> pa.StructType:
        """The type of the ``key`` column: one field per key attribute, named as it.

        ``S`` and ``N`` values are text (``N`` in canonical spelling, exact),
        ``B`` values binary.
        """
        return pa.struct(
            [
                pa.field(a.name, pa.binary() if a.attribute_type == "B" else pa.string(), False)
                for a in self.attributes
            ]
        )

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of a part of this dataset (``docs/FORMAT.md`` §2)."""
        return pa.schema(
            [
                pa.field(KEY_COLUMN, pa.string(), nullable=False),
                pa.field(ITEM_COLUMN, pa.string(), nullable=False),
                pa.field(HASH_COLUMN, pa.uint64(), nullable=False),
                pa.field(SIZE_COLUMN, pa.int32(), nullable=False),
                pa.field(KEY_STRUCT_COLUMN, self.key_struct_type(), nullable=False),
            ]
        )

    def check_key_column(self, keys: pa.Array | pa.ChunkedArray, what: str = "item") -> None:
        """Refuse canonical keys whose attribute types contradict the declared ones.

        Vectorised: canonical key JSON holds ``"name":{"T":`` for each key
        attribute (a quote inside a value is escaped, so the text cannot occur
        there by accident).

        Parameters
        ----------
        keys
            Canonical key JSON strings (the ``_key`` column).
        what
            Names a row in the message (``item``, ``deleted item`` …).

        Raises
        ------
        CodecError
            One line naming the first offending key, the attribute and both types.
        """
        import pyarrow.compute as pc

        for a in self.attributes:
            if not a.attribute_type or not len(keys):
                continue
            pattern = orjson.dumps(a.name).decode("utf-8") + ':{"' + a.attribute_type + '":'
            matches = pc.match_substring(keys, pattern)
            if pc.all(matches).as_py():
                continue
            index = pc.index(matches, False).as_py()
            text = str(keys[index].as_py())
            self.check_key_types(orjson.loads(text), f"{what} {text}")

    def check_key_types(self, key: Mapping[str, Any], where: str) -> None:
        """Refuse a key whose attribute types contradict the declared ones.

        Parameters
        ----------
        key
            The key attributes in wire form (``{"pk": {"S": "a"}}``).
        where
            Names the item in the message (``item 3``).

        Raises
        ------
        CodecError
            One line naming the key attribute, the declared type and the type found.
        """
        for a in self.attributes:
            typed = key.get(a.name)
            if a.attribute_type and isinstance(typed, Mapping) and a.attribute_type not in typed:
                found = next(iter(typed), "?")
                raise CodecError(
                    f"{where}: key attribute {a.name!r} is {found} but the key schema declares "
                    f"{a.attribute_type} (declared types must match the data)"
                )

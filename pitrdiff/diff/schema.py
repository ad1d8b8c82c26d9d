"""The columns of a diff dataset: one Arrow schema per class file.

``docs/FORMAT.md`` §3 is the contract; this module is its code. pitrdiff's own
column names are fixed; the key attribute values live in one struct column,
``key``, whose fields are named exactly as the table's key attributes (``S`` /
``N`` as text, ``B`` as binary), so a key attribute may have any name DynamoDB
allows (``class``, ``_KEY``, ``live_item`` …) without colliding with ours.
"""

from __future__ import annotations

import pyarrow as pa

from pitrdiff.errors import SchemaMismatchError
from pitrdiff.export.dataset import KEY_COLUMN, KEY_STRUCT_COLUMN, KeyAttribute, KeySchema

CLASSES = ("deleted", "changed", "added", "expired")
"""The stored classes, in the order they are written (``unchanged`` is counted only)."""
FILE_NAMES = {name: f"{name}.parquet" for name in CLASSES}
ITEM_COLUMN_OF_CLASS = {
    "deleted": "restored_item",
    "expired": "restored_item",
    "changed": "restored_item",
    "added": "live_item",
}
CHANGES_BATCH_ROWS = 8192

CHANGE_TYPE = pa.list_(
    pa.struct(
        [
            pa.field("path", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("old", pa.string()),
            pa.field("new", pa.string()),
        ]
    )
)


def quote(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _head(key_schema: KeySchema) -> list[pa.Field]:
    return [
        pa.field(KEY_COLUMN, pa.string(), nullable=False),
        pa.field(KEY_STRUCT_COLUMN, key_schema.key_struct_type(), nullable=False),
    ]


def _side(side: str) -> list[pa.Field]:
    return [
        pa.field(f"{side}_item", pa.string(), nullable=False),
        pa.field(f"{side}_hash", pa.uint64(), nullable=False),
        pa.field(f"{side}_size", pa.int32(), nullable=False),
    ]


def diff_schema(key_schema: KeySchema, name: str) -> pa.Schema:
    """The Arrow schema of one class file of a diff dataset (``docs/FORMAT.md`` §3).

    Parameters
    ----------
    key_schema
        The table's key (decides the fields of the ``key`` struct column).
    name
        ``deleted``, ``expired``, ``changed`` or ``added``.

    Returns
    -------
    pyarrow.Schema
        ``deleted`` / ``expired``: ``_key, key, restored_item, restored_hash,
        restored_size``; ``added``: ``_key, key, live_item, live_hash,
        live_size``; ``changed``: ``_key, key, live_item, restored_item,
        live_hash, restored_hash, live_size, restored_size, changes, signature``.

    Raises
    ------
    ValueError
        For an unknown class name.
    """
    head = _head(key_schema)
    if name in ("deleted", "expired"):
        return pa.schema([*head, *_side("restored")])
    if name == "added":
        return pa.schema([*head, *_side("live")])
    if name == "changed":
        live, restored = _side("live"), _side("restored")
        return pa.schema(
            [
                *head,
                live[0],
                restored[0],
                live[1],
                restored[1],
                live[2],
                restored[2],
                pa.field("changes", CHANGE_TYPE, nullable=False),
                pa.field("signature", pa.string(), nullable=False),
            ]
        )
    raise ValueError(f"unknown diff class {name!r}")


def merge_key_schemas(live: KeySchema, restored: KeySchema) -> KeySchema:
    """One schema for both inputs; an empty export may not know its key types.

    Raises
    ------
    SchemaMismatchError
        When the two exports name different keys or types.
    """
    if not live.same_keys(restored):
        raise SchemaMismatchError(
            f"the exports have different key schemas: live {live.describe()}, "
            f"restored {restored.describe()}"
        )
    return KeySchema(
        tuple(
            KeyAttribute(a.name, a.key_type, a.attribute_type or b.attribute_type)
            for a, b in zip(live.attributes, restored.attributes, strict=True)
        )
    )

"""Rows of an export or a diff laid out for people: keys, decoded attributes, raw columns."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pitrdiff.export.keys import KEY_STRUCT_COLUMN, KeySchema

if TYPE_CHECKING:
    import pandas as pd


def key_column_value(attribute_type: str | None, value: Any) -> Any:
    """A key column's stored value as a Python value (``N`` text to ``Decimal``)."""
    if attribute_type == "N" and value is not None:
        return Decimal(value)
    return value


def decoded_frame(
    raw: pd.DataFrame,
    key_schema: KeySchema,
    item_column: str,
    *,
    lead: Sequence[str] = (),
    decode: bool = True,
) -> pd.DataFrame:
    """Lay out raw rows for people: keys, ``lead``, decoded attributes, raw columns.

    Shared by :meth:`Export.to_pandas` and the class tables of a diff, so both
    come out with the same columns.

    Parameters
    ----------
    raw
        Rows as stored: the ``key`` struct column and canonical item JSON in ``item_column``.
    key_schema
        The table's key; its attributes become the first columns, decoded and
        named as the attributes (with the suffix ``_attr`` when the name is one
        of the raw columns, e.g. a key attribute called ``_key``).
    item_column
        The column holding the canonical item to decode.
    lead
        Raw columns to show right after the keys (a diff's ``signature``, ``changes``).
    decode
        Add one column per top-level non-key attribute, decoded with
        :func:`pitrdiff.codec.to_python` (``None`` where absent). A name that
        clashes with a raw column gets the suffix ``_attr``.

    Returns
    -------
    pandas.DataFrame
        Keys, ``lead``, decoded attributes (sorted by name), then the other raw columns.
    """
    import pandas as pd

    from pitrdiff.codec import loads, to_python

    rest = [c for c in raw.columns if c != KEY_STRUCT_COLUMN and c not in lead]
    keys = pd.DataFrame(
        {
            (f"{a.name}_attr" if a.name in rest else a.name): [
                key_column_value(a.attribute_type, v[a.name]) for v in raw[KEY_STRUCT_COLUMN]
            ]
            for a in key_schema.attributes
        },
        index=raw.index,
    )
    parts = [keys]
    if lead:
        parts.append(raw[list(lead)])
    if decode:
        decoded = [
            {n: to_python(t) for n, t in loads(text).items() if n not in key_schema.names}
            for text in raw[item_column]
        ]
        names = sorted({n for row in decoded for n in row})
        taken = set(rest) | set(lead) | set(keys.columns)
        columns = {
            (f"{n}_attr" if n in taken else n): [row.get(n) for row in decoded] for n in names
        }
        parts.append(pd.DataFrame(columns, index=raw.index, dtype=object))
    parts.append(raw[rest])
    frame: pd.DataFrame = pd.concat(parts, axis=1)
    return frame

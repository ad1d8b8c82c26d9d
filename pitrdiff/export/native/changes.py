"""Change records of incremental exports → staging Parquet files, one per data file.

An incremental export's line is ``{"Metadata": {"WriteTimestampMicros": ...},
"Keys": ..., "NewImage": ..., "OldImage": ...}`` (developer guide, "DynamoDB
table export output format"). Each is staged as one row of pitrdiff's own
columns: the canonical key, both images (canonical item, hash, size), the
write time and the old image's TTL in microseconds; classifying the rows is
the diff's business (:mod:`pitrdiff.diff.incremental`).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pitrdiff.codec import Record, encode_record
from pitrdiff.errors import CodecError
from pitrdiff.export.native.stream import (
    BadRecord,
    FileOutcome,
    FileTask,
    KeyTypeCheck,
    codec_failure,
)

_MICROS = decimal.Decimal(1_000_000)
_INT64 = 2**63 - 1

_STAGING_BATCH = 20_000
STAGING_SCHEMA = pa.schema(
    [
        pa.field("_key", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("ts", pa.int64()),
        pa.field("has_old", pa.bool_(), nullable=False),
        pa.field("has_new", pa.bool_(), nullable=False),
        pa.field("old_item", pa.string()),
        pa.field("old_hash", pa.uint64()),
        pa.field("old_size", pa.int32()),
        pa.field("old_ttl", pa.int64()),
        pa.field("new_item", pa.string()),
        pa.field("new_hash", pa.uint64()),
        pa.field("new_size", pa.int32()),
    ]
)
"""Staging columns (pitrdiff's own only: key attribute values stay inside ``_key``,
so a key attribute may be called ``seq`` or ``class``)."""


def ttl_micros(typed: Any) -> int | None:
    """An item's TTL attribute value as epoch microseconds; ``None`` if it never expires.

    Only a Number counts (DynamoDB's TTL rule); fractions of a second are kept
    to the microsecond (rounded down).
    """
    if type(typed) is not dict or "N" not in typed:
        return None
    try:
        with decimal.localcontext(decimal.Context(prec=60)):
            micros = int(
                (decimal.Decimal(str(typed["N"])) * _MICROS).to_integral_value(decimal.ROUND_FLOOR)
            )
    except (decimal.InvalidOperation, ValueError, OverflowError):
        return None
    return micros if -_INT64 <= micros <= _INT64 else None


def _image(document: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRecord(f"{name} is not an item")
    return value


def _write_timestamp(document: Mapping[str, Any]) -> int | None:
    metadata = document.get("Metadata")
    if not isinstance(metadata, dict):
        return None
    value = metadata.get("WriteTimestampMicros")
    if isinstance(value, dict):  # DynamoDB JSON: {"N": "1680109764000000"}
        value = value.get("N")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError) as exc:
        raise BadRecord(f"WriteTimestampMicros {value!r} is not an integer") from exc


class IncrementalSink:
    """Writes one data file's change records to a staging Parquet file."""

    def __init__(self, task: FileTask) -> None:
        self.task = task
        self.names = task.key_schema.names
        self.check_key_types = KeyTypeCheck(task.key_schema)
        self.ttl_attribute: str | None = task.option("ttl_attribute")
        self.path = str(Path(task.out) / f"records-{task.index:05d}.parquet")
        self.writer: pq.ParquetWriter | None = None
        self.rows: dict[str, list[Any]] = {name: [] for name in STAGING_SCHEMA.names}
        self.count = 0

    def _encode(self, image: dict[str, Any] | None) -> Record | None:
        if image is None:
            return None
        try:
            return encode_record(image, self.names)
        except CodecError as exc:
            raise codec_failure(exc, image, self.names) from exc

    def add(self, line: bytes, number: int) -> None:
        """Stage one change record."""
        document = orjson.loads(line)
        if not isinstance(document, dict):
            raise BadRecord("not an incremental-export record")
        old = _image(document, "OldImage")
        new = _image(document, "NewImage")
        keys = _image(document, "Keys") or new or old
        if keys is None:
            raise BadRecord("record has no Keys")
        key_record = self._encode({n: keys[n] for n in self.names if n in keys})
        assert key_record is not None
        # the images' keys must equal this one (type tags included): one check suffices
        self.check_key_types(key_record)
        old_record, new_record = self._encode(old), self._encode(new)
        for image in (old_record, new_record):
            if image is not None and image.key != key_record.key:
                raise BadRecord("an image's key differs from the record's Keys")
        rows = self.rows
        rows["_key"].append(key_record.key)
        rows["seq"].append((self.task.index << 32) + number)
        rows["ts"].append(_write_timestamp(document))
        _append_image(rows, "old", old_record)
        rows["old_ttl"].append(
            ttl_micros(old.get(self.ttl_attribute)) if old and self.ttl_attribute else None
        )
        _append_image(rows, "new", new_record)
        self.count += 1
        if len(rows["_key"]) >= _STAGING_BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self.rows["_key"]:
            return
        table = pa.Table.from_pydict(self.rows, schema=STAGING_SCHEMA)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, STAGING_SCHEMA, compression="zstd")
        self.writer.write_table(table)
        for values in self.rows.values():
            values.clear()

    def abort(self) -> None:
        """Close the staging file (the next attempt rewrites it)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def finish(self) -> FileOutcome:
        """Write the last rows and close the staging file."""
        self._flush()
        if self.writer is not None:
            self.writer.close()
        return FileOutcome(
            self.task.index,
            self.count,
            self.count,
            0,
            staging=self.path if self.writer is not None else None,
        )


def _append_image(rows: dict[str, list[Any]], prefix: str, record: Record | None) -> None:
    rows[f"has_{prefix}"].append(record is not None)
    rows[f"{prefix}_item"].append(record.item if record else None)
    rows[f"{prefix}_hash"].append(record.hash if record else None)
    rows[f"{prefix}_size"].append(record.size if record else None)

"""Arrow batches between Spark and pitrdiff.

Spark has no unsigned 64-bit type: it reads a Parquet ``uint64`` column (the
content hash ``_hash``) as ``decimal(20,0)``. Rows coming back from Spark get
their hash columns cast back to ``uint64`` here, on the executors, so the
driver sees exactly the Arrow types the DuckDB engine yields.

:func:`stream_sorted` brings a sorted DataFrame to the driver as Arrow record
batches **in order, one partition at a time** (bounded driver memory, unlike
``collect``): each executor packs its partition's batches into Arrow IPC
blobs (``mapInArrow``), and the driver reads the partitions in order with
``toLocalIterator``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType, StructType

BLOB_COLUMN = "arrow_ipc"
MAX_BLOB_ROWS = 8192
MAX_BLOB_BYTES = 32 * 1024 * 1024


def restore_uint64(batch: pa.RecordBatch, names: Sequence[str]) -> pa.RecordBatch:
    """Cast the named ``decimal(20,0)`` columns of a batch back to ``uint64``.

    Parameters
    ----------
    batch
        Rows as Spark hands them to Python.
    names
        The columns that are ``uint64`` in the dataset (content hashes).

    Returns
    -------
    pyarrow.RecordBatch
        The same rows; the named columns ``uint64``, nullability kept.
    """
    fields = []
    arrays = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if field.name in names and pa.types.is_decimal(field.type):
            column = column.cast(pa.uint64())
            field = field.with_type(pa.uint64())
        fields.append(field)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _slices(batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
    """Pieces of at most ``MAX_BLOB_ROWS`` rows and about ``MAX_BLOB_BYTES`` bytes."""
    rows = batch.num_rows
    if not rows:
        return
    per_row = max(1, batch.nbytes // rows)
    step = max(1, min(MAX_BLOB_ROWS, MAX_BLOB_BYTES // per_row))
    for start in range(0, rows, step):
        yield batch.slice(start, step)


def _pack(batches: Iterator[pa.RecordBatch], uint64_columns: Sequence[str]) -> Iterator[Any]:
    """Executor side: each batch of a partition as one-row batches of IPC bytes."""
    for batch in batches:
        for piece in _slices(restore_uint64(batch, uint64_columns)):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, piece.schema) as writer:
                writer.write_batch(piece)
            blob = pa.array([sink.getvalue().to_pybytes()], pa.binary())
            yield pa.RecordBatch.from_arrays([blob], names=[BLOB_COLUMN])


def stream_sorted(frame: DataFrame, uint64_columns: Sequence[str] = ()) -> Iterator[pa.RecordBatch]:
    """The rows of a (sorted) DataFrame as Arrow batches, in order, with bounded memory.

    Parameters
    ----------
    frame
        A DataFrame, typically ending in ``orderBy``: its partitions are then
        key ranges in order, and rows are sorted within each.
    uint64_columns
        Columns to cast from Spark's ``decimal(20,0)`` back to ``uint64``.

    Yields
    ------
    pyarrow.RecordBatch
        At most ``MAX_BLOB_ROWS`` rows each, in the DataFrame's order; one
        partition is held on the driver at a time.
    """
    packed = frame.mapInArrow(
        functools.partial(_pack, uint64_columns=tuple(uint64_columns)),
        f"{BLOB_COLUMN} binary",
    )
    for row in packed.toLocalIterator(prefetchPartitions=True):
        with pa.ipc.open_stream(pa.py_buffer(row[0])) as reader:
            yield from reader


def spark_type(arrow_type: pa.DataType) -> DataType:
    """The Spark type Spark's Parquet reader gives an Arrow type of a pitrdiff dataset.

    ``uint64`` becomes ``decimal(20,0)`` (as Spark reads it); strings,
    binary, ``int32``, ``int64`` and structs of those map one to one.

    Raises
    ------
    TypeError
        For a type pitrdiff's datasets do not use.
    """
    from pyspark.sql import types as T

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return T.StringType()
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return T.BinaryType()
    if pa.types.is_uint64(arrow_type):
        return T.DecimalType(20, 0)
    if pa.types.is_int32(arrow_type):
        return T.IntegerType()
    if pa.types.is_int64(arrow_type):
        return T.LongType()
    if pa.types.is_struct(arrow_type):
        return T.StructType(
            [
                T.StructField(f.name, spark_type(f.type), f.nullable)
                for f in (arrow_type.field(i) for i in range(arrow_type.num_fields))
            ]
        )
    raise TypeError(f"no Spark type for the Arrow type {arrow_type}")


def spark_schema(schema: pa.Schema) -> StructType:
    """The Spark schema of a pitrdiff Arrow schema (see :func:`spark_type`)."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, spark_type(f.type), f.nullable) for f in schema])

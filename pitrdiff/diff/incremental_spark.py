"""Incremental exports diffed on Apache Spark: one task per data file, classified on Spark.

The engine half of ``pitrdiff diff --incremental … --engine spark``
(:func:`pitrdiff.diff.incremental.diff_incremental` with ``engine="spark"``);
everything before and after it is :mod:`pitrdiff.diff.incremental`'s own:

1. **Stage**: each data file is one Spark task (gzip cannot be split) running
   pitrdiff's reader (:func:`pitrdiff.export.native.stream.process_file`) with
   the incremental sink: the file's MD5 and item count are checked against
   ``manifest-files.json`` as on one machine, every image goes through
   pitrdiff's codec, and the staged rows are handed to Spark from a private
   directory on the executor (nothing is written where other nodes must see
   it). A refused file comes back to the driver as a value and is raised
   there as the very error the DuckDB engine raises.
2. **Classify**: the same SQL text as the DuckDB engine
   (:func:`pitrdiff.diff.incremental.classification_sql`), run by Spark SQL on
   the staged rows (and on the ``--start-export`` dataset, if given).
3. The classes are streamed to the driver sorted by ``_key`` (Spark orders
   strings by their UTF-8 bytes, as DuckDB does) and written by the shared
   writer (:func:`pitrdiff.diff.writer.write_diff_dataset`).

Spark has no ``uint64``: hashes travel as ``decimal(20,0)`` and are cast back
before they leave the executors (:mod:`pitrdiff.spark.arrow`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pitrdiff.aws import AwsConfig
from pitrdiff.diff.incremental import (
    ADDED,
    ALL_CLASSES,
    CHANGED,
    DELETED,
    EXPIRED,
    ClassRows,
    IncrementalClassification,
    IncrementalSource,
    classification_of,
    classification_sql,
    open_inputs,
    staging_tasks,
)
from pitrdiff.diff.spark_engine import ONE_PARTITION_ROWS, read_export
from pitrdiff.export.dataset import KEY_COLUMN, KeySchema
from pitrdiff.export.native.changes import STAGING_SCHEMA
from pitrdiff.export.native.stream import FileTask
from pitrdiff.export.native_spark import raise_failure, run_task
from pitrdiff.progress import SILENT, Progress
from pitrdiff.spark.arrow import spark_type, stream_sorted
from pitrdiff.spark.session import get_session, spark_errors

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

OUTCOME = "_pitrdiff_outcome"
"""The column of a task's outcome row (JSON: index, lines, failure); ``null`` on records."""
HASHES = ("old_hash", "new_hash")
CLASSIFIED_HASHES = ("restored_hash", "live_hash")
BATCH_ROWS = 8192
WRITTEN = (DELETED, EXPIRED, CHANGED, ADDED)
"""The classes the diff dataset holds rows of."""
GATHER_ROWS = 100_000
"""Up to this many written rows in all are fetched from Spark in one job."""


def _wire_schema() -> pa.Schema:
    """The staged rows as Spark receives them: hashes ``decimal(20,0)``, all nullable."""
    fields = [
        pa.field(f.name, pa.decimal128(20, 0) if f.name in HASHES else f.type)
        for f in STAGING_SCHEMA
    ]
    return pa.schema([*fields, pa.field(OUTCOME, pa.string())])


def _spark_wire_schema() -> StructType:
    """The Spark schema of :func:`_wire_schema` (booleans and decimals included)."""
    from pyspark.sql import types as T

    def spark_type_of(arrow_type: pa.DataType) -> DataType:
        if pa.types.is_boolean(arrow_type):
            return T.BooleanType()
        if pa.types.is_decimal(arrow_type):
            return T.DecimalType(20, 0)
        return spark_type(arrow_type)

    return T.StructType(
        [T.StructField(f.name, spark_type_of(f.type), True) for f in _wire_schema()]
    )


def _to_wire(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A staged batch in the wire schema (hashes cast, no outcome)."""
    columns = [
        batch.column(f.name).cast(f.type) if f.name in HASHES else batch.column(f.name)
        for f in schema
        if f.name != OUTCOME
    ]
    return pa.RecordBatch.from_arrays(
        [*columns, pa.nulls(batch.num_rows, pa.string())], schema=schema
    )


def _outcome_row(index: int, lines: int, failure: Any, schema: pa.Schema) -> pa.RecordBatch:
    """One row saying how a task ended: every staging column null, the outcome as JSON."""
    doc = json.dumps({"index": index, "lines": lines, "failure": failure})
    arrays = [pa.nulls(1, f.type) for f in schema if f.name != OUTCOME]
    return pa.RecordBatch.from_arrays([*arrays, pa.array([doc], pa.string())], schema=schema)


def _local_dir() -> str | None:
    """The executor's scratch directory (Spark gives its Python workers ``SPARK_LOCAL_DIRS``).

    On YARN (EMR) that is the node's local disks rather than a small ``/tmp``;
    ``None`` (the system's temporary directory) elsewhere.
    """
    dirs = [d for d in os.environ.get("SPARK_LOCAL_DIRS", "").split(",") if d]
    return dirs[0] if dirs and os.path.isdir(dirs[0]) else None


def _stage_task(task: FileTask) -> Iterator[pa.RecordBatch]:
    """Executor side: stage one data file in a private directory; its rows, then its outcome."""
    schema = _wire_schema()
    with tempfile.TemporaryDirectory(prefix="pitrdiff-records-", dir=_local_dir()) as work:
        index, outcome, failure = run_task(replace(task, out=work))
        if outcome is not None and outcome.staging:
            staged = pq.ParquetFile(outcome.staging)
            for batch in staged.iter_batches(batch_size=BATCH_ROWS):
                yield _to_wire(batch, schema)
            staged.close()
        lines = outcome.lines if outcome is not None else 0
        yield _outcome_row(index, lines, failure, schema)


def _stage_partition(
    batches: Iterator[pa.RecordBatch], tasks: Sequence[FileTask]
) -> Iterator[pa.RecordBatch]:
    """Executor side: the tasks whose positions this partition holds (one, normally)."""
    for batch in batches:
        for index in batch.column(0).to_pylist():
            yield from _stage_task(tasks[index])


def _staged_records(
    spark: SparkSession,
    opened: IncrementalSource,
    cached: list[DataFrame],
    progress: Progress,
) -> tuple[DataFrame, int]:
    """Stage every data file on Spark; the records (a cached DataFrame) and lines read.

    Raises
    ------
    ExportError
        The first refused file's error, by position in ``manifest-files.json``.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    tasks = staging_tasks(opened, "")
    if not tasks:
        empty = spark.createDataFrame([], _spark_wire_schema())
        return empty.drop(OUTCOME), 0
    progress.start(
        f"reading {opened.summary.location.export_id} on Spark", total=opened.summary.item_count
    )
    try:
        # one row per data file, one partition per row: one task per file
        staged = spark.range(0, len(tasks), 1, len(tasks)).mapInArrow(
            functools.partial(_stage_partition, tasks=tasks), _spark_wire_schema()
        )
        cached.append(staged.persist(StorageLevel.MEMORY_AND_DISK))
        rows = staged.where(F.col(OUTCOME).isNotNull()).select(OUTCOME).collect()
        outcomes = sorted((json.loads(row[0]) for row in rows), key=lambda o: int(o["index"]))
        for outcome in outcomes:
            if outcome["failure"] is not None:
                name, message, path = outcome["failure"]
                raise_failure((str(name), str(message), path))
        for outcome in outcomes:
            progress.advance(int(outcome["lines"]), files=1)
    finally:
        progress.finish()
    records = staged.where(F.col(OUTCOME).isNull()).drop(OUTCOME)
    return records, sum(int(o["lines"]) for o in outcomes)


def _class_counts(classified: DataFrame) -> tuple[dict[str, int], int]:
    """Items per class and items with several records, in one job."""
    from pyspark.sql import functions as F

    klass = F.col("class")
    row = classified.agg(
        *(F.count(F.when(klass == name, 1)) for name in ALL_CLASSES),
        F.count(F.when(F.col("records") > 1, 1)),
    ).collect()[0]
    return {name: int(row[i]) for i, name in enumerate(ALL_CLASSES)}, int(row[len(ALL_CLASSES)])


def _sorted_rows(frame: DataFrame, rows: int) -> Iterator[pa.RecordBatch]:
    """A frame's rows sorted by ``_key``, as Arrow batches (hashes ``uint64``)."""
    if rows <= ONE_PARTITION_ROWS:  # one sorted partition: no sampling job
        frame = frame.coalesce(1).sortWithinPartitions(KEY_COLUMN)
    else:
        frame = frame.orderBy(KEY_COLUMN)
    with spark_errors():
        yield from stream_sorted(frame, CLASSIFIED_HASHES)


class _ClassRows:
    """The rows of the written classes, as the shared writer asks for them.

    Up to :data:`GATHER_ROWS` rows in all are brought to the driver in one
    Spark job and served from there (one job instead of one per class: what
    small diffs spend their time on); more are streamed class by class, a
    partition at a time.
    """

    def __init__(self, classified: DataFrame, counts: Mapping[str, int]) -> None:
        self.classified = classified
        self.counts = counts
        self.gathered: pa.Table | None = None

    def __call__(self, classes: Sequence[str], columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        from pyspark.sql import functions as F

        rows = sum(self.counts[name] for name in classes)
        if rows == 0:
            return
        if sum(self.counts[name] for name in WRITTEN) > GATHER_ROWS:
            wanted = self.classified.where(F.col("class").isin(*classes)).select(*columns)
            yield from _sorted_rows(wanted, rows)
            return
        if self.gathered is None:
            everything = self.classified.where(F.col("class").isin(*WRITTEN))
            batches = list(_sorted_rows(everything, GATHER_ROWS))
            self.gathered = pa.Table.from_batches(batches)
        table = self.gathered
        mask = pc.is_in(table.column("class"), value_set=pa.array(list(classes), pa.string()))
        yield from table.filter(mask).select(list(columns)).to_batches(BATCH_ROWS)


@contextlib.contextmanager
def classify_incremental_spark(
    source: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None = None,
    ttl_attribute: str | None = None,
    start_export: str | os.PathLike[str] | None = None,
    master: str | None = None,
    progress: Progress = SILENT,
) -> Iterator[tuple[IncrementalClassification, ClassRows]]:
    """Read an incremental export and classify its items on Spark.

    The classes, counts and warnings of
    :func:`~pitrdiff.diff.incremental.classify_incremental` (same SQL); what
    Spark cached is released when the context exits.

    Parameters
    ----------
    source, aws, s3_endpoint_url, key_schema, ttl_attribute, start_export
        As for :func:`~pitrdiff.diff.incremental.diff_incremental`. Executors
        read the data files with their own credentials (the instance role on
        Glue or EMR); ``start_export`` must be readable by every executor (a
        shared mount on a cluster, or ``s3://`` where supported).
    master
        Where to start a session when none is active (``local[N]``, ``yarn``).
    progress
        Receives each data file's records, then the classifying stage.

    Yields
    ------
    tuple
        The classification, and the rows of its classes
        (:data:`~pitrdiff.diff.incremental.ClassRows`) for the shared writer.

    Raises
    ------
    ExportError
        A data file missing, corrupt, or disagreeing with the manifest (MD5,
        item count): the error the DuckDB engine raises.
    InputError, SchemaMismatchError
        As :func:`~pitrdiff.diff.incremental.diff_incremental`; pyspark missing.
    StorageError
        When Spark itself fails, in one line.
    """
    spark = get_session(master)
    opened, start = open_inputs(
        source,
        aws=aws,
        s3_endpoint_url=s3_endpoint_url,
        key_schema=key_schema,
        ttl_attribute=ttl_attribute,
        start_export=start_export,
    )
    # Attribute names are case-sensitive; Spark's SQL names are not by default.
    spark.conf.set("spark.sql.caseSensitive", "true")
    context = spark.sparkContext
    group = f"pitrdiff-{uuid.uuid4().hex[:12]}"
    views: list[str] = []
    cached: list[DataFrame] = []
    context.setJobGroup(group, "pitrdiff diff --incremental", interruptOnCancel=True)
    try:
        with spark_errors():
            records, lines = _staged_records(spark, opened, cached, progress)
            progress.start("classifying on Spark", total=None)
            start_view = None
            if start is not None:
                start_view = _view(read_export(spark, start, opened.key_schema), views)
            sql = classification_sql(_view(records, views), opened.view, start_view)
            classified = spark.sql(sql)
            cached.append(classified.persist())
            counts, several = _class_counts(classified)
            progress.finish()
        classification = classification_of(
            opened, counts, several, lines, with_start=start is not None
        )
        yield classification, _ClassRows(classified, counts)
    except BaseException:
        context.cancelJobGroup(group)  # an interrupt stops the executors too
        raise
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        for name in views:
            spark.catalog.dropTempView(name)
        while cached:
            cached.pop().unpersist()


def _view(frame: DataFrame, views: list[str]) -> str:
    """Register ``frame`` as a temporary view of a fresh name (this module's own)."""
    name = f"pitrdiff_{uuid.uuid4().hex}"
    frame.createOrReplaceTempView(name)
    views.append(name)
    return name


__all__ = ["classify_incremental_spark"]

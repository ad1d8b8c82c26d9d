"""The Spark diff engine: classify two exports on Apache Spark (Glue, EMR, local).

The same two passes as the DuckDB engine, on a cluster:

1. **classify**: a narrow full outer join of the two exports on ``_key``
   (only ``_key``, ``_hash``, ``_size`` are read), keeping the keys whose
   hash or size differ or that are on one side only;
2. **extract**: the full rows of those keys, joined back from each export,
   checked for keys held twice (a corrupt export is refused), and streamed to
   the driver sorted by ``_key`` as Arrow batches.

Everything after (attribute-level changes, the dataset files, summary and
report) is pitrdiff's shared code, so the two engines write the same diff
dataset. Spark orders strings by their UTF-8 bytes, as DuckDB orders
``VARCHAR``: class rows come out in the same order.

Spark reads the ``uint64`` hash as ``decimal(20,0)``; it is compared as such
and cast back to ``uint64`` before it leaves the executors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pitrdiff.diff.engine import Classified, EngineOptions
from pitrdiff.errors import ExportError
from pitrdiff.export.dataset import (
    HASH_COLUMN,
    ITEM_COLUMN,
    KEY_COLUMN,
    KEY_STRUCT_COLUMN,
    SIZE_COLUMN,
    Export,
    KeySchema,
)
from pitrdiff.progress import SILENT, Progress
from pitrdiff.spark.arrow import spark_schema, stream_sorted
from pitrdiff.spark.session import get_session, master_to_set, spark_errors

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

NAME = "spark"
# Our working columns; pitrdiff's datasets never hold columns of these names.
_CLASS = "_pitrdiff_class"
_LIVE_HASH, _LIVE_SIZE = "_pitrdiff_live_hash", "_pitrdiff_live_size"
_RESTORED_HASH, _RESTORED_SIZE = "_pitrdiff_restored_hash", "_pitrdiff_restored_size"
DELETED, CHANGED, ADDED = 0, 1, 2
ONE_PARTITION_ROWS = 1_000_000
"""A class of at most this many rows is sorted in one partition (no sampling job)."""


def read_export(spark: SparkSession, export: Export, key_schema: KeySchema) -> DataFrame:
    """An export dataset's parts as a DataFrame (``_hash`` is ``decimal(20,0)`` in Spark).

    An export without parts gives an empty DataFrame of the dataset's schema.
    """
    if not export.manifest.files:
        return spark.createDataFrame([], spark_schema(key_schema.arrow_schema()))
    from pitrdiff.spark.s3 import S3Export

    if isinstance(export, S3Export):
        return export.frame(spark)
    # file:// URIs: on a cluster (YARN) a bare path would mean HDFS; a shared
    # mount (EFS, FSx) is at the same path on every node.
    return spark.read.parquet(*(part_url(p) for p in export.parquet_files))


def part_url(path: str) -> str:
    """A part's location as Spark should read it: URLs as they are, paths as ``file://``."""
    return path if "://" in path else Path(path).absolute().as_uri()


def _narrow(frame: DataFrame, hash_name: str, size_name: str) -> DataFrame:
    from pyspark.sql import functions as F

    return frame.select(
        F.col(KEY_COLUMN), F.col(HASH_COLUMN).alias(hash_name), F.col(SIZE_COLUMN).alias(size_name)
    )


def _differing_keys(live: DataFrame, restored: DataFrame) -> DataFrame:
    """Pass 1: ``_key`` and class of every key whose item differs between the exports."""
    from pyspark.sql import functions as F

    joined = _narrow(live, _LIVE_HASH, _LIVE_SIZE).join(
        _narrow(restored, _RESTORED_HASH, _RESTORED_SIZE), on=KEY_COLUMN, how="full_outer"
    )
    live_hash, restored_hash = F.col(_LIVE_HASH), F.col(_RESTORED_HASH)
    cls = (
        F.when(live_hash.isNull(), F.lit(DELETED))
        .when(restored_hash.isNull(), F.lit(ADDED))
        .otherwise(F.lit(CHANGED))
    )
    differs = (
        live_hash.isNull()
        | restored_hash.isNull()
        | (live_hash != restored_hash)
        | (F.col(_LIVE_SIZE) != F.col(_RESTORED_SIZE))
    )
    # A key held twice on one side appears twice here: one row per key is
    # enough to select its rows (the duplicates are refused in pass 2).
    return joined.where(differs).select(KEY_COLUMN, cls.alias(_CLASS)).dropDuplicates([KEY_COLUMN])


def _selected(side: DataFrame, classes: DataFrame, wanted: tuple[int, ...]) -> DataFrame:
    """Pass 2: the full rows of one export whose keys have one of the ``wanted`` classes."""
    from pyspark.sql import functions as F

    keys = classes.where(F.col(_CLASS).isin(*wanted))
    return side.join(keys, on=KEY_COLUMN, how="inner")


def _side_facts(selected: DataFrame, role: str, export: Export) -> dict[int, tuple[int, int]]:
    """Rows and size sum per class of one side's selected rows, in one job.

    An item held twice in one export (a corrupt or hand-assembled export) is
    refused, naming the first such key, as the DuckDB engine does; checked on
    the differing rows only (a duplicate among unchanged rows cannot change
    any class).
    """
    from pyspark.sql import functions as F

    cls, size = F.col(_CLASS), F.col(SIZE_COLUMN)
    aggregates = [F.count(F.lit(1)), F.countDistinct(KEY_COLUMN)]
    for code in (DELETED, CHANGED, ADDED):
        aggregates.append(F.count(F.when(cls == code, 1)))
        aggregates.append(F.coalesce(F.sum(F.when(cls == code, size)), F.lit(0)))
    row = selected.agg(*aggregates).collect()[0]
    if row[0] != row[1]:
        twice = (
            selected.groupBy(KEY_COLUMN)
            .count()
            .where(F.col("count") > 1)
            .orderBy(KEY_COLUMN)
            .limit(1)
            .collect()
        )
        where = str(getattr(export, "url", export.path))
        raise ExportError(
            f"{role} export {where} holds the key {twice[0][0]} more than once "
            "(a corrupt export); re-run the export",
            path=where,
        )
    return {
        code: (int(row[2 + 2 * i]), int(row[3 + 2 * i]))
        for i, code in enumerate((DELETED, CHANGED, ADDED))
    }


def _live_totals(live: DataFrame) -> tuple[int, int]:
    from pyspark.sql import functions as F

    row = live.agg(F.count(F.lit(1)), F.coalesce(F.sum(SIZE_COLUMN), F.lit(0))).collect()[0]
    return int(row[0]), int(row[1])


def _sorted(frame: DataFrame, rows: int) -> DataFrame | None:
    """``frame`` sorted by ``_key``; ``None`` when it has no rows (no job to run).

    Up to :data:`ONE_PARTITION_ROWS` rows are sorted in one partition (no
    sampling job; the driver reads them in one go anyway); more are
    range-partitioned by ``orderBy`` and read a partition at a time.
    """
    if rows == 0:
        return None
    if rows <= ONE_PARTITION_ROWS:
        return frame.coalesce(1).sortWithinPartitions(KEY_COLUMN)
    return frame.orderBy(KEY_COLUMN)


def _class_frames(
    live_sel: DataFrame, restored_sel: DataFrame
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """The deleted, changed and added rows, with the DuckDB engine's columns (unsorted).

    The export's key struct (``key``) is passed through, as the DuckDB
    engine does (the writer would otherwise derive it from ``_key``).
    """
    from pyspark.sql import functions as F

    def side(frame: DataFrame, cls: int, prefix: str) -> DataFrame:
        return frame.where(F.col(_CLASS) == cls).select(
            KEY_COLUMN,
            KEY_STRUCT_COLUMN,
            F.col(ITEM_COLUMN).alias(f"{prefix}_item"),
            F.col(HASH_COLUMN).alias(f"{prefix}_hash"),
            F.col(SIZE_COLUMN).alias(f"{prefix}_size"),
        )

    deleted = side(restored_sel, DELETED, "restored")
    added = side(live_sel, ADDED, "live")
    changed = (
        side(live_sel, CHANGED, "live")
        .join(
            side(restored_sel, CHANGED, "restored").drop(KEY_STRUCT_COLUMN),
            on=KEY_COLUMN,
            how="inner",
        )
        .select(
            KEY_COLUMN,
            KEY_STRUCT_COLUMN,
            "live_item",
            "restored_item",
            "live_hash",
            "restored_hash",
            "live_size",
            "restored_size",
        )
    )
    return deleted, changed, added


def _rows(frame: DataFrame | None) -> Iterator[pa.RecordBatch]:
    """A class's sorted rows as Arrow batches (nothing for an empty class)."""
    if frame is None:
        return
    with spark_errors():
        yield from stream_sorted(frame, ("restored_hash", "live_hash"))


def classify_on_spark(
    spark: SparkSession,
    live: Export,
    restored: Export,
    key_schema: KeySchema,
    *,
    progress: Progress = SILENT,
) -> Classified:
    """Classify the items of two exports on Spark (passes 1 and 2 of the diff).

    Parameters
    ----------
    spark
        The session to run on.
    live, restored
        The two exports (already opened and verified by the caller).
    key_schema
        The merged key schema of both.
    progress
        Told when each pass starts and ends.

    Returns
    -------
    Classified
        Lazy class batches sorted by ``_key``, the unchanged count and bytes,
        timings; ``close`` releases what Spark cached (contract:
        :mod:`pitrdiff.diff.engine`).

    Raises
    ------
    ExportError
        When an export holds a differing key more than once.
    StorageError
        When Spark fails (a lost executor, a full disk), in one line.
    """
    from pyspark import StorageLevel

    # Attribute names are case-sensitive; Spark's SQL names are not by default.
    spark.conf.set("spark.sql.caseSensitive", "true")
    started = time.perf_counter()
    cached: list[DataFrame] = []

    def close() -> None:
        while cached:
            cached.pop().unpersist()

    try:
        with spark_errors():
            live_frame = read_export(spark, live, key_schema)
            restored_frame = read_export(spark, restored, key_schema)
            progress.start("classifying", total=None)
            classes = _differing_keys(live_frame, restored_frame)
            cached.append(classes.persist(StorageLevel.MEMORY_AND_DISK))
            classes.count()
            live_rows, live_bytes = _live_totals(live_frame)
            progress.finish()
            classified = time.perf_counter()
            progress.start("extracting", total=None)
            restored_sel = _selected(restored_frame, classes, (DELETED, CHANGED))
            live_sel = _selected(live_frame, classes, (CHANGED, ADDED))
            facts = {}
            for frame, role, export in (
                (restored_sel, "restored", restored),
                (live_sel, "live", live),
            ):
                cached.append(frame.persist(StorageLevel.MEMORY_AND_DISK))
                facts[role] = _side_facts(frame, role, export)
            progress.finish()
    except BaseException:
        close()
        raise
    extracted = time.perf_counter()
    deleted, changed, added = _class_frames(live_sel, restored_sel)
    (n_deleted, _), (n_changed, changed_bytes), (n_added, added_bytes) = (
        facts["restored"][DELETED],
        facts["live"][CHANGED],
        facts["live"][ADDED],
    )
    return Classified(
        deleted=_rows(_sorted(deleted, n_deleted)),
        changed=_rows(_sorted(changed, n_changed)),
        added=_rows(_sorted(added, n_added)),
        unchanged_count=live_rows - n_changed - n_added,
        unchanged_bytes=live_bytes - changed_bytes - added_bytes,
        timings={
            "classify_s": round(classified - started, 3),
            "extract_s": round(extracted - classified, 3),
        },
        close=close,
    )


class SparkEngine:
    """The diff engine running on Apache Spark (contract: :mod:`pitrdiff.diff.engine`).

    It runs on the active ``SparkSession`` (a Glue or EMR job, or one started
    by ``pitrdiff diff --engine spark --spark-master …``); with none, it
    starts one on ``master`` (``local[N]`` with N the options' threads by default).

    Parameters
    ----------
    options
        The engine options (``threads`` sets a local session's cores).
    master
        Where to start a session when none is active.
    """

    name = NAME

    def __init__(self, options: EngineOptions | None = None, master: str | None = None) -> None:
        self.options = options or EngineOptions()
        self.master = master

    def session(self) -> SparkSession:
        """The session this engine runs on (started on first use).

        With no ``master``: the session running, or the master ``spark-submit``
        launched this process with, else ``local[threads]``.
        """
        return get_session(master_to_set(self.master, f"local[{max(1, self.options.threads)}]"))

    def classify(
        self, live: Export, restored: Export, key_schema: KeySchema, *, progress: Progress
    ) -> Classified:
        """Classify ``live`` against ``restored`` on Spark (see :func:`classify_on_spark`)."""
        return classify_on_spark(self.session(), live, restored, key_schema, progress=progress)

"""Incremental exports as a producer of diffs: a change log of T1..T2 → a diff dataset.

An incremental export (``ExportTableToPointInTime`` with ``ExportType``
``INCREMENTAL_EXPORT``) holds, per item changed in the window, a record with
its ``Keys``, ``NewImage`` (absent when deleted), ``OldImage`` (view type
``NEW_AND_OLD_IMAGES``) and ``Metadata.WriteTimestampMicros``. *restored* is
the table at the window's start (T1) and *live* the table at its end (T2).

1. **Stage**: every data file is streamed into a staging Parquet file
   (:mod:`pitrdiff.export.native.changes`): canonical key, old and new image
   (canonical item, hash, size), write time, and the old image's TTL.
2. **Classify**: an item's first record gives its state at T1, its
   last its state at T2 → ``deleted``, ``expired``, ``changed``, ``added``,
   ``unchanged``, and the classes nothing can be put back from. One SQL text
   (:func:`classification_sql`) runs on DuckDB
   (:mod:`pitrdiff.diff.incremental_duckdb`, the default: workers on this
   machine stage the files) or on Apache Spark
   (:mod:`pitrdiff.diff.incremental_spark`: one Spark task per data file),
   so the two engines cannot classify apart.
3. **Write** the diff dataset with the shared writer
   (:func:`pitrdiff.diff.writer.write_diff_dataset`): ``plan`` and ``apply``
   work on it unchanged.

A removal whose old image's TTL attribute had passed at the removal's write
time is **expired**, not deleted (DynamoDB developer guide, "Using DynamoDB
Time to Live (TTL)", *Formatting an item's TTL attribute*: a top-level Number
of epoch seconds; an item expires once that time is less than the current
time; other types, or a missing attribute, never expire; values more than five
years in the past are ignored by TTL).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pitrdiff.aws import AwsConfig
from pitrdiff.diff.ttl import FIVE_YEARS_DAYS
from pitrdiff.errors import InputError, SchemaMismatchError
from pitrdiff.export.dataset import Export, KeySchema
from pitrdiff.export.native.changes import IncrementalSink
from pitrdiff.export.native.control import parse_time
from pitrdiff.export.native.location import ExportLocation, Reader
from pitrdiff.export.native.manifest import (
    INCREMENTAL_EXPORT,
    NEW_AND_OLD_IMAGES,
    NEW_IMAGE,
    ExportSummary,
    summary_of,
)
from pitrdiff.export.native.stream import FileTask
from pitrdiff.export.native.table import peek_key_types, resolve_key_schema, resolve_ttl
from pitrdiff.files import make_dir, private_temp_dir
from pitrdiff.progress import SILENT, Progress

if TYPE_CHECKING:
    from pitrdiff.diff.notebook import Diff

log = logging.getLogger(__name__)

ClassRows = Callable[[Sequence[str], Sequence[str]], Iterator[pa.RecordBatch]]
"""An engine's classified rows: ``rows(classes, columns)`` streams the rows of
those classes (``classified``'s columns named), sorted by ``_key``."""

# Classes of an item over the window, from its first and last change records.
DELETED, EXPIRED, CHANGED, ADDED, UNCHANGED = "deleted", "expired", "changed", "added", "unchanged"
TRANSIENT = "transient"  # absent at both ends (created and deleted inside the window)
UNKNOWN_PRESENT = "present-unknown"  # NEW_IMAGE view: present at the end, start unknown
DELETED_NO_IMAGE = "deleted-no-image"  # deleted, but the export holds no old image
ALL_CLASSES = (
    DELETED,
    EXPIRED,
    CHANGED,
    ADDED,
    UNCHANGED,
    TRANSIENT,
    UNKNOWN_PRESENT,
    DELETED_NO_IMAGE,
)
# TTL ignores expiry times more than five years in the past (developer guide,
# "Using DynamoDB Time to Live (TTL)"): the same horizon as full-export diffs.
TTL_HORIZON_MICROS = FIVE_YEARS_DAYS * 86_400 * 1_000_000

# --------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class IncrementalClassification:
    """How an incremental export's records map to diff classes.

    Attributes
    ----------
    summary
        The export's manifests.
    key_schema
        The table's key.
    counts
        Items per class: ``deleted``, ``expired`` (removed once their TTL had
        passed), ``changed``, ``added``, ``unchanged`` (changed and changed
        back), ``transient`` (created and deleted inside the window), and,
        when old images are missing, ``present-unknown`` and ``deleted-no-image``.
    records
        Change records read; ``items_with_several_records`` counts items that
        had more than one (DynamoDB compacts to one per item, normally).
    ttl
        The TTL setting used to tell expired from deleted (``None``: unknown,
        nothing is classified expired).
    """

    summary: ExportSummary
    key_schema: KeySchema
    counts: dict[str, int]
    records: int
    items_with_several_records: int
    ttl: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "export": self.summary.to_dict(),
            "key_schema": self.key_schema.to_list(),
            "counts": self.counts,
            "records": self.records,
            "items_with_several_records": self.items_with_several_records,
            "ttl": self.ttl,
        }


def _same_time(a: str, b: str) -> bool:
    try:
        return parse_time(str(a)) == parse_time(str(b))
    except InputError:
        return str(a) == str(b)


# One item's records in write order: by WriteTimestampMicros (missing first), then
# by position in the export (unique).
_ORDER_WINDOW = "PARTITION BY _key ORDER BY ts ASC NULLS FIRST, seq ASC"
_WHOLE_WINDOW = f"{_ORDER_WINDOW} ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
_LAST_COLUMNS = ("has_new", "new_item", "new_hash", "new_size", "ts", "old_ttl")


def _removed(has_old: str) -> str:
    """The class of an item present at the start and gone at the end."""
    expired = (
        "i.l_old_ttl IS NOT NULL AND i.l_ts IS NOT NULL AND i.l_old_ttl < i.l_ts "
        f"AND i.l_old_ttl >= i.l_ts - {TTL_HORIZON_MICROS}"
    )
    return f"WHEN {has_old} THEN CASE WHEN {expired} THEN '{EXPIRED}' ELSE '{DELETED}' END"


def _class_case(view: str, with_start: bool) -> str:
    """The CASE expression of an item's class (``i.f_*`` first record, ``i.l_*`` last)."""
    if with_start:
        return f"""CASE
            WHEN b._key IS NOT NULL AND i.l_has_new THEN
                CASE WHEN b._hash = i.l_new_hash AND b._item = i.l_new_item
                     THEN '{UNCHANGED}' ELSE '{CHANGED}' END
            {_removed("b._key IS NOT NULL")}
            WHEN i.l_has_new THEN '{ADDED}'
            ELSE '{TRANSIENT}' END"""
    if view == NEW_IMAGE:
        return f"CASE WHEN i.l_has_new THEN '{UNKNOWN_PRESENT}' ELSE '{DELETED_NO_IMAGE}' END"
    return f"""CASE
        WHEN i.f_has_old AND i.l_has_new THEN
            CASE WHEN i.f_old_hash = i.l_new_hash AND i.f_old_item = i.l_new_item
                 THEN '{UNCHANGED}' ELSE '{CHANGED}' END
        {_removed("i.f_has_old")}
        WHEN i.f_has_new AND i.l_has_new THEN '{ADDED}'
        WHEN i.f_has_new THEN '{TRANSIENT}'
        WHEN i.l_has_new THEN '{UNKNOWN_PRESENT}'
        ELSE '{DELETED_NO_IMAGE}' END"""


def classification_sql(records: str, view: str, start: str | None = None) -> str:
    """One row per item: its class over the window, its start and end states.

    The one query both engines run (DuckDB's and Spark's SQL both read it).
    One window over each item's records, in write order (``seq`` is unique,
    so the order is total and the last record is the first of the reverse
    order): ``f_*`` columns are the item's first record (its old image is the
    state at the start), ``l_*`` its last (its new image is the state at the
    end); one sort, no self-join. With ``start``
    (a full export at the window's start), the start state comes from that
    export instead: how NEW_IMAGE exports become classifiable.

    Parameters
    ----------
    records
        A relation of staged change records (columns of
        :mod:`pitrdiff.export.native.changes`): a table name or a table function.
    view
        The export's view type (``NEW_IMAGE`` or ``NEW_AND_OLD_IMAGES``).
    start
        A relation of the start export's rows (``_key``, ``_item``, ``_hash``,
        ``_size``), or ``None``.

    Returns
    -------
    str
        A ``SELECT`` of ``_key``, ``class``, ``restored_item``, ``restored_hash``,
        ``restored_size``, ``live_item``, ``live_hash``, ``live_size``, ``records``.
    """
    if start is not None:
        old = "b._item AS restored_item, b._hash AS restored_hash, b._size AS restored_size"
        join = f"LEFT JOIN {start} b ON b._key = i._key"
    else:
        old = (
            "i.f_old_item AS restored_item, i.f_old_hash AS restored_hash, "
            "i.f_old_size AS restored_size"
        )
        join = ""
    last = ",\n            ".join(
        f"last_value({column}) OVER ({_WHOLE_WINDOW}) AS l_{column}" for column in _LAST_COLUMNS
    )
    return f"""
    WITH ranked AS (
        SELECT _key,
            has_old AS f_has_old, has_new AS f_has_new, old_item AS f_old_item,
            old_hash AS f_old_hash, old_size AS f_old_size,
            {last},
            row_number() OVER ({_ORDER_WINDOW}) AS first_rank,
            count(*) OVER (PARTITION BY _key) AS records
        FROM {records})
    SELECT i._key AS _key,
        {_class_case(view, start is not None)} AS class,
        {old},
        i.l_new_item AS live_item, i.l_new_hash AS live_hash, i.l_new_size AS live_size,
        i.records AS records
    FROM (SELECT * FROM ranked WHERE first_rank = 1) i
    {join}
    """


def open_start_export(
    start_export: str | os.PathLike[str],
    schema: KeySchema,
    summary: ExportSummary,
    *,
    s3_endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
) -> Export:
    """The start export (verified; on disk or ``s3://``), after checking it fits the window.

    Raises
    ------
    SchemaMismatchError
        When its key is not the incremental export's.
    """
    from pitrdiff.export.dataset import load_export

    start = load_export(start_export, verify=True, s3_endpoint_url=s3_endpoint_url, aws=aws)
    if not start.key_schema.same_keys(schema):
        raise SchemaMismatchError(
            f"the start export's key ({start.key_schema.describe()}) is not the "
            f"incremental export's ({schema.describe()})"
        )
    restore = start.manifest.table.get("restore") or {}
    at = (
        start.manifest.source.get("export_time")
        or restore.get("restore_date_time")
        or start.manifest.source.get("started_at")
    )
    if at and summary.export_from_time and not _same_time(at, summary.export_from_time):
        log.warning(
            "the start export is of %s, the window starts at %s: classes are relative "
            "to the start export",
            at,
            summary.export_from_time,
        )
    return start


def _warn_unclassified(
    summary: ExportSummary, view: str, with_start: bool, counts: Mapping[str, int]
) -> None:
    if view == NEW_IMAGE and not with_start:
        log.warning(
            "%s has view type NEW_IMAGE: without old images nothing can be put back and "
            "added cannot be told from changed (%d items present at the end, %d deleted); "
            "pass a full export of the window's start (--start-export), or export with "
            "NEW_AND_OLD_IMAGES",
            summary.location.url,
            counts[UNKNOWN_PRESENT],
            counts[DELETED_NO_IMAGE],
        )
    elif counts[UNKNOWN_PRESENT] or counts[DELETED_NO_IMAGE]:
        log.warning(
            "%s: %d records lack the old image a NEW_AND_OLD_IMAGES export should carry; "
            "they are left unclassified",
            summary.location.url,
            counts[UNKNOWN_PRESENT] + counts[DELETED_NO_IMAGE],
        )


def _usable_ttl(ttl: Mapping[str, Any] | None) -> str | None:
    """The TTL attribute to judge expiry by, if the setting names one that is on."""
    if not ttl or not ttl.get("attribute"):
        return None
    return str(ttl["attribute"]) if ttl.get("status") in ("ENABLED", "ENABLING") else None


@dataclass(frozen=True)
class IncrementalSource:
    """An incremental export opened for classifying (whichever engine does it).

    Attributes
    ----------
    reader
        How its files are read.
    summary
        Its manifests.
    key_schema
        The table's key (types peeked from the first records when undeclared).
    ttl
        The TTL setting used to tell expired from deleted, if known.
    view
        ``NEW_IMAGE`` or ``NEW_AND_OLD_IMAGES``.
    """

    reader: Reader
    summary: ExportSummary
    key_schema: KeySchema
    ttl: dict[str, Any] | None
    view: str


def open_inputs(
    source: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None = None,
    ttl_attribute: str | None = None,
    start_export: str | os.PathLike[str] | None = None,
) -> tuple[IncrementalSource, Export | None]:
    """Open the incremental export and the start export, if any: what both engines do first.

    See :func:`open_incremental` and :func:`open_start_export`.
    """
    opened = open_incremental(
        source,
        aws=aws,
        s3_endpoint_url=s3_endpoint_url,
        key_schema=key_schema,
        ttl_attribute=ttl_attribute,
    )
    if not start_export:
        return opened, None
    start = open_start_export(
        start_export, opened.key_schema, opened.summary, s3_endpoint_url=s3_endpoint_url, aws=aws
    )
    return opened, start


def open_incremental(
    source: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None = None,
    ttl_attribute: str | None = None,
) -> IncrementalSource:
    """Read an incremental export's manifests, key schema, TTL setting and view type.

    Raises
    ------
    ExportError, InputError
        As :func:`diff_incremental` (a full export is refused here).
    """
    reader = Reader(ExportLocation.parse(source), aws or AwsConfig(), s3_endpoint_url)
    summary = summary_of(reader)
    if summary.export_type != INCREMENTAL_EXPORT:
        raise InputError(
            f"{summary.location.url} is a full export (a table state, not a change log): "
            "use `pitrdiff export --from-s3` / ingest_export()"
        )
    schema, facts = resolve_key_schema(summary, key_schema, aws)
    ttl = resolve_ttl(facts, ttl_attribute)
    schema = peek_key_types(reader, summary, schema)
    view = summary.output_view or NEW_AND_OLD_IMAGES
    if view.startswith("NEW_IMAGE"):  # the API also spells it NEW_IMAGES
        view = NEW_IMAGE
    return IncrementalSource(reader, summary, schema, ttl, view)


def staging_tasks(opened: IncrementalSource, out: str, run: str = "") -> list[FileTask]:
    """One staging task per data file (:class:`~pitrdiff.export.native.changes.IncrementalSink`)."""
    options = (("ttl_attribute", _usable_ttl(opened.ttl)),)
    return [
        FileTask(i, opened.reader, f, out, opened.key_schema, 0, IncrementalSink, run, options)
        for i, f in enumerate(opened.summary.files)
    ]


def classification_of(
    opened: IncrementalSource,
    counts: dict[str, int],
    several: int,
    records: int,
    *,
    with_start: bool,
) -> IncrementalClassification:
    """The classification of an engine's counts; warns of what could not be classified."""
    _warn_unclassified(opened.summary, opened.view, with_start, counts)
    if several:
        log.info(
            "%d items have several change records; first old image and last new image used",
            several,
        )
    return IncrementalClassification(
        summary=opened.summary,
        key_schema=opened.key_schema,
        counts=counts,
        records=records,
        items_with_several_records=several,
        ttl=opened.ttl,
    )


def _inputs(
    classification: IncrementalClassification,
    name: str,
    start_export: str | os.PathLike[str] | None,
) -> dict[str, dict[str, Any]]:
    """What the diff manifest records of the window's two ends."""
    summary = classification.summary
    common = {
        "kind": "s3-incremental-export",
        "url": summary.location.url,
        "export_arn": summary.export_arn,
        "table_name": name,
        "table_arn": summary.table_arn,
        "output_view": summary.output_view,
        "ttl": classification.ttl,
    }
    return {
        "live": {
            **common,
            "state_at": summary.export_to_time,
            "records": classification.records,
            "counts": classification.counts,
            "items_with_several_records": classification.items_with_several_records,
        },
        "restored": {
            **common,
            "state_at": summary.export_from_time,
            "start_export": os.fspath(start_export) if start_export is not None else None,
        },
    }


def diff_incremental(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None = None,
    table_name: str | None = None,
    ttl_attribute: str | None = None,
    workers: int | None = None,
    executor: str = "auto",
    overwrite: bool = False,
    memory_limit: str | None = None,
    start_export: str | os.PathLike[str] | None = None,
    engine: str = "duckdb",
    master: str | None = None,
    progress: Progress = SILENT,
) -> Diff:
    """Turn an incremental export (the change log of T1..T2) into a diff dataset.

    *restored* is the table at the window's start (T1, ``exportFromTime``) and
    *live* the table at its end (T2, ``exportToTime``): **deleted** items were
    present at T1 and gone at T2 (their old image is what a plan puts back),
    **expired** ones too, but removed after their TTL had passed (not lost),
    **added** ones were created in the window, **changed** ones differ; items
    that changed and changed back count as unchanged. The dataset is the one
    ``pitrdiff diff`` writes (attribute-level changes and signatures
    included), so ``plan`` and ``apply`` work on it unchanged.

    Exports with view type ``NEW_IMAGE`` carry no old images: nothing can be
    put back and added cannot be told from changed. Those items are counted
    (``present-unknown``, ``deleted-no-image`` in the manifest's ``live``
    input) and a warning says so; the classes stay empty.

    Parameters
    ----------
    source
        ``s3://bucket/prefix/AWSDynamoDB/<export-id>`` or a local directory.
    out
        The diff directory to create.
    key_schema
        The table's key (``"pk[:TYPE][,sk[:TYPE]]"`` or a :class:`KeySchema`);
        by default from ``DescribeTable`` of the export's table.
    table_name
        The table name recorded (default: from the export's table ARN).
    ttl_attribute
        The table's TTL attribute (default: the table's setting, read with
        ``DescribeTimeToLive`` when the table is described; with a
        ``key_schema`` given and no ``ttl_attribute``, nothing is expired).
    workers, executor
        Parallelism over data files (see :func:`~pitrdiff.export.native.ingest_export`);
        DuckDB engine only (Spark runs one task per data file).
    overwrite
        Replace a diff already at ``out``.
    memory_limit
        DuckDB's memory limit (e.g. ``"1GB"``) for classifying (DuckDB engine)
        and for the shared writer; beyond it DuckDB spills to a directory
        beside ``out``.
    start_export
        An export dataset of the table at the window's start: the start state
        comes from it rather than from old images (needed for ``NEW_IMAGE``
        exports; e.g. ``pitrdiff export --native --at T1``).
    engine
        ``duckdb`` (default: staging and classifying on this machine),
        ``spark`` (one Spark task per data file, classified on Spark;
        :mod:`pitrdiff.diff.incremental_spark`), or ``auto``: ``spark`` when
        the export holds :data:`~pitrdiff.spark.choose.AUTO_SPARK_MIN_ITEMS`
        records or more and pyspark is installed. Both write the same dataset.
    master
        With ``spark``: where to start a session when none is active
        (``local[N]``, ``yarn``; default ``local[*]``).

    Returns
    -------
    Diff
        The diff dataset written.

    Raises
    ------
    ExportError
        When the export does not verify against its manifests.
    InputError
        A full or ION export, a key schema that cannot be learned, an unknown
        engine, ``workers`` with ``spark``, or ``spark`` without pyspark.
    RefusedError
        When ``out`` holds something else, or a diff and ``overwrite`` is false.
    Interrupted
        On Ctrl-C or SIGTERM: workers stopped, the staging directory removed.
    StorageError
        When Spark itself fails.
    """
    from pitrdiff.diff.manifest import prepare_out

    check_engine(engine, workers, master)
    if engine == "auto":
        from pitrdiff.export.native.manifest import read_summary
        from pitrdiff.spark.choose import choose_engine

        records = read_summary(source, aws=aws, s3_endpoint_url=s3_endpoint_url).item_count
        engine = choose_engine(engine, [records])
        master = master if engine == "spark" else None
        check_engine(engine, workers, master)
    clock = time.monotonic()
    target = Path(out)
    prepare_out(target, overwrite=overwrite, check_only=True)  # refuse before the work
    parent = make_dir(target.resolve().parent)
    # beside the output (same file system, owner-only: staging holds table data);
    # removed on any exit, and what a killed run left is removed by the next
    with private_temp_dir("incremental", parent) as work, contextlib.ExitStack() as stack:
        if engine == "spark":
            from pitrdiff.diff.incremental_spark import classify_incremental_spark

            classification, rows = stack.enter_context(
                classify_incremental_spark(
                    source,
                    aws=aws,
                    s3_endpoint_url=s3_endpoint_url,
                    key_schema=key_schema,
                    ttl_attribute=ttl_attribute,
                    start_export=start_export,
                    master=master,
                    progress=progress,
                )
            )
        else:
            from pitrdiff.diff.incremental_duckdb import class_batches, classify_incremental

            classification, database = classify_incremental(
                source,
                work,
                aws=aws,
                s3_endpoint_url=s3_endpoint_url,
                key_schema=key_schema,
                ttl_attribute=ttl_attribute,
                workers=workers,
                executor=executor,
                memory_limit=memory_limit,
                start_export=start_export,
                progress=progress,
            )
            rows = functools.partial(class_batches, database)
        summary = classification.summary
        name = table_name or summary.table_name or summary.location.export_id
        return _write(
            target,
            classification,
            rows,
            name=name,
            inputs=_inputs(classification, name, start_export),
            read_s=time.monotonic() - clock,
            overwrite=overwrite,
            memory_limit=memory_limit,
            work=work,
            progress=progress,
        )


def check_engine(engine: str, workers: int | None, master: str | None) -> None:
    """Refuse an unknown engine, and options of the other engine (``auto``: nothing yet).

    Raises
    ------
    InputError
        An engine other than ``duckdb``, ``spark`` (or ``auto``), ``workers``
        with ``spark``, or ``master`` with ``duckdb``.
    """
    if engine == "auto":
        return
    if engine not in ("duckdb", "spark"):
        raise InputError(
            f"unknown engine {engine!r} for an incremental diff; choose duckdb or spark"
        )
    if engine == "spark" and workers:
        raise InputError(
            "--workers is for one machine; with --engine spark, Spark runs one task per data file"
        )
    if engine == "duckdb" and master:
        raise InputError("--spark-master goes with --engine spark (or auto)")


def _write(
    target: Path,
    classification: IncrementalClassification,
    rows: ClassRows,
    *,
    name: str,
    inputs: Mapping[str, Mapping[str, Any]],
    read_s: float,
    overwrite: bool,
    memory_limit: str | None,
    work: Path,
    progress: Progress,
) -> Diff:
    """The diff dataset of a classification (either engine's rows), by the shared writer."""
    from pitrdiff.diff.writer import write_diff_dataset

    restored_cols = ["_key", "restored_item", "restored_hash", "restored_size"]
    live_cols = ["_key", "live_item", "live_hash", "live_size"]
    return write_diff_dataset(
        target,
        key_schema=classification.key_schema,
        table_name=name,
        deleted=rows((DELETED,), restored_cols),
        # judged per removal, at its write time (the writer's own TTL split,
        # at one reference time, is not asked for: no ``ttl=``)
        expired=rows((EXPIRED,), restored_cols),
        changed=rows((CHANGED,), live_cols + restored_cols[1:]),
        added=rows((ADDED,), live_cols),
        unchanged_count=classification.counts[UNCHANGED],
        inputs=inputs,
        timings={"read_s": round(read_s, 3)},
        overwrite=overwrite,
        memory_limit=memory_limit,
        temp_dir=work,
        progress=progress,
    )


def unclassified_count(diff: Diff) -> int:
    """Items of an incremental diff that could not be classified (no old images)."""
    counts = (diff.manifest.live or {}).get("counts") or {}
    return int(counts.get(UNKNOWN_PRESENT, 0)) + int(counts.get(DELETED_NO_IMAGE, 0))


__all__ = [
    "ALL_CLASSES",
    "ClassRows",
    "IncrementalClassification",
    "IncrementalSource",
    "check_engine",
    "classification_sql",
    "diff_incremental",
    "open_incremental",
    "open_inputs",
    "open_start_export",
    "staging_tasks",
    "unclassified_count",
]

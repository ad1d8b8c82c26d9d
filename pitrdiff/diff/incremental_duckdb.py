"""Incremental exports classified on DuckDB, on one machine (the default engine).

The DuckDB half of :func:`pitrdiff.diff.incremental.diff_incremental`: every
data file is staged into a Parquet file by a pool of workers
(:mod:`pitrdiff.export.native.workers`), then one DuckDB database in the
private work directory holds table ``classified``, made by the SQL text both
engines share (:func:`pitrdiff.diff.incremental.classification_sql`); the
shared writer reads the classes out of it sorted by ``_key``. The Spark half
is :mod:`pitrdiff.diff.incremental_spark`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from pitrdiff.aws import AwsConfig
from pitrdiff.diff.incremental import (
    ALL_CLASSES,
    IncrementalClassification,
    IncrementalSource,
    classification_of,
    classification_sql,
    open_inputs,
    staging_tasks,
)
from pitrdiff.export.dataset import KeySchema
from pitrdiff.export.native.stream import FileOutcome
from pitrdiff.export.native.workers import default_workers, new_run, run_files
from pitrdiff.files import make_dir
from pitrdiff.progress import SILENT, Progress


def _sql_list(paths: Sequence[str]) -> str:
    return ", ".join("'" + path.replace("'", "''") + "'" for path in paths)


_EMPTY_CLASSIFIED = """CREATE TABLE classified AS SELECT
    CAST(NULL AS VARCHAR) AS _key, CAST(NULL AS VARCHAR) AS class,
    CAST(NULL AS VARCHAR) AS restored_item, CAST(NULL AS UBIGINT) AS restored_hash,
    CAST(NULL AS INTEGER) AS restored_size, CAST(NULL AS VARCHAR) AS live_item,
    CAST(NULL AS UBIGINT) AS live_hash, CAST(NULL AS INTEGER) AS live_size,
    CAST(NULL AS BIGINT) AS records
LIMIT 0"""


def _start_relation(parts: Sequence[str]) -> str:
    """The start export's rows; a table empty at the window's start has no parts."""
    if parts:
        return f"read_parquet([{_sql_list(parts)}])"
    return (
        "(SELECT CAST(NULL AS VARCHAR) AS _key, CAST(NULL AS VARCHAR) AS _item, "
        "CAST(NULL AS UBIGINT) AS _hash, CAST(NULL AS INTEGER) AS _size LIMIT 0)"
    )


def _classify(
    database: str,
    workdir: Path,
    staging: Sequence[str],
    view: str,
    start_parts: Sequence[str] | None,
    memory_limit: str | None,
) -> tuple[dict[str, int], int]:
    """Create table ``classified`` in ``database``; class counts and items with several records."""
    from pitrdiff.diff.sql import connect

    # spills beside --out (owner-only workdir); an invalid limit is an InputError
    con = connect(database=database, temp_dir=workdir / "spill", memory_limit=memory_limit)
    try:
        if staging:
            start = None if start_parts is None else _start_relation(start_parts)
            sql = classification_sql(f"read_parquet([{_sql_list(staging)}])", view, start)
            con.execute("CREATE TABLE classified AS " + sql)
        else:
            con.execute(_EMPTY_CLASSIFIED)
        counts = dict(
            con.execute("SELECT class, count(*) FROM classified GROUP BY class").fetchall()
        )
        several = con.execute("SELECT count(*) FROM classified WHERE records > 1").fetchone()
    finally:
        con.close()
    return {name: int(counts.get(name, 0)) for name in ALL_CLASSES}, int(
        several[0]
    ) if several else 0


def classify_incremental(
    source: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None = None,
    ttl_attribute: str | None = None,
    workers: int | None = None,
    executor: str = "auto",
    memory_limit: str | None = None,
    start_export: str | os.PathLike[str] | None = None,
    progress: Progress = SILENT,
) -> tuple[IncrementalClassification, str]:
    """Read an incremental export and classify its items (a DuckDB table in ``workdir``).

    Relative to the window's start (*restored*) and end (*live*): absent at
    the start and present at the end → ``added``; present at the start and
    absent at the end → ``deleted`` (its old image is what to put back), or
    ``expired`` when the removal came after the old image's TTL had passed;
    present at both with different content → ``changed``; same content →
    ``unchanged``. When an item has several records (DynamoDB normally
    compacts them to one), the old image of its earliest record and the new
    image of its latest (by ``WriteTimestampMicros``) decide.

    ``start_export`` (an export dataset of the table at the window's start,
    e.g. ``pitrdiff export --native --at T1``) supplies the start state
    instead of the old images: what makes a ``NEW_IMAGE`` export classifiable.
    ``ttl_attribute`` names the table's TTL attribute; by default it is the
    table's setting when the table is described (no ``key_schema`` given).

    Returns
    -------
    tuple
        The classification and the path of a DuckDB database in ``workdir``
        holding table ``classified`` (one row per item).

    Raises
    ------
    ExportError, InputError, SchemaMismatchError
        As :func:`~pitrdiff.diff.incremental.diff_incremental`.
    """
    opened, start = open_inputs(
        source,
        aws=aws,
        s3_endpoint_url=s3_endpoint_url,
        key_schema=key_schema,
        ttl_attribute=ttl_attribute,
        start_export=start_export,
    )
    outcomes = _stage(opened, Path(workdir), workers, executor, progress)
    staging = [o.staging for o in outcomes if o.staging]
    database = str(Path(workdir) / "classify.duckdb")
    start_parts = None if start is None else list(start.parquet_files)
    counts, several = _classify(
        database, Path(workdir), staging, opened.view, start_parts, memory_limit
    )
    records = sum(o.lines for o in outcomes)
    classification = classification_of(
        opened, counts, several, records, with_start=start is not None
    )
    return classification, database


def _stage(
    opened: IncrementalSource,
    workdir: Path,
    workers: int | None,
    executor: str,
    progress: Progress,
) -> list[FileOutcome]:
    """Stage every data file's records (in parallel) under ``workdir/records``."""
    staging_dir = make_dir(workdir / "records")
    run = new_run()
    return run_files(
        staging_tasks(opened, str(staging_dir), run),
        label=f"reading {opened.summary.location.export_id}",
        workers=workers or default_workers(),
        executor=executor,
        total_items=opened.summary.item_count,
        progress=progress,
    )


def class_batches(
    database: str, classes: Sequence[str], columns: Sequence[str]
) -> Iterator[pa.RecordBatch]:
    """Stream the rows of some classes out of the classification database, sorted by key."""
    import duckdb

    selected = ", ".join(columns)  # this module's own column names, never user text
    # classes are this module's class constants, never user text
    wanted = ", ".join(f"'{klass}'" for klass in classes)
    con = duckdb.connect(database, read_only=True)
    try:
        reader = con.sql(
            f"SELECT {selected} FROM classified WHERE class IN ({wanted}) ORDER BY _key"
        ).to_arrow_reader(8192)
        yield from reader
    finally:
        con.close()


__all__ = ["class_batches", "classify_incremental"]

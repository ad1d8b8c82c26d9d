"""The DuckDB diff engine: classify by key and hash, then fetch the differing items.

Out of core on one machine: DuckDB's memory limit bounds the work and it
spills to the private directory it is given. Two passes:

1. **classify**: join only ``_key``, ``_hash``, ``_size`` of both exports
   (narrow columns) into a temporary table of the differing keys, their
   class and size, and cut the key order into *buckets* of at most an
   eighth of the memory limit of item bytes;
2. **fetch**: copy the rows of the differing keys of each side, unsorted,
   to a Parquet spill file (streamed, no sort of wide rows);
3. **stream**: per bucket, in key order, read its rows back sorted by
   ``_key``: a sort of at most one bucket, so memory stays within the limit
   whatever the number or size of the differing items.

The contract it implements is in :mod:`pitrdiff.diff.engine`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pitrdiff.diff.engine import Classified, EngineOptions
from pitrdiff.diff.schema import CHANGES_BATCH_ROWS, literal
from pitrdiff.diff.sql import connect, duckdb_errors, memory_limit_bytes
from pitrdiff.errors import ExportError
from pitrdiff.export.dataset import Export, KeySchema
from pitrdiff.files import private_temp_dir
from pitrdiff.progress import Progress

if TYPE_CHECKING:
    import duckdb

# Class codes of pass 1.
_ADDED, _CHANGED, _DELETED = 0, 1, 2
_BUCKET_SHARE = 8  # a bucket holds at most 1/8 of the memory limit of item bytes
_BATCH_BYTES = 8 << 20  # Arrow batches of about 8 MiB of items (at most CHANGES_BATCH_ROWS rows)
_DOING = "the diff"


class DuckDBEngine:
    """The default engine (see :mod:`pitrdiff.diff.engine` for the contract)."""

    name = "duckdb"

    def __init__(self, options: EngineOptions) -> None:
        self.options = options

    def classify(
        self, live: Export, restored: Export, key_schema: KeySchema, *, progress: Progress
    ) -> Classified:
        """Classify ``live`` against ``restored`` (contract: :mod:`pitrdiff.diff.engine`)."""
        o = self.options
        spill_manager = private_temp_dir("engine", o.temp_dir)
        spill = spill_manager.__enter__()
        con = None

        def close() -> None:
            if con is not None:
                con.close()
            spill_manager.__exit__(None, None, None)

        try:
            with duckdb_errors(_DOING):
                con = connect(memory_limit=o.memory_limit, temp_dir=spill, threads=o.threads)
                return _classify(con, spill, live, restored, key_schema, progress, close)
        except BaseException:
            close()
            raise


def _classify(
    con: duckdb.DuckDBPyConnection,
    spill: Path,
    live: Export,
    restored: Export,
    key_schema: KeySchema,
    progress: Progress,
    close: Callable[[], None],
) -> Classified:
    """Passes 1 and 2; the streams of pass 3 run when the writer reads them."""
    started = time.perf_counter()
    _register_input(con, "live", live, key_schema)
    _register_input(con, "restored", restored, key_schema)
    progress.start("classifying", total=None)
    limit = memory_limit_bytes(con)
    _classify_keys(con, max(1 << 20, limit // _BUCKET_SHARE))
    live_rows, live_bytes = _count(con, "live")
    n_changed, n_added, changed_bytes, added_bytes = (
        int(v)
        for v in con.execute(
            f"SELECT count(*) FILTER (cls = {_CHANGED}), count(*) FILTER (cls = {_ADDED}), "
            f"coalesce(sum(l_size) FILTER (cls = {_CHANGED}), 0), "
            f"coalesce(sum(l_size) FILTER (cls = {_ADDED}), 0) FROM classes"
        ).fetchall()[0]
    )
    (average,) = con.execute("SELECT coalesce(avg(w), 0) FROM classes").fetchall()[0]
    batch_rows = max(64, min(CHANGES_BATCH_ROWS, _BATCH_BYTES // max(1, int(average))))
    progress.finish()
    classified = time.perf_counter()
    progress.start("extracting", total=None)
    files = {
        side: _spill_side(con, spill, side, export, wanted, limit)
        for side, export, wanted in (
            ("restored", restored, f"{_CHANGED}, {_DELETED}"),
            ("live", live, f"{_ADDED}, {_CHANGED}"),
        )
    }
    progress.finish()
    extracted = time.perf_counter()

    def side_query(side: str, cls: int) -> str:
        return (
            f"SELECT _key, key, _item AS {side}_item, _hash AS {side}_hash, "
            f"_size AS {side}_size FROM read_parquet({literal(files[side])}) "
            f"WHERE cls = {cls} AND bucket = {{bucket}} ORDER BY _key"
        )

    return Classified(
        deleted=_stream(
            con,
            _buckets(con, _DELETED),
            batch_rows,
            side_query("restored", _DELETED),
        ),
        changed=_stream(
            con,
            _buckets(con, _CHANGED),
            batch_rows,
            "SELECT l._key, l.key, l._item AS live_item, r._item AS restored_item, "
            "l._hash AS live_hash, r._hash AS restored_hash, "
            "l._size AS live_size, r._size AS restored_size "
            f"FROM read_parquet({literal(files['live'])}) l "
            f"JOIN read_parquet({literal(files['restored'])}) r ON l._key = r._key "
            f"WHERE l.cls = {_CHANGED} AND l.bucket = {{bucket}} AND r.bucket = {{bucket}} "
            "ORDER BY l._key",
        ),
        added=_stream(
            con,
            _buckets(con, _ADDED),
            batch_rows,
            side_query("live", _ADDED),
        ),
        unchanged_count=live_rows - n_changed - n_added,
        unchanged_bytes=live_bytes - changed_bytes - added_bytes,
        timings={
            "classify_s": round(classified - started, 3),
            "extract_s": round(extracted - classified, 3),
        },
        close=close,
    )


def _register_input(
    con: duckdb.DuckDBPyConnection, name: str, export: Export, key_schema: KeySchema
) -> None:
    if export.manifest.files:
        files = ", ".join(literal(p) for p in export.parquet_files)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{files}])")
    else:
        con.register(f"{name}_empty", key_schema.arrow_schema().empty_table())
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_empty")


def _classify_keys(con: duckdb.DuckDBPyConnection, bucket_bytes: int) -> None:
    """Pass 1: the differing keys, their class, sizes and bucket, into ``classes``.

    Buckets cut the key order into runs of at most ``bucket_bytes`` of item
    bytes (both versions of a changed item counted), so that pass 3 sorts one
    bucket at a time. Only narrow columns are joined and sorted here.
    """
    con.execute(
        "CREATE TEMP TABLE differing AS "
        "SELECT coalesce(l._key, r._key) AS _key, "
        f"CASE WHEN r._key IS NULL THEN {_ADDED} WHEN l._key IS NULL THEN {_DELETED} "
        f"ELSE {_CHANGED} END AS cls, l._size AS l_size, "
        "coalesce(l._size, 0) + coalesce(r._size, 0) AS w "
        "FROM (SELECT _key, _hash, _size FROM live) l "
        "FULL OUTER JOIN (SELECT _key, _hash, _size FROM restored) r ON l._key = r._key "
        "WHERE l._key IS NULL OR r._key IS NULL "
        "OR l._hash <> r._hash OR l._size <> r._size"
    )
    con.execute(
        "CREATE TEMP TABLE classes AS SELECT _key, cls, l_size, w, "
        "((sum(w) OVER (ORDER BY _key ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) - w) "
        f"// {int(bucket_bytes)} AS bucket FROM "
        # One row per key: a key held twice by one export (corrupt) must be
        # fetched once from the other side, so the refusal names the right one.
        "(SELECT _key, any_value(cls) AS cls, any_value(l_size) AS l_size, any_value(w) AS w "
        "FROM differing GROUP BY _key)"
    )
    con.execute("DROP TABLE differing")


def _spill_side(
    con: duckdb.DuckDBPyConnection,
    spill: Path,
    side: str,
    export: Export,
    wanted: str,
    limit: int,
) -> str:
    """Pass 2: copy the rows of one side whose keys differ to a Parquet spill file.

    Streamed (no sort; row groups of at most 16 MB and a 16th of the memory
    limit), so memory stays bounded whatever their size. Returns the file's path.
    """
    path = str(spill / f"{side}.parquet")
    row_group = max(1 << 20, min(16 << 20, limit // 16))
    con.execute(
        f"COPY (SELECT s._key, s.key, s._item, s._hash, s._size, c.cls, c.bucket FROM {side} s "
        f"JOIN (SELECT _key, cls, bucket FROM classes WHERE cls IN ({wanted})) c "
        f"ON s._key = c._key) TO {literal(path)} "
        f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE_BYTES {row_group})"
    )
    _refuse_duplicates(con, path, side, export)
    return path


def _refuse_duplicates(
    con: duckdb.DuckDBPyConnection, path: str, side: str, export: Export
) -> None:
    """An item twice in one export (a corrupt or hand-assembled export) is refused.

    Checked on the differing rows only (cheap); a duplicate among unchanged
    rows cannot change any class, only the unchanged count.
    """
    rows = con.execute(
        f"SELECT _key FROM read_parquet({literal(path)}) GROUP BY _key HAVING count(*) > 1 "
        "ORDER BY _key LIMIT 1"
    ).fetchall()
    if rows:
        raise ExportError(
            f"{side} export {export.path} holds the key {rows[0][0]} more than once "
            "(a corrupt export); re-run the export",
            path=str(export.path),
        )


def _count(con: duckdb.DuckDBPyConnection, view: str) -> tuple[int, int]:
    row = con.execute(f"SELECT count(*), coalesce(sum(_size), 0) FROM {view}").fetchall()[0]
    return int(row[0]), int(row[1])


def _buckets(con: duckdb.DuckDBPyConnection, cls: int) -> list[int]:
    rows = con.execute(
        f"SELECT DISTINCT bucket FROM classes WHERE cls = {cls} ORDER BY bucket"
    ).fetchall()
    return [int(r[0]) for r in rows]


def _stream(
    con: duckdb.DuckDBPyConnection, buckets: list[int], batch_rows: int, query: str
) -> Iterator[pa.RecordBatch]:
    """Pass 3: the rows of a class, bucket after bucket, each sorted by ``_key``.

    Runs only when first iterated (one open result at a time). Buckets follow
    the key order, so the whole stream is sorted by ``_key``.
    """
    with duckdb_errors(_DOING):
        for bucket in buckets:
            bucket_query = query.replace("{bucket}", str(bucket))
            yield from con.sql(bucket_query).to_arrow_reader(batch_rows)

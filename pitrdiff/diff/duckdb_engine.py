"""The DuckDB diff engine: classify by key and hash, then fetch the differing items.

Out of core on one machine: DuckDB's memory limit bounds the work and it
spills to the private directory it is given. Two passes:

1. join only ``_key``, ``_hash``, ``_size`` of both exports (narrow columns)
   into a temporary table of the differing keys and their class;
2. fetch the items of those keys from each side (a small build side) and
   stream them sorted by ``_key``.

The contract it implements is in :mod:`pitrdiff.diff.engine`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from pitrdiff.diff.engine import Classified, EngineOptions
from pitrdiff.diff.schema import CHANGES_BATCH_ROWS, literal
from pitrdiff.diff.sql import connect
from pitrdiff.errors import ExportError
from pitrdiff.export.dataset import Export, KeySchema
from pitrdiff.progress import Progress

if TYPE_CHECKING:
    import duckdb

# Class codes of pass 1.
_ADDED, _CHANGED, _DELETED = 0, 1, 2


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
        con = connect(memory_limit=o.memory_limit, temp_dir=o.temp_dir, threads=o.threads)
        try:
            started = time.perf_counter()
            _register_input(con, "live", live, key_schema)
            _register_input(con, "restored", restored, key_schema)
            progress.start("classifying", total=None)
            _classify_keys(con)
            live_rows, live_bytes = _count(con, "live")
            progress.finish()
            classified = time.perf_counter()
            progress.start("extracting", total=None)
            _select_items(con, "restored", restored, f"{_CHANGED}, {_DELETED}")
            _select_items(con, "live", live, f"{_ADDED}, {_CHANGED}")
            progress.finish()
            extracted = time.perf_counter()
            n_changed, n_added, changed_bytes, added_bytes = (
                int(v)
                for v in con.execute(
                    f"SELECT count(*) FILTER (cls = {_CHANGED}), count(*) FILTER (cls = {_ADDED}), "
                    f"coalesce(sum(_size) FILTER (cls = {_CHANGED}), 0), "
                    f"coalesce(sum(_size) FILTER (cls = {_ADDED}), 0) FROM live_sel"
                ).fetchall()[0]
            )
        except BaseException:
            con.close()
            raise
        return Classified(
            deleted=_stream(
                con,
                "SELECT _key, key, _item AS restored_item, _hash AS restored_hash, "
                f"_size AS restored_size FROM restored_sel WHERE cls = {_DELETED} ORDER BY _key",
            ),
            changed=_stream(
                con,
                "SELECT l._key, l.key, l._item AS live_item, r._item AS restored_item, "
                "l._hash AS live_hash, r._hash AS restored_hash, "
                "l._size AS live_size, r._size AS restored_size "
                "FROM live_sel l JOIN restored_sel r ON l._key = r._key "
                f"WHERE l.cls = {_CHANGED} AND r.cls = {_CHANGED} ORDER BY l._key",
            ),
            added=_stream(
                con,
                "SELECT _key, key, _item AS live_item, _hash AS live_hash, "
                f"_size AS live_size FROM live_sel WHERE cls = {_ADDED} ORDER BY _key",
            ),
            unchanged_count=live_rows - n_changed - n_added,
            unchanged_bytes=live_bytes - changed_bytes - added_bytes,
            timings={
                "classify_s": round(classified - started, 3),
                "extract_s": round(extracted - classified, 3),
            },
            close=con.close,
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


def _classify_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Pass 1: join only keys and hashes (narrow columns) into ``classes``."""
    con.execute(
        "CREATE TEMP TABLE classes AS "
        "SELECT coalesce(l._key, r._key) AS _key, "
        f"CASE WHEN r._key IS NULL THEN {_ADDED} WHEN l._key IS NULL THEN {_DELETED} "
        f"ELSE {_CHANGED} END AS cls "
        "FROM (SELECT _key, _hash, _size FROM live) l "
        "FULL OUTER JOIN (SELECT _key, _hash, _size FROM restored) r ON l._key = r._key "
        "WHERE l._key IS NULL OR r._key IS NULL "
        "OR l._hash <> r._hash OR l._size <> r._size"
    )


def _select_items(con: duckdb.DuckDBPyConnection, side: str, export: Export, wanted: str) -> None:
    """Pass 2: the rows of one side whose keys differ, into ``{side}_sel``."""
    con.execute(
        f"CREATE TEMP TABLE {side}_sel AS SELECT s.*, c.cls FROM {side} s "
        f"JOIN (SELECT _key, cls FROM classes WHERE cls IN ({wanted})) c "
        "ON s._key = c._key"
    )
    _refuse_duplicates(con, side, export)


def _refuse_duplicates(con: duckdb.DuckDBPyConnection, side: str, export: Export) -> None:
    """An item twice in one export (a corrupt or hand-assembled export) is refused.

    Checked on the differing rows only (cheap); a duplicate among unchanged
    rows cannot change any class, only the unchanged count.
    """
    rows = con.execute(
        f"SELECT _key FROM {side}_sel GROUP BY _key HAVING count(*) > 1 ORDER BY _key LIMIT 1"
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


def _stream(con: duckdb.DuckDBPyConnection, query: str) -> Iterator[pa.RecordBatch]:
    """Batches of a query, run only when first iterated (one open result at a time)."""
    yield from con.sql(query).to_arrow_reader(CHANGES_BATCH_ROWS)

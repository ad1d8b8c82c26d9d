"""Selecting a plan's rows from a diff with DuckDB: ``--where``, once per row, streamed.

The connection (built by :mod:`pitrdiff.recovery.plan`) has one view, ``rows``,
over the included class files. This module checks the ``--where``
expression, then streams each class's selected rows in the class file's order
(sorted by key), so that:

- the expression is evaluated **once** per row: the operations written are
  exactly the rows it selected, and the header's counts are counted from them
  (an expression such as ``random() < 0.5`` cannot make them differ);
- memory stays flat whatever the plan's size: each class file is read one
  row group at a time and streamed through DuckDB in Arrow batches (one
  thread, ``preserve_insertion_order``: the file's order, without a sort);
- errors name their cause: an expression that does not parse or bind, or
  fails while it runs (a bad ``CAST``), is an :class:`~pitrdiff.errors.InputError`
  naming the expression; other DuckDB errors are the diff's.

The expression is parsed by DuckDB's parser as one expression (never searched
as text): ``'a;b'`` inside a string literal is fine, while a second statement,
a ``UNION`` or a ``COPY`` does not parse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitrdiff.errors import DiffError, InputError, PitrdiffError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from pitrdiff.recovery.keys import KeyList

BATCH_ROWS = 2048
"""Rows per Arrow batch, at most; fewer for large items (see :func:`batch_rows`)."""
BATCH_BYTES = 8 << 20
"""Item bytes per Arrow batch to aim at: memory is a few batches, whatever the items' size."""
_SHOWN_CHARS = 160
_DETAIL_CHARS = 200


def check_where(where: str) -> str:
    """Refuse an empty ``--where``; return it stripped.

    Raises
    ------
    InputError
        When ``where`` is empty or blank.
    """
    text = where.strip()
    if not text:
        raise InputError("--where is empty: give a boolean SQL expression")
    return text


def shown(where: str) -> str:
    """The expression as messages quote it (shortened when long, on one line)."""
    flat = " ".join(where.split())
    return flat if len(flat) <= _SHOWN_CHARS else flat[: _SHOWN_CHARS - 1] + "…"


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """Keep the file order; then no file or network access and no more settings."""
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def bind_where(con: duckdb.DuckDBPyConnection, where: str | None) -> None:
    """Parse and bind ``where`` over ``rows`` without running it on any row.

    Raises
    ------
    InputError
        When it is not one boolean expression over the columns of ``rows``.
    """
    import duckdb

    if where is None:
        return
    try:
        con.table("rows").filter(where).limit(0).fetchall()
    except duckdb.Error as exc:
        raise where_error(exc, where) from exc


def source_name(item_class: str) -> str:
    """The name ``rows`` reads a class's rows from (a registered Arrow source)."""
    return f"_diff_{item_class}"


def empty_source(path: Path) -> pa.Table:
    """A class file's columns without rows: what ``rows`` reads while not streaming."""
    import pyarrow.parquet as pq

    return sql_schema(pq.read_schema(path)).empty_table()


def sql_key_names(names: list[str]) -> list[str]:
    """Key struct field names as SQL can tell them apart (``pk``, ``PK`` -> ``pk``, ``PK_1``).

    DuckDB's identifiers ignore letter case, so a struct with fields ``pk`` and
    ``PK`` is invalid there ("duplicate name in struct"); a name equal to an
    earlier one but for case gets ``_1`` (``_2`` …), as DuckDB itself names
    them when it reads such a Parquet file (``Diff.sql``).
    """
    seen: set[str] = set()
    unique = []
    for name in names:
        candidate, n = name, 0
        while candidate.casefold() in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate.casefold())
        unique.append(candidate)
    return unique


def sql_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the ``key`` struct's fields named by :func:`sql_key_names`."""
    import pyarrow as pa

    index = schema.get_field_index("key")
    if index < 0 or not pa.types.is_struct(schema.field(index).type):
        return schema
    struct = schema.field(index).type
    names = sql_key_names([f.name for f in struct])
    fields = [f.with_name(n) for f, n in zip(struct, names, strict=True)]
    return schema.set(index, schema.field(index).with_type(pa.struct(fields)))


def _sql_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` under ``schema`` (:func:`sql_schema`): same columns, key fields renamed."""
    import pyarrow as pa

    if batch.schema.equals(schema):
        return batch
    columns = list(batch.columns)
    index = schema.get_field_index("key")
    key = columns[index]
    columns[index] = pa.StructArray.from_arrays(
        [key.field(i) for i in range(key.type.num_fields)],
        fields=list(schema.field(index).type),
        mask=key.is_null() if key.null_count else None,
    )
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def class_source(
    path: Path, wanted: KeyList | None, interrupts: list[BaseException] | None = None
) -> pa.RecordBatchReader:
    """A class file's rows as a one-shot Arrow stream, one row group at a time.

    With ``wanted``, only rows whose ``_key`` is listed (before any ``--where``
    runs). Reading the file here, rather than through DuckDB's file functions,
    keeps those switched off for ``--where`` and memory at about one row group.
    A Ctrl-C or SIGTERM that lands while the stream is read reaches the reader
    of the query as an ``OSError``; it is kept in ``interrupts`` so that the
    caller can raise it as what it is.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    schema = sql_schema(parquet.schema_arrow)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            rows = batch_rows(parquet.metadata)
            for batch in parquet.iter_batches(batch_size=rows, use_threads=False):
                if wanted is not None:
                    batch = batch.filter(wanted.contains(batch.column("_key")))
                if batch.num_rows:
                    yield _sql_batch(batch, schema)
        except BaseException as exc:
            if interrupts is not None and not isinstance(exc, Exception):
                interrupts.append(exc)
            raise
        finally:
            parquet.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


def stream_class(
    con: duckdb.DuckDBPyConnection,
    item_class: str,
    path: Path,
    *,
    wanted: KeyList | None,
    where: str | None,
) -> Generator[pa.RecordBatch, None, None]:
    """Yield the selected rows of one class, in the class file's order.

    Columns: ``_key``, ``live_item``, ``restored_item`` (NULL where the class
    has none).

    Raises
    ------
    InputError
        When ``where`` fails while it runs (the message names it).
    DiffError
        When the diff cannot be read.
    """
    import duckdb

    name = source_name(item_class)
    interrupts: list[BaseException] = []
    con.register(name, class_source(path, wanted, interrupts))
    relation = con.table("rows").filter(f"class = {_literal(item_class)}")
    if where is not None:
        relation = relation.filter(where)
    relation = relation.project("_key, live_item, restored_item")
    try:
        yield from _arrow_reader(relation, _file_batch_rows(path))
    except (duckdb.Error, OSError) as exc:
        if interrupts:
            raise interrupts[0] from None  # Ctrl-C or SIGTERM while the file was read
        if isinstance(exc, duckdb.InterruptException):
            raise  # the command line maps it to 130 / 143
        if isinstance(exc, OSError):
            raise DiffError(f"cannot read the diff's {path}: {_first_line(str(exc))}") from exc
        raise where_error(exc, where) from exc
    finally:
        with contextlib.suppress(duckdb.Error):  # a closed connection has nothing to reset
            con.register(name, empty_source(path))


def _file_batch_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return batch_rows(pq.read_metadata(path))


def where_error(exc: Any, where: str | None) -> PitrdiffError:
    """The error a DuckDB exception raised while selecting stands for."""
    import duckdb

    detail = _first_line(str(exc))
    if isinstance(exc, duckdb.PermissionException):
        return InputError(f"--where cannot read files or reach the network: {detail}")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return InputError(
            f"DuckDB ran out of memory selecting the plan ({detail}); raise --memory-limit"
        )
    if where is not None and "already been consumed" in detail:
        return InputError(
            f"invalid --where expression '{shown(where)}': it reads rows again (a subquery "
            "over rows); --where is evaluated once per row, over that row's columns"
        )
    if where is not None and not isinstance(exc, duckdb.IOException):
        return InputError(f"invalid --where expression '{shown(where)}': {detail}")
    return DiffError(f"cannot read the diff: {detail}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(text: str) -> str:
    """DuckDB's message on one line, shortened (a value it quotes may be a whole item)."""
    stripped = text.strip()
    line = stripped.splitlines()[0] if stripped else type(text).__name__
    return line if len(line) <= _DETAIL_CHARS else line[: _DETAIL_CHARS - 1] + "…"


def batch_rows(metadata: Any) -> int:
    """Rows per batch for a class file: about :data:`BATCH_BYTES`, 16 to :data:`BATCH_ROWS`.

    From the file's metadata (uncompressed bytes per row): 2,048 rows of 3 KB
    items, 279 of 30 KB, 20 of 400 KB.
    """
    rows = sum(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
    size = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if rows == 0 or size == 0:
        return BATCH_ROWS
    return max(16, min(BATCH_ROWS, int(BATCH_BYTES * rows // size)))


def _arrow_reader(relation: Any, rows: int) -> Any:
    # DuckDB 1.x: fetch_arrow_reader; DuckDB 2: to_arrow_reader
    to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    return to_reader(rows)

"""The shared diff writer: classified rows in, a diff dataset out (``docs/FORMAT.md`` §3).

Whatever engine classified the rows (:mod:`pitrdiff.diff.engine`), this module
writes the dataset, so every engine writes the same files: the key columns
(derived from ``_key`` when the engine did not pass them), attribute-level
changes and signatures of changed rows, one Parquet file per class written
under a temporary name and renamed when complete, the summary, ``report.md``
and ``manifest.json`` (``complete`` last).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pitrdiff import codec
from pitrdiff.diff.changes import ChangeColumns
from pitrdiff.diff.manifest import MANIFEST_NAME, REPORT_NAME, DiffManifest, prepare_out
from pitrdiff.diff.report import DiffSummary, SummaryFacts, render_markdown, summarize
from pitrdiff.diff.schema import CHANGE_TYPE, CHANGES_BATCH_ROWS, CLASSES, FILE_NAMES, diff_schema
from pitrdiff.diff.sql import connect, duckdb_errors
from pitrdiff.diff.ttl import TtlRule
from pitrdiff.errors import InputError
from pitrdiff.export.dataset import (
    KEY_COLUMN,
    KEY_STRUCT_COLUMN,
    FileEntry,
    KeySchema,
    file_checksum,
)
from pitrdiff.files import private_temp_dir, storage_error, temp_path, write_bytes, write_json
from pitrdiff.progress import SILENT, Progress

if TYPE_CHECKING:
    from pitrdiff.diff.notebook import Diff

DiffRows = Any
"""Rows of one class: a ``pyarrow.Table``, a ``pyarrow.RecordBatchReader``, an
iterable of ``pyarrow.RecordBatch``, or anything exposing ``__arrow_c_stream__``
(a DuckDB relation)."""


def _batches(rows: DiffRows) -> Iterator[pa.RecordBatch]:
    if rows is None:
        return
    if isinstance(rows, pa.Table):
        yield from rows.to_batches(max_chunksize=CHANGES_BATCH_ROWS)
    elif isinstance(rows, pa.RecordBatch):
        yield rows
    elif isinstance(rows, pa.RecordBatchReader):
        yield from rows
    elif hasattr(rows, "__arrow_c_stream__"):
        yield from pa.RecordBatchReader.from_stream(rows)
    else:
        yield from rows


def _key_struct(keys: pa.Array, key_schema: KeySchema) -> pa.StructArray:
    """The ``key`` struct column of canonical keys (``S``/``N`` text, ``B`` bytes)."""
    struct = key_schema.key_struct_type()
    names = key_schema.names
    values: list[list[str | bytes]] = [[] for _ in names]
    for text in keys.to_pylist():
        key = orjson.loads(text)
        for column, name in zip(values, names, strict=True):
            column.append(codec.key_column_value(key[name]))
    return pa.StructArray.from_arrays(
        [pa.array(column, f.type) for column, f in zip(values, struct, strict=True)],
        fields=list(struct),
    )


def _rename_struct(column: pa.Array, target: pa.StructType) -> pa.Array:
    """The ``key`` struct with the target's field names, by position.

    An engine may rename fields that differ only in letter case (DuckDB shows
    ``pk`` and ``PK`` as ``pk`` and ``PK_1``); the values are in key order.
    """
    if not pa.types.is_struct(column.type) or column.type.num_fields != target.num_fields:
        return column
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    children = [column.field(i) for i in range(target.num_fields)]
    return pa.StructArray.from_arrays(children, names=[f.name for f in target])


def _conform(batch: pa.RecordBatch, schema: pa.Schema, key_schema: KeySchema) -> pa.RecordBatch:
    """Select and cast the schema's columns of a batch (raises InputError when absent).

    The ``key`` struct column is derived from ``_key`` when the rows lack it
    (or hold something else under that name, e.g. a key attribute called ``key``).
    """
    arrays = []
    for target in schema:
        index = batch.schema.get_field_index(target.name)
        if (
            target.name == KEY_STRUCT_COLUMN
            and (index < 0 or not pa.types.is_struct(batch.schema.field(index).type))
            and KEY_COLUMN in batch.schema.names
        ):
            arrays.append(_key_struct(batch.column(KEY_COLUMN), key_schema))
            continue
        if index < 0:
            raise InputError(f"diff rows lack the column {target.name!r}")
        column = batch.column(index)
        if target.name == KEY_STRUCT_COLUMN and column.type != target.type:
            column = _rename_struct(column, target.type)
        if column.type != target.type:
            try:
                column = column.cast(target.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(
                    f"diff column {target.name!r} is {column.type}, expected {target.type}"
                ) from exc
        arrays.append(column)
    conformed = pa.RecordBatch.from_arrays(arrays, schema=schema)
    # The declared key types hold for every row (an export written with wrong ones is refused).
    key_schema.check_key_column(conformed.column(0), "a differing item")
    return conformed


_CHANGES_SLICE_ROWS = 512


def _changes_columns(batch: pa.RecordBatch) -> tuple[pa.Array, pa.Array]:
    """Attribute-level changes and signatures of a batch of changed rows.

    Computed slice by slice: the Python objects of at most
    ``_CHANGES_SLICE_ROWS`` item pairs are alive at once (large items would
    otherwise hold hundreds of MB of parsed JSON per batch).
    """
    live_index = batch.schema.get_field_index("live_item")
    restored_index = batch.schema.get_field_index("restored_item")
    changes: list[pa.Array] = []
    signatures: list[pa.Array] = []
    for start in range(0, batch.num_rows, _CHANGES_SLICE_ROWS):
        part = batch.slice(start, _CHANGES_SLICE_ROWS)
        columns = ChangeColumns()
        for live, restored in zip(
            part.column(live_index).to_pylist(),
            part.column(restored_index).to_pylist(),
            strict=True,
        ):
            columns.add_json(restored, live)
        part_changes, part_signatures = columns.arrays(CHANGE_TYPE)
        changes.append(part_changes)
        signatures.append(part_signatures)
    if not changes:
        empty = ChangeColumns().arrays(CHANGE_TYPE)
        return empty[0], empty[1]
    return pa.concat_arrays(changes), pa.concat_arrays(signatures)


class _ClassWriter:
    """Writes one class file to a temporary name; renames it when complete."""

    def __init__(self, root: Path, name: str, schema: pa.Schema) -> None:
        self.target = root / FILE_NAMES[name]
        self.schema = schema
        self.rows = 0
        self.size_sum = 0
        self.size_column = "live_size" if name == "added" else "restored_size"
        # Named to be recognised: a re-run removes what a killed run left.
        self.tmp = str(temp_path(self.target))
        try:
            self.writer = pq.ParquetWriter(
                self.tmp, schema, compression="zstd", write_statistics=[KEY_COLUMN]
            )
        except BaseException:  # no abort() without a writer: remove the file here
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            raise

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self.writer.write_batch(batch, row_group_size=128 * 1024)
            self.rows += batch.num_rows
            total = pc.sum(batch.column(self.schema.get_field_index(self.size_column))).as_py()
            self.size_sum += int(total or 0)

    def close(self) -> FileEntry:
        self.writer.close()
        try:
            with open(self.tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            entry = FileEntry(
                self.target.name,
                self.rows,
                os.stat(self.tmp).st_size,
                file_checksum(self.tmp),
            )
            os.replace(self.tmp, self.target)
        except OSError as exc:
            raise storage_error(exc, self.target, "write") from exc
        return entry

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


@dataclass
class _Written:
    """What writing the class files found, for the manifest and the summary."""

    entries: list[FileEntry]
    counts: dict[str, int]
    sizes: dict[str, int | None]
    changed_past_ttl: int = 0


def _write_split(
    writers: Mapping[str, _ClassWriter],
    rows: DiffRows,
    key_schema: KeySchema,
    ttl: TtlRule | None,
    progress: Progress,
) -> None:
    """Write deleted rows, the ones whose restored item had expired by TTL to ``expired``."""
    schema = writers["deleted"].schema
    for batch in _batches(rows):
        conformed = _conform(batch, schema, key_schema)
        if ttl is None:
            writers["deleted"].write(conformed)
        else:
            items = conformed.column(schema.get_field_index("restored_item")).to_pylist()
            mask = pa.array([ttl.expired(item) for item in items], pa.bool_())
            writers["expired"].write(conformed.filter(mask))
            writers["deleted"].write(conformed.filter(pc.invert(mask)))
        progress.advance(conformed.num_rows)


def _write_changed(
    writer: _ClassWriter,
    rows: DiffRows,
    key_schema: KeySchema,
    ttl: TtlRule | None,
    progress: Progress,
) -> int:
    """Write changed rows with their changes and signatures; count live versions past TTL."""
    schema = writer.schema
    base = pa.schema([f for f in schema if f.name not in ("changes", "signature")])
    past_ttl = 0
    for batch in _batches(rows):
        conformed = _conform(batch, base, key_schema)
        changes, signatures = _changes_columns(conformed)
        writer.write(
            pa.RecordBatch.from_arrays([*conformed.columns, changes, signatures], schema=schema)
        )
        if ttl is not None:
            lives = conformed.column(base.get_field_index("live_item")).to_pylist()
            past_ttl += sum(1 for item in lives if ttl.expired(item))
        progress.advance(conformed.num_rows)
    return past_ttl


def _write_classes(
    root: Path,
    key_schema: KeySchema,
    rows: Mapping[str, DiffRows],
    ttl: TtlRule | None,
    progress: Progress,
) -> _Written:
    """Write every class file (:data:`CLASSES`); temp files are removed on any failure."""
    writers: dict[str, _ClassWriter] = {}
    progress.start("writing the diff", total=None, unit="rows")
    try:
        for name in CLASSES:
            writers[name] = _ClassWriter(root, name, diff_schema(key_schema, name))
        _write_split(writers, rows.get("deleted"), key_schema, ttl, progress)
        past_ttl = _write_changed(
            writers["changed"], rows.get("changed"), key_schema, ttl, progress
        )
        for name in ("added", "expired"):
            for batch in _batches(rows.get(name)):
                writers[name].write(_conform(batch, writers[name].schema, key_schema))
                progress.advance(batch.num_rows)
        entries = [writers[name].close() for name in CLASSES]
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    progress.finish()
    return _Written(
        entries,
        {name: entry.rows for name, entry in zip(CLASSES, entries, strict=True)},
        {name: writers[name].size_sum for name in CLASSES},
        past_ttl,
    )


def write_diff_dataset(
    out: str | os.PathLike[str],
    *,
    key_schema: KeySchema,
    table_name: str,
    deleted: DiffRows,
    changed: DiffRows,
    added: DiffRows,
    unchanged_count: int,
    inputs: Mapping[str, Mapping[str, Any]],
    unchanged_bytes: int | None = None,
    timings: Mapping[str, float] | None = None,
    overwrite: bool = False,
    memory_limit: str | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
    progress: Progress = SILENT,
    expired: DiffRows = None,
    ttl: TtlRule | None = None,
) -> Diff:
    """Write a diff dataset from rows already classified (``docs/FORMAT.md`` §3).

    The rows are streamed batch by batch (bounded memory). Attribute-level
    changes and signatures of the changed rows are computed here. Files are
    written owner-only under temporary names and renamed when complete;
    ``manifest.json`` says ``complete`` last.

    Parameters
    ----------
    out
        The diff directory to create (refused if it holds anything but a diff,
        and a diff only with ``overwrite``).
    key_schema
        The table's key; decides the fields of the ``key`` column (``S``/``N``
        text, ``B`` binary).
    table_name
        The (live) table's name.
    deleted
        Rows in restored, not in live, with the columns ``_key``,
        ``restored_item``, ``restored_hash``, ``restored_size`` (and ``key``,
        the key struct; derived from ``_key`` when absent). With ``ttl``, the
        rows whose restored item had expired go to ``expired.parquet``.
    changed
        Rows in both with different content: ``_key``, ``live_item``,
        ``restored_item``, ``live_hash``, ``restored_hash``, ``live_size``,
        ``restored_size`` (``changes`` and ``signature`` are computed here; if
        present they are ignored).
    added
        Rows in live, not in restored: ``_key``, ``live_item``, ``live_hash``,
        ``live_size``.
    unchanged_count
        How many items are the same on both sides.
    inputs
        ``{"live": {...}, "restored": {...}}``: what the manifest records of each
        input, e.g. ``{"path": "...", **Manifest.identity()}`` or an S3 URL and
        export ARN. ``table_name`` in each is used for the summary.
    unchanged_bytes
        Total size of the unchanged items, if known.
    timings
        Seconds spent by the caller's phases (merged into the manifest's timings).
    overwrite
        Replace a diff already at ``out``.
    memory_limit, temp_dir
        DuckDB's memory limit and spill directory for the summary queries.
    progress
        Reports rows written.
    expired
        Rows already known to be removed by TTL (the columns of ``deleted``),
        e.g. from an incremental export; written after the ones split off ``deleted``.
    ttl
        The TTL rule (:class:`~pitrdiff.diff.ttl.TtlRule`): splits ``deleted``
        and flags changed items whose live version had expired; ``None``: no TTL.

    Each of ``deleted`` / ``changed`` / ``added`` / ``expired`` is a ``pyarrow.Table``, a
    ``pyarrow.RecordBatchReader``, an iterable of ``pyarrow.RecordBatch``,
    ``None`` (no rows), or any object with ``__arrow_c_stream__`` (a DuckDB
    relation). Rows are written in the order given; sort them by ``_key`` for
    reproducible files. Extra columns are dropped; columns are cast to the
    dataset's types.

    Returns
    -------
    Diff
        The dataset written.

    Raises
    ------
    RefusedError
        When ``out`` holds something else, or a diff and ``overwrite`` is false.
    InputError
        When the rows lack a required column or cannot be cast.
    """
    from pitrdiff.diff.notebook import Diff

    started = time.perf_counter()
    root = prepare_out(out, overwrite=overwrite, check_only=False)
    base = DiffManifest(
        table_name=table_name,
        key_schema=key_schema,
        live=dict(inputs.get("live") or {}),
        restored=dict(inputs.get("restored") or {}),
        counts={},
        bytes={},
    )
    write_json(root / MANIFEST_NAME, base.to_dict())
    rows = {"deleted": deleted, "changed": changed, "added": added, "expired": expired}
    written_files = _write_classes(root, key_schema, rows, ttl, progress)
    counts, sizes = written_files.counts, written_files.sizes
    counts["unchanged"] = int(unchanged_count)
    sizes["unchanged"] = unchanged_bytes
    written = time.perf_counter()
    facts = SummaryFacts(
        # Without a rule, expired rows the caller classified (an incremental
        # diff judges each removal at its own time) carry its TTL attribute.
        ttl_attribute=ttl.attribute if ttl else _stated_ttl(base.live, expired),
        ttl_as_of=ttl.as_of if ttl else None,
        changed_past_ttl=written_files.changed_past_ttl,
        restore_time=_restore_time(base.restored),
    )
    summary = _summarize(root, base, counts, sizes, facts, memory_limit, temp_dir, progress)
    finished = time.perf_counter()

    all_timings = dict(timings or {})
    all_timings["write_s"] = round(written - started, 3)
    all_timings["summary_s"] = round(finished - written, 3)
    all_timings["total_s"] = round(sum(v for k, v in all_timings.items() if k != "total_s"), 3)
    manifest = replace(
        base,
        counts=counts,
        bytes=sizes,
        files=tuple(written_files.entries),
        timings=all_timings,
        summary=summary.to_dict(),
        complete=True,
    )
    write_json(root / MANIFEST_NAME, manifest.to_dict())
    return Diff(root, manifest)


def _summarize(
    root: Path,
    base: DiffManifest,
    counts: dict[str, int],
    sizes: dict[str, int | None],
    facts: SummaryFacts,
    memory_limit: str | None,
    temp_dir: str | os.PathLike[str] | None,
    progress: Progress,
) -> DiffSummary:
    """Compute the summary over the written files; write ``report.md`` and ``report.html``.

    One DuckDB connection serves both (each connection costs ~60 ms to open).
    """
    from pitrdiff.diff.html import HTML_REPORT_NAME, render_html

    progress.start("summarising", total=None)
    with private_temp_dir("summary", temp_dir) as spill, duckdb_errors("the summary"):
        con = connect(memory_limit=memory_limit, temp_dir=spill)
        try:
            summary = summarize(
                con,
                {name: str(root / FILE_NAMES[name]) for name in CLASSES},
                table_name=base.table_name,
                live_table=str(base.live.get("table_name", base.table_name)),
                restored_table=str(base.restored.get("table_name", "")),
                partition_key=base.key_schema.partition_key,
                partition_key_type=base.key_schema.attributes[0].attribute_type,
                counts=counts,
                sizes=sizes,
                facts=facts,
            )
            progress.finish()
            report = render_markdown(
                summary,
                live=str(base.live.get("path", base.live.get("url", ""))),
                restored=str(base.restored.get("path", base.restored.get("url", ""))),
            )
            write_bytes(root / REPORT_NAME, report.encode("utf-8"))
            progress.start("writing report.html", total=None)
            inputs = {"live": base.live, "restored": base.restored}
            page = render_html(summary, root, inputs=inputs, con=con)
        finally:
            con.close()
    write_bytes(root / HTML_REPORT_NAME, page.encode("utf-8"))
    progress.finish()
    return summary


def _stated_ttl(live: Mapping[str, Any], expired: DiffRows) -> str | None:
    """The TTL attribute the live input says expiry was judged by, when it passed ``expired``.

    An incremental diff records its table's TTL setting (``{"attribute",
    "status"}``) with the live input and classifies expired removals itself;
    its summary states the attribute, with no single moment (``ttl_as_of``).
    """
    setting = live.get("ttl")
    if expired is None or not isinstance(setting, Mapping) or not setting.get("attribute"):
        return None
    return str(setting["attribute"]) if setting.get("status") in ("ENABLED", "ENABLING") else None


def _restore_time(restored: Mapping[str, Any]) -> str | None:
    """T: the restored input's restore time (a PITR restore) or state time (incremental)."""
    restore = restored.get("restore") or {}
    value = restore.get("restore_date_time") if isinstance(restore, Mapping) else None
    value = value or restored.get("state_at")
    return str(value) if value else None

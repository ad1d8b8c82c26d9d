"""The diff: join two exports on the canonical key, classify, write the diff dataset.

``diff_exports(live, restored, out)`` reads two export datasets (the **live**
table and the **restored** one, the state at T), joins them on ``_key`` and
compares ``_hash`` (and ``_size``) in DuckDB, out of core: DuckDB's memory limit
bounds the work and it spills to a temporary directory. Items are classified:

- **deleted**: in restored, not in live (lost since T);
- **changed**: in both, different content (with attribute-level changes);
- **added**: in live, not in restored (created since T);
- **unchanged**: counted, not stored.

The result is a diff dataset (``docs/FORMAT.md`` section 3)::

    manifest.json     inputs, counts and bytes per class, files, timings, summary
    deleted.parquet   _key, key attributes, restored_item, restored_hash, restored_size
    changed.parquet   _key, key attributes, live_item, restored_item, live_hash,
                      restored_hash, live_size, restored_size, changes, signature
    added.parquet     _key, key attributes, live_item, live_hash, live_size
    report.md         the summary as Markdown

:func:`write_diff_dataset` writes such a dataset from rows already classified
(native incremental exports use it); :func:`load_diff` opens one as a
:class:`Diff`, whose tables come out as pandas DataFrames or Arrow tables and
which answers SQL over views named ``deleted``, ``changed``, ``added``, ``live``
and ``restored``.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import html
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pitrdiff import __version__, codec
from pitrdiff.diff.changes import Change, ChangeColumns
from pitrdiff.diff.report import CLASSES, DiffSummary, render_markdown, summarize
from pitrdiff.errors import (
    DiffError,
    ExportError,
    InputError,
    RefusedError,
    SchemaMismatchError,
)
from pitrdiff.export.dataset import (
    KEY_COLUMN,
    Export,
    FileEntry,
    KeyAttribute,
    KeySchema,
    decoded_frame,
    file_checksum,
    load_export,
    utc_now,
)
from pitrdiff.files import FILE_MODE, make_dir, storage_error, write_bytes, write_json
from pitrdiff.progress import SILENT, Progress

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

LOG = logging.getLogger(__name__)

DIFF_FORMAT = "pitrdiff-diff"
DIFF_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.md"
FILE_NAMES = {name: f"{name}.parquet" for name in CLASSES}
DEFAULT_THREADS = 2
CHANGES_BATCH_ROWS = 8192

CHANGE_TYPE = pa.list_(
    pa.struct(
        [
            pa.field("path", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("old", pa.string()),
            pa.field("new", pa.string()),
        ]
    )
)

SQL_MACROS = (
    # The typed value (DynamoDB JSON) of a top-level attribute, e.g. {"N":"1.5"}.
    "CREATE OR REPLACE MACRO attr(item, name) AS "
    "json_extract(item, '$.\"' || replace(name, '\"', '\\\"') || '\"')",
    # The tag of a top-level attribute: 'S', 'N', 'M', ...
    "CREATE OR REPLACE MACRO attr_type(item, name) AS json_keys(attr(item, name))[1]",
    # A scalar attribute (S, N, B, BOOL) as exact text; NULL for other types / absent.
    "CREATE OR REPLACE MACRO attr_text(item, name) AS "
    "coalesce(json_extract_string(attr(item, name), '$.S'), "
    "json_extract_string(attr(item, name), '$.N'), "
    "json_extract_string(attr(item, name), '$.B'), "
    "json_extract_string(attr(item, name), '$.BOOL'))",
    # A number attribute as DOUBLE, for filtering and plotting only (approximate).
    "CREATE OR REPLACE MACRO attr_num(item, name) AS "
    "TRY_CAST(json_extract_string(attr(item, name), '$.N') AS DOUBLE)",
)


# --------------------------------------------------------------------------- schemas


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _key_fields(key_schema: KeySchema) -> list[pa.Field]:
    return [
        pa.field(a.name, pa.binary() if a.attribute_type == "B" else pa.string(), nullable=False)
        for a in key_schema.attributes
    ]


def diff_schema(key_schema: KeySchema, name: str) -> pa.Schema:
    """The Arrow schema of one class file of a diff dataset (``docs/FORMAT.md`` §3).

    Parameters
    ----------
    key_schema
        The table's key (decides the key attribute columns).
    name
        ``deleted``, ``changed`` or ``added``.
    """
    keys = _key_fields(key_schema)
    head = [pa.field(KEY_COLUMN, pa.string(), nullable=False), *keys]
    if name == "deleted":
        return pa.schema(
            [
                *head,
                pa.field("restored_item", pa.string(), nullable=False),
                pa.field("restored_hash", pa.uint64(), nullable=False),
                pa.field("restored_size", pa.int32(), nullable=False),
            ]
        )
    if name == "added":
        return pa.schema(
            [
                *head,
                pa.field("live_item", pa.string(), nullable=False),
                pa.field("live_hash", pa.uint64(), nullable=False),
                pa.field("live_size", pa.int32(), nullable=False),
            ]
        )
    if name == "changed":
        return pa.schema(
            [
                *head,
                pa.field("live_item", pa.string(), nullable=False),
                pa.field("restored_item", pa.string(), nullable=False),
                pa.field("live_hash", pa.uint64(), nullable=False),
                pa.field("restored_hash", pa.uint64(), nullable=False),
                pa.field("live_size", pa.int32(), nullable=False),
                pa.field("restored_size", pa.int32(), nullable=False),
                pa.field("changes", CHANGE_TYPE, nullable=False),
                pa.field("signature", pa.string(), nullable=False),
            ]
        )
    raise ValueError(f"unknown diff class {name!r}")


def _merge_key_schemas(live: KeySchema, restored: KeySchema) -> KeySchema:
    """One schema for both inputs; an empty export may not know its key types."""
    if not live.same_keys(restored):
        raise SchemaMismatchError(
            f"the exports have different key schemas: live {live.describe()}, "
            f"restored {restored.describe()}"
        )
    return KeySchema(
        tuple(
            KeyAttribute(a.name, a.key_type, a.attribute_type or b.attribute_type)
            for a, b in zip(live.attributes, restored.attributes, strict=True)
        )
    )


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class DiffManifest:
    """The manifest of a diff dataset (``manifest.json``).

    Attributes
    ----------
    table_name
        The (live) table diffed.
    key_schema
        Its primary key.
    live, restored
        The inputs: ``{"path": ..., **identity}`` where the identity is the
        export manifest's :meth:`~pitrdiff.export.dataset.Manifest.identity`.
    counts
        Items per class: ``deleted``, ``changed``, ``added``, ``unchanged``.
    bytes
        Item bytes per class (deleted and changed: restored version; added:
        live version; unchanged: ``None`` when not known).
    files
        The class files with row counts and xxh3-128 checksums.
    timings
        Seconds spent per phase and in total.
    summary
        :meth:`DiffSummary.to_dict` of the summary.
    complete
        ``True`` once every file is written.
    """

    table_name: str
    key_schema: KeySchema
    live: dict[str, Any]
    restored: dict[str, Any]
    counts: dict[str, int]
    bytes: dict[str, int | None]
    files: tuple[FileEntry, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    complete: bool = False
    created_at: str = field(default_factory=utc_now)
    format_version: int = DIFF_FORMAT_VERSION
    tool_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """The JSON document written as ``manifest.json``."""
        return {
            "format": DIFF_FORMAT,
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "table_name": self.table_name,
            "key_schema": self.key_schema.to_list(),
            "live": self.live,
            "restored": self.restored,
            "counts": self.counts,
            "bytes": self.bytes,
            "files": {
                name: {"path": f.path, "rows": f.rows, "bytes": f.bytes, "xxh3_128": f.xxh3_128}
                for name, f in zip(CLASSES, self.files, strict=False)
            },
            "timings": self.timings,
            "summary": self.summary,
            "complete": self.complete,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DiffManifest:
        """Parse a ``manifest.json`` document.

        Raises
        ------
        DiffError
            When it is not a diff manifest this version reads.
        """
        if doc.get("format") != DIFF_FORMAT:
            raise DiffError("manifest.json is not a pitrdiff diff manifest")
        version = doc.get("format_version")
        if version != DIFF_FORMAT_VERSION:
            raise DiffError(
                f"diff format version {version!r} is not supported (this pitrdiff reads "
                f"{DIFF_FORMAT_VERSION})"
            )
        try:
            files_doc = doc.get("files") or {}
            files = tuple(
                FileEntry(
                    str(files_doc[name]["path"]),
                    int(files_doc[name]["rows"]),
                    int(files_doc[name]["bytes"]),
                    str(files_doc[name]["xxh3_128"]),
                )
                for name in CLASSES
                if name in files_doc
            )
            return cls(
                table_name=str(doc["table_name"]),
                key_schema=KeySchema.from_list(doc["key_schema"]),
                live=dict(doc.get("live") or {}),
                restored=dict(doc.get("restored") or {}),
                counts={k: int(v) for k, v in (doc.get("counts") or {}).items()},
                bytes={
                    k: (None if v is None else int(v)) for k, v in (doc.get("bytes") or {}).items()
                },
                files=files,
                timings={k: float(v) for k, v in (doc.get("timings") or {}).items()},
                summary=dict(doc.get("summary") or {}),
                complete=bool(doc.get("complete")),
                created_at=str(doc.get("created_at", "")),
                format_version=int(version),
                tool_version=str(doc.get("tool_version", "")),
            )
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise DiffError(f"manifest.json is malformed: {exc}") from exc

    def file(self, name: str) -> FileEntry:
        """The file entry of one class."""
        for entry in self.files:
            if entry.path == FILE_NAMES[name]:
                return entry
        raise DiffError(f"the diff has no {name} file")


def _read_diff_manifest(root: Path) -> DiffManifest:
    if not root.is_dir():
        raise DiffError(f"{root} is not a directory (expected a diff dataset)")
    path = root / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DiffError(f"{root} is not a diff: it has no {MANIFEST_NAME}") from exc
    except OSError as exc:
        raise storage_error(exc, path, "read") from exc
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DiffError(f"{path} is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise DiffError(f"{path} is not a manifest")
    if doc.get("format") == "pitrdiff-export":
        raise DiffError(f"{root} is an export, not a diff (run `pitrdiff diff` first)")
    return DiffManifest.from_dict(doc)


def prepare_out(out: str | os.PathLike[str], *, overwrite: bool, check_only: bool) -> Path:
    """Make ``out`` ready for a diff dataset, refusing to write over anything else.

    Parameters
    ----------
    out
        The diff directory.
    overwrite
        Replace a complete diff already there.
    check_only
        Only check (raise if refused); touch nothing.

    Raises
    ------
    RefusedError
        When ``out`` is a file, holds something other than a diff, or holds a
        complete diff and ``overwrite`` is false.
    """
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise RefusedError(f"{root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MANIFEST_NAME).exists():
            raise RefusedError(f"{root} is not empty and is not a diff; choose another --out")
        try:
            existing = _read_diff_manifest(root)
        except DiffError as exc:
            raise RefusedError(f"{root} is not empty and is not a usable diff ({exc})") from exc
        # An interrupted (incomplete) diff holds nothing worth keeping.
        if existing.complete and not overwrite:
            raise RefusedError(
                f"{root} already holds a diff of {existing.table_name!r}; "
                "pass --overwrite to replace it"
            )
        if not check_only:
            (root / MANIFEST_NAME).unlink()
            for name in (*FILE_NAMES.values(), REPORT_NAME):
                with contextlib.suppress(FileNotFoundError):
                    (root / name).unlink()
            for leftover in root.glob(".*.parquet.*.tmp"):  # from an interrupted run
                leftover.unlink()
    if not check_only:
        make_dir(root)
    return root


# --------------------------------------------------------------------------- writing


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


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Select and cast the schema's columns of a batch (raises InputError when absent)."""
    arrays = []
    for target in schema:
        index = batch.schema.get_field_index(target.name)
        if index < 0:
            raise InputError(f"diff rows lack the column {target.name!r}")
        column = batch.column(index)
        if column.type != target.type:
            try:
                column = column.cast(target.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(
                    f"diff column {target.name!r} is {column.type}, expected {target.type}"
                ) from exc
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _changes_columns(batch: pa.RecordBatch) -> tuple[pa.Array, pa.Array]:
    """Attribute-level changes and signatures of a batch of changed rows."""
    lives = batch.column(batch.schema.get_field_index("live_item")).to_pylist()
    restoreds = batch.column(batch.schema.get_field_index("restored_item")).to_pylist()
    columns = ChangeColumns()
    for live, restored in zip(lives, restoreds, strict=True):
        columns.add_json(restored, live)
    changes, signatures = columns.arrays(CHANGE_TYPE)
    return changes, signatures


class _ClassWriter:
    """Writes one class file to a temporary name; renames it when complete."""

    def __init__(self, root: Path, name: str, schema: pa.Schema) -> None:
        self.target = root / FILE_NAMES[name]
        self.schema = schema
        self.rows = 0
        self.size_sum = 0
        self.size_column = "live_size" if name == "added" else "restored_size"
        try:
            fd, self.tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=root)
            os.fchmod(fd, FILE_MODE)
            os.close(fd)
        except OSError as exc:
            raise storage_error(exc, self.target, "write") from exc
        self.writer = pq.ParquetWriter(
            self.tmp, schema, compression="zstd", write_statistics=[KEY_COLUMN]
        )

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


def _write_class(
    root: Path,
    name: str,
    key_schema: KeySchema,
    rows: DiffRows,
    progress: Progress,
) -> tuple[FileEntry, int]:
    schema = diff_schema(key_schema, name)
    writer = _ClassWriter(root, name, schema)
    try:
        if name == "changed":
            base = pa.schema([f for f in schema if f.name not in ("changes", "signature")])
            for batch in _batches(rows):
                conformed = _conform(batch, base)
                changes, signatures = _changes_columns(conformed)
                full = pa.RecordBatch.from_arrays(
                    [*conformed.columns, changes, signatures], schema=schema
                )
                writer.write(full)
                progress.advance(full.num_rows)
        else:
            for batch in _batches(rows):
                conformed = _conform(batch, schema)
                writer.write(conformed)
                progress.advance(conformed.num_rows)
        return writer.close(), writer.size_sum
    except BaseException:
        writer.abort()
        raise


_private_spill: str | None = None


def _default_spill_dir() -> str:
    """An owner-only directory for DuckDB's spill files, removed at exit.

    DuckDB's own default (``./.tmp``) would leave table data in the current
    directory, readable by others.
    """
    global _private_spill
    if _private_spill is None:
        _private_spill = tempfile.mkdtemp(prefix="pitrdiff-duckdb-")  # mode 0700
        atexit.register(shutil.rmtree, _private_spill, True)
    return _private_spill


def connect(
    *,
    memory_limit: str | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
    threads: int = DEFAULT_THREADS,
    database: str | os.PathLike[str] = ":memory:",
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection set up the way pitrdiff uses it (bounded memory, spilling).

    Parameters
    ----------
    memory_limit
        DuckDB's memory limit, e.g. ``"1GB"``; DuckDB's default (80% of RAM) if ``None``.
    temp_dir
        Where DuckDB spills (table data lands there, so it should be owner-only);
        a private temporary directory removed at exit if ``None``.
    threads
        Worker threads.
    database
        A database file, or in memory by default.
    """
    import duckdb

    config: dict[str, Any] = {
        "threads": threads,
        "preserve_insertion_order": False,
        "temp_directory": os.fspath(temp_dir) if temp_dir is not None else _default_spill_dir(),
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    try:
        con = duckdb.connect(os.fspath(database), config=config)
    except duckdb.Error as exc:
        if memory_limit:
            raise InputError(
                f"invalid memory limit {memory_limit!r}: {exc} (e.g. --memory-limit 1GB)"
            ) from exc
        raise InputError(f"cannot set up DuckDB ({exc})") from exc
    # No progress bar: the library never prints (DuckDB would draw one on stderr).
    # In Jupyter without ipywidgets DuckDB refuses any change to the setting
    # (and draws no bar there), so a refusal is fine.
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    for macro in SQL_MACROS:
        con.execute(macro)
    return con


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
        The table's key; decides the key attribute columns (``S``/``N`` text,
        ``B`` binary).
    table_name
        The (live) table's name.
    deleted
        Rows in restored, not in live, with the columns ``_key``, the key
        attributes, ``restored_item``, ``restored_hash``, ``restored_size``.
    changed
        Rows in both with different content: ``_key``, the key attributes,
        ``live_item``, ``restored_item``, ``live_hash``, ``restored_hash``,
        ``live_size``, ``restored_size`` (``changes`` and ``signature`` are
        computed here; if present they are ignored).
    added
        Rows in live, not in restored: ``_key``, the key attributes,
        ``live_item``, ``live_hash``, ``live_size``.
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

    Each of ``deleted`` / ``changed`` / ``added`` is a ``pyarrow.Table``, a
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
    started = time.perf_counter()
    root = prepare_out(out, overwrite=overwrite, check_only=False)
    live_input = dict(inputs.get("live") or {})
    restored_input = dict(inputs.get("restored") or {})
    base = DiffManifest(
        table_name=table_name,
        key_schema=key_schema,
        live=live_input,
        restored=restored_input,
        counts={},
        bytes={},
    )
    write_json(root / MANIFEST_NAME, base.to_dict())

    entries: list[FileEntry] = []
    sizes: dict[str, int | None] = {}
    counts: dict[str, int] = {}
    progress.start("writing the diff", total=None, unit="rows")
    for name, rows in (("deleted", deleted), ("changed", changed), ("added", added)):
        entry, size_sum = _write_class(root, name, key_schema, rows, progress)
        entries.append(entry)
        counts[name] = entry.rows
        sizes[name] = size_sum
    progress.finish()
    counts["unchanged"] = int(unchanged_count)
    sizes["unchanged"] = unchanged_bytes
    written = time.perf_counter()

    progress.start("summarising", total=None)
    spill = tempfile.mkdtemp(prefix="pitrdiff-summary-", dir=temp_dir)
    try:
        con = connect(memory_limit=memory_limit, temp_dir=spill)
        try:
            summary = summarize(
                con,
                {name: str(root / FILE_NAMES[name]) for name in CLASSES},
                table_name=table_name,
                live_table=str(live_input.get("table_name", table_name)),
                restored_table=str(restored_input.get("table_name", "")),
                partition_key=key_schema.partition_key,
                partition_key_type=key_schema.attributes[0].attribute_type,
                counts=counts,
                sizes=sizes,
            )
        finally:
            con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    progress.finish()
    report = render_markdown(
        summary,
        live=str(live_input.get("path", live_input.get("url", ""))),
        restored=str(restored_input.get("path", restored_input.get("url", ""))),
    )
    write_bytes(root / REPORT_NAME, report.encode("utf-8"))
    finished = time.perf_counter()

    all_timings = dict(timings or {})
    all_timings["write_s"] = round(written - started, 3)
    all_timings["summary_s"] = round(finished - written, 3)
    all_timings["total_s"] = round(sum(v for k, v in all_timings.items() if k != "total_s"), 3)
    manifest = DiffManifest(
        table_name=table_name,
        key_schema=key_schema,
        live=live_input,
        restored=restored_input,
        counts=counts,
        bytes=sizes,
        files=tuple(entries),
        timings=all_timings,
        summary=summary.to_dict(),
        complete=True,
        created_at=base.created_at,
    )
    write_json(root / MANIFEST_NAME, manifest.to_dict())
    return Diff(root, manifest)


# --------------------------------------------------------------------------- diffing two exports


def _parse_time(value: Any) -> dt.datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _warn_if_unrelated(live: Export, restored: Export) -> None:
    """Warn (not refuse) when the inputs do not look like a table and its restore."""
    live_name = live.table_name
    restored_name = restored.table_name
    restore = restored.manifest.table.get("restore") or {}
    source_name = restore.get("source_table_name")
    if source_name:
        if source_name != live_name:
            LOG.warning(
                "the restored table %r was restored from %r, not from the live table %r",
                restored_name,
                source_name,
                live_name,
            )
    elif live_name.lower() not in restored_name.lower() and restored_name != live_name:
        LOG.warning(
            "table names do not look related: live %r, restored %r (is the order "
            "LIVE_EXPORT RESTORED_EXPORT?)",
            live_name,
            restored_name,
        )
    restore_time = _parse_time(restore.get("restore_date_time"))
    source = live.manifest.source
    live_time = _parse_time(source.get("started_at") or live.manifest.created_at)
    if restore_time and live_time and live_time < restore_time:
        LOG.warning(
            "the live export of %r was taken at %s, before the restore time %s of %r "
            "(are the exports swapped or stale?)",
            live_name,
            live_time.isoformat(),
            restore_time.isoformat(),
            restored_name,
        )
    live_restore = live.manifest.table.get("restore") or {}
    if live_restore and not restore:
        LOG.warning(
            "the live export %r is of a restored table and the restored export %r is not "
            "(is the order LIVE_EXPORT RESTORED_EXPORT?)",
            live_name,
            restored_name,
        )


def _open_input(path: str | os.PathLike[str], role: str) -> Export:
    try:
        export = load_export(path)
    except ExportError as exc:
        raise type(exc)(f"{role} export: {exc}", path=exc.path) from exc
    return export


def _verify_both(live: Export, restored: Export) -> None:
    """Check both exports' parts against their checksums, in parallel (xxhash drops the GIL)."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="pitrdiff-verify") as pool:
        futures = [pool.submit(export.verify) for export in (live, restored)]
        for future in futures:
            future.result()


def _register_input(
    con: duckdb.DuckDBPyConnection, name: str, export: Export, key_schema: KeySchema
) -> None:
    if export.manifest.files:
        files = ", ".join(_literal(p) for p in export.parquet_files)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{files}])")
    else:
        con.register(f"{name}_empty", key_schema.arrow_schema().empty_table())
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_empty")


def diff_exports(
    live: str | os.PathLike[str] | Export,
    restored: str | os.PathLike[str] | Export,
    out: str | os.PathLike[str],
    *,
    memory_limit: str | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
    threads: int = DEFAULT_THREADS,
    overwrite: bool = False,
    progress: Progress = SILENT,
) -> Diff:
    """Diff two exports (live and restored) into a diff dataset at ``out``.

    Parameters
    ----------
    live
        The export of the live table (a path or an opened :class:`~pitrdiff.export.dataset.Export`).
    restored
        The export of the restored table (the state at T).
    out
        The diff directory to write.
    memory_limit
        DuckDB's memory limit (``"1GB"``); DuckDB spills beyond it.
    temp_dir
        Where DuckDB spills (a private temporary directory is made inside it).
    threads
        DuckDB worker threads.
    overwrite
        Replace a diff already at ``out``.
    progress
        Reports the phases.

    Returns
    -------
    Diff
        The diff written; ``diff.summary.same`` says whether the tables hold the same items.

    Raises
    ------
    ExportError
        When an input is not an export or a part does not match its checksum.
    IncompleteExportError
        When an input export is not complete.
    SchemaMismatchError
        When the key schemas differ.
    RefusedError
        When ``out`` holds something else, or a diff and ``overwrite`` is false.
    """
    started = time.perf_counter()
    prepare_out(out, overwrite=overwrite, check_only=True)
    progress.start("verifying the exports", total=None)
    live_export = live if isinstance(live, Export) else _open_input(live, "live")
    restored_export = (
        restored if isinstance(restored, Export) else _open_input(restored, "restored")
    )
    _verify_both(live_export, restored_export)
    key_schema = _merge_key_schemas(live_export.key_schema, restored_export.key_schema)
    _warn_if_unrelated(live_export, restored_export)
    progress.finish()
    verified = time.perf_counter()

    spill = tempfile.mkdtemp(prefix="pitrdiff-diff-", dir=temp_dir)
    try:
        con = connect(memory_limit=memory_limit, temp_dir=spill, threads=threads)
        try:
            _register_input(con, "live", live_export, key_schema)
            _register_input(con, "restored", restored_export, key_schema)
            progress.start("classifying", total=None)
            # Pass 1: join only keys and hashes (narrow columns) to classify.
            con.execute(
                "CREATE TEMP TABLE classes AS "
                "SELECT coalesce(l._key, r._key) AS _key, "
                "CASE WHEN l._key IS NULL THEN 0 WHEN r._key IS NULL THEN 2 ELSE 1 END AS cls "
                "FROM (SELECT _key, _hash, _size FROM live) l "
                "FULL OUTER JOIN (SELECT _key, _hash, _size FROM restored) r ON l._key = r._key "
                "WHERE l._key IS NULL OR r._key IS NULL "
                "OR l._hash <> r._hash OR l._size <> r._size"
            )
            live_rows, live_bytes = _count(con, "live")
            progress.finish()
            classified = time.perf_counter()
            # Pass 2: fetch the items of the differing keys (a small build side).
            progress.start("extracting", total=None)
            for side, wanted in (("restored", "0, 1"), ("live", "1, 2")):
                con.execute(
                    f"CREATE TEMP TABLE {side}_sel AS SELECT s.*, c.cls FROM {side} s "
                    f"JOIN (SELECT _key, cls FROM classes WHERE cls IN ({wanted})) c "
                    "ON s._key = c._key"
                )
                _refuse_duplicates(con, side, live_export if side == "live" else restored_export)
            progress.finish()
            extracted = time.perf_counter()
            keys = ", ".join(_quote(n) for n in key_schema.names)
            lkeys = ", ".join("l." + _quote(n) for n in key_schema.names)
            counts_row = con.execute(
                "SELECT count(*) FILTER (cls = 1), count(*) FILTER (cls = 2), "
                "coalesce(sum(_size) FILTER (cls = 1), 0), "
                "coalesce(sum(_size) FILTER (cls = 2), 0) FROM live_sel"
            ).fetchall()[0]
            n_changed, n_added, changed_live_bytes, added_bytes = (int(v) for v in counts_row)
            unchanged = live_rows - n_changed - n_added
            unchanged_bytes = live_bytes - changed_live_bytes - added_bytes
            deleted = _stream(
                con,
                f"SELECT _key, {keys}, _item AS restored_item, _hash AS restored_hash, "
                "_size AS restored_size FROM restored_sel WHERE cls = 0 ORDER BY _key",
            )
            added = _stream(
                con,
                f"SELECT _key, {keys}, _item AS live_item, _hash AS live_hash, "
                "_size AS live_size FROM live_sel WHERE cls = 2 ORDER BY _key",
            )
            changed = _stream(
                con,
                f"SELECT l._key, {lkeys}, l._item AS live_item, r._item AS restored_item, "
                "l._hash AS live_hash, r._hash AS restored_hash, "
                "l._size AS live_size, r._size AS restored_size "
                "FROM live_sel l JOIN restored_sel r ON l._key = r._key "
                "WHERE l.cls = 1 AND r.cls = 1 ORDER BY l._key",
            )
            diff = write_diff_dataset(
                out,
                key_schema=key_schema,
                table_name=live_export.table_name,
                deleted=deleted,
                changed=changed,
                added=added,
                unchanged_count=unchanged,
                unchanged_bytes=unchanged_bytes,
                inputs={
                    "live": {"path": str(live_export.path), **live_export.manifest.identity()},
                    "restored": {
                        "path": str(restored_export.path),
                        **restored_export.manifest.identity(),
                    },
                },
                timings={
                    "verify_s": round(verified - started, 3),
                    "classify_s": round(classified - verified, 3),
                    "extract_s": round(extracted - classified, 3),
                },
                overwrite=overwrite,
                memory_limit=memory_limit,
                temp_dir=spill,
                progress=progress,
            )
        finally:
            con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    return diff


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


# --------------------------------------------------------------------------- reading


def load_diff(path: str | os.PathLike[str], *, verify: bool = True) -> Diff:
    """Open the diff dataset at ``path``.

    Parameters
    ----------
    path
        The diff directory (written by :func:`diff_exports` or ``pitrdiff diff``).
    verify
        Check each class file's size and xxh3-128 checksum against the manifest.

    Raises
    ------
    DiffError
        When ``path`` is not a complete, intact diff dataset.
    """
    root = Path(path)
    manifest = _read_diff_manifest(root)
    if not manifest.complete:
        raise DiffError(f"diff {root} is not complete (interrupted?); re-run `pitrdiff diff`")
    if len(manifest.files) != len(CLASSES):
        raise DiffError(f"diff {root}: the manifest does not list every class file")
    diff = Diff(root, manifest)
    if verify:
        diff.verify()
    return diff


@dataclass(frozen=True)
class Explanation:
    """One item's place in a diff: its class and attribute-level changes.

    Attributes
    ----------
    key
        The canonical key JSON.
    kind
        ``deleted``, ``changed``, ``added``; for a key not in the diff,
        ``unchanged`` (in both tables, same content) or ``absent`` (in
        neither), told from the live export when it is still present, else
        ``unchanged``.
    changes
        The attribute-level changes (changed items only).
    signature
        The change signature (changed items only).
    live_item, restored_item
        The two versions as canonical JSON, ``None`` where absent.
    """

    key: str
    kind: str
    changes: tuple[Change, ...] = ()
    signature: str = ""
    live_item: str | None = None
    restored_item: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "key": self.key,
            "class": self.kind,
            "signature": self.signature,
            "changes": [c.to_dict() for c in self.changes],
            "live_item": self.live_item,
            "restored_item": self.restored_item,
        }

    def deepdiff(self) -> Any:
        """The DeepDiff view of the two versions decoded to Python values (slow; one item)."""
        from deepdiff import DeepDiff

        restored = codec.item_to_python(codec.loads(self.restored_item or "{}"))
        live = codec.item_to_python(codec.loads(self.live_item or "{}"))
        return DeepDiff(restored, live, ignore_order=False)

    def __str__(self) -> str:
        lines = [f"{self.kind}: {self.key}"]
        if self.kind == "changed":
            width = max((len(c.path) for c in self.changes), default=4)
            for c in self.changes:
                lines.append(
                    f"  {c.path:<{width}}  {c.kind:<12}  {c.old or '-'}  ->  {c.new or '-'}"
                )
        elif self.kind == "deleted":
            lines.append(f"  restored: {self.restored_item}")
        elif self.kind == "added":
            lines.append(f"  live: {self.live_item}")
        elif self.kind == "unchanged" and self.live_item:
            lines.append(f"  both: {self.live_item}")
        elif self.kind == "absent":
            lines.append("  in neither table")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        head = f"<p><b>{e(self.kind)}</b> <code>{e(self.key)}</code></p>"
        if self.kind != "changed":
            item = self.restored_item if self.kind == "deleted" else self.live_item
            return head + (f"<pre>{e(item)}</pre>" if item else "")
        rows = "".join(
            f"<tr><td><code>{e(c.path)}</code></td><td>{e(c.kind)}</td>"
            f"<td><code>{e(c.old or '')}</code></td><td><code>{e(c.new or '')}</code></td></tr>"
            for c in self.changes
        )
        return (
            head
            + "<table><thead><tr><th>path</th><th>change</th><th>restored (old)</th>"
            + f"<th>live (new)</th></tr></thead><tbody>{rows}</tbody></table>"
        )


class Diff:
    """A diff dataset on disk, opened for reading (use :func:`load_diff`).

    Attributes
    ----------
    path
        The diff directory.
    manifest
        Its manifest.
    """

    def __init__(self, path: Path, manifest: DiffManifest) -> None:
        self.path = path
        self.manifest = manifest

    def __repr__(self) -> str:
        return f"<Diff {self.manifest.table_name!r}: {self.summary.headline()} at {self.path}>"

    @property
    def summary(self) -> DiffSummary:
        """What the diff found (counts, bytes, signatures, partitions, samples)."""
        return DiffSummary.from_dict(self.manifest.summary)

    @property
    def key_schema(self) -> KeySchema:
        """The table's primary key."""
        return self.manifest.key_schema

    @property
    def same(self) -> bool:
        """``True`` when the two tables hold the same items."""
        return self.summary.same

    def file_path(self, name: str) -> Path:
        """The Parquet file of one class (``deleted``, ``changed``, ``added``)."""
        return self.path / self.manifest.file(name).path

    def verify(self) -> None:
        """Check each class file's size and checksum against the manifest.

        Raises
        ------
        DiffError
            Naming the first file that is missing, truncated or corrupt.
        """
        for entry in self.manifest.files:
            part = self.path / entry.path
            try:
                size = part.stat().st_size
                if size != entry.bytes or file_checksum(part) != entry.xxh3_128:
                    raise DiffError(
                        f"diff {self.path}: {entry.path} does not match the manifest "
                        "(truncated, corrupt or edited)"
                    )
            except FileNotFoundError as exc:
                raise DiffError(f"diff {self.path}: {entry.path} is missing") from exc

    # tables -------------------------------------------------------------------
    def arrow(self, name: str) -> pa.Table:
        """The raw rows of one class as an Arrow table (``docs/FORMAT.md`` columns)."""
        if name not in CLASSES:
            raise InputError(f"unknown class {name!r}; choose deleted, changed or added")
        return pq.read_table(self.file_path(name))

    # Typed for notebooks: a DataFrame unless arrow=True.
    @overload
    def deleted(self, *, arrow: Literal[False] = False, decode: bool = True) -> pd.DataFrame: ...
    @overload
    def deleted(self, *, arrow: bool, decode: bool = True) -> pd.DataFrame | pa.Table: ...
    def deleted(self, *, arrow: bool = False, decode: bool = True) -> pd.DataFrame | pa.Table:
        """Items in restored, not in live (lost since T).

        Parameters
        ----------
        arrow
            Return the raw Arrow table instead of a DataFrame.
        decode
            Add one column per top-level attribute, decoded to Python values
            (``Decimal``, ``bytes``, ``set``, ``dict``, ``list``).

        Returns
        -------
        pandas.DataFrame or pyarrow.Table
            Key attributes first, then the decoded attributes, then the raw
            columns (``_key``, ``restored_item`` …).
        """
        return self._frame("deleted", "restored_item", arrow=arrow, decode=decode)

    @overload
    def added(self, *, arrow: Literal[False] = False, decode: bool = True) -> pd.DataFrame: ...
    @overload
    def added(self, *, arrow: bool, decode: bool = True) -> pd.DataFrame | pa.Table: ...
    def added(self, *, arrow: bool = False, decode: bool = True) -> pd.DataFrame | pa.Table:
        """Items in live, not in restored (created since T); see :meth:`deleted`."""
        return self._frame("added", "live_item", arrow=arrow, decode=decode)

    @overload
    def changed(
        self, *, arrow: Literal[False] = False, decode: bool = True, side: str = "restored"
    ) -> pd.DataFrame: ...
    @overload
    def changed(
        self, *, arrow: bool, decode: bool = True, side: str = "restored"
    ) -> pd.DataFrame | pa.Table: ...
    def changed(
        self, *, arrow: bool = False, decode: bool = True, side: str = "restored"
    ) -> pd.DataFrame | pa.Table:
        """Items in both with different content.

        Parameters
        ----------
        arrow
            Return the raw Arrow table instead of a DataFrame.
        decode
            Add one column per top-level attribute of the ``side`` version, decoded.
        side
            Which version the decoded columns show: ``restored`` (at T, what a
            plan would put back) or ``live``.

        Returns
        -------
        pandas.DataFrame or pyarrow.Table
            Key attributes, ``signature``, ``changes`` (list of dicts with
            ``path``, ``kind``, ``old``, ``new``), the decoded attributes, then
            the raw columns.
        """
        if side not in ("restored", "live"):
            raise InputError("side is 'restored' or 'live'")
        return self._frame("changed", f"{side}_item", arrow=arrow, decode=decode)

    def _frame(
        self, name: str, item_column: str, *, arrow: bool, decode: bool
    ) -> pd.DataFrame | pa.Table:
        table = self.arrow(name)
        if arrow:
            return table
        lead = ("signature", "changes") if name == "changed" else ()
        return decoded_frame(
            table.to_pandas(), self.key_schema, item_column, lead=lead, decode=decode
        )

    # SQL ----------------------------------------------------------------------
    def connect(
        self, *, memory_limit: str | None = None, threads: int = DEFAULT_THREADS
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection over this diff, for queries :meth:`sql` does not cover.

        It has views ``deleted``, ``changed``, ``added`` (and ``live``,
        ``restored`` when the input exports are still at their paths) and the
        attribute macros (see :meth:`sql`). Close it when done.
        """
        con = connect(memory_limit=memory_limit, threads=threads)
        for name in CLASSES:
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet("
                f"{_literal(str(self.file_path(name)))})"
            )
        for side in ("live", "restored"):
            export = self._input_export(side)
            if export is not None and export.manifest.files:
                files = ", ".join(_literal(p) for p in export.parquet_files)
                con.execute(f"CREATE VIEW {side} AS SELECT * FROM read_parquet([{files}])")
            elif export is not None:
                con.register(f"{side}_empty", export.key_schema.arrow_schema().empty_table())
                con.execute(f"CREATE VIEW {side} AS SELECT * FROM {side}_empty")
        return con

    def _input_export(self, side: str) -> Export | None:
        info = self.manifest.live if side == "live" else self.manifest.restored
        where = info.get("path")
        if not where:
            return None
        try:
            return load_export(where)
        except ExportError:
            pass
        # Moved or shipped elsewhere with its exports (``sample_data/``, a copied
        # workdir): try beside the diff, and accept only the very export recorded.
        for candidate in (self.path / where, self.path.parent / Path(where).name):
            try:
                export = load_export(candidate)
            except ExportError:
                continue
            recorded = (info.get("table_name"), info.get("created_at"))
            if (export.table_name, export.manifest.created_at) == recorded:
                return export
        return None

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run DuckDB SQL over the diff and return a DataFrame.

        Views: ``deleted``, ``changed``, ``added`` (the class files, columns as in
        ``docs/FORMAT.md``), and ``live`` / ``restored`` (the input exports, when
        still present at the paths the manifest records). Items are canonical
        DynamoDB JSON strings; reach attributes with DuckDB's JSON functions,
        e.g. ``json_extract_string(restored_item, '$.tenant.S')``, or the macros:

        - ``attr(item, 'name')``: the typed value as JSON (``{"N":"1.5"}``);
        - ``attr_type(item, 'name')``: its type tag (``'N'``);
        - ``attr_text(item, 'name')``: an S / N / B / BOOL value as exact text;
        - ``attr_num(item, 'name')``: an N value as DOUBLE (approximate: for
          filters and plots, not for writing back).

        ``unnest(changes)`` turns the changes of changed items into rows with
        ``path``, ``kind``, ``old``, ``new``.

        Examples
        --------
        >>> d.sql("SELECT attr_text(restored_item, 'tenant') AS tenant, count(*) AS n "
        ...       "FROM deleted GROUP BY ALL ORDER BY n DESC")  # doctest: +SKIP

        Raises
        ------
        DiffError
            When the query fails (a view ``live`` / ``restored`` is missing when
            the input export has moved).
        """
        import duckdb

        con = self.connect()
        try:
            try:
                frame: pd.DataFrame = con.execute(query, params or []).df()
            except duckdb.CatalogException as exc:
                missing = [
                    side
                    for side in ("live", "restored")
                    if self._input_export(side) is None and side in query
                ]
                if missing:
                    raise DiffError(
                        f"the {' and '.join(missing)} export is no longer at the path the diff "
                        f"recorded, so its view is absent: {exc}"
                    ) from exc
                raise DiffError(f"SQL error: {exc}") from exc
            except duckdb.Error as exc:
                raise DiffError(f"SQL error: {exc}") from exc
        finally:
            con.close()
        return frame

    # one item -----------------------------------------------------------------
    def key_of(self, key: Any) -> str:
        """The canonical key JSON of ``key``.

        ``key`` may be a canonical key string (``'{"pk":{"S":"a"}}'``), a
        mapping of Python values (``{"pk": "a", "sk": 3}``), a wire-form key
        (``{"pk": {"S": "a"}}``), or, for a table with only a partition key,
        the bare partition-key value.
        """
        names = self.key_schema.names
        if isinstance(key, str) and key.startswith("{"):
            return codec.canonical_key(codec.loads(key), names)
        if not isinstance(key, Mapping):
            if len(names) != 1:
                raise InputError(f"a key of this table has {len(names)} attributes: {names}")
            key = {names[0]: key}
        wire: dict[str, Any] = {}
        for name, value in key.items():
            typed = value if _is_typed(value) else codec.from_python(value)
            attribute = next((a for a in self.key_schema.attributes if a.name == name), None)
            if attribute and attribute.attribute_type == "N" and "S" in typed:
                typed = {"N": typed["S"]}
            wire[name] = typed
        return codec.canonical_key(wire, names)

    def explain(self, key: Any) -> Explanation:
        """Show one item's class and attribute-level changes.

        Parameters
        ----------
        key
            The item's key (see :meth:`key_of` for the accepted forms).

        Returns
        -------
        Explanation
            Printable, and rendered as a table in notebooks; ``.deepdiff()``
            gives deepdiff's view of the two versions.
        """
        canonical = self.key_of(key)
        for name in CLASSES:
            table = pq.read_table(self.file_path(name), filters=[(KEY_COLUMN, "=", canonical)])
            if table.num_rows:
                row = table.slice(0, 1).to_pylist()[0]
                if name == "changed":
                    return Explanation(
                        canonical,
                        name,
                        tuple(Change(**c) for c in row["changes"]),
                        row["signature"],
                        row["live_item"],
                        row["restored_item"],
                    )
                return Explanation(
                    canonical,
                    name,
                    live_item=row.get("live_item"),
                    restored_item=row.get("restored_item"),
                )
        live = self._input_export("live")
        if live is not None and live.manifest.files:
            found = pq.ParquetDataset(
                live.parquet_files, filters=[(KEY_COLUMN, "=", canonical)]
            ).read(columns=[KEY_COLUMN, "_item"])
            if not found.num_rows:
                return Explanation(canonical, "absent")
            item = found.column("_item")[0].as_py()
            return Explanation(canonical, "unchanged", live_item=item, restored_item=item)
        if live is not None:
            return Explanation(canonical, "absent")
        return Explanation(canonical, "unchanged")

    def _repr_html_(self) -> str:
        s = self.summary
        e = html.escape
        rows = "".join(
            f"<tr><td>{name}</td><td style='text-align:right'>{count:,}</td></tr>"
            for name, count in (
                ("deleted", s.deleted),
                ("changed", s.changed),
                ("added", s.added),
                ("unchanged", s.unchanged),
            )
        )
        sigs = "".join(
            f"<tr><td style='text-align:right'>{x.items:,}</td><td><code>{e(x.signature)}</code>"
            "</td></tr>"
            for x in s.top_signatures
        )
        out = (
            f"<p><b>Diff of {e(s.table_name)}</b> ({e(str(self.path))})</p>"
            f"<table><thead><tr><th>class</th><th>items</th></tr></thead><tbody>{rows}"
            "</tbody></table>"
        )
        if sigs:
            out += (
                "<p>Change signatures</p><table><thead><tr><th>items</th><th>changed paths"
                f"</th></tr></thead><tbody>{sigs}</tbody></table>"
            )
        return out


def _is_typed(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in codec.TYPE_TAGS


__all__ = [
    "CHANGE_TYPE",
    "Diff",
    "DiffManifest",
    "DiffSummary",
    "Explanation",
    "connect",
    "diff_exports",
    "diff_schema",
    "load_diff",
    "write_diff_dataset",
]

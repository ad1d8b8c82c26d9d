"""A native full export → an export dataset (``source.kind`` ``"s3-export"``).

Each data file becomes Parquet parts of its own (``data/s3-<file>-<n>.parquet``),
written by one worker; the manifest is written first marked incomplete and
last complete, listing every part. A run that fails or is interrupted stops
its workers, removes the parts it wrote and leaves the manifest incomplete:
nothing half-written, and running the command again starts afresh.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from pitrdiff.aws import AwsConfig
from pitrdiff.codec import Record, encode_lines, encode_record, encodes_text
from pitrdiff.errors import CodecError, ExportError, InputError
from pitrdiff.export.dataset import (
    DEFAULT_PART_BYTES,
    FileEntry,
    KeySchema,
    Manifest,
    PartBuffer,
    prepare_directory,
    remove_unlisted_parts,
    utc_now,
    write_manifest,
)
from pitrdiff.export.native.location import ExportLocation, Reader
from pitrdiff.export.native.manifest import FULL_EXPORT, ExportSummary, summary_of
from pitrdiff.export.native.stream import (
    BadRecord,
    FileOutcome,
    FileTask,
    KeyTypeCheck,
    codec_failure,
)
from pitrdiff.export.native.table import (
    key_schema_from_spec,
    peek_key_types,
    resolve_key_schema,
    resolve_ttl,
)
from pitrdiff.export.native.workers import default_workers, new_run, run_files
from pitrdiff.export.remote import export_to_s3, is_s3_url
from pitrdiff.progress import SILENT, Progress

# Records are moved into the part buffer a batch at a time: at most this many,
# or this many bytes of canonical items, so a part closes near part_bytes.
_BATCH = 256
_BATCH_BYTES = 1 << 20


class FullSink:
    """Writes one data file's items (``{"Item": {...}}`` lines) as Parquet parts."""

    def __init__(self, task: FileTask) -> None:
        self.task = task
        self.names = task.key_schema.names
        self.check_key_types = KeyTypeCheck(task.key_schema)
        self.buffer = PartBuffer(
            task.out, task.key_schema, f"s3-{task.index:05d}", part_bytes=task.part_bytes
        )
        self.parts: list[FileEntry] = []
        self.items = 0
        self.bytes = 0
        # Encoded records not yet in the part buffer: added a batch at a time
        # (PartBuffer.add_page, one list comprehension per column).
        self.pending: list[Record] = []
        self.pending_bytes = 0
        self.line = 0

    def add_lines(self, lines: list[bytes], first: int) -> None:
        """Take lines numbered ``first``, ``first + 1``, ... (hot path: once per batch).

        The C codec (:func:`~pitrdiff.codec.encode_lines`) encodes them straight
        from their JSON text into the part buffer; a line it leaves (anything
        uncommon, and every error) goes through :meth:`add`, which gives the
        same record or the error. Without the C codec every line does.
        """
        if not encodes_text():
            for number, line in enumerate(lines, first):
                self.line = number
                self.add(line, number)
            return
        buffer = self.buffer
        declared = self.check_key_types.declared
        index = 0
        while index < len(lines):
            if self.pending:  # records of the Python path go first: the file's order
                self._buffer_pending()
            index, count, characters, size = encode_lines(
                lines, index, self.names, declared, buffer.columns, buffer.room
            )
            buffer.took(count, characters)
            self.items += count
            self.bytes += size
            if buffer.full:
                self._flush()
            elif index < len(lines):
                self.line = first + index
                self.add(lines[index], self.line)
                index += 1
        self.line = first + len(lines) - 1

    def _flush(self) -> None:
        entry = self.buffer.flush()
        if entry:
            self.parts.append(entry)

    def add(self, line: bytes, number: int) -> None:
        """Encode one line's item and keep it for the buffer (hot path: once per item)."""
        document = orjson.loads(line)
        item = document.get("Item") if type(document) is dict else None
        if type(item) is not dict:
            raise BadRecord('not a full-export record {"Item": {...}}')
        try:
            record = encode_record(item, self.names)
        except CodecError as exc:
            raise codec_failure(exc, item, self.names) from exc
        self.check_key_types(record)  # per item: the error names this line
        pending = self.pending
        pending.append(record)
        self.pending_bytes += len(record.item)
        if len(pending) >= _BATCH or self.pending_bytes >= _BATCH_BYTES:
            self._buffer_pending()

    def _buffer_pending(self) -> None:
        """Move the pending records into the part buffer; flush a part when it is full."""
        buffer = self.buffer
        self.bytes += buffer.add_page(self.pending)
        self.items += len(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        if buffer.full:
            self._flush()

    def abort(self) -> None:
        """Nothing to release: parts already written are replaced or removed."""

    def finish(self) -> FileOutcome:
        """Flush the last part; say what the file gave."""
        self._buffer_pending()
        self._flush()
        return FileOutcome(
            self.task.index, self.items, self.items, self.bytes, parts=tuple(self.parts)
        )


def ingest_export(
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
    part_bytes: int | None = None,
    progress: Progress = SILENT,
    _table_facts: Mapping[str, Any] | None = None,
) -> Manifest:
    """Read a native full export (S3 or a local copy) into an export dataset.

    Parameters
    ----------
    source
        ``s3://bucket/prefix/AWSDynamoDB/<export-id>`` or a local directory
        with the same layout, or the export folder copied on its own.
    out
        The export dataset directory to create, or ``s3://bucket/prefix``
        (written locally, then uploaded: parts first, the manifest last).
    aws
        Profile and region (S3 and, to learn the key schema, ``DescribeTable``).
    s3_endpoint_url
        An S3-compatible endpoint; ``AWS_ENDPOINT_URL_S3`` works too.
    key_schema
        The table's key, as a :class:`KeySchema`, boto3's ``KeySchema`` list,
        or ``"pk[:TYPE][,sk[:TYPE]]"``. The manifests do not record it, so by
        default it comes from ``DescribeTable`` of the exported table. Declared
        types are checked against every item.
    table_name
        The table name recorded (default: from the export's table ARN).
    ttl_attribute
        The table's TTL attribute, recorded in the manifest (``ttl``);
        by default the table's setting when the table is described (no
        ``key_schema`` given), else unknown.
    workers
        Data files processed at once (default: one per CPU core).
    executor
        ``"process"``, ``"thread"`` or ``"auto"``: processes for large exports
        (parsing and canonicalising is CPU-bound Python) when run from the
        ``pitrdiff`` command, a notebook or a REPL; threads otherwise. A script
        passing ``"process"`` needs the usual ``if __name__ == "__main__":``
        guard (workers are spawned and import the main module).
    overwrite
        Replace a complete export already at ``out``.
    part_bytes
        Flush a Parquet part at this many bytes of canonical items.
    progress
        Receives items done per data file.

    Returns
    -------
    Manifest
        The manifest written (``source.kind`` ``"s3-export"``, ``complete``).

    Raises
    ------
    ExportError
        When a manifest is missing or malformed, a data file is missing, a
        data file's MD5 or item count differs from the manifests, or an item
        is invalid (its key and the rule named; key types that contradict the
        key schema). The dataset is left marked incomplete, without parts.
    InputError
        An incremental or ION export, or a key schema that cannot be learned.
    RefusedError
        When ``out`` holds a complete export and ``overwrite`` is false.
    Interrupted
        On Ctrl-C or SIGTERM: the workers are stopped, the parts removed.
    """
    if is_s3_url(out):  # written locally, then published: parts first, the manifest last
        return export_to_s3(
            str(out),
            lambda local: ingest_export(
                source,
                local,
                aws=aws,
                s3_endpoint_url=s3_endpoint_url,
                key_schema=key_schema,
                table_name=table_name,
                ttl_attribute=ttl_attribute,
                workers=workers,
                executor=executor,
                part_bytes=part_bytes,
                progress=progress,
                _table_facts=_table_facts,
            ),
            overwrite=overwrite,
            endpoint_url=s3_endpoint_url,
            aws=aws,
        )
    started = utc_now()
    clock = time.monotonic()
    reader = Reader(ExportLocation.parse(source), aws or AwsConfig(), s3_endpoint_url)
    summary = summary_of(reader)
    if summary.export_type != FULL_EXPORT:
        raise InputError(
            f"{summary.location.url} is an incremental export (a change log, not a table "
            "state): use `pitrdiff diff --incremental` / diff_incremental()"
        )
    schema, facts, ttl = _table_of(reader, summary, key_schema, ttl_attribute, aws, _table_facts)
    name = table_name or summary.table_name or summary.location.export_id
    root = prepare_directory(out, overwrite=overwrite)
    source_doc = {"kind": "s3-export", **summary.to_dict(), "started_at": started}
    base = Manifest(table_name=name, key_schema=schema, source=source_doc, table=facts, ttl=ttl)
    write_manifest(root, base)
    with _no_parts_on_failure(root):
        outcomes = _ingest_files(
            reader, summary, root, schema, part_bytes, workers, executor, progress
        )
        parts = tuple(p for o in outcomes for p in o.parts)
        remove_unlisted_parts(root, [p.path for p in parts])  # left by re-read files
    items = sum(o.items for o in outcomes)
    if items != summary.item_count:  # pragma: no cover - each file was checked
        raise ExportError(f"{summary.location.url}: read {items} items, expected more")
    manifest = replace(
        base,
        source={**source_doc, "finished_at": utc_now()},
        complete=True,
        files=parts,
        items=items,
        bytes=sum(o.bytes for o in outcomes),
        stats={"elapsed_s": round(time.monotonic() - clock, 3), "data_files": len(outcomes)},
    )
    write_manifest(root, manifest)
    return manifest


def _table_of(
    reader: Reader,
    summary: ExportSummary,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None,
    ttl_attribute: str | None,
    aws: AwsConfig | None,
    table_facts: Mapping[str, Any] | None,
) -> tuple[KeySchema, dict[str, Any], dict[str, Any] | None]:
    """Key schema (types learned from the data), table facts and TTL setting to record."""
    if table_facts is not None and key_schema is not None:
        given = key_schema
        schema = given if isinstance(given, KeySchema) else key_schema_from_spec(str(given))
        facts = dict(table_facts)
    else:
        schema, facts = resolve_key_schema(summary, key_schema, aws)
    ttl = resolve_ttl(facts, ttl_attribute)
    facts.pop("ttl", None)  # recorded as the manifest's own field
    return peek_key_types(reader, summary, schema), facts, ttl


def _ingest_files(
    reader: Reader,
    summary: ExportSummary,
    root: Path,
    schema: KeySchema,
    part_bytes: int | None,
    workers: int | None,
    executor: str,
    progress: Progress,
) -> list[FileOutcome]:
    run = new_run()
    tasks = [
        FileTask(
            index,
            reader,
            data_file,
            str(root),
            schema,
            part_bytes or DEFAULT_PART_BYTES,
            FullSink,
            run,
        )
        for index, data_file in enumerate(summary.files)
    ]
    return run_files(
        tasks,
        label=f"ingesting {summary.location.export_id}",
        workers=workers or default_workers(),
        executor=executor,
        total_items=summary.item_count,
        progress=progress,
    )


@contextlib.contextmanager
def _no_parts_on_failure(root: Path) -> Any:
    """On any failure (an interrupt included), remove the parts written so far.

    Ingestion does not resume (a data file is one unit of work): parts of a
    failed run are of no use, and the manifest already says incomplete.
    """
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            remove_unlisted_parts(root, [])
        raise

"""Streaming one data file of a native export: gzip lines in, verified records out.

A data file is read in chunks, decompressed line by line (bounded memory,
multi-member gzip), each line handed to a *sink* (the full-export or the
incremental writer), and checked at the end against ``manifest-files.json``:
MD5 of the compressed bytes and item count. A transfer that breaks mid-file is
read again from the start.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson

from pitrdiff.codec import Record
from pitrdiff.errors import AwsError, CodecError, CredentialsError, ExportError, Interrupted
from pitrdiff.export.dataset import FileEntry, KeySchema
from pitrdiff.export.native.location import CHUNK, Reader
from pitrdiff.export.native.manifest import DataFile

log = logging.getLogger(__name__)

FILE_ATTEMPTS = 4


class BadRecord(Exception):
    """A line that is valid JSON but not an export record (message: what is wrong)."""


def gzip_batches(chunks: Iterator[bytes], digest: Any) -> Iterator[list[bytes]]:
    """Decompress a gzip stream (possibly multi-member); yield its non-empty lines in lists.

    Output is produced at most 1 MiB at a time (gzip of repetitive data
    expands a thousandfold: memory must not follow); each list holds the
    complete lines of one such piece. ``digest`` is updated with every
    compressed byte read, so the caller can check the file's MD5 once the
    generator is exhausted.

    Raises
    ------
    zlib.error
        When the stream is not gzip or is truncated.
    """
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    pending = b""
    seen_input = False
    for chunk in chunks:
        digest.update(chunk)
        if not chunk:
            continue
        seen_input = True
        data = chunk
        more = True
        while more:
            if decompressor.eof:  # the previous gzip member ended; another follows
                decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
            out = decompressor.decompress(data, CHUNK)
            data = decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail
            if out:
                lines = (pending + out).split(b"\n")
                pending = lines.pop()
                # no copy, unlike strip()
                batch = [line for line in lines if line and not line.isspace()]
                if batch:
                    yield batch
            # a full output buffer may leave output pending inside zlib
            more = bool(data) or (len(out) == CHUNK and not decompressor.eof)
    if seen_input and not decompressor.eof:
        raise zlib.error("the gzip stream is truncated")
    if pending.strip():
        yield [pending]


def gzip_lines(chunks: Iterator[bytes], digest: Any) -> Iterator[bytes]:
    """The lines of :func:`gzip_batches`, one at a time."""
    for batch in gzip_batches(chunks, digest):
        yield from batch


def _drain(chunks: Iterator[bytes], digest: Any) -> None:
    for chunk in chunks:
        digest.update(chunk)


@dataclass(frozen=True)
class FileOutcome:
    """What processing one data file produced.

    Attributes
    ----------
    index
        The file's position in ``manifest-files.json``.
    lines, items, bytes
        Lines read, items written and their size (AWS rules).
    parts
        Parquet parts written (full exports).
    staging
        The staging file written (incremental exports), if any.
    """

    index: int
    lines: int
    items: int
    bytes: int
    parts: tuple[FileEntry, ...] = ()
    staging: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


class Sink(Protocol):
    """Where one data file's lines go (one instance per file and attempt)."""

    def add(self, line: bytes, number: int) -> None:
        """Take line ``number`` (1-based); raise :class:`BadRecord` or ``CodecError``."""

    def abort(self) -> None:
        """Release what the attempt holds; it will not be finished."""

    def finish(self) -> FileOutcome:
        """Write what remains; say what was written."""


@runtime_checkable
class BatchSink(Sink, Protocol):
    """A sink that also takes lines a batch at a time (the hot path of full exports)."""

    line: int
    """Number of the line being added, for the message when :meth:`add_lines` raises."""

    def add_lines(self, lines: list[bytes], first: int) -> None:
        """Take lines numbered ``first``, ``first + 1``, ...; raise as :meth:`add` does."""


class SinkFactory(Protocol):
    """Makes the sink of a task (a class: picklable for worker processes)."""

    def __call__(self, task: FileTask) -> Sink:
        """The sink for ``task``."""


@dataclass(frozen=True)
class FileTask:
    """One data file to process.

    Attributes
    ----------
    index
        Its position in ``manifest-files.json`` (names its outputs).
    reader, file
        How to read it and what the manifest says of it.
    out
        The directory the sink writes to.
    key_schema
        The table's key.
    part_bytes
        Parquet part size (full exports).
    sink
        The sink class.
    run
        The run's id: its stop flag (threads) is looked up by it.
    options
        Sink options (e.g. the TTL attribute of incremental exports).
    """

    index: int
    reader: Reader
    file: DataFile
    out: str
    key_schema: KeySchema
    part_bytes: int
    sink: SinkFactory
    run: str = ""
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, name: str, default: Any = None) -> Any:
        """A sink option's value."""
        return dict(self.options).get(name, default)


# Stop flags of the runs in this process (threads look here; processes are terminated).
_STOPS: dict[str, threading.Event] = {}


def stop_flag(run: str) -> threading.Event:
    """The stop flag of run ``run`` (created on first use)."""
    return _STOPS.setdefault(run, threading.Event())


def forget_run(run: str) -> None:
    """Drop run ``run``'s stop flag."""
    _STOPS.pop(run, None)


class KeyTypeCheck:
    """Refuses items whose key attribute types contradict the key schema (hot path).

    Compares :attr:`~pitrdiff.codec.Record.key_types` with the declared types
    (a tuple comparison); only on a difference is the key parsed, for
    :meth:`~pitrdiff.export.dataset.KeySchema.check_key_types`'s message. With
    some types undeclared, the dataset writer's own check at flush decides.
    """

    def __init__(self, key_schema: KeySchema) -> None:
        self.key_schema = key_schema
        self.declared = key_schema.declared_types

    def __call__(self, record: Record) -> None:
        """Raise ``CodecError`` naming the item, the attribute and both types."""
        if self.declared is not None and record.key_types != self.declared:
            self.key_schema.check_key_types(orjson.loads(record.key), f"item {record.key}")


def describe_key(item: Mapping[str, Any], names: Sequence[str]) -> str:
    """An item's key as DynamoDB JSON, for messages (at most 200 characters)."""
    key = {n: item[n] for n in names if n in item}
    try:
        text = orjson.dumps(key).decode("utf-8")
    except TypeError:
        text = repr(key)
    return text if len(text) <= 200 else text[:197] + "..."


def codec_failure(exc: CodecError, item: Mapping[str, Any], names: Sequence[str]) -> BadRecord:
    """A codec error (nesting depth, a bad number…) with the item's key added."""
    return BadRecord(f"item {describe_key(item, names)}: {exc}")


def process_file(task: FileTask) -> FileOutcome:
    """Process one data file; read it again from the start if the transfer breaks.

    botocore retries a failed request, but not a response body that breaks
    off mid-stream (a reset connection on a large object): that is retried
    here, a few times with backoff. What a broken attempt wrote is replaced by
    the next attempt (same part names) or removed at the end (unlisted parts).

    Raises
    ------
    ExportError
        The file is missing, corrupt, or disagrees with the manifest.
    Interrupted
        The run was stopped.
    """
    for attempt in range(1, FILE_ATTEMPTS + 1):
        try:
            return _process_file_once(task)
        except CredentialsError:
            raise
        except AwsError as exc:
            if attempt == FILE_ATTEMPTS:
                raise
            log.warning(
                "%s: %s; reading the file again (attempt %d of %d)",
                task.reader.location.describe_ref(task.reader.location.data_ref(task.file.key)),
                exc,
                attempt + 1,
                FILE_ATTEMPTS,
            )
            time.sleep(0.5 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _process_file_once(task: FileTask) -> FileOutcome:
    """Stream one data file, verify it against the manifest, write its output."""
    reader = task.reader
    ref = reader.data_file(task.file.key)
    where = reader.location.describe_ref(ref)
    digest = hashlib.md5(usedforsecurity=False)
    chunks = reader.chunks(ref)
    sink = task.sink(task)
    stop = _STOPS.get(task.run)
    lines = 0
    failure: Exception | None = None
    batched = sink if isinstance(sink, BatchSink) else None
    try:
        try:
            for batch in gzip_batches(chunks, digest):
                if batched is not None:
                    batched.add_lines(batch, lines + 1)
                    lines += len(batch)
                else:
                    for line in batch:
                        lines += 1
                        sink.add(line, lines)
                if stop is not None and stop.is_set():
                    raise Interrupted(f"interrupted while reading {where}")
        except (zlib.error, orjson.JSONDecodeError, CodecError, BadRecord) as exc:
            failure = exc
            if batched is not None and not isinstance(exc, zlib.error):
                lines = batched.line
            _drain(chunks, digest)  # a corrupt file is better reported by its checksum
    except BaseException:
        sink.abort()
        raise
    md5 = base64.b64encode(digest.digest()).decode("ascii")
    if md5 != task.file.md5 or failure is not None:
        sink.abort()
    if md5 != task.file.md5:
        raise ExportError(
            f"{where}: MD5 {md5} does not match manifest-files.json ({task.file.md5}): "
            "the file is corrupt, truncated or replaced",
            path=where,
        )
    if failure is not None:
        what = "corrupt gzip" if isinstance(failure, zlib.error) else f"line {lines}"
        raise ExportError(f"{where}: {what}: {failure}", path=where) from failure
    if lines != task.file.item_count:
        sink.abort()
        raise ExportError(
            f"{where} holds {lines:,} items but manifest-files.json says {task.file.item_count:,}",
            path=where,
        )
    try:
        return sink.finish()
    except CodecError as exc:  # the writer's own checks when the last part is flushed
        raise ExportError(f"{where}: {exc}", path=where) from exc

"""Parallel segmented scan of a DynamoDB table into an export dataset.

:func:`export_table` describes the table, then scans it with ``TotalSegments``
segments in threads. Each segment streams its pages into its own
:class:`~pitrdiff.export.dataset.PartBuffer` and flushes a Parquet part only at a page
boundary; after every flush it writes a checkpoint (``state/seg-NNNN.json``:
the page's ``LastEvaluatedKey``, the parts flushed so far, counts) atomically.

Resume: running the export again on the same directory while its manifest is
incomplete continues every segment from its checkpoint, deletes parts no
checkpoint lists (written by a run killed between a part and its checkpoint)
and keeps the recorded segment count. Each part is listed by exactly one
checkpoint whose key is the last key of that part's last page, so a resumed
export holds exactly the items of an uninterrupted one.

Speed: botocore's response parsing (a Python walk over the output shape) costs
most of a plain boto3 scan's CPU. For ``Scan`` responses with HTTP 200 this
module parses the body with orjson in a ``before-parse`` handler and hands
botocore an empty body, so the shape walk is skipped. Errors are left to
botocore, so its retries, throttling back-off and error codes work unchanged.
Binary values therefore arrive as base64 text, which :mod:`pitrdiff.codec`
accepts.

Test hooks (environment variables read by :func:`export_table`; for tests only):

- ``PITRDIFF_TEST_SCAN_DELAY``: seconds to sleep after every page, so a test
  can kill the process mid-way;
- ``PITRDIFF_TEST_SCAN_LIMIT``: ``Limit`` (items) of every ``Scan`` request;
- ``PITRDIFF_TEST_PART_BYTES``: the part flush threshold in bytes.
"""

from __future__ import annotations

import base64
import gc
import logging
import math
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from pitrdiff import codec
from pitrdiff.aws import (
    THROTTLING_CODES,
    AwsConfig,
    count_retries,
    dynamodb_client,
    translate_errors,
)
from pitrdiff.errors import (
    AwsError,
    CodecError,
    EndpointError,
    ExportError,
    InputError,
    RefusedError,
)
from pitrdiff.export.dataset import (
    MANIFEST_NAME,
    STATE_DIR,
    FileEntry,
    KeySchema,
    Manifest,
    PartBuffer,
    prepare_directory,
    read_manifest,
    remove_unlisted_parts,
    utc_now,
    write_manifest,
)
from pitrdiff.export.ratelimit import CapacityLimiter
from pitrdiff.export.remote import export_to_s3, is_s3_url
from pitrdiff.files import make_dir, write_json
from pitrdiff.progress import SILENT, Progress

logger = logging.getLogger(__name__)

GIB = 1024**3
SEGMENT_BYTES = GIB
"""The default segment count is one segment per this many bytes of table."""
MIN_DEFAULT_SEGMENTS = 4
MAX_DEFAULT_SEGMENTS = 1000
MAX_SEGMENTS = 1_000_000  # DynamoDB's own limit on TotalSegments
MAX_THREADS = 16
SCAN_PART_BYTES = 16 * 1024 * 1024  # a flush briefly holds ~3x this (lists, Arrow, Parquet)
# All segments' part buffers together stay under about this many bytes of
# canonical items (each buffer is at least 4 MiB), so memory does not grow
# with the segment count either.
BUFFER_BUDGET_BYTES = 128 * 1024 * 1024
RCU_BYTES = 4096  # one read capacity unit reads 4 KB strongly consistent (half eventually)
# After botocore's own retries are exhausted: this many more tries, waiting
# OUTER_BASE_WAIT_S * 2**n (capped, jittered) between them.
OUTER_ATTEMPTS = 6
OUTER_BASE_WAIT_S = 2.0
OUTER_MAX_WAIT_S = 60.0
_RETRYABLE_CODES = THROTTLING_CODES | {
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "TransactionInProgressException",
}
_STATE_NAME = re.compile(r"seg-(\d{6})\.json")


# --------------------------------------------------------------------------- fast parsing


def _fast_scan_parse(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """Parse a successful Scan body with orjson; botocore then parses an empty body.

    Error responses (status >= 300) and bodies that are not a JSON object are
    left to botocore, so its error codes and retries are unchanged.
    """
    if response_dict.get("status_code") != 200:
        return
    body = response_dict.get("body")
    if not body:
        return
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if not isinstance(parsed, dict):
        return
    customized_response_dict.update(parsed)
    response_dict["body"] = b""


class RawItems:
    """A Scan response's ``Items`` left as JSON text: ``body[start:end]`` is the array.

    The export encodes the items straight from the text
    (:func:`~pitrdiff.codec.encode_items`); :meth:`parse`
    gives them as wire-form items for the Python path.
    """

    __slots__ = ("body", "end", "start")

    def __init__(self, body: bytes, start: int, end: int) -> None:
        self.body = body
        self.start = start
        self.end = end

    def parse(self) -> list[dict[str, Any]]:
        """The items, parsed (binary values as base64 text, as on the wire)."""
        items = orjson.loads(self.body[self.start : self.end])
        if not isinstance(items, list):  # pragma: no cover - items_span found an array
            raise CodecError("a Scan response's Items is not a list")
        return items


def _raw_scan_parse(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    """:func:`_fast_scan_parse`, but ``Items`` stays JSON text (a :class:`RawItems`).

    Only the rest of the body (counts, ``LastEvaluatedKey``, consumed capacity)
    is parsed into objects; without the C codec, or for a body it does not
    read, the whole body is parsed as :func:`_fast_scan_parse` does.
    """
    body = response_dict.get("body")
    ok = response_dict.get("status_code") == 200 and isinstance(body, bytes)
    span = codec.items_span(body) if ok and isinstance(body, bytes) else None
    if span is None or not isinstance(body, bytes):
        _fast_scan_parse(response_dict, customized_response_dict)
        return
    start, end = span
    try:
        parsed = orjson.loads(body[:start] + b"[]" + body[end:])
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or parsed.get("Items") != []:  # e.g. two "Items"
        _fast_scan_parse(response_dict, customized_response_dict)
        return
    parsed["Items"] = RawItems(body, start, end)
    customized_response_dict.update(parsed)
    response_dict["body"] = b""


def install_fast_parse(
    client: Any, operations: Sequence[str] = ("Scan",), *, raw_items: bool = False
) -> None:
    """Make a DynamoDB client parse the named operations' responses with orjson.

    Parsed responses then carry binary values as base64 text (as on the wire)
    and numbers in ``ConsumedCapacity`` as floats; everything else is as botocore
    returns it. Error responses are parsed by botocore as usual. With
    ``raw_items``, a response's ``Items`` may be a :class:`RawItems` instead of
    a list (for the export's own scan loop only).
    """
    handler = _raw_scan_parse if raw_items else _fast_scan_parse
    for operation in operations:
        client.meta.events.register(f"before-parse.dynamodb.{operation}", handler)


# --------------------------------------------------------------------------- describing


@dataclass(frozen=True)
class TableDescription:
    """What an export needs to know about a table (from ``DescribeTable``).

    Attributes
    ----------
    name
        The table name.
    key_schema
        Its primary key with attribute types.
    item_count
        DynamoDB's estimate of the item count (updated about every six hours).
    size_bytes
        DynamoDB's estimate of the table size.
    facts
        The manifest's ``table`` section: ARN, indexes, estimates and, for a
        PITR restore, ``restore`` (source table and restore time).
    """

    name: str
    key_schema: KeySchema
    item_count: int
    size_bytes: int
    facts: dict[str, Any] = field(default_factory=dict)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        text = str(value.isoformat())
        return text.replace("+00:00", "Z")
    return str(value)


def _index_facts(kind: str, index: Mapping[str, Any]) -> dict[str, Any]:
    projection = index.get("Projection") or {}
    return {
        "name": index.get("IndexName"),
        "kind": kind,
        "key_schema": [dict(k) for k in index.get("KeySchema") or ()],
        "projection": projection.get("ProjectionType"),
    }


def describe_table(client: Any, table: str) -> TableDescription:
    """Describe ``table`` for an export.

    Raises
    ------
    TableNotFoundError
        When the table does not exist.
    AwsError
        When DynamoDB cannot be asked.
    """
    with translate_errors(table=table, action="describing the table"):
        description = client.describe_table(TableName=table)["Table"]
    key_schema = KeySchema.from_boto(
        description["KeySchema"], description.get("AttributeDefinitions")
    )
    indexes = [_index_facts("GSI", i) for i in description.get("GlobalSecondaryIndexes") or ()]
    indexes += [_index_facts("LSI", i) for i in description.get("LocalSecondaryIndexes") or ()]
    item_count = int(description.get("ItemCount") or 0)
    size_bytes = int(description.get("TableSizeBytes") or 0)
    facts: dict[str, Any] = {
        "arn": description.get("TableArn"),
        "indexes": indexes,
        "item_count_estimate": item_count,
        "size_bytes_estimate": size_bytes,
        "billing_mode": (description.get("BillingModeSummary") or {}).get("BillingMode"),
    }
    summary = description.get("RestoreSummary")
    if summary:
        source_arn = summary.get("SourceTableArn")
        facts["restore"] = {
            "source_table_name": source_arn.rsplit("/", 1)[-1] if source_arn else None,
            "source_table_arn": source_arn,
            "source_backup_arn": summary.get("SourceBackupArn"),
            "restore_date_time": _iso(summary.get("RestoreDateTime")),
            "restore_in_progress": bool(summary.get("RestoreInProgress")),
        }
    name = str(description.get("TableName") or table)  # the name, also when given an ARN
    return TableDescription(name, key_schema, item_count, size_bytes, facts)


def default_segments(size_bytes: int) -> int:
    """The default segment count for a table of ``size_bytes``.

    About one segment per GiB, at least 4 (some parallelism even for small
    tables) and at most 1000.
    """
    wanted = math.ceil(max(0, size_bytes) / SEGMENT_BYTES)
    return max(MIN_DEFAULT_SEGMENTS, min(MAX_DEFAULT_SEGMENTS, wanted))


# --------------------------------------------------------------------------- checkpoints


@dataclass
class SegmentState:
    """A segment's progress, as its checkpoint file records it."""

    segment: int
    total_segments: int
    last_evaluated_key: dict[str, Any] | None = None
    done: bool = False
    files: list[FileEntry] = field(default_factory=list)
    items: int = 0
    bytes: int = 0
    pages: int = 0
    consumed_rcu: float = 0.0
    next_sequence: int = 0

    @property
    def prefix(self) -> str:
        """Part file name prefix of this segment."""
        return f"seg-{self.segment:04d}"

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint document."""
        return {
            "segment": self.segment,
            "total_segments": self.total_segments,
            "last_evaluated_key": self.last_evaluated_key,
            "done": self.done,
            "files": [f.to_dict() for f in self.files],
            "items": self.items,
            "bytes": self.bytes,
            "pages": self.pages,
            "consumed_rcu": self.consumed_rcu,
            "next_sequence": self.next_sequence,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SegmentState:
        """Parse a checkpoint document."""
        return cls(
            segment=int(doc["segment"]),
            total_segments=int(doc["total_segments"]),
            last_evaluated_key=doc.get("last_evaluated_key"),
            done=bool(doc.get("done")),
            files=[
                FileEntry(str(f["path"]), int(f["rows"]), int(f["bytes"]), str(f["xxh3_128"]))
                for f in doc.get("files") or ()
            ],
            items=int(doc.get("items", 0)),
            bytes=int(doc.get("bytes", 0)),
            pages=int(doc.get("pages", 0)),
            consumed_rcu=float(doc.get("consumed_rcu", 0.0)),
            next_sequence=int(doc.get("next_sequence", 0)),
        )


def _state_path(root: Path, segment: int) -> Path:
    return root / STATE_DIR / f"seg-{segment:06d}.json"


def _read_states(root: Path, total_segments: int) -> dict[int, SegmentState]:
    states: dict[int, SegmentState] = {}
    folder = root / STATE_DIR
    if not folder.is_dir():
        return states
    for path in folder.iterdir():
        match = _STATE_NAME.fullmatch(path.name)
        if not match:
            continue  # temporary files of an interrupted atomic write
        try:
            state = SegmentState.from_dict(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ExportError(
                f"checkpoint {path} is unreadable ({exc}); re-run with a new --out",
                path=str(root),
            ) from exc
        if state.total_segments != total_segments or state.segment != int(match.group(1)):
            raise ExportError(f"checkpoint {path} does not belong to this export", path=str(root))
        states[state.segment] = state
    return states


# --------------------------------------------------------------------------- the scan


@dataclass
class _Shared:
    """State shared by the segment threads of one export."""

    client: Any
    table: str
    root: Path
    key_schema: KeySchema
    consistent_read: bool
    limiter: CapacityLimiter | None
    threads: int
    progress: Progress
    part_bytes: int
    page_limit: int | None
    page_delay: float
    avg_item_bytes: float
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    items: int = 0
    bytes: int = 0

    outer_retries: int = 0
    outer_throttles: int = 0

    def count_outer_retry(self, throttle: bool) -> None:
        with self.lock:
            self.outer_retries += 1
            self.outer_throttles += int(throttle)

    def report(self, items: int, size: int) -> None:
        with self.lock:
            self.items += items
            self.bytes += size
            self.progress.advance(items, bytes=size)


def _estimate_rcu(page_bytes: int, consistent: bool) -> float:
    units = math.ceil(page_bytes / RCU_BYTES) if page_bytes else 1
    return float(units) if consistent else units / 2


def _limit_for(shared: _Shared, rcu_per_item: float) -> int | None:
    """Items per request: about one second's share of the RCU budget per thread."""
    if shared.page_limit is not None:
        return shared.page_limit
    if shared.limiter is None:
        return None
    budget = shared.limiter.rate / max(1, shared.threads)
    return max(1, min(10_000, int(budget / max(rcu_per_item, 1e-6))))


def _retryable(error: AwsError) -> bool:
    return isinstance(error, EndpointError) or error.code in _RETRYABLE_CODES


def _scan_page(shared: _Shared, request: dict[str, Any], segment: int) -> dict[str, Any]:
    """One ``Scan`` request; when botocore gives up on a transient error, wait and go again.

    botocore already retried the request with back-off (and may stop early when
    its retry quota runs dry under sustained throttling); a scan should not fail
    for that, so transient failures get a few more, longer waits here.
    """
    action = f"scanning segment {segment}"
    for attempt in range(OUTER_ATTEMPTS + 1):
        try:
            with translate_errors(table=shared.table, action=action):
                page: dict[str, Any] = shared.client.scan(**request)
            return page
        except AwsError as exc:
            if attempt == OUTER_ATTEMPTS or not _retryable(exc) or shared.stop.is_set():
                raise
            delay = min(OUTER_MAX_WAIT_S, OUTER_BASE_WAIT_S * 2**attempt) * (
                0.5 + random.random() / 2
            )
            logger.warning("%s; waiting %.0f s before trying again", exc, delay)
            shared.count_outer_retry(exc.code in THROTTLING_CODES)
            shared.stop.wait(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _wire_key(key: dict[str, Any] | None) -> dict[str, Any] | None:
    """A ``LastEvaluatedKey`` in wire form (binary as base64 text), fit for a JSON checkpoint."""
    if key is None:
        return None
    return {
        name: {tag: base64.b64encode(value).decode("ascii")}
        if isinstance(value, (bytes, bytearray))
        else {tag: value}
        for name, typed in key.items()
        for tag, value in typed.items()
    }


def _scan_segment(shared: _Shared, state: SegmentState) -> SegmentState:
    """Scan one segment to its end (or until stopped), checkpointing after each flush."""
    if state.done:
        return state
    buffer = PartBuffer(
        shared.root,
        shared.key_schema,
        state.prefix,
        part_bytes=shared.part_bytes,
        first_sequence=state.next_sequence,
    )
    key_names = shared.key_schema.names
    declared = shared.key_schema.declared_types
    encode = codec.encode_record
    add_page = buffer.add_page
    unit = 1.0 if shared.consistent_read else 0.5
    rcu_per_item = max(shared.avg_item_bytes, 1.0) / RCU_BYTES * unit
    start_key = state.last_evaluated_key
    # Counts of pages read but not yet flushed (a crash loses them; the resume rereads them).
    pending_items = pending_bytes = 0
    pending_rcu = 0.0
    while not shared.stop.is_set():
        request: dict[str, Any] = {
            "TableName": shared.table,
            "Segment": state.segment,
            "TotalSegments": state.total_segments,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if shared.consistent_read:
            request["ConsistentRead"] = True
        limit = _limit_for(shared, rcu_per_item)
        if limit is not None:
            request["Limit"] = limit
        if start_key is not None:
            request["ExclusiveStartKey"] = codec.to_botocore(start_key)
        if shared.limiter is not None:
            shared.limiter.acquire(shared.stop)
            if shared.stop.is_set():
                break
        page = _scan_page(shared, request, state.segment)
        items = page.get("Items") or ()
        count = page_bytes = 0
        try:
            if isinstance(items, RawItems):  # straight from the JSON text, in C
                count, characters, page_bytes, complete = codec.encode_items(
                    items.body, items.start, items.end, key_names, declared, buffer.columns
                )
                buffer.took(count, characters)
                items = () if complete else items.parse()[count:]
            records = [encode(item, key_names) for item in items]
        except CodecError as exc:
            raise CodecError(f"segment {state.segment}: {exc}") from exc
        except orjson.JSONDecodeError as exc:
            raise CodecError(
                f"segment {state.segment}: a Scan response that is not valid JSON: {exc}"
            ) from exc
        page_bytes += add_page(records)
        count += len(records)
        del records, items
        consumed = (page.get("ConsumedCapacity") or {}).get("CapacityUnits")
        rcu = float(consumed) if consumed is not None else _estimate_rcu(page_bytes, unit == 1.0)
        if shared.limiter is not None:
            shared.limiter.consume(rcu)
        if count:
            rcu_per_item = max(rcu / count, 1e-6)
        pending_items += count
        pending_bytes += page_bytes
        pending_rcu += rcu
        state.pages += 1
        shared.report(count, page_bytes)
        start_key = page.get("LastEvaluatedKey")
        finished = start_key is None
        if buffer.full or finished:
            entry = buffer.flush()
            if entry is not None:
                state.files.append(entry)
            state.next_sequence = buffer.sequence
            state.last_evaluated_key = _wire_key(start_key)
            state.done = finished
            state.items += pending_items
            state.bytes += pending_bytes
            state.consumed_rcu += pending_rcu
            pending_items = pending_bytes = 0
            pending_rcu = 0.0
            write_json(_state_path(shared.root, state.segment), state.to_dict())
        if finished:
            break
        if shared.page_delay:
            shared.stop.wait(shared.page_delay)
    return state


_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, ...] = ()
# A page parsed into objects (the Python path) is ~100k short-lived dicts: with
# the default thresholds the collector ran hundreds of times per page. Scans make
# no cycles of note, so collections are rarer (not disabled) while any export
# runs, client to manifest: 1,000,000 saved 6-15% of the CPU on nested items
# (bench_export.py); set-up and manifests had 5 young collections and sometimes
# a full one (up to 50 ms) per 20,000-item export, now none.
_EXPORT_GC_THRESHOLD = (1_000_000, 100, 100)


def _gc_relax() -> None:
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(*_EXPORT_GC_THRESHOLD)
        _gc_users += 1


def _gc_restore() -> None:
    global _gc_users
    with _gc_lock:
        _gc_users -= 1
        if _gc_users == 0 and _gc_saved:
            gc.set_threshold(*_gc_saved)


def _env_float(name: str) -> float | None:
    text = os.environ.get(name)
    if not text:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise InputError(f"{name} must be a number, not {text!r}") from exc


def _resumable(root: Path, table: str) -> Manifest | None:
    """The incomplete scan manifest at ``root`` to resume, if there is one."""
    if not (root / MANIFEST_NAME).is_file():
        return None
    try:
        manifest = read_manifest(root)
    except ExportError:
        return None  # prepare_directory refuses it with a message
    if manifest.complete or manifest.source.get("kind") != "scan":
        return None
    if manifest.table_name != table:
        raise RefusedError(
            f"{root} holds an unfinished export of {manifest.table_name!r}, not {table!r}; "
            "finish it or choose another --out"
        )
    return manifest


def export_table(
    table: str,
    out: str | os.PathLike[str],
    *,
    segments: int | None = None,
    consistent_read: bool = False,
    max_rcu: float | None = None,
    overwrite: bool = False,
    aws: AwsConfig = AwsConfig(),  # noqa: B008 - frozen, shared safely
    progress: Progress = SILENT,
    part_bytes: int = SCAN_PART_BYTES,
    s3_endpoint_url: str | None = None,
) -> Manifest:
    """Export a DynamoDB table to a Parquet dataset with a parallel segmented scan.

    Running it again on the same ``out`` after an interruption resumes: the
    finished parts are kept and every segment continues from its checkpoint.

    Parameters
    ----------
    table
        The table name (or ARN).
    out
        The dataset directory (created; see ``docs/FORMAT.md``), or
        ``s3://bucket/prefix``: written in a private local directory, then
        uploaded, parts first and the manifest last (not resumed: a re-run
        starts over).
    segments
        ``TotalSegments`` of the scan; by default about one per GiB of table
        (4 … 1000). A resumed export keeps the count it started with.
    consistent_read
        Strongly consistent reads (twice the read capacity).
    max_rcu
        Keep the scan under this many read capacity units per second, measured
        from the responses' ``ConsumedCapacity``.
    overwrite
        Replace a complete export already at ``out``.
    aws
        Profile, region and endpoint.
    progress
        Receives item counts (with ``bytes``) as pages arrive.
    part_bytes
        Flush a segment's Parquet part at this many bytes of canonical items
        (lowered so that all running segments buffer at most about 128 MiB).
    s3_endpoint_url
        An S3-compatible endpoint for an ``s3://`` ``out``
        (``AWS_ENDPOINT_URL_S3`` works too).

    Returns
    -------
    Manifest
        The manifest written, with ``complete=True`` and ``stats`` (elapsed
        seconds, retries, throttles, consumed RCU, pages).

    Raises
    ------
    TableNotFoundError
        When the table does not exist.
    RefusedError
        When ``out`` holds a complete export and ``overwrite`` is false, or an
        unfinished export of another table.
    AwsError
        When DynamoDB fails after botocore's retries (checkpoints are kept;
        run again to resume).
    CodecError
        When the table returns an item that is not valid DynamoDB data.
    """
    if is_s3_url(out):
        return export_to_s3(
            str(out),
            lambda local: export_table(
                table,
                local,
                segments=segments,
                consistent_read=consistent_read,
                max_rcu=max_rcu,
                aws=aws,
                progress=progress,
                part_bytes=part_bytes,
            ),
            overwrite=overwrite,
            endpoint_url=s3_endpoint_url,
            aws=aws,
            table=table,  # an unfinished scan export of another table: refused before the scan
        )
    if segments is not None and not 1 <= segments <= MAX_SEGMENTS:
        raise InputError(f"--segments must be between 1 and {MAX_SEGMENTS}, not {segments}")
    limiter = CapacityLimiter(max_rcu) if max_rcu is not None else None
    page_delay = _env_float("PITRDIFF_TEST_SCAN_DELAY") or 0.0
    page_limit_f = _env_float("PITRDIFF_TEST_SCAN_LIMIT")
    page_limit = int(page_limit_f) if page_limit_f else None
    part_bytes = int(_env_float("PITRDIFF_TEST_PART_BYTES") or part_bytes)

    _gc_relax()  # the whole export, set-up and manifests too (_EXPORT_GC_THRESHOLD)
    try:
        clock = time.monotonic()
        root = Path(out)
        client = dynamodb_client(aws, max_pool_connections=MAX_THREADS + 2)
        install_fast_parse(client, raw_items=True)
        counter = count_retries(client)
        description = describe_table(client, table)
        base, states, consistent_read = _begin(
            root, client, description, segments, consistent_read, max_rcu, overwrite
        )
        total = int(base.source["segments"])

        threads = min(total, MAX_THREADS)
        part_bytes = min(part_bytes, max(4 * 1024 * 1024, BUFFER_BUDGET_BYTES // threads))
        avg = description.size_bytes / description.item_count if description.item_count else 1024.0
        shared = _Shared(
            client=client,
            table=table,
            root=root,
            key_schema=description.key_schema,
            consistent_read=consistent_read,
            limiter=limiter,
            threads=threads,
            progress=progress,
            part_bytes=part_bytes,
            page_limit=page_limit,
            page_delay=page_delay,
            avg_item_bytes=avg,
        )
        already_items = sum(s.items for s in states.values())
        already_bytes = sum(s.bytes for s in states.values())
        progress.start(f"export {table}", total=description.item_count or None, unit="items")
        if already_items:
            progress.advance(already_items, bytes=already_bytes)
        finished = _run_segments(shared, states, total, threads, progress)

        files = tuple(f for s in sorted(finished, key=lambda s: s.segment) for f in s.files)
        manifest = replace(
            base,
            source={**base.source, "finished_at": utc_now()},
            complete=True,
            files=files,
            items=sum(s.items for s in finished),
            bytes=sum(s.bytes for s in finished),
            stats={
                "elapsed_s": round(time.monotonic() - clock, 3),
                "retries": counter.retries + shared.outer_retries,
                "throttles": counter.throttles + shared.outer_throttles,
                "consumed_rcu": round(sum(s.consumed_rcu for s in finished), 3),
                "pages": sum(s.pages for s in finished),
            },
        )
        write_manifest(root, manifest)
        shutil.rmtree(root / STATE_DIR, ignore_errors=True)
        return manifest
    finally:
        _gc_restore()


def _begin(
    root: Path,
    client: Any,
    description: Any,
    segments: int | None,
    consistent_read: bool,
    max_rcu: float | None,
    overwrite: bool,
) -> tuple[Manifest, dict[int, SegmentState], bool]:
    """Resume an unfinished export at ``root``, or start a new one.

    Returns the manifest to complete, every segment's state (checkpoints of a
    resumed run, fresh ones otherwise) and the consistency the export reads with.
    """
    total: int
    states: dict[int, SegmentState]
    resumed = _resumable(root, description.name)
    if resumed is not None:
        if not resumed.key_schema.same_keys(description.key_schema):
            raise RefusedError(
                f"{root} holds an unfinished export whose key ({resumed.key_schema.describe()}) "
                f"differs from the table's ({description.key_schema.describe()}); "
                "choose another --out"
            )
        total = int(resumed.source.get("segments") or 0)
        if total < 1:
            raise ExportError(f"{root}: unfinished export records no segment count")
        if segments is not None and segments != total:
            logger.warning(
                "resuming an export of %d segments; --segments %d is ignored", total, segments
            )
        consistent_read = bool(resumed.source.get("consistent_read", consistent_read))
        base = replace(
            resumed,
            source={**resumed.source, "resumes": int(resumed.source.get("resumes", 0)) + 1},
        )
        states = _read_states(root, total)
        keep = [f.path for s in states.values() for f in s.files]
        removed = remove_unlisted_parts(root, keep)
        if removed:
            logger.info("removed %d part(s) left by the interrupted run", len(removed))
    else:
        total = segments or default_segments(description.size_bytes)
        prepare_directory(root, overwrite=overwrite)
        base = Manifest(
            table_name=description.name,
            key_schema=description.key_schema,
            source={
                "kind": "scan",
                "segments": total,
                "consistent_read": consistent_read,
                "max_rcu": max_rcu,
                "started_at": utc_now(),
            },
            table=description.facts,
            ttl=_table_ttl(client, description.name),
        )
        states = {}
    make_dir(root / STATE_DIR)
    write_manifest(root, base)
    for segment in range(total):
        states.setdefault(segment, SegmentState(segment, total))
    return base, states, consistent_read


def _run_segments(
    shared: _Shared,
    states: dict[int, SegmentState],
    total: int,
    threads: int,
    progress: Progress,
) -> list[SegmentState]:
    """Scan every segment on ``threads`` threads; the first failure stops them all."""
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pitrdiff-scan")
    futures: list[Future[SegmentState]] = []
    try:
        futures += [executor.submit(_scan_segment, shared, states[s]) for s in range(total)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is not None:
                raise error
        finished = [f.result() for f in futures]
    except BaseException:
        shared.stop.set()
        for future in futures:
            future.cancel()
        raise
    finally:
        shared.stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        progress.finish()
    return finished


def _table_ttl(client: Any, table: str) -> dict[str, Any] | None:
    """The table's TTL setting (``DescribeTimeToLive``) for the manifest.

    ``None`` (unknown) when the service does not answer it (a local server
    without the operation, a role without the permission).
    """
    from pitrdiff.export.native.table import describe_ttl

    try:
        return describe_ttl(client, table)
    except AwsError as exc:
        logger.warning("the TTL setting of %r is unknown: %s", table, exc)
        return None

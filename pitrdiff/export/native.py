"""Native DynamoDB exports to S3 (full and incremental), read into pitrdiff datasets.

DynamoDB's ``ExportTableToPointInTime`` writes, for each export::

    <prefix>/AWSDynamoDB/<export-id>/manifest-summary.json   export ARN, times, counts, format
    <prefix>/AWSDynamoDB/<export-id>/manifest-files.json     JSON lines: itemCount, md5Checksum,
                                                             etag, dataFileS3Key per data file
    <prefix>/AWSDynamoDB/<export-id>/manifest-*.checksum     (MD5 of the manifests)
    <prefix>/AWSDynamoDB/<export-id>/data/*.json.gz          full export: {"Item": {...}} per line
    <prefix>/AWSDynamoDB/data/...json.gz                     incremental export (shared folder):
        {"Metadata": {"WriteTimestampMicros": {"N": "..."}}, "Keys": {...},
         "NewImage": {...}, "OldImage": {...}} per line

A *source* is ``s3://bucket/<prefix>/AWSDynamoDB/<export-id>`` or a local
directory with the same layout (data files are found relative to the
``AWSDynamoDB`` directory, exactly as their S3 keys say).

Every data file is checked against ``manifest-files.json`` (present, MD5,
item count) and the counts against ``manifest-summary.json``; any mismatch is
refused with :class:`~pitrdiff.errors.ExportError` and the output is left
marked incomplete. Files are streamed (gzip, line by line: bounded memory) and
processed in parallel, one file per worker.

- :func:`ingest_export`: a full export → an ordinary export dataset
  (``source.kind`` ``"s3-export"``, with the export ARN and export time).
- :func:`export_native`: ``ExportTableToPointInTime`` (DynamoDB JSON), wait, ingest.
- :func:`diff_incremental`: an incremental export (the change log of a window
  T1..T2) → a diff dataset, *restored* being the table at T1 and *live* the
  table at T2, so that ``plan`` and ``apply`` work on it unchanged.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pitrdiff import aws as aws_module
from pitrdiff.aws import AwsConfig, translate_errors
from pitrdiff.codec import Record, encode_record
from pitrdiff.errors import (
    AwsError,
    CodecError,
    CredentialsError,
    ExportError,
    InputError,
    Interrupted,
    PitrdiffError,
    SchemaMismatchError,
)
from pitrdiff.export.dataset import (
    FileEntry,
    KeySchema,
    Manifest,
    PartBuffer,
    prepare_directory,
    remove_unlisted_parts,
    utc_now,
    write_manifest,
)
from pitrdiff.files import make_dir
from pitrdiff.progress import SILENT, Progress

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from pitrdiff.diff.core import Diff

log = logging.getLogger(__name__)

MARKER = "AWSDynamoDB"
SUMMARY_NAME = "manifest-summary.json"
FILES_NAME = "manifest-files.json"
FULL_EXPORT = "FULL_EXPORT"
INCREMENTAL_EXPORT = "INCREMENTAL_EXPORT"
DYNAMODB_JSON = "DYNAMODB_JSON"
NEW_AND_OLD_IMAGES = "NEW_AND_OLD_IMAGES"
NEW_IMAGE = "NEW_IMAGE"
_CHUNK = 1024 * 1024
# Below this many items, starting worker processes costs more than it saves.
PROCESS_THRESHOLD = 1_000_000


# --------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class ExportLocation:
    """Where a native export lives: an S3 prefix or a local directory.

    Attributes
    ----------
    bucket
        The S3 bucket, or ``None`` for a local directory.
    root
        The export directory: S3 key prefix ``.../AWSDynamoDB/<export-id>``
        (no trailing slash), or a local path.
    """

    bucket: str | None
    root: str

    @classmethod
    def parse(cls, source: str | os.PathLike[str]) -> ExportLocation:
        """Parse ``s3://bucket/prefix/AWSDynamoDB/<id>`` or a local directory path.

        A trailing ``/manifest-summary.json`` is accepted and dropped.

        Raises
        ------
        InputError
            When an ``s3://`` URL has no bucket or no export path.
        """
        text = os.fspath(source)
        if text.startswith("s3://"):
            bucket, _, key = text[5:].partition("/")
            key = key.strip("/")
            if key.endswith(SUMMARY_NAME):
                key = key[: -len(SUMMARY_NAME)].rstrip("/")
            if not bucket or not key:
                raise InputError(
                    f"{text!r} is not an export location: expected "
                    "s3://BUCKET/[PREFIX/]AWSDynamoDB/EXPORT_ID"
                )
            return cls(bucket, key)
        path = Path(text)
        if path.name == SUMMARY_NAME:
            path = path.parent
        return cls(None, str(path))

    @property
    def url(self) -> str:
        """The location as a URL (``s3://...``) or a path."""
        return f"s3://{self.bucket}/{self.root}" if self.bucket else self.root

    @property
    def export_id(self) -> str:
        """The export's id (the last component of the export directory)."""
        return PurePosixPath(self.root.replace(os.sep, "/")).name

    def manifest_ref(self, name: str) -> str:
        """The key or path of a file in the export directory."""
        return f"{self.root}/{name}" if self.bucket else str(Path(self.root) / name)

    def data_ref(self, data_key: str) -> str:
        """The key or path of a data file listed as ``dataFileS3Key``.

        The part of the key from ``AWSDynamoDB/`` on is taken relative to this
        export's own ``AWSDynamoDB`` directory, so an export copied elsewhere
        (another prefix, a local directory) still finds its files; a key
        without ``AWSDynamoDB/`` is relative to the export directory.

        Raises
        ------
        ExportError
            When the key tries to leave the export's directory (``..``).
        """
        marker = f"{MARKER}/"
        at = data_key.rfind(marker)
        tail = data_key[at + len(marker) :] if at >= 0 else data_key
        parts = PurePosixPath(tail).parts
        if not parts or any(p in ("..", ".") for p in parts) or tail.startswith("/"):
            raise ExportError(f"data file key {data_key!r} is not a path inside the export")
        if at >= 0:
            base = PurePosixPath(self.root.replace(os.sep, "/")).parent
        else:
            base = PurePosixPath(self.root.replace(os.sep, "/"))
        joined = str(base.joinpath(*parts))
        return joined if self.bucket else str(Path(joined))

    def describe_ref(self, ref: str) -> str:
        """A ref as the user would write it (``s3://bucket/key`` or a path)."""
        return f"s3://{self.bucket}/{ref}" if self.bucket else ref


_S3_CLIENTS: dict[tuple[AwsConfig, str | None], S3Client] = {}
_S3_LOCK = threading.Lock()


def _s3(aws: AwsConfig, endpoint_url: str | None) -> S3Client:
    # One client per process and configuration; botocore clients are thread-safe.
    with _S3_LOCK:
        client = _S3_CLIENTS.get((aws, endpoint_url))
        if client is None:
            client = aws_module.s3_client(aws, max_pool_connections=32, endpoint_url=endpoint_url)
            _S3_CLIENTS[(aws, endpoint_url)] = client
        return client


@dataclass(frozen=True)
class _Reader:
    """Reads files of one export location (picklable: workers rebuild clients)."""

    location: ExportLocation
    aws: AwsConfig
    s3_endpoint_url: str | None

    def chunks(self, ref: str) -> Iterator[bytes]:
        """Stream a file's bytes in chunks."""
        where = self.location.describe_ref(ref)
        if self.location.bucket is None:
            try:
                handle = open(ref, "rb")  # noqa: SIM115 - closed below, generator
            except FileNotFoundError as exc:
                raise ExportError(f"{where} is missing", path=where) from exc
            except OSError as exc:
                raise ExportError(f"cannot read {where}: {exc.strerror}", path=where) from exc
            with handle:
                while chunk := handle.read(_CHUNK):
                    yield chunk
            return
        client = _s3(self.aws, self.s3_endpoint_url)
        try:
            with translate_errors(action=f"reading {where}"):
                response = client.get_object(Bucket=self.location.bucket, Key=ref)
                body = response["Body"]
                yield from body.iter_chunks(_CHUNK)
        except AwsError as exc:
            if exc.code in ("NoSuchKey", "404", "NotFound"):
                raise ExportError(f"{where} is missing", path=where) from exc
            if exc.code == "NoSuchBucket":
                raise ExportError(f"bucket {self.location.bucket!r} does not exist") from exc
            raise

    def read(self, ref: str) -> bytes:
        """Read a whole (small) file."""
        return b"".join(self.chunks(ref))

    def exists(self, ref: str) -> bool:
        """Whether a file exists (used for the optional ``.checksum`` files)."""
        if self.location.bucket is None:
            return Path(ref).is_file()
        client = _s3(self.aws, self.s3_endpoint_url)
        try:
            with translate_errors(action=f"reading {self.location.describe_ref(ref)}"):
                client.head_object(Bucket=self.location.bucket, Key=ref)
        except AwsError as exc:
            if exc.code in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True


# --------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class DataFile:
    """One data file listed in ``manifest-files.json``."""

    key: str
    item_count: int
    md5: str
    etag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"key": self.key, "item_count": self.item_count, "md5": self.md5}


@dataclass(frozen=True)
class ExportSummary:
    """What the manifests of a native export say.

    Attributes
    ----------
    location
        Where the export is.
    export_arn, table_arn
        The export and its table.
    export_type
        ``FULL_EXPORT`` or ``INCREMENTAL_EXPORT``.
    output_format
        ``DYNAMODB_JSON`` (``ION`` is not supported yet).
    output_view
        Incremental exports: ``NEW_AND_OLD_IMAGES`` or ``NEW_IMAGE``.
    export_time
        Full exports: the point in time exported.
    export_from_time, export_to_time
        Incremental exports: the window, start inclusive, end exclusive.
    item_count
        Items (full) or change records (incremental) in the whole export.
    files
        The data files.
    """

    location: ExportLocation
    export_arn: str
    table_arn: str | None
    export_type: str
    output_format: str
    output_view: str | None
    export_time: str | None
    export_from_time: str | None
    export_to_time: str | None
    start_time: str | None
    end_time: str | None
    item_count: int
    billed_size_bytes: int | None
    files: tuple[DataFile, ...]

    @property
    def table_name(self) -> str | None:
        """The table's name, from its ARN."""
        if self.table_arn and "/" in self.table_arn:
            return self.table_arn.split(":table/", 1)[-1].split("/", 1)[0]
        return None

    def to_dict(self) -> dict[str, Any]:
        """The manifest ``source`` fields describing this export."""
        doc: dict[str, Any] = {
            "location": self.location.url,
            "export_arn": self.export_arn,
            "table_arn": self.table_arn,
            "export_type": self.export_type,
            "output_format": self.output_format,
            "export_start_time": self.start_time,
            "export_end_time": self.end_time,
            "export_item_count": self.item_count,
            "billed_size_bytes": self.billed_size_bytes,
            "data_files": len(self.files),
        }
        if self.export_type == INCREMENTAL_EXPORT:
            doc.update(
                output_view=self.output_view,
                export_from_time=self.export_from_time,
                export_to_time=self.export_to_time,
            )
        else:
            doc["export_time"] = self.export_time
        return doc


_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")


def _md5_forms(data: bytes) -> tuple[str, str]:
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    return digest.hex(), base64.b64encode(digest).decode("ascii")


def _check_manifest_checksum(reader: _Reader, name: str, data: bytes) -> None:
    """Verify ``<manifest>.checksum`` when present and recognisably an MD5."""
    ref = reader.location.manifest_ref(name.replace(".json", ".checksum"))
    if not reader.exists(ref):
        return
    text = reader.read(ref).decode("ascii", "replace").strip()
    hex_form, b64_form = _md5_forms(data)
    is_b64 = False
    try:
        is_b64 = len(base64.b64decode(text, validate=True)) == 16
    except (binascii.Error, ValueError):
        is_b64 = False
    if not (_MD5_HEX.fullmatch(text) or is_b64):
        log.debug("%s: checksum file is not an MD5; not checked", ref)
        return
    if text.lower() != hex_form and text != b64_form:
        where = reader.location.describe_ref(reader.location.manifest_ref(name))
        raise ExportError(f"{where} does not match its .checksum file (corrupt or edited)")


def _json_document(reader: _Reader, name: str) -> tuple[bytes, Any]:
    ref = reader.location.manifest_ref(name)
    data = reader.read(ref)
    try:
        return data, orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ExportError(f"{reader.location.describe_ref(ref)} is not valid JSON") from exc


def read_summary(
    source: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
) -> ExportSummary:
    """Read and cross-check the manifests of a native export.

    Parameters
    ----------
    source
        ``s3://bucket/prefix/AWSDynamoDB/<export-id>`` or a local directory.
    aws
        Profile and region for S3 (its DynamoDB endpoint is not used for S3).
    s3_endpoint_url
        An S3-compatible endpoint; ``AWS_ENDPOINT_URL_S3`` works too.

    Raises
    ------
    ExportError
        When a manifest is missing, malformed, or disagrees with the other.
    InputError
        When the export is in a format pitrdiff cannot read (ION).
    """
    reader = _Reader(ExportLocation.parse(source), aws or AwsConfig(), s3_endpoint_url)
    return _read_summary(reader)


def _read_summary(reader: _Reader) -> ExportSummary:
    location = reader.location
    try:
        summary_bytes, summary = _json_document(reader, SUMMARY_NAME)
    except ExportError as exc:
        raise ExportError(
            f"{location.url} is not a DynamoDB export: {exc} (expected "
            f"{MARKER}/<export-id>/{SUMMARY_NAME})",
            path=location.url,
        ) from exc
    if not isinstance(summary, dict):
        raise ExportError(f"{location.url}: {SUMMARY_NAME} is not a JSON object")
    _check_manifest_checksum(reader, SUMMARY_NAME, summary_bytes)
    output_format = str(summary.get("outputFormat") or DYNAMODB_JSON)
    if output_format != DYNAMODB_JSON:
        raise InputError(
            f"{location.url} is an {output_format} export; pitrdiff does not read "
            f"{output_format} yet: export with --export-format {DYNAMODB_JSON}"
        )
    export_type = str(summary.get("exportType") or FULL_EXPORT)
    if export_type not in (FULL_EXPORT, INCREMENTAL_EXPORT):
        raise ExportError(f"{location.url}: unknown exportType {export_type!r}")

    files_name = FILES_NAME
    files_key = summary.get("manifestFilesS3Key")
    if isinstance(files_key, str) and files_key and not files_key.endswith(f"/{FILES_NAME}"):
        raise ExportError(f"{location.url}: unexpected manifestFilesS3Key {files_key!r}")
    files_bytes = reader.read(location.manifest_ref(files_name))
    _check_manifest_checksum(reader, files_name, files_bytes)
    files: list[DataFile] = []
    for number, line in enumerate(files_bytes.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
            files.append(
                DataFile(
                    key=str(entry["dataFileS3Key"]),
                    item_count=int(entry["itemCount"]),
                    md5=str(entry["md5Checksum"]),
                    etag=entry.get("etag"),
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ExportError(
                f"{location.url}: {FILES_NAME} line {number} is not a file entry "
                "(itemCount, md5Checksum, dataFileS3Key)"
            ) from exc
    if len({f.key for f in files}) != len(files):
        raise ExportError(f"{location.url}: {FILES_NAME} lists a data file twice")
    try:
        item_count = int(summary["itemCount"])
        export_arn = str(summary["exportArn"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{location.url}: {SUMMARY_NAME} lacks exportArn or itemCount") from exc
    listed = sum(f.item_count for f in files)
    if listed != item_count:
        raise ExportError(
            f"{location.url}: {FILES_NAME} lists {listed:,} items but {SUMMARY_NAME} says "
            f"{item_count:,} (incomplete or mixed-up export)"
        )

    def text(name: str) -> str | None:
        value = summary.get(name)
        return str(value) if value is not None else None

    billed = summary.get("billedSizeBytes")
    return ExportSummary(
        location=location,
        export_arn=export_arn,
        table_arn=text("tableArn"),
        export_type=export_type,
        output_format=output_format,
        output_view=text("outputView"),
        export_time=text("exportTime"),
        export_from_time=text("exportFromTime"),
        export_to_time=text("exportToTime"),
        start_time=text("startTime"),
        end_time=text("endTime"),
        item_count=item_count,
        billed_size_bytes=int(billed) if isinstance(billed, (int, float)) else None,
        files=tuple(files),
    )


# --------------------------------------------------------------------------- key schema


def key_schema_from_spec(spec: str) -> KeySchema:
    """Parse ``pk[:TYPE][,sk[:TYPE]]`` (TYPE ``S``, ``N`` or ``B``) into a key schema.

    The first name is the partition key, the second (if any) the sort key; a
    type left out is learned from the data.

    Raises
    ------
    InputError
        When the text is not of that form.
    """
    names = [p.strip() for p in spec.split(",")]
    if not 1 <= len(names) <= 2 or not all(names):
        raise InputError(f"--key {spec!r}: expected PK[:TYPE][,SK[:TYPE]], e.g. pk:S,sk:N")
    attributes = []
    for kind, part in zip(("HASH", "RANGE"), names, strict=False):
        name, _, type_ = part.rpartition(":") if ":" in part else (part, "", "")
        type_ = type_.upper()
        if type_ and type_ not in ("S", "N", "B"):
            raise InputError(f"--key {spec!r}: key type {type_!r} is not S, N or B")
        attributes.append({"AttributeName": name, "KeyType": kind, "AttributeType": type_ or None})
    return KeySchema.from_list(attributes)


def _describe_table(table: str, aws: AwsConfig) -> tuple[str, KeySchema, dict[str, Any]]:
    client = aws_module.dynamodb_client(aws)
    with translate_errors(table=table, action="describing the table"):
        description = client.describe_table(TableName=table)["Table"]
    boto_description: Any = description  # TypedDicts are Mappings of str at run time
    schema = KeySchema.from_boto(
        boto_description["KeySchema"], boto_description.get("AttributeDefinitions")
    )
    facts: dict[str, Any] = {
        "arn": description.get("TableArn"),
        "indexes": [
            {"name": i["IndexName"], "kind": kind, "key_schema": i["KeySchema"]}
            for kind, group in (
                ("global", description.get("GlobalSecondaryIndexes") or []),
                ("local", description.get("LocalSecondaryIndexes") or []),
            )
            for i in group
        ],
        "item_count_estimate": description.get("ItemCount", 0),
        "size_bytes_estimate": description.get("TableSizeBytes", 0),
    }
    return str(description["TableName"]), schema, facts


def _resolve_key_schema(
    summary: ExportSummary,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None,
    aws: AwsConfig | None,
) -> tuple[KeySchema, dict[str, Any]]:
    """The key schema: given, else from ``DescribeTable`` of the export's table."""
    table_facts: dict[str, Any] = {"arn": summary.table_arn}
    if isinstance(key_schema, KeySchema):
        return key_schema, table_facts
    if isinstance(key_schema, str):
        return key_schema_from_spec(key_schema), table_facts
    if key_schema is not None:
        return KeySchema.from_list(list(key_schema)), table_facts
    target = summary.table_name
    if not target:
        raise InputError(
            f"{summary.location.url}: the manifests do not name the table; pass --key PK[,SK]"
        )
    config = aws or AwsConfig()
    arn_parts = (summary.table_arn or "").split(":")
    if config.region is None and len(arn_parts) > 3 and arn_parts[3]:
        config = replace(config, region=arn_parts[3])  # the table's own region
    try:
        # Few attempts: a table we cannot reach should not hold up a local ingest.
        _, schema, facts = _describe_table(target, replace(config, max_attempts=2))
    except PitrdiffError as exc:
        raise InputError(
            f"cannot learn the key schema of {summary.table_name or target!r} ({exc}); "
            "pass --key PK[:TYPE][,SK[:TYPE]]"
        ) from exc
    return schema, {**facts, "arn": facts.get("arn") or summary.table_arn}


# --------------------------------------------------------------------------- streaming


def _gzip_lines(chunks: Iterator[bytes], digest: Any) -> Iterator[bytes]:
    """Decompress a gzip stream (possibly multi-member) and yield its non-empty lines.

    Output is produced at most ``_CHUNK`` bytes at a time (gzip of repetitive
    data expands a thousandfold: memory must not follow). ``digest`` is
    updated with every compressed byte read, so the caller can check the
    file's MD5 once the generator is exhausted.
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
            out = decompressor.decompress(data, _CHUNK)
            data = decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail
            if out:
                lines = (pending + out).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line.strip():
                        yield line
            # a full output buffer may leave output pending inside zlib
            more = bool(data) or (len(out) == _CHUNK and not decompressor.eof)
    if seen_input and not decompressor.eof:
        raise zlib.error("the gzip stream is truncated")
    if pending.strip():
        yield pending


def _drain(chunks: Iterator[bytes], digest: Any) -> None:
    for chunk in chunks:
        digest.update(chunk)


@dataclass(frozen=True)
class _FileTask:
    index: int
    reader: _Reader
    file: DataFile
    out: str
    key_schema: KeySchema
    part_bytes: int
    mode: str  # "full" | "incremental"


@dataclass(frozen=True)
class _FileOutcome:
    index: int
    lines: int
    items: int
    bytes: int
    parts: tuple[FileEntry, ...] = ()
    staging: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


_FILE_ATTEMPTS = 4


def _process_file(task: _FileTask) -> _FileOutcome:
    """Process one data file; read it again from the start if the transfer breaks.

    botocore retries a failed request, but not a response body that breaks
    off mid-stream (a reset connection on a large object): that is retried
    here, a few times with backoff. What a broken attempt wrote is replaced by
    the next attempt (same part names) or removed at the end (unlisted parts).
    """
    for attempt in range(1, _FILE_ATTEMPTS + 1):
        try:
            return _process_file_once(task)
        except CredentialsError:
            raise
        except AwsError as exc:
            if attempt == _FILE_ATTEMPTS:
                raise
            log.warning(
                "%s: %s; reading the file again (attempt %d of %d)",
                task.reader.location.describe_ref(task.reader.location.data_ref(task.file.key)),
                exc,
                attempt + 1,
                _FILE_ATTEMPTS,
            )
            time.sleep(0.5 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _process_file_once(task: _FileTask) -> _FileOutcome:
    """Stream one data file, verify it against the manifest, write its output."""
    reader = task.reader
    ref = reader.location.data_ref(task.file.key)
    where = reader.location.describe_ref(ref)
    digest = hashlib.md5(usedforsecurity=False)
    chunks = reader.chunks(ref)
    sink: _FullSink | _IncrementalSink = (
        _FullSink(task) if task.mode == "full" else _IncrementalSink(task)
    )
    lines = 0
    failure: Exception | None = None
    try:
        try:
            for line in _gzip_lines(chunks, digest):
                lines += 1
                sink.add(line, lines)
        except (zlib.error, orjson.JSONDecodeError, CodecError, _BadRecord) as exc:
            failure = exc
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
        raise ExportError(
            f"{where} holds {lines:,} items but manifest-files.json says {task.file.item_count:,}",
            path=where,
        )
    return sink.finish()


class _BadRecord(Exception):
    """A line that is valid JSON but not an export record."""


class _FullSink:
    def __init__(self, task: _FileTask) -> None:
        self.task = task
        self.names = task.key_schema.names
        self.buffer = PartBuffer(
            task.out, task.key_schema, f"s3-{task.index:05d}", part_bytes=task.part_bytes
        )
        self.parts: list[FileEntry] = []
        self.items = 0
        self.bytes = 0

    def add(self, line: bytes, number: int) -> None:
        document = orjson.loads(line)
        item = document.get("Item") if isinstance(document, dict) else None
        if not isinstance(item, dict):
            raise _BadRecord('not a full-export record {"Item": {...}}')
        record = encode_record(item, self.names)
        self.buffer.add(record)
        self.items += 1
        self.bytes += record.size
        if self.buffer.full:
            entry = self.buffer.flush()
            if entry:
                self.parts.append(entry)

    def abort(self) -> None:
        """Nothing to release: parts already written are replaced or removed."""

    def finish(self) -> _FileOutcome:
        entry = self.buffer.flush()
        if entry:
            self.parts.append(entry)
        return _FileOutcome(
            self.task.index, self.items, self.items, self.bytes, parts=tuple(self.parts)
        )


# --------------------------------------------------------------------------- full exports


def _peek_key_types(reader: _Reader, summary: ExportSummary, schema: KeySchema) -> KeySchema:
    """Fill unknown key attribute types from the first record of the export."""
    if all(a.attribute_type for a in schema.attributes):
        return schema
    for data_file in summary.files:
        if data_file.item_count == 0:
            continue
        ref = reader.location.data_ref(data_file.key)
        digest = hashlib.md5(usedforsecurity=False)
        try:
            line = next(_gzip_lines(reader.chunks(ref), digest), None)
            document = orjson.loads(line) if line else None
        except (zlib.error, orjson.JSONDecodeError):
            continue  # the full pass reports it properly
        if not isinstance(document, dict):
            continue
        image = document.get("Item") or document.get("Keys") or document.get("NewImage")
        if not isinstance(image, dict):
            continue
        attributes = []
        for a in schema.attributes:
            typed = image.get(a.name)
            tag = next(iter(typed)) if isinstance(typed, dict) and len(typed) == 1 else None
            attributes.append(replace(a, attribute_type=a.attribute_type or tag))
        return KeySchema(tuple(attributes))
    return schema


def _processes_are_safe() -> bool:
    """Whether worker processes can start without re-running the caller's script.

    multiprocessing's ``spawn`` imports the main module again in every worker:
    harmless for the ``pitrdiff`` command, ``python -m pitrdiff``, a notebook or
    a REPL, but a script without an ``if __name__ == "__main__":`` guard would
    run again. ``executor="auto"`` therefore uses processes only there;
    ``executor="process"`` is the caller's explicit choice.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None:
        return True  # interactive: nothing to re-run
    spec = getattr(main, "__spec__", None)
    if spec is not None and str(spec.name).split(".")[0] == "pitrdiff":
        return True
    return Path(path).name == "pitrdiff"


def _choose_executor(executor: str, workers: int, items: int) -> str:
    if executor not in ("auto", "process", "thread"):
        raise InputError(f"executor must be auto, process or thread, not {executor!r}")
    if executor == "auto":
        large = workers > 1 and items >= PROCESS_THRESHOLD
        return "process" if large and _processes_are_safe() else "thread"
    return executor


def _make_executor(kind: str, workers: int) -> Executor:
    if kind == "process":
        # spawn: forking a process that runs botocore threads can deadlock.
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    return ThreadPoolExecutor(workers, thread_name_prefix="pitrdiff-s3export")


def _run_files(
    tasks: Sequence[_FileTask],
    *,
    label: str,
    workers: int,
    executor: str,
    total_items: int,
    progress: Progress,
) -> list[_FileOutcome]:
    """Process every file, in parallel, as one progress task named ``label``."""
    progress.start(label, total=total_items)
    try:
        return _process_files(
            tasks, workers=workers, executor=executor, total_items=total_items, progress=progress
        )
    finally:
        progress.finish()


def _process_files(
    tasks: Sequence[_FileTask],
    *,
    workers: int,
    executor: str,
    total_items: int,
    progress: Progress,
) -> list[_FileOutcome]:
    """Process every file, in parallel; the first failure cancels the rest."""
    if not tasks:
        return []
    workers = max(1, min(workers, len(tasks)))
    kind = _choose_executor(executor, workers, total_items)
    outcomes: list[_FileOutcome] = []
    if workers == 1:
        for task in tasks:
            outcome = _process_file(task)
            outcomes.append(outcome)
            progress.advance(outcome.lines, files=1)
        return outcomes
    pool = _make_executor(kind, workers)
    futures: list[Future[_FileOutcome]] = []
    try:
        futures.extend(pool.submit(_process_file, t) for t in tasks)
        for future in _as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            progress.advance(outcome.lines, files=1)
    except BaseException:
        for f in futures:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return sorted(outcomes, key=lambda o: o.index)


def _as_completed(futures: Sequence[Future[_FileOutcome]]) -> Iterator[Future[_FileOutcome]]:
    from concurrent.futures import as_completed

    return as_completed(futures)


def default_workers() -> int:
    """Workers used when none are asked for: one per CPU core."""
    return max(1, os.cpu_count() or 1)


def ingest_export(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None = None,
    table_name: str | None = None,
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
        with the same layout.
    out
        The export dataset directory to create.
    aws
        Profile and region (S3 and, to learn the key schema, ``DescribeTable``).
    s3_endpoint_url
        An S3-compatible endpoint; ``AWS_ENDPOINT_URL_S3`` works too.
    key_schema
        The table's key, as a :class:`KeySchema`, boto3's ``KeySchema`` list,
        or ``"pk[:TYPE][,sk[:TYPE]]"``. The manifests do not record it, so by
        default it comes from ``DescribeTable`` of the exported table.
    table_name
        The table name recorded (default: from the export's table ARN).
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
        When a manifest is missing or malformed, a data file is missing, or a
        data file's MD5 or item count differs from the manifests (the dataset
        is left marked incomplete).
    InputError
        An incremental or ION export, or a key schema that cannot be learned.
    RefusedError
        When ``out`` holds a complete export and ``overwrite`` is false.
    """
    started = utc_now()
    clock = time.monotonic()
    reader = _Reader(ExportLocation.parse(source), aws or AwsConfig(), s3_endpoint_url)
    summary = _read_summary(reader)
    if summary.export_type != FULL_EXPORT:
        raise InputError(
            f"{summary.location.url} is an incremental export (a change log, not a table "
            "state): use `pitrdiff diff --incremental` / diff_incremental()"
        )
    if _table_facts is not None and key_schema is not None:
        given = key_schema
        schema = given if isinstance(given, KeySchema) else key_schema_from_spec(str(given))
        facts = dict(_table_facts)
    else:
        schema, facts = _resolve_key_schema(summary, key_schema, aws)
    schema = _peek_key_types(reader, summary, schema)
    name = table_name or summary.table_name or summary.location.export_id
    root = prepare_directory(out, overwrite=overwrite)
    source_doc = {"kind": "s3-export", **summary.to_dict(), "started_at": started}
    base = Manifest(table_name=name, key_schema=schema, source=source_doc, table=facts)
    write_manifest(root, base)
    tasks = [
        _FileTask(
            index,
            reader,
            data_file,
            str(root),
            schema,
            part_bytes or _default_part_bytes(),
            "full",
        )
        for index, data_file in enumerate(summary.files)
    ]
    outcomes = _run_files(
        tasks,
        label=f"ingesting {summary.location.export_id}",
        workers=workers or default_workers(),
        executor=executor,
        total_items=summary.item_count,
        progress=progress,
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
        stats={"elapsed_s": round(time.monotonic() - clock, 3), "data_files": len(tasks)},
    )
    write_manifest(root, manifest)
    return manifest


def _default_part_bytes() -> int:
    from pitrdiff.export.dataset import DEFAULT_PART_BYTES

    return DEFAULT_PART_BYTES


# --------------------------------------------------------------------------- native export


def parse_time(value: str | dt.datetime) -> dt.datetime:
    """Parse an ISO 8601 time with a zone (``2026-10-27T14:00:00Z``); naive times are refused.

    Raises
    ------
    InputError
        When the text is not ISO 8601 or has no time zone.
    """
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise InputError(f"{value!r} is not an ISO 8601 time (2026-10-27T14:00:00Z)") from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(f"{value!s} has no time zone; write it as UTC, e.g. 2026-10-27T14:00:00Z")
    return moment.astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class NativeExport:
    """A DynamoDB export started by pitrdiff (``ExportTableToPointInTime``).

    Attributes
    ----------
    export_arn
        The export's ARN.
    table_name, table_arn
        The table exported.
    key_schema
        Its primary key (from ``DescribeTable``).
    export_time
        The point in time exported.
    s3_bucket, s3_prefix
        Where DynamoDB writes it.
    status
        ``IN_PROGRESS``, ``COMPLETED`` or ``FAILED`` when last seen.
    manifest_key
        The S3 key of ``manifest-summary.json`` once completed, if the service says.
    """

    export_arn: str
    table_name: str
    table_arn: str
    key_schema: KeySchema
    table_facts: dict[str, Any]
    export_time: str
    s3_bucket: str
    s3_prefix: str | None
    status: str
    manifest_key: str | None = None
    item_count: int | None = None

    @property
    def location(self) -> str:
        """``s3://bucket/prefix/AWSDynamoDB/<export-id>`` of the export."""
        if self.manifest_key:
            root = self.manifest_key.rsplit("/", 1)[0]
        else:
            # The export id is the last component of the export ARN.
            export_id = self.export_arn.rsplit("/", 1)[-1]
            prefix = f"{self.s3_prefix.strip('/')}/" if self.s3_prefix else ""
            root = f"{prefix}{MARKER}/{export_id}"
        return f"s3://{self.s3_bucket}/{root}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "export_arn": self.export_arn,
            "table_name": self.table_name,
            "table_arn": self.table_arn,
            "export_time": self.export_time,
            "s3_bucket": self.s3_bucket,
            "s3_prefix": self.s3_prefix,
            "status": self.status,
            "location": self.location,
            "item_count": self.item_count,
        }


def start_native_export(
    table: str,
    *,
    at: str | dt.datetime,
    s3_bucket: str,
    s3_prefix: str | None = None,
    aws: AwsConfig | None = None,
    export_format: str = DYNAMODB_JSON,
) -> NativeExport:
    """Start ``ExportTableToPointInTime`` of ``table`` at ``at`` (full, DynamoDB JSON).

    Raises
    ------
    InputError
        An ION (or unknown) format, a naive time.
    TableNotFoundError
        When the table does not exist.
    AwsError
        When the service refuses (PITR off, time outside the window, bucket).
    """
    if export_format.upper() != DYNAMODB_JSON:
        raise InputError(
            f"export format {export_format!r} is not supported yet: use {DYNAMODB_JSON}"
        )
    moment = parse_time(at)
    config = aws or AwsConfig()
    name, schema, facts = _describe_table(table, config)
    client = aws_module.dynamodb_client(config)
    request: dict[str, Any] = {
        "TableArn": facts["arn"],
        "ExportTime": moment,
        "S3Bucket": s3_bucket,
        "ExportFormat": DYNAMODB_JSON,
        "ExportType": FULL_EXPORT,
    }
    if s3_prefix:
        request["S3Prefix"] = s3_prefix.strip("/")
    with translate_errors(table=table, action="starting the export"):
        description = client.export_table_to_point_in_time(**request)["ExportDescription"]
    return NativeExport(
        export_arn=description["ExportArn"],
        table_name=name,
        table_arn=str(facts["arn"]),
        key_schema=schema,
        table_facts=facts,
        export_time=moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        s3_bucket=s3_bucket,
        s3_prefix=s3_prefix,
        status=str(description.get("ExportStatus", "IN_PROGRESS")),
    )


def wait_native_export(
    export: NativeExport,
    *,
    aws: AwsConfig | None = None,
    poll_seconds: float = 10.0,
    timeout_seconds: float | None = None,
    progress: Progress = SILENT,
    sleep: Callable[[float], None] = time.sleep,
) -> NativeExport:
    """Poll ``DescribeExport`` until the export completes; return it completed.

    Raises
    ------
    AwsError
        When the export fails (with DynamoDB's failure code and message) or
        does not finish within ``timeout_seconds``.
    """
    client = aws_module.dynamodb_client(aws or AwsConfig())
    started = time.monotonic()
    progress.start(f"DynamoDB exporting {export.table_name} at {export.export_time}", total=None)
    try:
        while True:
            with translate_errors(table=export.table_name, action="waiting for the export"):
                description = client.describe_export(ExportArn=export.export_arn)[
                    "ExportDescription"
                ]
            status = str(description.get("ExportStatus", "IN_PROGRESS"))
            elapsed = time.monotonic() - started
            progress.status(f"{status} after {elapsed:.0f}s")
            if status == "COMPLETED":
                count = description.get("ItemCount")
                return replace(
                    export,
                    status=status,
                    manifest_key=description.get("ExportManifest"),
                    item_count=int(count) if count is not None else None,
                )
            if status == "FAILED":
                code = description.get("FailureCode") or "FAILED"
                message = description.get("FailureMessage") or "no reason given"
                raise AwsError(
                    f"DynamoDB export {export.export_arn} failed: {code}: {message}", code=code
                )
            if timeout_seconds is not None and elapsed > timeout_seconds:
                raise AwsError(
                    f"DynamoDB export {export.export_arn} still {status} after "
                    f"{elapsed:.0f}s; ingest it later with --from-s3 {export.location}"
                )
            sleep(poll_seconds)
    except KeyboardInterrupt as exc:
        raise Interrupted(
            f"interrupted; the DynamoDB export {export.export_arn} goes on: once it has "
            f"completed, read it with --from-s3 {export.location}"
        ) from exc
    finally:
        progress.finish()


def export_native(
    table: str,
    *,
    at: str | dt.datetime,
    s3_bucket: str,
    out: str | os.PathLike[str],
    s3_prefix: str | None = None,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
    export_format: str = DYNAMODB_JSON,
    workers: int | None = None,
    overwrite: bool = False,
    poll_seconds: float = 10.0,
    timeout_seconds: float | None = None,
    progress: Progress = SILENT,
) -> Manifest:
    """Export ``table`` as it was at ``at`` through DynamoDB's native S3 export, then ingest it.

    No restore and no read capacity: ``ExportTableToPointInTime`` (PITR must be
    on) writes the export to ``s3://s3_bucket/s3_prefix/AWSDynamoDB/<id>``; this
    waits for it (with progress) and reads it as :func:`ingest_export` does.

    Parameters
    ----------
    table
        The table name or ARN.
    at
        The point in time (ISO 8601 with a zone, or an aware datetime).
    s3_bucket, s3_prefix
        Where DynamoDB writes the export.
    out
        The export dataset directory to create.
    export_format
        Only ``DYNAMODB_JSON`` is supported.
    poll_seconds, timeout_seconds
        How often to ask ``DescribeExport`` and how long to wait at most.

    Returns
    -------
    Manifest
        The dataset's manifest (``source.kind`` ``"s3-export"``).

    Raises
    ------
    InputError
        ION format, a naive time.
    AwsError
        When DynamoDB refuses or fails the export.
    ExportError
        When the finished export does not verify.
    """
    # refuse before paying for an export
    prepare_directory(out, overwrite=overwrite, check_only=True)
    started = start_native_export(
        table,
        at=at,
        s3_bucket=s3_bucket,
        s3_prefix=s3_prefix,
        aws=aws,
        export_format=export_format,
    )
    done = wait_native_export(
        started,
        aws=aws,
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        progress=progress,
    )
    return ingest_export(
        done.location,
        out,
        aws=aws,
        s3_endpoint_url=s3_endpoint_url,
        key_schema=done.key_schema,
        table_name=done.table_name,
        workers=workers,
        overwrite=overwrite,
        progress=progress,
        _table_facts=done.table_facts,
    )


# --------------------------------------------------------------------------- incremental


def _image(document: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _BadRecord(f"{name} is not an item")
    return value


def _write_timestamp(document: Mapping[str, Any]) -> int | None:
    metadata = document.get("Metadata")
    if not isinstance(metadata, dict):
        return None
    value = metadata.get("WriteTimestampMicros")
    if isinstance(value, dict):  # DynamoDB JSON: {"N": "1680109764000000"}
        value = value.get("N")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError) as exc:
        raise _BadRecord(f"WriteTimestampMicros {value!r} is not an integer") from exc


def _staging_schema(key_schema: KeySchema) -> pa.Schema:
    fields = [
        pa.field("_key", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("ts", pa.int64()),
        pa.field("has_old", pa.bool_(), nullable=False),
        pa.field("has_new", pa.bool_(), nullable=False),
        pa.field("old_item", pa.string()),
        pa.field("old_hash", pa.uint64()),
        pa.field("old_size", pa.int32()),
        pa.field("new_item", pa.string()),
        pa.field("new_hash", pa.uint64()),
        pa.field("new_size", pa.int32()),
    ]
    for a in key_schema.attributes:
        fields.append(pa.field(a.name, pa.binary() if a.attribute_type == "B" else pa.string()))
    return pa.schema(fields)


_STAGING_BATCH = 20_000


class _IncrementalSink:
    """Writes one data file's change records to a staging Parquet file."""

    def __init__(self, task: _FileTask) -> None:
        self.task = task
        self.names = task.key_schema.names
        self.path = str(Path(task.out) / f"records-{task.index:05d}.parquet")
        self.schema = _staging_schema(task.key_schema)
        self.writer: pq.ParquetWriter | None = None
        self.rows: dict[str, list[Any]] = {name: [] for name in self.schema.names}
        self.count = 0

    def add(self, line: bytes, number: int) -> None:
        document = orjson.loads(line)
        if not isinstance(document, dict):
            raise _BadRecord("not an incremental-export record")
        old = _image(document, "OldImage")
        new = _image(document, "NewImage")
        keys = _image(document, "Keys") or new or old
        if keys is None:
            raise _BadRecord("record has no Keys")
        key_record = encode_record({n: keys[n] for n in self.names if n in keys}, self.names)
        old_record = encode_record(old, self.names) if old is not None else None
        new_record = encode_record(new, self.names) if new is not None else None
        for image in (old_record, new_record):
            if image is not None and image.key != key_record.key:
                raise _BadRecord("an image's key differs from the record's Keys")
        rows = self.rows
        rows["_key"].append(key_record.key)
        rows["seq"].append((self.task.index << 32) + number)
        rows["ts"].append(_write_timestamp(document))
        _append_image(rows, "old", old_record)
        _append_image(rows, "new", new_record)
        for name, value in zip(self.names, key_record.key_values, strict=True):
            rows[name].append(value)
        self.count += 1
        if len(rows["_key"]) >= _STAGING_BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self.rows["_key"]:
            return
        table = pa.Table.from_pydict(self.rows, schema=self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self.writer.write_table(table)
        for values in self.rows.values():
            values.clear()

    def abort(self) -> None:
        """Close the staging file (the next attempt rewrites it)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def finish(self) -> _FileOutcome:
        self._flush()
        if self.writer is not None:
            self.writer.close()
        return _FileOutcome(
            self.task.index,
            self.count,
            self.count,
            0,
            staging=self.path if self.writer is not None else None,
        )


def _append_image(rows: dict[str, list[Any]], prefix: str, record: Record | None) -> None:
    rows[f"has_{prefix}"].append(record is not None)
    rows[f"{prefix}_item"].append(record.item if record else None)
    rows[f"{prefix}_hash"].append(record.hash if record else None)
    rows[f"{prefix}_size"].append(record.size if record else None)


# Classes of an item over the window, from its first and last change records.
DELETED, CHANGED, ADDED, UNCHANGED = "deleted", "changed", "added", "unchanged"
TRANSIENT = "transient"  # absent at both ends (created and deleted inside the window)
UNKNOWN_PRESENT = "present-unknown"  # NEW_IMAGE view: present at the end, start unknown
DELETED_NO_IMAGE = "deleted-no-image"  # deleted, but the export holds no old image
ALL_CLASSES = (DELETED, CHANGED, ADDED, UNCHANGED, TRANSIENT, UNKNOWN_PRESENT, DELETED_NO_IMAGE)


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
        Items per class: ``deleted``, ``changed``, ``added``, ``unchanged``
        (changed and changed back), ``transient`` (created and deleted inside
        the window), and, when old images are missing, ``present-unknown`` and
        ``deleted-no-image``.
    records
        Change records read; ``items_with_several_records`` counts items that
        had more than one (DynamoDB compacts to one per item, normally).
    """

    summary: ExportSummary
    key_schema: KeySchema
    counts: dict[str, int]
    records: int
    items_with_several_records: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "export": self.summary.to_dict(),
            "key_schema": self.key_schema.to_list(),
            "counts": self.counts,
            "records": self.records,
            "items_with_several_records": self.items_with_several_records,
        }


def _same_time(a: str, b: str) -> bool:
    try:
        return parse_time(str(a)) == parse_time(str(b))
    except InputError:
        return str(a) == str(b)


def _sql_list(paths: Sequence[str]) -> str:
    return ", ".join("'" + path.replace("'", "''") + "'" for path in paths)


def _classification_sql(
    staging: Sequence[str],
    view: str,
    key_names: Sequence[str],
    start_parts: Sequence[str] | None = None,
) -> str:
    """One row per item: its class over the window, its start and end states.

    ``f`` is an item's first record (its old image is the state at the start),
    ``l`` its last (its new image is the state at the end). With
    ``start_parts`` (a full export at the window's start), the start state
    comes from that export instead: how NEW_IMAGE exports become classifiable.
    """
    keys = ", ".join(f'l."{n}"' for n in (name.replace('"', '""') for name in key_names))
    if start_parts is not None:
        start = "b._key IS NOT NULL"
        old = "b._item AS restored_item, b._hash AS restored_hash, b._size AS restored_size"
        join = f"LEFT JOIN read_parquet([{_sql_list(start_parts)}]) b ON b._key = l._key"
        klass = f"""CASE
            WHEN {start} AND l.has_new THEN
                CASE WHEN b._hash = l.new_hash AND b._item = l.new_item
                     THEN '{UNCHANGED}' ELSE '{CHANGED}' END
            WHEN {start} THEN '{DELETED}'
            WHEN l.has_new THEN '{ADDED}'
            ELSE '{TRANSIENT}' END"""
    else:
        old = (
            "f.old_item AS restored_item, f.old_hash AS restored_hash, f.old_size AS restored_size"
        )
        join = ""
        if view == NEW_IMAGE:
            klass = f"CASE WHEN l.has_new THEN '{UNKNOWN_PRESENT}' ELSE '{DELETED_NO_IMAGE}' END"
        else:
            klass = f"""CASE
                WHEN f.has_old AND l.has_new THEN
                    CASE WHEN f.old_hash = l.new_hash AND f.old_item = l.new_item
                         THEN '{UNCHANGED}' ELSE '{CHANGED}' END
                WHEN f.has_old THEN '{DELETED}'
                WHEN f.has_new AND l.has_new THEN '{ADDED}'
                WHEN f.has_new THEN '{TRANSIENT}'
                WHEN l.has_new THEN '{UNKNOWN_PRESENT}'
                ELSE '{DELETED_NO_IMAGE}' END"""
    return f"""
    WITH r AS (SELECT * FROM read_parquet([{_sql_list(staging)}])),
    ranked AS (
        SELECT *,
            row_number() OVER (PARTITION BY _key ORDER BY ts ASC NULLS FIRST, seq ASC)
                AS first_rank,
            row_number() OVER (PARTITION BY _key ORDER BY ts DESC NULLS LAST, seq DESC)
                AS last_rank,
            count(*) OVER (PARTITION BY _key) AS records
        FROM r)
    SELECT l._key AS _key, {keys},
        {klass} AS class,
        {old},
        l.new_item AS live_item, l.new_hash AS live_hash, l.new_size AS live_size,
        f.records AS records
    FROM ranked f JOIN ranked l ON f._key = l._key AND f.first_rank = 1 AND l.last_rank = 1
    {join}
    """


def classify_incremental(
    source: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None = None,
    workers: int | None = None,
    executor: str = "auto",
    memory_limit: str | None = None,
    start_export: str | os.PathLike[str] | None = None,
    progress: Progress = SILENT,
) -> tuple[IncrementalClassification, str]:
    """Read an incremental export and classify its items (a DuckDB table in ``workdir``).

    Relative to the window's start (*restored*) and end (*live*): absent at
    the start and present at the end → ``added``; present at the start and
    absent at the end → ``deleted`` (its old image is what to put back);
    present at both with different content → ``changed``; same content →
    ``unchanged``. When an item has several records (DynamoDB normally
    compacts them to one), the old image of its earliest record and the new
    image of its latest (by ``WriteTimestampMicros``) decide.

    ``start_export`` (an export dataset of the table at the window's start,
    e.g. ``pitrdiff export --native --at T1``) supplies the start state
    instead of the old images: what makes a ``NEW_IMAGE`` export classifiable.

    Returns
    -------
    tuple
        The classification and the path of a DuckDB database in ``workdir``
        holding table ``classified`` (one row per item).
    """
    from pitrdiff.export.dataset import load_export

    reader = _Reader(ExportLocation.parse(source), aws or AwsConfig(), s3_endpoint_url)
    summary = _read_summary(reader)
    if summary.export_type != INCREMENTAL_EXPORT:
        raise InputError(
            f"{summary.location.url} is a full export (a table state, not a change log): "
            "use `pitrdiff export --from-s3` / ingest_export()"
        )
    schema, _ = _resolve_key_schema(summary, key_schema, aws)
    schema = _peek_key_types(reader, summary, schema)
    view = summary.output_view or NEW_AND_OLD_IMAGES
    if view.startswith("NEW_IMAGE"):  # the API also spells it NEW_IMAGES
        view = NEW_IMAGE
    start_parts: list[str] | None = None
    if start_export is not None:
        start = load_export(start_export, verify=True)
        if not start.key_schema.same_keys(schema):
            raise SchemaMismatchError(
                f"the start export's key ({start.key_schema.describe()}) is not the "
                f"incremental export's ({schema.describe()})"
            )
        start_parts = start.parquet_files
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
    staging_dir = make_dir(Path(workdir) / "records")
    tasks = [
        _FileTask(i, reader, f, str(staging_dir), schema, 0, "incremental")
        for i, f in enumerate(summary.files)
    ]
    outcomes = _run_files(
        tasks,
        label=f"reading {summary.location.export_id}",
        workers=workers or default_workers(),
        executor=executor,
        total_items=summary.item_count,
        progress=progress,
    )
    staging = [o.staging for o in outcomes if o.staging]
    from pitrdiff.diff.core import connect

    database = str(Path(workdir) / "classify.duckdb")
    # spills beside --out (owner-only workdir); an invalid limit is an InputError
    con = connect(database=database, temp_dir=Path(workdir) / "spill", memory_limit=memory_limit)
    try:
        if staging:
            con.execute(
                "CREATE TABLE classified AS "
                + _classification_sql(staging, view, schema.names, start_parts)
            )
        else:
            empty = ", ".join(
                [
                    "CAST(NULL AS VARCHAR) AS _key",
                    *(
                        f"CAST(NULL AS {'BLOB' if a.attribute_type == 'B' else 'VARCHAR'}) "
                        f'AS "{a.name}"'
                        for a in schema.attributes
                    ),
                    "CAST(NULL AS VARCHAR) AS class",
                    "CAST(NULL AS VARCHAR) AS restored_item",
                    "CAST(NULL AS UBIGINT) AS restored_hash",
                    "CAST(NULL AS INTEGER) AS restored_size",
                    "CAST(NULL AS VARCHAR) AS live_item",
                    "CAST(NULL AS UBIGINT) AS live_hash",
                    "CAST(NULL AS INTEGER) AS live_size",
                    "CAST(NULL AS BIGINT) AS records",
                ]
            )
            con.execute(f"CREATE TABLE classified AS SELECT {empty} LIMIT 0")
        counts = dict(
            con.execute("SELECT class, count(*) FROM classified GROUP BY class").fetchall()
        )
        several = con.execute("SELECT count(*) FROM classified WHERE records > 1").fetchone()
    finally:
        con.close()
    all_counts = {name: int(counts.get(name, 0)) for name in ALL_CLASSES}
    if view == NEW_IMAGE and start_parts is None:
        log.warning(
            "%s has view type NEW_IMAGE: without old images nothing can be put back and "
            "added cannot be told from changed (%d items present at the end, %d deleted); "
            "pass a full export of the window's start (--start-export), or export with "
            "NEW_AND_OLD_IMAGES",
            summary.location.url,
            all_counts[UNKNOWN_PRESENT],
            all_counts[DELETED_NO_IMAGE],
        )
    elif all_counts[UNKNOWN_PRESENT] or all_counts[DELETED_NO_IMAGE]:
        log.warning(
            "%s: %d records lack the old image a NEW_AND_OLD_IMAGES export should carry; "
            "they are left unclassified",
            summary.location.url,
            all_counts[UNKNOWN_PRESENT] + all_counts[DELETED_NO_IMAGE],
        )
    classification = IncrementalClassification(
        summary=summary,
        key_schema=schema,
        counts=all_counts,
        records=sum(o.lines for o in outcomes),
        items_with_several_records=int(several[0]) if several else 0,
    )
    if classification.items_with_several_records:
        log.info(
            "%d items have several change records; first old image and last new image used",
            classification.items_with_several_records,
        )
    return classification, database


def _staging_workdir(out: Path) -> Path:
    parent = out.resolve().parent
    make_dir(parent)
    # Beside the output (same file system, owner-only): staging holds table data.
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.incremental-", dir=parent))
    work.chmod(0o700)
    return work


def _class_batches(database: str, klass: str, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """Stream one class's rows out of the classification database, sorted by key."""
    import duckdb

    selected = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    con = duckdb.connect(database, read_only=True)
    try:
        # klass is one of this module's class constants, never user text.
        reader = con.sql(
            f"SELECT {selected} FROM classified WHERE class = '{klass}' ORDER BY _key"
        ).to_arrow_reader(8192)
        yield from reader
    finally:
        con.close()


def diff_incremental(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None = None,
    table_name: str | None = None,
    workers: int | None = None,
    executor: str = "auto",
    overwrite: bool = False,
    memory_limit: str | None = None,
    start_export: str | os.PathLike[str] | None = None,
    progress: Progress = SILENT,
) -> Diff:
    """Turn an incremental export (the change log of T1..T2) into a diff dataset.

    *restored* is the table at the window's start (T1, ``exportFromTime``) and
    *live* the table at its end (T2, ``exportToTime``): **deleted** items were
    present at T1 and gone at T2 (their old image is what a plan puts back),
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
    workers, executor
        Parallelism over data files (see :func:`ingest_export`).
    overwrite
        Replace a diff already at ``out``.
    memory_limit
        DuckDB's memory limit (e.g. ``"1GB"``) for classifying; beyond it DuckDB
        spills to a directory beside ``out``.
    start_export
        An export dataset of the table at the window's start: the start state
        comes from it rather than from old images (needed for ``NEW_IMAGE``
        exports; e.g. ``pitrdiff export --native --at T1``).

    Returns
    -------
    Diff
        The diff dataset written.

    Raises
    ------
    ExportError
        When the export does not verify against its manifests.
    InputError
        A full or ION export, or a key schema that cannot be learned.
    RefusedError
        When ``out`` holds something else, or a diff and ``overwrite`` is false.
    """
    from pitrdiff.diff.core import prepare_out, write_diff_dataset

    clock = time.monotonic()
    target = Path(out)
    prepare_out(target, overwrite=overwrite, check_only=True)  # refuse before the work
    work = _staging_workdir(target)
    try:
        classification, database = classify_incremental(
            source,
            work,
            aws=aws,
            s3_endpoint_url=s3_endpoint_url,
            key_schema=key_schema,
            workers=workers,
            executor=executor,
            memory_limit=memory_limit,
            start_export=start_export,
            progress=progress,
        )
        read_s = time.monotonic() - clock
        summary = classification.summary
        schema = classification.key_schema
        name = table_name or summary.table_name or summary.location.export_id
        common = {
            "kind": "s3-incremental-export",
            "url": summary.location.url,
            "export_arn": summary.export_arn,
            "table_name": name,
            "table_arn": summary.table_arn,
            "output_view": summary.output_view,
        }
        inputs: dict[str, dict[str, Any]] = {
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
        keys = ["_key", *schema.names]
        restored_cols = ["restored_item", "restored_hash", "restored_size"]
        live_cols = ["live_item", "live_hash", "live_size"]
        return write_diff_dataset(
            target,
            key_schema=schema,
            table_name=name,
            deleted=_class_batches(database, DELETED, keys + restored_cols),
            changed=_class_batches(database, CHANGED, keys + live_cols + restored_cols),
            added=_class_batches(database, ADDED, keys + live_cols),
            unchanged_count=classification.counts[UNCHANGED],
            inputs=inputs,
            timings={"read_s": round(read_s, 3)},
            overwrite=overwrite,
            memory_limit=memory_limit,
            temp_dir=work,
            progress=progress,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def unclassified_count(diff: Diff) -> int:
    """Items of an incremental diff that could not be classified (no old images)."""
    counts = (diff.manifest.live or {}).get("counts") or {}
    return int(counts.get(UNKNOWN_PRESENT, 0)) + int(counts.get(DELETED_NO_IMAGE, 0))


__all__ = [
    "DYNAMODB_JSON",
    "FULL_EXPORT",
    "INCREMENTAL_EXPORT",
    "NEW_AND_OLD_IMAGES",
    "NEW_IMAGE",
    "DataFile",
    "ExportLocation",
    "ExportSummary",
    "IncrementalClassification",
    "NativeExport",
    "classify_incremental",
    "diff_incremental",
    "export_native",
    "ingest_export",
    "key_schema_from_spec",
    "parse_time",
    "read_summary",
    "start_native_export",
    "wait_native_export",
]

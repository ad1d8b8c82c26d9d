"""The manifests of a native export: ``manifest-summary.json`` and ``manifest-files.json``.

Their fields are DynamoDB's (developer guide, "DynamoDB table export output
format"): the summary holds the export's ARN, type, format, times and item
count; the files manifest one JSON line per data file with ``itemCount``,
``md5Checksum`` (base64) and ``dataFileS3Key``. Each may have a
``.checksum`` file beside it (its MD5); it is checked when present.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import orjson

from pitrdiff.aws import AwsConfig
from pitrdiff.errors import ExportError, InputError
from pitrdiff.export.native.location import (
    FILES_NAME,
    MARKER,
    SUMMARY_NAME,
    ExportLocation,
    Reader,
)

log = logging.getLogger(__name__)

FULL_EXPORT = "FULL_EXPORT"
INCREMENTAL_EXPORT = "INCREMENTAL_EXPORT"
DYNAMODB_JSON = "DYNAMODB_JSON"
NEW_AND_OLD_IMAGES = "NEW_AND_OLD_IMAGES"
NEW_IMAGE = "NEW_IMAGE"


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


def _check_manifest_checksum(reader: Reader, name: str, data: bytes) -> None:
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


def _json_document(reader: Reader, name: str) -> tuple[bytes, Any]:
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
    reader = Reader(ExportLocation.parse(source), aws or AwsConfig(), s3_endpoint_url)
    return summary_of(reader)


def summary_of(reader: Reader) -> ExportSummary:
    """:func:`read_summary` through an existing :class:`Reader`."""
    location = reader.location
    summary = _summary_document(reader)
    output_format = str(summary.get("outputFormat") or DYNAMODB_JSON)
    if output_format != DYNAMODB_JSON:
        raise InputError(
            f"{location.url} is an {output_format} export; pitrdiff does not read "
            f"{output_format} yet: export with --export-format {DYNAMODB_JSON}"
        )
    export_type = str(summary.get("exportType") or FULL_EXPORT)
    if export_type not in (FULL_EXPORT, INCREMENTAL_EXPORT):
        raise ExportError(f"{location.url}: unknown exportType {export_type!r}")
    files_key = summary.get("manifestFilesS3Key")
    if isinstance(files_key, str) and files_key and not files_key.endswith(f"/{FILES_NAME}"):
        raise ExportError(f"{location.url}: unexpected manifestFilesS3Key {files_key!r}")
    files = _data_files(reader)
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
        files=files,
    )


def _summary_document(reader: Reader) -> dict[str, Any]:
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
    return summary


def _data_files(reader: Reader) -> tuple[DataFile, ...]:
    location = reader.location
    files_bytes = reader.read(location.manifest_ref(FILES_NAME))
    _check_manifest_checksum(reader, FILES_NAME, files_bytes)
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
    return tuple(files)

"""The control plane of native exports: start ``ExportTableToPointInTime``, wait, ingest.

No restore and no read capacity: DynamoDB writes the table as it was at T to
S3 (PITR must be on), and the export is then read like any other
(:func:`~pitrdiff.export.native.ingest.ingest_export`).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pitrdiff import aws as aws_module
from pitrdiff.aws import AwsConfig, translate_errors
from pitrdiff.errors import AwsError, InputError, Interrupted
from pitrdiff.export.dataset import KeySchema, Manifest, prepare_directory
from pitrdiff.export.native.ingest import ingest_export
from pitrdiff.export.native.location import MARKER
from pitrdiff.export.native.manifest import DYNAMODB_JSON, FULL_EXPORT
from pitrdiff.export.native.table import describe_table
from pitrdiff.progress import SILENT, Progress


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
    table_facts
        What ``DescribeTable`` and ``DescribeTimeToLive`` said (``ttl`` included).
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
    name, schema, facts = describe_table(table, config)
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
    Interrupted
        On Ctrl-C: the export goes on in DynamoDB; the message says how to read it later.
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
    ttl_attribute: str | None = None,
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
    The table's TTL setting (``DescribeTimeToLive``) is recorded in the manifest.

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
    ttl_attribute
        Record this TTL attribute instead of the table's setting.
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
        ttl_attribute=ttl_attribute,
        workers=workers,
        overwrite=overwrite,
        progress=progress,
        _table_facts=done.table_facts,
    )

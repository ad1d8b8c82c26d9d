"""Native DynamoDB exports to S3, read into pitrdiff export datasets.

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
directory with the same layout (or the export folder copied on its own).
Every data file is checked against ``manifest-files.json`` (present, MD5,
item count) and the counts against ``manifest-summary.json``; any mismatch is
refused with :class:`~pitrdiff.errors.ExportError`. Files are streamed (gzip,
line by line: bounded memory) and processed in parallel, one file per worker.

Modules, in the order data flows through them:

- :mod:`.location`: where the export is (S3 or local), reading its files;
- :mod:`.manifest`: the two manifests, their checksums → :class:`ExportSummary`;
- :mod:`.table`: what the manifests do not say (key schema, TTL setting);
- :mod:`.stream`: one data file, gzip line by line, verified, into a sink;
- :mod:`.workers`: files in parallel (threads or processes), stopping cleanly;
- :mod:`.ingest`: a full export → an export dataset (:func:`ingest_export`);
- :mod:`.changes`: an incremental export's change records → staging files;
- :mod:`.control`: ``ExportTableToPointInTime``, wait, ingest (:func:`export_native`).

Incremental exports (change logs) become diffs: :mod:`pitrdiff.diff.incremental`.
"""

from __future__ import annotations

from pitrdiff.export.native.control import (
    NativeExport,
    export_native,
    parse_time,
    start_native_export,
    wait_native_export,
)
from pitrdiff.export.native.ingest import ingest_export
from pitrdiff.export.native.location import ExportLocation
from pitrdiff.export.native.manifest import (
    DYNAMODB_JSON,
    FULL_EXPORT,
    INCREMENTAL_EXPORT,
    NEW_AND_OLD_IMAGES,
    NEW_IMAGE,
    DataFile,
    ExportSummary,
    read_summary,
)
from pitrdiff.export.native.table import key_schema_from_spec
from pitrdiff.export.native.workers import PROCESS_THRESHOLD, default_workers

__all__ = [
    "DYNAMODB_JSON",
    "FULL_EXPORT",
    "INCREMENTAL_EXPORT",
    "NEW_AND_OLD_IMAGES",
    "NEW_IMAGE",
    "PROCESS_THRESHOLD",
    "DataFile",
    "ExportLocation",
    "ExportSummary",
    "NativeExport",
    "default_workers",
    "export_native",
    "ingest_export",
    "key_schema_from_spec",
    "parse_time",
    "read_summary",
    "start_native_export",
    "wait_native_export",
]

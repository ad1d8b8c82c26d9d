"""Deterministic builder of DynamoDB native-export fixtures, in the documented layout.

Run ``python3 tests/data/s3exports/build.py`` to regenerate the committed
fixtures under ``tests/data/s3exports/exports/`` (an S3 prefix ``exports``);
``tests/test_s3export.py`` checks that the committed files equal a fresh build.
The helpers (``write_full_export``, ``write_incremental_export``) also build
large generated exports for the memory test and ``bench/bench_s3export.py``.

Layout written (as DynamoDB writes it, see the DynamoDB developer guide,
"DynamoDB table export output format")::

    <root>/<prefix>/AWSDynamoDB/<export-id>/_started
    <root>/<prefix>/AWSDynamoDB/<export-id>/manifest-summary.json (+ .checksum)
    <root>/<prefix>/AWSDynamoDB/<export-id>/manifest-files.json   (+ .checksum)
    <root>/<prefix>/AWSDynamoDB/<export-id>/data/<name>.json.gz    full exports
    <root>/<prefix>/AWSDynamoDB/data/<name>.json.gz                incremental exports
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
PREFIX = "exports"
ACCOUNT = "123456789012"
TABLE = "Orders"
TABLE_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TABLE}"
FULL_ID = "01761573600000-f0f0f0f0"
INCREMENTAL_ID = "01761577200000-a1a1a1a1"
NEW_IMAGE_ID = "01761580800000-b2b2b2b2"


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _gzip_lines(lines: Iterable[Mapping[str, Any]]) -> tuple[bytes, int]:
    # Compact UTF-8 JSON lines, as DynamoDB writes them.
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    count = body.count(b"\n")
    # mtime=0 and a fixed level: the same input always gives the same bytes.
    return gzip.compress(body, compresslevel=6, mtime=0), count


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_manifests(
    export_dir: Path, summary: dict[str, Any], entries: Sequence[dict[str, Any]]
) -> None:
    files = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries).encode()
    summary_bytes = (json.dumps(summary, indent=2) + "\n").encode()
    _write(export_dir / "_started", b"")
    _write(export_dir / "manifest-files.json", files)
    _write(export_dir / "manifest-files.checksum", hashlib.md5(files).hexdigest().encode())
    _write(export_dir / "manifest-summary.json", summary_bytes)
    _write(
        export_dir / "manifest-summary.checksum", hashlib.md5(summary_bytes).hexdigest().encode()
    )


def _entry(key: str, data: bytes, count: int) -> dict[str, Any]:
    return {
        "itemCount": count,
        "md5Checksum": _md5_b64(data),
        "etag": hashlib.md5(data).hexdigest(),
        "dataFileS3Key": key,
    }


def write_full_export(
    root: Path,
    files: Sequence[Iterable[Mapping[str, Any]]],
    *,
    export_id: str = FULL_ID,
    prefix: str = PREFIX,
    table_arn: str = TABLE_ARN,
    export_time: str = "2026-10-27T14:00:00.000Z",
) -> Path:
    """Write a full export whose data files hold ``files`` (items, wire form); return its dir."""
    export_dir = root / prefix / "AWSDynamoDB" / export_id
    entries = []
    total = 0
    for number, items in enumerate(files):
        data, count = _gzip_lines({"Item": item} for item in items)
        name = f"{hashlib.sha1(f'{export_id}-{number}'.encode()).hexdigest()[:26]}.json.gz"
        key = f"{prefix}/AWSDynamoDB/{export_id}/data/{name}"
        _write(root / key, data)
        entries.append(_entry(key, data, count))
        total += count
    summary = {
        "version": "2020-06-30",
        "exportArn": f"{table_arn}/export/{export_id}",
        "startTime": export_time,
        "endTime": "2026-10-27T14:05:00.000Z",
        "tableArn": table_arn,
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345",
        "exportTime": export_time,
        "s3Bucket": "pitrdiff-test-exports",
        "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"{prefix}/AWSDynamoDB/{export_id}/manifest-files.json",
        "billedSizeBytes": 0,
        "itemCount": total,
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    _write_manifests(export_dir, summary, entries)
    return export_dir


def write_incremental_export(
    root: Path,
    files: Sequence[Iterable[Mapping[str, Any]]],
    *,
    export_id: str = INCREMENTAL_ID,
    prefix: str = PREFIX,
    view: str = "NEW_AND_OLD_IMAGES",
    table_arn: str = TABLE_ARN,
) -> Path:
    """Write an incremental export of change records (shared ``AWSDynamoDB/data/`` folder)."""
    export_dir = root / prefix / "AWSDynamoDB" / export_id
    entries = []
    total = 0
    for number, records in enumerate(files):
        data, count = _gzip_lines(records)
        name = f"{hashlib.sha1(f'{export_id}-{number}'.encode()).hexdigest()[:26]}.json.gz"
        key = f"{prefix}/AWSDynamoDB/data/{name}"
        _write(root / key, data)
        entries.append(_entry(key, data, count))
        total += count
    summary = {
        "version": "2023-08-01",
        "exportArn": f"{table_arn}/export/{export_id}",
        "startTime": "2026-10-27T16:00:00.000Z",
        "endTime": "2026-10-27T16:20:00.000Z",
        "tableArn": table_arn,
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345",
        "exportFromTime": "2026-10-27T14:00:00.000Z",
        "exportToTime": "2026-10-27T15:00:00.000Z",
        "s3Bucket": "pitrdiff-test-exports",
        "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"{prefix}/AWSDynamoDB/{export_id}/manifest-files.json",
        "billedSizeBytes": 0,
        "itemCount": total,
        "outputFormat": "DYNAMODB_JSON",
        "outputView": view,
        "exportType": "INCREMENTAL_EXPORT",
    }
    _write_manifests(export_dir, summary, entries)
    return export_dir


# --------------------------------------------------------------------------- the fixtures


def key(pk: str, sk: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


def order(pk: str, sk: int, **attributes: Any) -> dict[str, Any]:
    return {**key(pk, sk), **attributes}


# Every DynamoDB type, odd number spellings and non-ASCII text.
FULL_ITEMS: list[list[dict[str, Any]]] = [
    [
        order("alice", 1, status={"S": "open"}, price={"N": "12.50"}),
        order("alice", 2, status={"S": "shipped"}, price={"N": "15E-1"}, gift={"BOOL": True}),
        order("bob", 1, note={"NULL": True}, blob={"B": base64.b64encode(b"\x00\xff").decode()}),
        order(
            "bob",
            2,
            tags={"SS": ["b", "a"]},
            sizes={"NS": ["10", "2", "2.0"]},
            bins={"BS": [base64.b64encode(b"z").decode(), base64.b64encode(b"a").decode()]},
        ),
    ],
    [],  # an empty partition still gets a file
    [
        order(
            "carol",
            1,
            address={"M": {"city": {"S": "Zürich"}, "zip": {"S": "8001"}}},
            lines={"L": [{"M": {"sku": {"S": "x"}, "qty": {"N": "1"}}}, {"N": "-0.0"}]},
        ),
        order("carol", 2, status={"S": "open"}, price={"N": "9" * 38}),
        order("dave", 1, status={"S": "返品"}, price={"N": "1E+3"}),
    ],
]

T0 = 1761573600_000000  # 2026-10-27T14:00:00Z in microseconds


def change(
    k: dict[str, Any],
    *,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    at: int = 0,
) -> dict[str, Any]:
    """One incremental-export record; ``at`` seconds after the window's start."""
    record: dict[str, Any] = {
        "Metadata": {"WriteTimestampMicros": {"N": str(T0 + at * 1_000_000)}},
        "Keys": k,
    }
    if new is not None:
        record["NewImage"] = new
    if old is not None:
        record["OldImage"] = old
    return record


A1 = order("alice", 1, status={"S": "open"}, price={"N": "12.5"})
A1_PAID = order("alice", 1, status={"S": "paid"}, price={"N": "12.5"})
B1 = order("bob", 1, status={"S": "open"})
C1 = order("carol", 1, status={"S": "open"}, price={"N": "1.50"})
C1_SAME = order("carol", 1, price={"N": "1.5"}, status={"S": "open"})
D1 = order("dave", 1, status={"S": "new"})
E1 = order("erin", 1, v={"N": "1"})
E1_V2 = order("erin", 1, v={"N": "2"})
E1_V3 = order("erin", 1, v={"N": "3"})
F1 = order("frank", 1, tmp={"BOOL": True})
G1 = order("gina", 1, v={"S": "before"})
G1_AFTER = order("gina", 1, v={"S": "after"})
H1 = order("hank", 1, v={"L": [{"N": "1"}, {"N": "2"}]})
H1_MID = order("hank", 1, v={"L": [{"N": "1"}, {"N": "9"}]})

# The window's change log. DynamoDB compacts each item to one record; erin,
# frank, gina and hank have several records (split over files, out of order)
# to pin how pitrdiff combines them: first old image, last new image.
INCREMENTAL_RECORDS: list[list[dict[str, Any]]] = [
    [
        change(key("dave", 1), new=D1, at=10),  # insert → added
        change(key("alice", 1), old=A1, new=A1_PAID, at=20),  # update → changed
        change(key("bob", 1), old=B1, at=30),  # delete → deleted
        change(key("carol", 1), old=C1, new=C1_SAME, at=40),  # changed back → unchanged
        change(key("erin", 1), old=E1_V2, new=E1_V3, at=120),  # second update of erin
        change(key("frank", 1), new=F1, at=50),  # created ...
    ],
    [
        change(key("erin", 1), old=E1, new=E1_V2, at=60),  # first update of erin
        change(key("frank", 1), old=F1, at=70),  # ... and deleted again → transient
        change(key("gina", 1), old=G1, at=80),  # deleted ...
        change(key("gina", 1), new=G1_AFTER, at=90),  # ... and re-created → changed
        change(key("hank", 1), old=H1, new=H1_MID, at=100),  # changed ...
        change(key("hank", 1), old=H1_MID, new=H1, at=110),  # ... and back → unchanged
    ],
]

EXPECTED_INCREMENTAL = {
    "deleted": [{"key": key("bob", 1), "restored": B1}],
    "changed": [
        {"key": key("alice", 1), "restored": A1, "live": A1_PAID, "signature": "status"},
        {"key": key("erin", 1), "restored": E1, "live": E1_V3, "signature": "v"},
        {"key": key("gina", 1), "restored": G1, "live": G1_AFTER, "signature": "v"},
    ],
    "added": [{"key": key("dave", 1), "live": D1}],
    "unchanged": 2,  # carol (1.50 = 1.5), hank (changed and back)
    "transient": 1,  # frank (created and deleted inside the window)
    "records": 12,
    "items_with_several_records": 4,
}

NEW_IMAGE_RECORDS: list[list[dict[str, Any]]] = [
    [
        change(key("dave", 1), new=D1, at=10),
        change(key("alice", 1), new=A1_PAID, at=20),
        change(key("bob", 1), at=30),  # a delete: keys only
    ]
]

EXPECTED_NEW_IMAGE = {"present-unknown": 2, "deleted-no-image": 1, "records": 3}


def build(root: Path = HERE) -> list[Path]:
    """Write every committed fixture under ``root``; return the export directories."""
    full = write_full_export(root, FULL_ITEMS)
    incremental = write_incremental_export(root, INCREMENTAL_RECORDS)
    new_image = write_incremental_export(
        root, NEW_IMAGE_RECORDS, export_id=NEW_IMAGE_ID, view="NEW_IMAGE"
    )
    _write(
        root / "expected-incremental.json",
        (json.dumps(EXPECTED_INCREMENTAL, indent=2, ensure_ascii=False) + "\n").encode(),
    )
    _write(
        root / "expected-new-image.json",
        (json.dumps(EXPECTED_NEW_IMAGE, indent=2) + "\n").encode(),
    )
    return [full, incremental, new_image]


if __name__ == "__main__":
    for path in build():
        print(path.relative_to(HERE))

"""Native DynamoDB exports to S3: ingestion, verification, incremental diffs, native export.

Fixtures live in ``tests/data/s3exports`` in DynamoDB's documented layout (an
S3 prefix ``exports``), built by ``tests/data/s3exports/build.py``; the
expected classification of the incremental export is written beside it
(``expected-incremental.json``). They are read from the local directory and
from moto's S3 on loopback.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import logging
import multiprocessing
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from pitrdiff import codec
from pitrdiff.aws import AwsConfig, s3_client
from pitrdiff.diff.incremental import diff_incremental
from pitrdiff.errors import EXIT_BAD_INPUT, ExportError, InputError, Terminated
from pitrdiff.export.dataset import load_export, read_manifest, write_export
from pitrdiff.export.native import (
    ExportLocation,
    export_native,
    ingest_export,
    key_schema_from_spec,
    read_summary,
    start_native_export,
    wait_native_export,
)
from pitrdiff.progress import SilentProgress
from tests.helpers import PK_SK, Server

DATA = Path(__file__).parent / "data" / "s3exports"
EXPORTS = DATA / "exports" / "AWSDynamoDB"
_spec = importlib.util.spec_from_file_location("s3export_fixtures", DATA / "build.py")
assert _spec and _spec.loader
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

FULL = EXPORTS / build.FULL_ID
INCREMENTAL = EXPORTS / build.INCREMENTAL_ID
NEW_IMAGE = EXPORTS / build.NEW_IMAGE_ID
KEY = "pk:S,sk:N"


def canonical_items(items: list[dict[str, Any]]) -> dict[str, str]:
    return {codec.canonical_key(i, ["pk", "sk"]): codec.canonical_json(i) for i in items}


def dataset_items(path: Path) -> dict[str, str]:
    table = load_export(path, verify=True).arrow(["_key", "_item"]).to_pydict()
    return dict(zip(table["_key"], table["_item"], strict=True))


def copy_exports(tmp_path: Path) -> Path:
    """A writable copy of the fixture tree; returns its ``AWSDynamoDB`` directory."""
    shutil.copytree(DATA / "exports", tmp_path / "exports")
    return tmp_path / "exports" / "AWSDynamoDB"


@pytest.fixture(autouse=True)
def _restore_pitrdiff_logger() -> Any:
    """The CLI installs a stderr handler on the ``pitrdiff`` logger (and stops
    propagation); under CliRunner that stream is closed afterwards, so put the
    logger back as it was after each test."""
    logger = logging.getLogger("pitrdiff")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers, logger.level, logger.propagate = saved


@pytest.fixture(scope="module")
def s3_bucket(moto_server: Server) -> str:
    """A moto S3 bucket holding the fixture tree under the prefix ``exports/``."""
    bucket = f"exports-{uuid.uuid4().hex[:10]}"
    client = s3_client(AwsConfig(region="us-east-1"), endpoint_url=moto_server.endpoint)
    client.create_bucket(Bucket=bucket)
    for path in sorted((DATA / "exports").rglob("*")):
        if path.is_file():
            key = path.relative_to(DATA).as_posix()
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return bucket


# --------------------------------------------------------------------------- fixtures


def test_committed_fixtures_equal_a_fresh_deterministic_build(tmp_path: Path) -> None:
    build.build(tmp_path)
    committed = sorted(p.relative_to(DATA) for p in DATA.rglob("*") if p.is_file())
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [p for p in committed if p.name != "build.py"] == fresh
    for relative in fresh:
        mine, theirs = (tmp_path / relative).read_bytes(), (DATA / relative).read_bytes()
        if relative.suffix == ".gz":
            # another zlib (zlib-ng) may compress differently: compare the content
            assert gzip.decompress(mine) == gzip.decompress(theirs), relative
        elif relative.name == "manifest-files.json":
            assert _without_checksums(mine) == _without_checksums(theirs), relative
        elif relative.name != "manifest-files.checksum":
            assert mine == theirs, relative


def _without_checksums(manifest_files: bytes) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in manifest_files.splitlines() if line]
    return [{k: v for k, v in e.items() if k not in ("md5Checksum", "etag")} for e in entries]


def test_location_resolves_data_keys_relative_to_the_export() -> None:
    s3 = ExportLocation.parse("s3://b/some/prefix/AWSDynamoDB/01-ab/")
    assert (s3.bucket, s3.root, s3.export_id) == ("b", "some/prefix/AWSDynamoDB/01-ab", "01-ab")
    # a key written under another prefix (the export was copied) still resolves here
    assert s3.data_ref("old/AWSDynamoDB/01-ab/data/x.json.gz") == (
        "some/prefix/AWSDynamoDB/01-ab/data/x.json.gz"
    )
    assert s3.data_ref("some/prefix/AWSDynamoDB/data/y.json.gz") == (
        "some/prefix/AWSDynamoDB/data/y.json.gz"
    )
    local = ExportLocation.parse("/x/AWSDynamoDB/01-ab/manifest-summary.json")
    assert local.bucket is None and local.root == "/x/AWSDynamoDB/01-ab"
    assert local.data_ref("p/AWSDynamoDB/data/y.json.gz") == "/x/AWSDynamoDB/data/y.json.gz"
    with pytest.raises(ExportError):
        local.data_ref("p/AWSDynamoDB/../../etc/passwd")
    with pytest.raises(InputError):
        ExportLocation.parse("s3://bucket-only")


def test_key_spec_parsing() -> None:
    schema = key_schema_from_spec("pk:S,sk:N")
    assert schema.to_list() == [
        {"AttributeName": "pk", "KeyType": "HASH", "AttributeType": "S"},
        {"AttributeName": "sk", "KeyType": "RANGE", "AttributeType": "N"},
    ]
    assert key_schema_from_spec("id").names == ("id",)
    for bad in ("", "a,b,c", "pk:X"):
        with pytest.raises(InputError):
            key_schema_from_spec(bad)


# --------------------------------------------------------------------------- full exports


def test_full_export_from_a_local_directory(tmp_path: Path) -> None:
    manifest = ingest_export(FULL, tmp_path / "out", key_schema="pk,sk", workers=2)
    assert manifest.complete and manifest.items == 7
    assert manifest.table_name == "Orders"
    assert manifest.key_schema.describe() == "pk (HASH, S), sk (RANGE, N)"  # types learned
    source = manifest.source
    assert source["kind"] == "s3-export"
    assert source["export_arn"].endswith(f"/export/{build.FULL_ID}")
    assert source["export_time"] == "2026-10-27T14:00:00.000Z"
    assert source["data_files"] == 3
    expected = canonical_items([i for f in build.FULL_ITEMS for i in f])
    assert dataset_items(tmp_path / "out") == expected
    assert read_manifest(tmp_path / "out").to_dict()["source"]["kind"] == "s3-export"


def test_worker_processes_give_the_same_dataset(tmp_path: Path) -> None:
    ingest_export(FULL, tmp_path / "p", key_schema=KEY, workers=2, executor="process")
    ingest_export(FULL, tmp_path / "t", key_schema=KEY, workers=1, executor="thread")
    assert dataset_items(tmp_path / "p") == dataset_items(tmp_path / "t")


def test_native_export_refuses_a_complete_out_before_exporting(tmp_path: Path) -> None:
    from pitrdiff.errors import RefusedError

    ingest_export(FULL, tmp_path / "out", key_schema=KEY)
    with pytest.raises(RefusedError, match="--overwrite"):
        # no server is needed: the refusal comes before any request
        export_native("t", at="2026-10-27T14:00:00Z", s3_bucket="b", out=tmp_path / "out")
    assert load_export(tmp_path / "out").manifest.complete  # untouched


def test_full_export_from_moto_s3_matches_the_local_one(
    moto_server: Server, s3_bucket: str, tmp_path: Path
) -> None:
    url = f"s3://{s3_bucket}/exports/AWSDynamoDB/{build.FULL_ID}"
    manifest = ingest_export(
        url,
        tmp_path / "s3",
        key_schema=KEY,
        s3_endpoint_url=moto_server.endpoint,
        aws=AwsConfig(region="us-east-1"),
    )
    assert manifest.source["location"] == url
    ingest_export(FULL, tmp_path / "local", key_schema=KEY)
    assert dataset_items(tmp_path / "s3") == dataset_items(tmp_path / "local")


def test_full_export_ingested_equals_a_scan_export_of_the_same_table(
    ddb: Server, table_name: str, tmp_path: Path
) -> None:
    """The same items, loaded into a table and scanned, diff to nothing against the export."""
    from pitrdiff.diff.core import diff_exports
    from pitrdiff.export.scan import export_table

    ddb.create_table(table_name, PK_SK, {"pk": "S", "sk": "N"})
    # canonical forms: DynamoDB refuses sets with duplicates such as NS ["2", "2.0"]
    items = [orjson.loads(codec.canonical_json(i)) for f in build.FULL_ITEMS for i in f]
    ddb.put_items(table_name, items)
    export_table(table_name, tmp_path / "scan", aws=ddb.aws, segments=2)
    ingest_export(FULL, tmp_path / "native", key_schema=KEY, table_name=table_name)
    diff = diff_exports(tmp_path / "scan", tmp_path / "native", tmp_path / "diff")
    assert diff.same, diff.manifest.counts
    assert diff.manifest.counts == {
        "deleted": 0,
        "expired": 0,
        "changed": 0,
        "added": 0,
        "unchanged": 7,
    }


def test_key_schema_comes_from_describe_table(
    moto_server: Server, table_name: str, tmp_path: Path
) -> None:
    moto_server.create_table(table_name, PK_SK, {"pk": "S", "sk": "N"})
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table_name}"
    export_dir = build.write_full_export(
        tmp_path / "src", build.FULL_ITEMS, table_arn=arn, export_id="01700000000000-c3c3c3c3"
    )
    manifest = ingest_export(export_dir, tmp_path / "out", aws=moto_server.aws)
    assert manifest.table_name == table_name
    assert manifest.key_schema.describe() == "pk (HASH, S), sk (RANGE, N)"
    assert manifest.table["arn"].endswith(f"table/{table_name}")


def test_unknown_table_without_key_asks_for_key(moto_server: Server, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--key") as caught:
        ingest_export(FULL, tmp_path / "out", aws=moto_server.aws)
    assert caught.value.exit_code == EXIT_BAD_INPUT


# --------------------------------------------------------------------------- refusals


def _manifest_lines(export_dir: Path) -> list[dict[str, Any]]:
    text = (export_dir / "manifest-files.json").read_text()
    return [json.loads(line) for line in text.splitlines() if line]


def _write_manifest_lines(export_dir: Path, lines: list[dict[str, Any]]) -> None:
    data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in lines).encode()
    (export_dir / "manifest-files.json").write_bytes(data)
    (export_dir / "manifest-files.checksum").write_text(hashlib.md5(data).hexdigest())


def _set_summary(export_dir: Path, **fields: Any) -> None:
    summary = json.loads((export_dir / "manifest-summary.json").read_text())
    summary.update(fields)
    data = json.dumps(summary, indent=2).encode()
    (export_dir / "manifest-summary.json").write_bytes(data)
    (export_dir / "manifest-summary.checksum").write_text(hashlib.md5(data).hexdigest())


def _first_data_file(export_dir: Path) -> tuple[Path, int]:
    lines = _manifest_lines(export_dir)
    index = next(i for i, e in enumerate(lines) if e["itemCount"] > 0)
    key = lines[index]["dataFileS3Key"]
    return export_dir.parent / key.split("AWSDynamoDB/", 1)[1], index


def _wrong_count(export_dir: Path) -> None:
    lines = _manifest_lines(export_dir)
    _, index = _first_data_file(export_dir)
    lines[index]["itemCount"] += 1
    _write_manifest_lines(export_dir, lines)
    _set_summary(export_dir, itemCount=sum(e["itemCount"] for e in lines))


def _wrong_md5(export_dir: Path) -> None:
    path, _ = _first_data_file(export_dir)
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join(lines[:-1] + lines[-1:]), mtime=1))


def _missing_file(export_dir: Path) -> None:
    path, _ = _first_data_file(export_dir)
    path.unlink()


def _truncated_gzip(export_dir: Path) -> None:
    path, index = _first_data_file(export_dir)
    data = path.read_bytes()[:-12]
    path.write_bytes(data)
    lines = _manifest_lines(export_dir)
    lines[index]["md5Checksum"] = base64.b64encode(hashlib.md5(data).digest()).decode()
    _write_manifest_lines(export_dir, lines)


def _summary_count(export_dir: Path) -> None:
    _set_summary(export_dir, itemCount=999)


def _edited_manifest(export_dir: Path) -> None:
    lines = _manifest_lines(export_dir)
    lines[0]["etag"] = "edited"
    data = "".join(json.dumps(e) + "\n" for e in lines).encode()
    (export_dir / "manifest-files.json").write_bytes(data)  # .checksum left stale


def _not_an_export(export_dir: Path) -> None:
    (export_dir / "manifest-summary.json").unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_wrong_count, "holds 4 items but manifest-files.json says 5"),
        (_wrong_md5, "MD5 .* does not match manifest-files.json"),
        (_missing_file, "is missing"),
        (_truncated_gzip, "corrupt gzip"),
        (_summary_count, "lists 7 items but manifest-summary.json says 999"),
        (_edited_manifest, "does not match its .checksum"),
        (_not_an_export, "is not a DynamoDB export"),
    ],
)
def test_manifest_and_data_mismatch_is_refused(tmp_path: Path, damage: Any, message: str) -> None:
    export_dir = copy_exports(tmp_path) / build.FULL_ID
    damage(export_dir)
    with pytest.raises(ExportError, match=message) as caught:
        ingest_export(export_dir, tmp_path / "out", key_schema=KEY, workers=1)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    out = tmp_path / "out"
    if (out / "manifest.json").exists():  # started: left visibly incomplete
        assert not read_manifest(out).complete


def test_mismatch_is_refused_from_s3_too(moto_server: Server, tmp_path: Path) -> None:
    client = s3_client(AwsConfig(region="us-east-1"), endpoint_url=moto_server.endpoint)
    bucket = f"bad-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    root = copy_exports(tmp_path)
    _wrong_md5(root / build.FULL_ID)
    for path in (root / build.FULL_ID).rglob("*"):
        if path.is_file():
            key = "exports/" + path.relative_to(root.parent).as_posix()
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    with pytest.raises(ExportError, match="MD5"):
        ingest_export(
            f"s3://{bucket}/exports/AWSDynamoDB/{build.FULL_ID}",
            tmp_path / "out",
            key_schema=KEY,
            s3_endpoint_url=moto_server.endpoint,
            aws=AwsConfig(region="us-east-1"),
        )


def test_ion_exports_are_refused_naming_dynamodb_json(tmp_path: Path) -> None:
    export_dir = copy_exports(tmp_path) / build.FULL_ID
    _set_summary(export_dir, outputFormat="ION")
    with pytest.raises(InputError, match="DYNAMODB_JSON"):
        ingest_export(export_dir, tmp_path / "out", key_schema=KEY)
    with pytest.raises(InputError, match="DYNAMODB_JSON"):
        start_native_export("t", at="2026-10-27T14:00:00Z", s3_bucket="b", export_format="ION")


def test_full_and_incremental_are_not_confused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="incremental"):
        ingest_export(INCREMENTAL, tmp_path / "a", key_schema=KEY)
    with pytest.raises(InputError, match="full export"):
        diff_incremental(FULL, tmp_path / "b", key_schema=KEY)


def test_naive_time_is_refused() -> None:
    with pytest.raises(InputError, match="time zone"):
        start_native_export("t", at="2026-10-27T14:00:00", s3_bucket="b")


# --------------------------------------------------------------------------- incremental


def _expected(name: str) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads((DATA / name).read_text())
    return expected


def _check_incremental(diff: Any) -> None:
    expected = _expected("expected-incremental.json")
    deleted = diff.deleted(decode=False)
    assert list(deleted["_key"]) == [codec.canonical_json(e["key"]) for e in expected["deleted"]]
    assert list(deleted["restored_item"]) == [
        codec.canonical_json(e["restored"]) for e in expected["deleted"]
    ]
    added = diff.added(decode=False)
    assert list(added["live_item"]) == [codec.canonical_json(e["live"]) for e in expected["added"]]
    changed = diff.changed(decode=False)
    assert list(changed["_key"]) == [codec.canonical_json(e["key"]) for e in expected["changed"]]
    assert list(changed["restored_item"]) == [
        codec.canonical_json(e["restored"]) for e in expected["changed"]
    ]
    assert list(changed["live_item"]) == [
        codec.canonical_json(e["live"]) for e in expected["changed"]
    ]
    assert list(changed["signature"]) == [e["signature"] for e in expected["changed"]]
    counts = diff.manifest.counts
    assert counts["unchanged"] == expected["unchanged"]
    live = diff.manifest.live
    assert live["counts"]["transient"] == expected["transient"]
    assert live["records"] == expected["records"]
    assert live["items_with_several_records"] == expected["items_with_several_records"]
    assert live["state_at"] == "2026-10-27T15:00:00.000Z"
    assert diff.manifest.restored["state_at"] == "2026-10-27T14:00:00.000Z"


def test_incremental_export_classification_from_a_local_directory(tmp_path: Path) -> None:
    diff = diff_incremental(INCREMENTAL, tmp_path / "diff", key_schema=KEY, workers=2)
    _check_incremental(diff)
    assert not list(tmp_path.glob(".diff.incremental-*"))  # staging removed


def test_incremental_export_classification_from_moto_s3(
    moto_server: Server, s3_bucket: str, tmp_path: Path
) -> None:
    diff = diff_incremental(
        f"s3://{s3_bucket}/exports/AWSDynamoDB/{build.INCREMENTAL_ID}",
        tmp_path / "diff",
        key_schema=KEY,
        s3_endpoint_url=moto_server.endpoint,
        aws=AwsConfig(region="us-east-1"),
    )
    _check_incremental(diff)


def test_incremental_diff_feeds_plan_unchanged(tmp_path: Path) -> None:
    """deleted items come back with their old image; changed ones expect the window-end state."""
    from pitrdiff.recovery.plan import load_plan, write_plan

    diff = diff_incremental(INCREMENTAL, tmp_path / "diff", key_schema=KEY)
    write_plan(diff, tmp_path / "plan.jsonl", include="deleted,changed")
    plan = load_plan(tmp_path / "plan.jsonl")
    operations = list(plan.operations())
    by_key = {codec.canonical_json(op.key): op for op in operations}
    bob = by_key[codec.canonical_json(build.key("bob", 1))]
    assert bob.op == "put" and bob.item is not None
    assert codec.canonical_json(bob.item) == codec.canonical_json(build.B1)
    alice = by_key[codec.canonical_json(build.key("alice", 1))]
    assert alice.item is not None and alice.expected is not None
    assert codec.canonical_json(alice.item) == codec.canonical_json(build.A1)
    assert codec.canonical_json(alice.expected) == codec.canonical_json(build.A1_PAID)
    assert len(operations) == 4


def test_new_image_exports_say_what_cannot_be_classified(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = _expected("expected-new-image.json")
    with caplog.at_level(logging.WARNING, logger="pitrdiff.diff.incremental"):
        diff = diff_incremental(NEW_IMAGE, tmp_path / "diff", key_schema=KEY)
    assert "NEW_IMAGE" in caplog.text and "nothing can be put back" in caplog.text
    counts = diff.manifest.live["counts"]
    assert counts["present-unknown"] == expected["present-unknown"]
    assert counts["deleted-no-image"] == expected["deleted-no-image"]
    assert diff.manifest.counts == {
        "deleted": 0,
        "expired": 0,
        "changed": 0,
        "added": 0,
        "unchanged": 0,
    }


def test_read_summary_reports_the_window() -> None:
    summary = read_summary(INCREMENTAL)
    assert summary.export_type == "INCREMENTAL_EXPORT"
    assert summary.output_view == "NEW_AND_OLD_IMAGES"
    assert (summary.export_from_time, summary.export_to_time) == (
        "2026-10-27T14:00:00.000Z",
        "2026-10-27T15:00:00.000Z",
    )
    assert summary.item_count == 12 and len(summary.files) == 2


# --------------------------------------------------------------------------- native export


def test_native_export_on_moto_runs_until_moto_s_missing_manifests(
    moto_server: Server, table_name: str, tmp_path: Path
) -> None:
    """moto 5 runs ExportTableToPointInTime but writes no manifests: refused, clearly.

    The request, the wait and the location are exercised against moto; the
    ingestion of a real export is covered by the fixtures above.
    """
    moto_server.create_table(table_name, PK_SK, {"pk": "S", "sk": "N"})
    client = moto_server.client()
    client.update_continuous_backups(
        TableName=table_name,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"},
    )
    moto_server.put_items(table_name, [build.A1, build.B1])
    bucket = f"native-{uuid.uuid4().hex[:10]}"
    s3 = s3_client(AwsConfig(region="us-east-1"), endpoint_url=moto_server.endpoint)
    s3.create_bucket(Bucket=bucket)

    started = start_native_export(
        table_name, at="2026-10-27T14:00:00Z", s3_bucket=bucket, s3_prefix="p", aws=moto_server.aws
    )
    assert started.status == "IN_PROGRESS" or started.status == "COMPLETED"
    # the TTL setting is read from the table, to be recorded in the export's manifest
    assert started.table_facts["ttl"] == {
        "attribute": "expires",
        "status": "ENABLED",
        "source": "DescribeTimeToLive",
    }
    done = wait_native_export(started, aws=moto_server.aws, poll_seconds=0.05, timeout_seconds=30)
    assert done.status == "COMPLETED"
    assert done.location.startswith(f"s3://{bucket}/p/AWSDynamoDB/")
    description = client.describe_export(ExportArn=done.export_arn)["ExportDescription"]
    assert description["ExportFormat"] == "DYNAMODB_JSON"
    assert description["ExportType"] == "FULL_EXPORT"
    written = s3.list_objects_v2(Bucket=bucket, Prefix="p/AWSDynamoDB/")["Contents"]
    assert written  # moto wrote its data file

    def run() -> Any:
        return export_native(
            table_name,
            at="2026-10-27T14:00:00Z",
            s3_bucket=bucket,
            s3_prefix="p",
            out=tmp_path / "out",
            aws=moto_server.aws,
            s3_endpoint_url=moto_server.endpoint,
            poll_seconds=0.05,
            timeout_seconds=30,
        )

    if any(o["Key"].endswith("/manifest-summary.json") for o in written):
        assert run().items == 2  # a moto that writes DynamoDB's manifests: the whole flow
    else:
        with pytest.raises(ExportError, match="not a DynamoDB export"):
            run()


def test_native_export_of_a_missing_table(moto_server: Server) -> None:
    from pitrdiff.errors import TableNotFoundError

    with pytest.raises(TableNotFoundError):
        start_native_export(
            f"missing-{uuid.uuid4().hex[:8]}",
            at="2026-10-27T14:00:00Z",
            s3_bucket="b",
            aws=moto_server.aws,
        )


# --------------------------------------------------------------------------- memory


# Peak RSS from /proc (VmHWM): unlike getrusage's ru_maxrss, it is not
# inherited from the (large) parent across fork + exec.
_MEMORY_CHILD = textwrap.dedent(
    """
    import re, sys
    from pitrdiff.export.native import ingest_export
    import pyarrow, duckdb, orjson  # loaded before the baseline

    def peak_kib():
        status = open("/proc/self/status").read()
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))

    before = peak_kib()
    ingest_export(sys.argv[1], sys.argv[2], key_schema="pk:S,sk:N", workers=1,
                  part_bytes=1 << 20)
    print(peak_kib() - before)
    """
)


def _generated_items(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "pk": {"S": f"tenant-{n % 97}"},
            "sk": {"N": str(n)},
            "status": {"S": "open" if n % 3 else "paid"},
            "price": {"N": f"{n % 1000}.{n % 100:02d}"},
            "tags": {"SS": [f"t{n % 7}", f"t{n % 11}x"]},
            "note": {"S": "x" * (4000 + n % 40)},  # ~4 KB items: volume shows
        }
        for n in range(start, start + count)
    ]


def _peak_growth_kib(tmp_path: Path, items: int) -> int:
    files = 4
    per_file = items // files
    source = build.write_full_export(
        tmp_path / f"src-{items}",
        [_generated_items(i * per_file, per_file) for i in range(files)],
        export_id=f"01700000000000-{items:08d}",
    )
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(source), str(tmp_path / f"out-{items}")],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    return int(result.stdout.strip())


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_stays_bounded_on_a_large_export(tmp_path: Path) -> None:
    """Five times the items (20 MB → 100 MB of JSON) must not take more memory.

    Items are ~4 KB of very compressible text, so a reader that decompressed
    or buffered whole files (25 MB each here) would show it.
    """
    small = _peak_growth_kib(tmp_path, 5_000)
    large = _peak_growth_kib(tmp_path, 25_000)
    assert load_export(tmp_path / "out-25000").manifest.items == 25_000
    assert small > 0  # the measurement sees the ingestion at all
    # 80 MB more data; allocator noise is a few MB (measured: +3 MB).
    assert large - small < 24 * 1024, (small, large)


def test_write_export_and_ingest_agree_on_every_type(tmp_path: Path) -> None:
    """The same items through write_export (the scan path's writer) and through ingestion."""
    items = [i for f in build.FULL_ITEMS for i in f]
    write_export(items, tmp_path / "w", table_name="Orders", key_schema=PK_SK)
    ingest_export(FULL, tmp_path / "i", key_schema=KEY)
    assert dataset_items(tmp_path / "w") == dataset_items(tmp_path / "i")


# --------------------------------------------------------------------------- command line


def cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from pitrdiff.cli.app import load_commands

    return CliRunner().invoke(load_commands(), list(args))


def test_cli_export_from_s3_local_and_moto(
    moto_server: Server, s3_bucket: str, tmp_path: Path
) -> None:
    result = cli("export", "--from-s3", str(FULL), "--key", KEY, "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    assert load_export(tmp_path / "a").manifest.items == 7
    url = f"s3://{s3_bucket}/exports/AWSDynamoDB/{build.FULL_ID}"
    result = cli(
        "export",
        "--from-s3",
        url,
        "--key",
        KEY,
        "--s3-endpoint-url",
        moto_server.endpoint,
        "--region",
        "us-east-1",
        "--workers",
        "1",
        "--out",
        str(tmp_path / "b"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["source"] == "s3-export" and document["items"] == 7
    assert document["manifest"]["source"]["location"] == url


def test_cli_export_refuses_damaged_exports_and_bad_option_mixes(tmp_path: Path) -> None:
    export_dir = copy_exports(tmp_path) / build.FULL_ID
    _wrong_md5(export_dir)
    result = cli("export", "--from-s3", str(export_dir), "--key", KEY, "--out", str(tmp_path / "o"))
    assert result.exit_code == EXIT_BAD_INPUT and "MD5" in result.output
    for args in (
        ["--native", "--from-s3", str(FULL)],
        ["--native", "Orders"],  # no --at / --s3-bucket
        ["--from-s3", str(FULL), "--at", "2026-10-27T14:00:00Z"],
    ):
        result = cli("export", *args, "--out", str(tmp_path / "x"))
        assert result.exit_code == EXIT_BAD_INPUT, (args, result.output)


def test_cli_diff_incremental_exit_codes(tmp_path: Path) -> None:
    from pitrdiff.errors import EXIT_DIFFERENCES

    result = cli(
        "diff", "--incremental", str(INCREMENTAL), "--key", KEY, "--out", str(tmp_path / "d")
    )
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    assert "1 deleted" in result.output and "3 changed" in result.output
    # NEW_IMAGE: nothing classified, but changes exist: still exit 1, with a warning
    result = cli(
        "diff", "--incremental", str(NEW_IMAGE), "--key", KEY, "--out", str(tmp_path / "n")
    )
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    assert "NEW_IMAGE" in result.output
    # --json says the same as the exit code
    result = cli(
        "diff",
        "--incremental",
        str(NEW_IMAGE),
        "--key",
        KEY,
        "--out",
        str(tmp_path / "j"),
        "--json",
    )
    assert result.exit_code == EXIT_DIFFERENCES
    assert json.loads(result.stdout)["same"] is False
    result = cli("diff", str(FULL), "--incremental", str(INCREMENTAL), "--out", str(tmp_path / "z"))
    assert result.exit_code == EXIT_BAD_INPUT


def test_binary_keys_types_learned_from_the_data(tmp_path: Path) -> None:
    """``--key id`` without a type: the first record says B, and the column is binary."""
    items = [
        {"id": {"B": base64.b64encode(bytes([n, 0, 255])).decode()}, "n": {"N": str(n)}}
        for n in range(5)
    ]
    export_dir = build.write_full_export(
        tmp_path / "src", [items[:2], items[2:]], export_id="01700000000000-d4d4d4d4"
    )
    manifest = ingest_export(export_dir, tmp_path / "out", key_schema="id")
    assert manifest.key_schema.describe() == "id (HASH, B)"
    write_export(
        items,
        tmp_path / "w",
        table_name="Orders",
        key_schema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    assert dataset_items(tmp_path / "out") == dataset_items(tmp_path / "w")
    keys = load_export(tmp_path / "out").arrow(["key"]).column("key").to_pylist()
    assert sorted(k["id"] for k in keys) == [bytes([n, 0, 255]) for n in range(5)]


def test_missing_bucket_is_an_export_error(moto_server: Server, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        ingest_export(
            f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/p/AWSDynamoDB/01-x",
            tmp_path / "out",
            key_schema=KEY,
            s3_endpoint_url=moto_server.endpoint,
            aws=AwsConfig(region="us-east-1"),
        )


def test_cli_export_native_reaches_moto_and_reports_its_missing_manifests(
    moto_server: Server, table_name: str, tmp_path: Path
) -> None:
    moto_server.create_table(table_name, PK_SK, {"pk": "S", "sk": "N"})
    moto_server.client().update_continuous_backups(
        TableName=table_name,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    bucket = f"cli-{uuid.uuid4().hex[:10]}"
    s3_client(AwsConfig(region="us-east-1"), endpoint_url=moto_server.endpoint).create_bucket(
        Bucket=bucket
    )
    result = cli(
        "export",
        table_name,
        "--native",
        "--at",
        "2026-10-27T14:00:00Z",
        "--s3-bucket",
        bucket,
        "--s3-prefix",
        "cli",
        "--endpoint-url",
        moto_server.endpoint,
        "--s3-endpoint-url",
        moto_server.endpoint,
        "--region",
        "us-east-1",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert f"s3://{bucket}/cli/AWSDynamoDB/" in result.output
    assert "not a DynamoDB export" in result.output


class _TruncatingProxy:
    """Forwards HTTP to moto; breaks off the body of the first N data-file GETs halfway."""

    def __init__(self, upstream: str, breaks: int) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        target = urlsplit(upstream)
        proxy = self
        self.breaks = breaks
        self.broken = 0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward()

            def do_HEAD(self) -> None:
                self._forward()

            def _forward(self) -> None:
                connection = http.client.HTTPConnection(str(target.hostname), target.port)
                connection.request(self.command, self.path, headers=dict(self.headers))
                response = connection.getresponse()
                body = response.read()
                with proxy.lock:
                    cut = (
                        self.command == "GET"
                        and "/data/" in self.path
                        and proxy.broken < proxy.breaks
                    )
                    proxy.broken += cut
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)
                if cut:
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

        import socket

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_transfer_broken_mid_file_is_read_again(
    moto_server: Server, s3_bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = _TruncatingProxy(moto_server.endpoint, breaks=2)
    try:
        with caplog.at_level(logging.WARNING, logger="pitrdiff.export.native"):
            manifest = ingest_export(
                f"s3://{s3_bucket}/exports/AWSDynamoDB/{build.FULL_ID}",
                tmp_path / "out",
                key_schema=KEY,
                s3_endpoint_url=proxy.url,
                aws=AwsConfig(region="us-east-1"),
                workers=1,
                part_bytes=64,  # several parts per file: a broken attempt leaves some behind
            )
    finally:
        proxy.close()
    assert proxy.broken == 2
    assert "reading the file again" in caplog.text
    assert manifest.items == 7
    expected = canonical_items([i for f in build.FULL_ITEMS for i in f])
    assert dataset_items(tmp_path / "out") == expected
    listed = {f.path for f in manifest.files}
    assert {f"data/{p.name}" for p in (tmp_path / "out" / "data").iterdir()} == listed


def test_auto_executor_spawns_processes_only_where_that_is_safe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spawned workers import ``__main__`` again: only for pitrdiff's own command or a REPL."""
    import types

    from pitrdiff.export.native.workers import PROCESS_THRESHOLD
    from pitrdiff.export.native.workers import choose_executor as _choose_executor

    script = types.ModuleType("__main__")
    script.__file__ = "/home/me/unguarded_script.py"
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert _choose_executor("auto", 2, PROCESS_THRESHOLD) == "thread"
    assert _choose_executor("process", 2, 10) == "process"  # the caller's explicit choice
    script.__file__ = "/usr/local/bin/pitrdiff"
    assert _choose_executor("auto", 2, PROCESS_THRESHOLD) == "process"
    assert _choose_executor("auto", 2, PROCESS_THRESHOLD - 1) == "thread"
    assert _choose_executor("auto", 1, PROCESS_THRESHOLD) == "thread"
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))  # a REPL
    assert _choose_executor("auto", 2, PROCESS_THRESHOLD) == "process"
    with pytest.raises(InputError):
        _choose_executor("fork", 2, 10)


def test_incremental_diff_with_a_memory_limit(tmp_path: Path) -> None:
    diff = diff_incremental(INCREMENTAL, tmp_path / "d", key_schema=KEY, memory_limit="256MB")
    _check_incremental(diff)
    with pytest.raises(InputError, match="memory limit"):
        diff_incremental(INCREMENTAL, tmp_path / "e", key_schema=KEY, memory_limit="lots")


def test_an_empty_partition_may_be_a_zero_byte_file(tmp_path: Path) -> None:
    """DynamoDB writes an empty file for an empty partition: 0 bytes or an empty gzip."""
    export_dir = copy_exports(tmp_path) / build.FULL_ID
    lines = _manifest_lines(export_dir)
    index = next(i for i, e in enumerate(lines) if e["itemCount"] == 0)
    path = export_dir.parent / lines[index]["dataFileS3Key"].split("AWSDynamoDB/", 1)[1]
    path.write_bytes(b"")
    lines[index]["md5Checksum"] = base64.b64encode(hashlib.md5(b"").digest()).decode()
    _write_manifest_lines(export_dir, lines)
    manifest = ingest_export(export_dir, tmp_path / "out", key_schema=KEY)
    assert manifest.items == 7


def test_new_image_export_with_a_start_export_is_classified(tmp_path: Path) -> None:
    """The state at the window's start comes from a full export of that time.

    Start: alice (open), bob, carol (untouched, not in the change log).
    Change log (NEW_IMAGE): dave created, alice paid, bob deleted (keys only).
    """
    write_export(
        [build.A1, build.B1, build.C1], tmp_path / "start", table_name="Orders", key_schema=PK_SK
    )
    diff = diff_incremental(
        NEW_IMAGE, tmp_path / "diff", key_schema=KEY, start_export=tmp_path / "start"
    )
    assert diff.manifest.counts == {
        "deleted": 1,
        "expired": 0,
        "changed": 1,
        "added": 1,
        "unchanged": 0,
    }
    deleted = diff.deleted(decode=False)
    assert list(deleted["restored_item"]) == [codec.canonical_json(build.B1)]
    changed = diff.changed(decode=False)
    assert list(changed["restored_item"]) == [codec.canonical_json(build.A1)]
    assert list(changed["live_item"]) == [codec.canonical_json(build.A1_PAID)]
    assert list(changed["signature"]) == ["status"]
    assert list(diff.added(decode=False)["live_item"]) == [codec.canonical_json(build.D1)]
    assert diff.manifest.restored["start_export"] == str(tmp_path / "start")

    result = cli(
        "diff",
        "--incremental",
        str(NEW_IMAGE),
        "--start-export",
        str(tmp_path / "start"),
        "--key",
        KEY,
        "--out",
        str(tmp_path / "cli"),
    )
    assert result.exit_code == 1 and "1 deleted" in result.output, result.output


def test_start_export_with_another_key_is_refused(tmp_path: Path) -> None:
    from pitrdiff.errors import SchemaMismatchError

    write_export(
        [{"id": {"S": "x"}}],
        tmp_path / "start",
        table_name="Other",
        key_schema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    with pytest.raises(SchemaMismatchError):
        diff_incremental(
            NEW_IMAGE, tmp_path / "diff", key_schema=KEY, start_export=tmp_path / "start"
        )


# --------------------------------------------------------------------------- bad input (issue 12)


def _data_parts(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "data").iterdir()) if (out / "data").is_dir() else []


def test_declared_key_types_that_contradict_the_data_are_refused(tmp_path: Path) -> None:
    """``--key pk:S,sk:S`` on data whose ``sk`` is a Number: one line naming file, key, types."""
    with pytest.raises(ExportError) as caught:
        ingest_export(FULL, tmp_path / "out", key_schema="pk:S,sk:S", workers=1)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{build.FULL_ID}/data/" in message and ".json.gz: line 1:" in message
    assert 'item {"pk":{"S":"alice"},"sk":{"N":"1"}}: ' in message
    assert "key attribute 'sk' is N but the key schema declares S" in message
    assert not read_manifest(tmp_path / "out").complete
    assert _data_parts(tmp_path / "out") == []  # nothing half-written left behind
    with pytest.raises(ExportError, match="key attribute 'pk' is S but the key schema declares B"):
        diff_incremental(INCREMENTAL, tmp_path / "diff", key_schema="pk:B,sk:N")
    assert not (tmp_path / "diff").exists()


def test_an_export_folder_copied_on_its_own_and_renamed_is_read(tmp_path: Path) -> None:
    """dataFileS3Key says AWSDynamoDB/<id>/data/...: read data/ beside the manifests."""
    copy = tmp_path / "my-copy"
    shutil.copytree(FULL, copy)
    manifest = ingest_export(copy, tmp_path / "out", key_schema=KEY)
    assert manifest.items == 7
    assert dataset_items(tmp_path / "out") == canonical_items(
        [i for f in build.FULL_ITEMS for i in f]
    )


def test_an_incremental_folder_copied_without_its_data_names_the_layout(tmp_path: Path) -> None:
    alone = tmp_path / "incremental"
    shutil.copytree(INCREMENTAL, alone)
    with pytest.raises(ExportError) as caught:
        diff_incremental(alone, tmp_path / "diff", key_schema=KEY, workers=1)
    message = str(caught.value)
    first_file = _manifest_lines(INCREMENTAL)[0]["dataFileS3Key"].rsplit("/", 1)[-1]
    assert f"{tmp_path}/data/{first_file} is missing" in message
    assert "AWSDynamoDB/data/ beside the AWSDynamoDB/<export-id>/ folder" in message
    # with the data files put inside the folder, the copy is read
    shutil.copytree(EXPORTS / "data", alone / "data")
    diff = diff_incremental(alone, tmp_path / "diff", key_schema=KEY)
    assert diff.manifest.counts["changed"] == 3 and diff.manifest.counts["deleted"] == 1


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "bottom"}
    for _ in range(levels - 1):
        value = {"M": {"a": value}}
    return value


def test_an_item_nested_deeper_than_dynamodb_allows_is_named(tmp_path: Path) -> None:
    """A local server may hold 33 levels; DynamoDB allows 32: name the item's key and the rule."""
    fine = build.order("ok", 1, doc=_nested(32))
    deep = build.order("deep", 7, doc=_nested(33))
    export_dir = build.write_full_export(
        tmp_path / "src", [[fine], [fine | {"sk": {"N": "2"}}, deep]], export_id="01-deep"
    )
    with pytest.raises(ExportError) as caught:
        ingest_export(export_dir, tmp_path / "out", key_schema=KEY, workers=1)
    message = str(caught.value)
    assert '.json.gz: line 2: item {"pk":{"S":"deep"},"sk":{"N":"7"}}: ' in message
    assert "32 levels" in message and "\n" not in message
    ingest_export(
        build.write_full_export(tmp_path / "ok", [[fine]], export_id="01-ok"),
        tmp_path / "ok-out",
        key_schema=KEY,
    )  # 32 levels are allowed


# --------------------------------------------------------------------------- TTL (issue 13)


def test_ttl_attribute_given_is_recorded(tmp_path: Path) -> None:
    manifest = ingest_export(FULL, tmp_path / "out", key_schema=KEY, ttl_attribute="expires")
    assert _recorded_ttl(tmp_path / "out") == {
        "attribute": "expires",
        "status": "ENABLED",
        "source": "--ttl-attribute",
    }
    assert manifest.complete
    ingest_export(FULL, tmp_path / "unknown", key_schema=KEY)  # the table is not asked
    assert _recorded_ttl(tmp_path / "unknown") is None


def _recorded_ttl(out: Path) -> Any:
    doc = json.loads((out / "manifest.json").read_text())
    assert "ttl" not in doc["table"]
    return doc["ttl"]


def test_ttl_setting_is_read_from_the_table(
    moto_server: Server, table_name: str, tmp_path: Path
) -> None:
    moto_server.create_table(table_name, PK_SK, {"pk": "S", "sk": "N"})
    client = moto_server.client()
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"},
    )
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table_name}"
    export_dir = build.write_full_export(
        tmp_path / "src", build.FULL_ITEMS, table_arn=arn, export_id="01700000000000-e5e5e5e5"
    )
    ingest_export(export_dir, tmp_path / "out", aws=moto_server.aws)
    assert _recorded_ttl(tmp_path / "out") == {
        "attribute": "expires",
        "status": "ENABLED",
        "source": "DescribeTimeToLive",
    }


# --------------------------------------------------------------------------- signals (issue 12)


def _big_export(root: Path, files: int = 2, per_file: int = 3000) -> Path:
    return Path(
        build.write_full_export(
            root,
            [
                [build.order(f"p{n % 97}", n, v={"S": "x" * 200}) for n in range(f, f + per_file)]
                for f in range(0, files * per_file, per_file)
            ],
            export_id="01700000000000-f1f1f1f1",
        )
    )


@pytest.mark.parametrize(
    ("executor", "signal_kind"), [("thread", KeyboardInterrupt), ("process", Terminated)]
)
def test_an_interrupted_ingestion_stops_its_workers_and_leaves_nothing(
    tmp_path: Path, executor: str, signal_kind: type[BaseException]
) -> None:
    """Ctrl-C or SIGTERM (after the first file): workers stopped, parts and temps removed."""
    source = _big_export(tmp_path / "src", files=3)
    with pytest.raises(signal_kind):
        ingest_export(
            source,
            tmp_path / "out",
            key_schema=KEY,
            workers=2,
            executor=executor,
            part_bytes=20_000,  # several parts per file
            progress=_RaiseAfter(1, signal_kind),
        )
    assert [t.name for t in threading.enumerate() if t.name.startswith("pitrdiff-")] == []
    assert multiprocessing.active_children() == []
    assert _data_parts(tmp_path / "out") == []  # no part, no temporary file
    assert not read_manifest(tmp_path / "out").complete
    # the same command again starts afresh and completes
    assert ingest_export(source, tmp_path / "out", key_schema=KEY).items == 9000


class _RaiseAfter(SilentProgress):
    def __init__(self, files: int, kind: type[BaseException]) -> None:
        self.files, self.kind = files, kind

    def advance(self, amount: float = 1, **fields: float) -> None:
        self.files -= 1
        if self.files <= 0:
            raise self.kind


def test_an_interrupted_incremental_diff_removes_its_staging(tmp_path: Path) -> None:
    with pytest.raises(Terminated):
        diff_incremental(
            INCREMENTAL,
            tmp_path / "diff",
            key_schema=KEY,
            workers=2,
            executor="thread",
            progress=_RaiseAfter(1, Terminated),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no staging, no diff


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_during_ingestion_exits_143_and_leaves_no_parts(tmp_path: Path) -> None:
    source = _big_export(tmp_path / "src", files=2, per_file=50_000)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pitrdiff", "export", "--from-s3", str(source)]
    command += ["--out", str(out), "--key", KEY, "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the manifest is written (incomplete) before the first item
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert len(stderr.decode().strip().splitlines()) == 1, stderr  # one line, no traceback
    assert _data_parts(out) == []
    assert not read_manifest(out).complete


# --------------------------------------------------------------------------- expired (issue 13)

NOW_S = build.T0 // 1_000_000  # the window's start, epoch seconds
SESSION = build.order("session#1", 1, expires={"N": str(NOW_S - 3 * 86_400)})
ORDER = build.order("order#1", 1, total={"N": "10"})
LATER = build.order("session#2", 1, expires={"N": str(NOW_S + 86_400)})  # not yet expired
TEXT = build.order("session#3", 1, expires={"S": str(NOW_S - 86_400)})  # a String never expires
ANCIENT = build.order("session#4", 1, expires={"N": str(NOW_S - 6 * 366 * 86_400)})  # > 5 years
FRACTION = build.order("session#5", 1, expires={"N": f"{NOW_S + 60}.5"})  # passed 0.5 s before


def _ttl_export(root: Path) -> Path:
    removals = [
        build.change(build.key(i["pk"]["S"], 1), old=i, at=at)
        for i, at in ((SESSION, 10), (ORDER, 20), (LATER, 30), (TEXT, 40), (ANCIENT, 50))
    ]
    removals.append(build.change(build.key("session#5", 1), old=FRACTION, at=61))
    return Path(build.write_incremental_export(root, [removals], export_id="01-ttl"))


def test_removals_past_their_ttl_are_expired_not_deleted(tmp_path: Path) -> None:
    """Sessions: TTL removed session#1 and session#5; a bug removed the others."""
    export_dir = _ttl_export(tmp_path / "src")
    diff = diff_incremental(export_dir, tmp_path / "diff", key_schema=KEY, ttl_attribute="expires")
    counts = diff.manifest.live["counts"]
    assert (counts["expired"], counts["deleted"]) == (2, 4)
    assert (diff.manifest.counts["expired"], diff.manifest.counts["deleted"]) == (2, 4)
    expired = {codec.canonical_json(i) for i in (SESSION, FRACTION)}
    table = diff.expired(arrow=True, decode=False)
    assert isinstance(table, pa.Table)
    assert set(table.column("restored_item").to_pylist()) == expired
    # the default plan puts back the order and the sessions not expired, never the expired
    from pitrdiff.recovery.plan import load_plan, write_plan

    write_plan(diff, tmp_path / "plan.jsonl")
    put_back = {
        codec.canonical_json(op.item or {})
        for op in load_plan(tmp_path / "plan.jsonl").operations()
    }
    assert put_back == {codec.canonical_json(i) for i in (ORDER, LATER, TEXT, ANCIENT)}
    assert diff.manifest.live["ttl"] == {
        "attribute": "expires",
        "status": "ENABLED",
        "source": "--ttl-attribute",
    }
    # without the TTL attribute nothing can be told expired
    plain = diff_incremental(export_dir, tmp_path / "plain", key_schema=KEY)
    assert (plain.manifest.counts["expired"], plain.manifest.counts["deleted"]) == (0, 6)


def test_ttl_micros_follows_dynamodb_rules() -> None:
    from pitrdiff.export.native.changes import ttl_micros

    assert ttl_micros({"N": "1700000000"}) == 1_700_000_000_000_000
    assert ttl_micros({"N": "1.7E9"}) == 1_700_000_000_000_000
    assert ttl_micros({"N": "1700000000.0000019"}) == 1_700_000_000_000_001  # rounded down
    assert ttl_micros({"S": "1700000000"}) is None
    assert ttl_micros({"N": "1E+400"}) is None  # beyond any time
    assert ttl_micros(None) is None


def test_cli_bad_native_exports_end_in_one_line_and_exit_2(tmp_path: Path) -> None:
    """The bad-input cases above through the command line: one `error:` line, exit 2."""
    deep = build.order("deep", 7, doc=_nested(33))
    too_deep = build.write_full_export(tmp_path / "deep", [[deep]], export_id="01-deep")
    alone = tmp_path / "alone"
    shutil.copytree(INCREMENTAL, alone)
    cases = [
        (
            ["export", "--from-s3", str(FULL), "--key", "pk:S,sk:S"],
            "key attribute 'sk' is N but the key schema declares S",
        ),
        (["export", "--from-s3", str(too_deep), "--key", KEY], "32 levels"),
        (["diff", "--incremental", str(alone), "--key", KEY, "--workers", "1"], "is missing"),
    ]
    for number, (args, words) in enumerate(cases):
        result = cli(*args, "--out", str(tmp_path / f"out-{number}"))
        assert result.exit_code == EXIT_BAD_INPUT, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines

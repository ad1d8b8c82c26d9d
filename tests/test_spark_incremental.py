"""``diff --incremental`` on Spark writes the same diff dataset as on DuckDB.

Both engines run on the incremental fixtures of ``tests/test_s3export.py``
(``tests/data/s3exports``: a change log with several records per item, split
over files and out of order; a NEW_IMAGE log; a TTL log whose removals are
partly expired), from disk and from moto's S3: class rows in the same order
with the same Arrow types, changes and signatures, counts, bytes, summary,
the manifest's ``live``/``restored`` inputs, ``report.md``. Refusals (a
corrupt gzip, an MD5 or item count that disagrees with the manifest) are the
same errors. Spark runs in local mode (the session-wide ``spark`` fixture of
``tests/conftest.py``).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pitrdiff import codec
from pitrdiff.aws import AwsConfig, s3_client
from pitrdiff.diff.incremental import diff_incremental
from pitrdiff.diff.notebook import Diff
from pitrdiff.errors import ExportError, InputError
from pitrdiff.export.dataset import write_export
from pitrdiff.spark.choose import AUTO_SPARK_MIN_ITEMS
from tests.helpers import PK_SK, Server

sys.path.insert(0, str(Path(__file__).parent / "data" / "s3exports"))
import build

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:pyspark.*"),
]

DATA = Path(__file__).parent / "data" / "s3exports"
EXPORTS = DATA / "exports" / "AWSDynamoDB"
INCREMENTAL = EXPORTS / build.INCREMENTAL_ID
NEW_IMAGE = EXPORTS / build.NEW_IMAGE_ID
KEY = "pk:S,sk:N"
EXPECTED = json.loads((DATA / "expected-incremental.json").read_text(encoding="utf-8"))


def both(source: Any, tmp: Path, **options: Any) -> tuple[Diff, Diff]:
    duck = diff_incremental(source, tmp / "duckdb", key_schema=KEY, **options)
    on_spark = diff_incremental(source, tmp / "spark", key_schema=KEY, engine="spark", **options)
    return duck, on_spark


def assert_same_dataset(duck: Diff, on_spark: Diff) -> None:
    names = [f.path for f in duck.manifest.files]
    assert [f.path for f in on_spark.manifest.files] == names
    assert set(names) >= {"deleted.parquet", "changed.parquet", "added.parquet"}
    for name in names:
        a, b = pq.read_table(duck.path / name), pq.read_table(on_spark.path / name)
        assert b.schema == a.schema, name
        assert b.equals(a), name
    md, ms = duck.manifest, on_spark.manifest
    assert [(f.path, f.rows) for f in ms.files] == [(f.path, f.rows) for f in md.files]
    assert (ms.counts, ms.bytes, ms.summary) == (md.counts, md.bytes, md.summary)
    assert (ms.live, ms.restored) == (md.live, md.restored)
    assert set(ms.timings) == set(md.timings)
    report = (duck.path / "report.md").read_text(encoding="utf-8")
    assert (on_spark.path / "report.md").read_text(encoding="utf-8") == report.replace(
        str(duck.path), str(on_spark.path)
    )


def assert_expected_classes(diff: Diff) -> None:
    """The fixture's classes as written beside it (build.py's EXPECTED_INCREMENTAL)."""
    changed = diff.changed(decode=False)
    assert list(changed["_key"]) == [codec.canonical_json(e["key"]) for e in EXPECTED["changed"]]
    assert list(changed["signature"]) == [e["signature"] for e in EXPECTED["changed"]]
    assert list(diff.deleted(decode=False)["restored_item"]) == [
        codec.canonical_json(e["restored"]) for e in EXPECTED["deleted"]
    ]
    assert list(diff.added(decode=False)["live_item"]) == [
        codec.canonical_json(e["live"]) for e in EXPECTED["added"]
    ]
    assert diff.manifest.counts == {
        "deleted": 1,
        "expired": 0,
        "changed": 3,
        "added": 1,
        "unchanged": EXPECTED["unchanged"],
    }
    live = diff.manifest.live
    assert live["records"] == EXPECTED["records"] == 12
    assert live["items_with_several_records"] == EXPECTED["items_with_several_records"] == 4
    assert live["counts"]["transient"] == EXPECTED["transient"] == 1


def test_same_dataset_from_disk(spark: Any, tmp_path: Path) -> None:
    duck, on_spark = both(INCREMENTAL, tmp_path)
    assert_same_dataset(duck, on_spark)
    assert_expected_classes(on_spark)
    changes = pq.read_table(on_spark.path / "changed.parquet").column("changes").to_pylist()
    assert changes == pq.read_table(duck.path / "changed.parquet").column("changes").to_pylist()
    assert all(changes)
    assert not list(tmp_path.glob(".spark.incremental-*"))  # staging removed


def test_same_dataset_from_moto_s3(spark: Any, moto_server: Server, tmp_path: Path) -> None:
    client = s3_client(AwsConfig(region="us-east-1"), endpoint_url=moto_server.endpoint)
    bucket = "pitrdiff-spark-incremental"
    client.create_bucket(Bucket=bucket)
    for path in (DATA / "exports").rglob("*"):
        if path.is_file():
            client.put_object(
                Bucket=bucket, Key=path.relative_to(DATA).as_posix(), Body=path.read_bytes()
            )
    url = f"s3://{bucket}/exports/AWSDynamoDB/{build.INCREMENTAL_ID}"
    options = {"s3_endpoint_url": moto_server.endpoint, "aws": AwsConfig(region="us-east-1")}
    duck, on_spark = both(url, tmp_path, **options)
    assert_same_dataset(duck, on_spark)
    assert_expected_classes(on_spark)
    assert on_spark.manifest.live["url"] == url


def test_removals_past_their_ttl_are_expired_alike(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """session#1 (TTL 3 days before) expired; order, a later TTL, a String TTL, one past
    five years: deleted. Classes streamed one by one, range-partitioned (the path of
    large diffs)."""
    from pitrdiff.diff import incremental_spark

    monkeypatch.setattr(incremental_spark, "GATHER_ROWS", 0)
    monkeypatch.setattr(incremental_spark, "ONE_PARTITION_ROWS", 0)
    now = build.T0 // 1_000_000
    session = build.order("session#1", 1, expires={"N": str(now - 3 * 86_400)})
    removals = [
        build.change(build.key(i["pk"]["S"], 1), old=i, at=at)
        for i, at in (
            (session, 10),
            (build.order("order#1", 1, total={"N": "10"}), 20),
            (build.order("session#2", 1, expires={"N": str(now + 86_400)}), 30),
            (build.order("session#3", 1, expires={"S": str(now - 86_400)}), 40),
            (build.order("session#4", 1, expires={"N": str(now - 6 * 366 * 86_400)}), 50),
        )
    ]
    source = build.write_incremental_export(tmp_path / "src", [removals[:2], removals[2:]])
    duck, on_spark = both(source, tmp_path, ttl_attribute="expires")
    assert_same_dataset(duck, on_spark)
    assert (on_spark.manifest.counts["expired"], on_spark.manifest.counts["deleted"]) == (1, 4)
    expired = on_spark.expired(arrow=True, decode=False).column("restored_item").to_pylist()
    assert expired == [codec.canonical_json(session)]


def test_new_image_is_left_unclassified_alike(
    spark: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pitrdiff.diff.incremental"):
        on_spark = diff_incremental(NEW_IMAGE, tmp_path / "spark", key_schema=KEY, engine="spark")
    assert "NEW_IMAGE" in caplog.text and "nothing can be put back" in caplog.text
    duck = diff_incremental(NEW_IMAGE, tmp_path / "duckdb", key_schema=KEY)
    assert_same_dataset(duck, on_spark)
    counts = on_spark.manifest.live["counts"]
    assert (counts["present-unknown"], counts["deleted-no-image"]) == (2, 1)
    assert sum(on_spark.manifest.counts.values()) == 0


def test_new_image_with_a_start_export_alike(spark: Any, tmp_path: Path) -> None:
    """Start: alice (open), bob, carol (untouched); the log: dave created, alice paid, bob
    deleted."""
    start = tmp_path / "start"
    write_export([build.A1, build.B1, build.C1], start, table_name="Orders", key_schema=PK_SK)
    duck, on_spark = both(NEW_IMAGE, tmp_path, start_export=start)
    assert_same_dataset(duck, on_spark)
    assert on_spark.manifest.counts == {
        "deleted": 1,
        "expired": 0,
        "changed": 1,
        "added": 1,
        "unchanged": 0,
    }
    assert list(on_spark.changed(decode=False)["signature"]) == ["status"]


def test_a_start_export_of_an_empty_table_alike(spark: Any, tmp_path: Path) -> None:
    """The table was empty at the window's start (an export without parts): dave and
    alice were added; bob, deleted by keys only, was never there (transient)."""
    write_export([], tmp_path / "start", table_name="Orders", key_schema=PK_SK)
    duck, on_spark = both(NEW_IMAGE, tmp_path, start_export=tmp_path / "start")
    assert_same_dataset(duck, on_spark)
    assert on_spark.manifest.counts == {
        "deleted": 0,
        "expired": 0,
        "changed": 0,
        "added": 2,
        "unchanged": 0,
    }
    assert on_spark.manifest.live["counts"]["transient"] == 1


def test_an_export_of_empty_files_alike(spark: Any, tmp_path: Path) -> None:
    source = build.write_incremental_export(tmp_path / "src", [[], []], export_id="01-empty")
    duck, on_spark = both(source, tmp_path)
    assert_same_dataset(duck, on_spark)
    assert on_spark.manifest.counts == dict.fromkeys(
        ("deleted", "expired", "changed", "added", "unchanged"), 0
    )
    assert on_spark.manifest.live["records"] == 0


# --------------------------------------------------------------------------- refusals


def copy_exports(tmp: Path) -> Path:
    shutil.copytree(DATA / "exports", tmp / "exports")
    return tmp / "exports" / "AWSDynamoDB" / build.INCREMENTAL_ID


def manifest_lines(export: Path) -> list[dict[str, Any]]:
    text = (export / "manifest-files.json").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def write_manifest_lines(export: Path, lines: list[dict[str, Any]]) -> None:
    data = "".join(json.dumps(e) + "\n" for e in lines).encode()
    (export / "manifest-files.json").write_bytes(data)
    (export / "manifest-files.checksum").write_text(hashlib.md5(data).hexdigest())


def second_file(export: Path) -> Path:
    """The second data file (the first one is fine: the refusal names the right one)."""
    return export.parents[2] / manifest_lines(export)[1]["dataFileS3Key"]


def recompressed(export: Path) -> None:
    """Same records, other gzip bytes: only the MD5 disagrees."""
    path = second_file(export)
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), mtime=7))


def truncated(export: Path) -> None:
    """A gzip cut short, its MD5 updated: the stream itself is corrupt."""
    path = second_file(export)
    data = path.read_bytes()[:-12]
    path.write_bytes(data)
    lines = manifest_lines(export)
    lines[1]["md5Checksum"] = base64.b64encode(hashlib.md5(data).digest()).decode()
    write_manifest_lines(export, lines)


def miscounted(export: Path) -> None:
    """The manifests promise one record more in the second file than it holds."""
    lines = manifest_lines(export)
    lines[1]["itemCount"] += 1
    write_manifest_lines(export, lines)
    summary_path = export / "manifest-summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    summary["itemCount"] += 1
    data = (json.dumps(summary, indent=2) + "\n").encode()
    summary_path.write_bytes(data)
    (export / "manifest-summary.checksum").write_text(hashlib.md5(data).hexdigest())


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (recompressed, "does not match manifest-files.json"),
        (truncated, "corrupt gzip"),
        (miscounted, "holds 6 items but manifest-files.json says 7"),
    ],
)
def test_same_refusals(spark: Any, tmp_path: Path, damage: Any, words: str) -> None:
    export = copy_exports(tmp_path)
    damage(export)
    with pytest.raises(ExportError) as duck:
        diff_incremental(export, tmp_path / "duckdb", key_schema=KEY)
    with pytest.raises(ExportError) as on_spark:
        diff_incremental(export, tmp_path / "spark", key_schema=KEY, engine="spark")
    assert type(on_spark.value) is type(duck.value)
    assert str(on_spark.value) == str(duck.value)
    assert words in str(on_spark.value)
    name = manifest_lines(export)[1]["dataFileS3Key"].rsplit("/", 1)[1]
    assert name in str(on_spark.value)
    assert on_spark.value.path == duck.value.path
    assert not (tmp_path / "spark").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports"]  # no staging left


def test_library_refusals(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="one task per data file"):
        diff_incremental(INCREMENTAL, tmp_path / "d", key_schema=KEY, engine="spark", workers=2)
    with pytest.raises(InputError, match="choose duckdb or spark"):
        diff_incremental(INCREMENTAL, tmp_path / "d", key_schema=KEY, engine="polars")
    with pytest.raises(InputError, match="--spark-master goes with"):
        diff_incremental(INCREMENTAL, tmp_path / "d", key_schema=KEY, master="local[2]")
    assert not (tmp_path / "d").exists()


def test_library_auto_stays_on_duckdb_for_a_small_export(tmp_path: Path) -> None:
    """12 records: DuckDB (``workers`` would be refused on Spark; ``master`` is dropped)."""
    diff = diff_incremental(
        INCREMENTAL, tmp_path / "d", key_schema=KEY, engine="auto", workers=1, master="local[2]"
    )
    assert_expected_classes(diff)


# --------------------------------------------------------------------------- command line


def cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from pitrdiff.cli.app import load_commands

    return CliRunner().invoke(load_commands(), list(args))


def test_cli_engine_spark_and_auto(spark: Any, tmp_path: Path) -> None:
    """``--engine spark`` writes DuckDB's dataset; ``auto`` stays on DuckDB below
    AUTO_SPARK_MIN_ITEMS records (``--workers`` is refused on Spark, so a run with
    ``--workers 1`` that succeeds ran on DuckDB)."""
    common = ["diff", "--incremental", str(INCREMENTAL), "--key", KEY, "--json"]
    duck = cli(*common, "--out", str(tmp_path / "d1"))
    on_spark = cli(*common, "--out", str(tmp_path / "d2"), "--engine", "spark")
    assert (duck.exit_code, on_spark.exit_code) == (1, 1), on_spark.output
    doc_duck, doc_spark = json.loads(duck.stdout), json.loads(on_spark.stdout)
    assert doc_spark["summary"] == doc_duck["summary"]
    assert doc_spark["same"] is doc_duck["same"] is False
    for name in ("deleted", "changed", "added", "expired"):
        a = pq.read_table(tmp_path / "d1" / f"{name}.parquet")
        assert pq.read_table(tmp_path / "d2" / f"{name}.parquet").equals(a)

    assert EXPECTED["records"] < AUTO_SPARK_MIN_ITEMS
    auto = [*common, "--engine", "auto", "--spark-master", "local[2]", "--workers", "1"]
    assert cli(*auto, "--out", str(tmp_path / "d3")).exit_code == 1
    refused = cli(*common, "--out", str(tmp_path / "d4"), "--engine", "spark", "--workers", "1")
    assert refused.exit_code == 2
    assert "one task per data file" in refused.output
    assert not (tmp_path / "d4").exists()

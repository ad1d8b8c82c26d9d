"""Native full exports ingested on Spark equal the ones ingested on one machine.

The corpus holds every DynamoDB type, and the shapes ``spark.read.json`` gets
wrong (attribute names differing only in letter case, empty maps and lists):
the Spark ingestion runs pitrdiff's own reader in each task, so the datasets
must be identical, part for part (same names, rows, bytes, checksums). Data
files are read from disk and from moto's S3; refusals (MD5, item count) are
the same errors, and leave the dataset incomplete without parts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pitrdiff.aws import AwsConfig, s3_client
from pitrdiff.errors import ExportError
from pitrdiff.export.dataset import load_export, read_manifest
from pitrdiff.export.native import ingest_export
from pitrdiff.export.native_spark import ingest_export_spark
from tests.helpers import Server

sys.path.insert(0, str(Path(__file__).parent / "data" / "s3exports"))
import build

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:pyspark.*"),
]

FIXTURES = Path(__file__).parent / "data" / "s3exports" / "exports"
FULL = FIXTURES / "AWSDynamoDB" / build.FULL_ID
KEY = "pk:S,sk:N"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def corpus_item(i: int) -> dict[str, Any]:
    """An item with every type; odd shapes on some items."""
    item: dict[str, Any] = {
        "pk": {"S": f"tenant-{i % 7}-é"},
        "sk": {"N": str(i)},
        "s": {"S": f'text {i} 日本 "quoted" \\ \n'},
        "n": {"N": f"{i}.{i % 10}0E-{i % 3}"},
        "b": {"B": b64(bytes([i % 256, 0, 255]))},
        "t": {"BOOL": i % 2 == 0},
        "z": {"NULL": True},
        "m": {"M": {"k": {"S": "v"}, "nested": {"M": {"l": {"L": [{"N": "1"}, {"S": "x"}]}}}}},
        "l": {"L": [{"N": str(i)}, {"M": {}}, {"L": []}, {"BOOL": False}]},
        "ss": {"SS": [f"b{i}", "a", "é"]},
        "ns": {"NS": ["10", "2", "2.0", str(-i)]},
        "bs": {"BS": [b64(b"z"), b64(b"\x00"), b64(bytes([i % 256]))]},
    }
    if i % 3 == 0:  # names differing only in letter case: spark.read.json merges them
        item["Status"] = {"S": "upper"}
        item["status"] = {"S": "lower"}
    if i % 4 == 0:  # empty map and list: spark.read.json drops them
        item["empty_map"] = {"M": {}}
        item["empty_list"] = {"L": []}
    if i % 5 == 0:
        item["big"] = {"N": "9" * 38}
        item["tiny"] = {"N": "1E-130"}
    return item


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A four-file export (one file empty) of 240 items of every type."""
    root = tmp_path_factory.mktemp("corpus")
    items = [corpus_item(i) for i in range(240)]
    files = [items[:100], [], items[100:130], items[130:]]
    return build.write_full_export(root, files, export_id="01761573600000-c0c0c0c0")


def assert_same_dataset(one: Path, other: Path) -> None:
    a, b = read_manifest(one), read_manifest(other)
    assert a.complete and b.complete
    assert [f.to_dict() for f in b.files] == [f.to_dict() for f in a.files]
    assert (b.items, b.bytes, b.key_schema, b.table_name) == (
        a.items,
        a.bytes,
        a.key_schema,
        a.table_name,
    )
    assert {k: v for k, v in b.source.items() if not k.endswith("_at")} == {
        k: v for k, v in a.source.items() if not k.endswith("_at")
    }
    rows_a: pa.Table = load_export(one, verify=True).arrow()
    rows_b: pa.Table = load_export(other, verify=True).arrow()
    assert rows_b.equals(rows_a)


@pytest.mark.parametrize("which", ["fixture", "corpus"])
def test_same_dataset_as_one_machine(spark: Any, corpus: Path, tmp_path: Path, which: str) -> None:
    source = FULL if which == "fixture" else corpus
    local = ingest_export(source, tmp_path / "local", key_schema=KEY, executor="thread")
    on_spark = ingest_export_spark(source, tmp_path / "spark", key_schema=KEY)
    assert on_spark.items == local.items == (7 if which == "fixture" else 240)
    assert on_spark.stats["engine"] == "spark"
    assert on_spark.stats["data_files"] == (3 if which == "fixture" else 4)
    assert_same_dataset(tmp_path / "local", tmp_path / "spark")
    if which == "corpus":
        items = {json.dumps(i, sort_keys=True) for i in load_export(tmp_path / "spark").items()}
        assert any('"Status"' in i and '"status"' in i for i in items)
        assert any('"empty_map": {"M": {}}' in i for i in items)


def test_same_dataset_from_moto_s3(spark: Any, moto_server: Server, tmp_path: Path) -> None:
    client = s3_client(AwsConfig(region="us-east-1"), endpoint_url=moto_server.endpoint)
    bucket = "pitrdiff-spark-native"
    client.create_bucket(Bucket=bucket)
    for path in FIXTURES.rglob("*"):
        if path.is_file():
            client.put_object(
                Bucket=bucket, Key=str(path.relative_to(FIXTURES.parent)), Body=path.read_bytes()
            )
    url = f"s3://{bucket}/exports/AWSDynamoDB/{build.FULL_ID}"
    ingest_export(FULL, tmp_path / "local", key_schema=KEY, executor="thread")
    manifest = ingest_export_spark(
        url, tmp_path / "spark", key_schema=KEY, s3_endpoint_url=moto_server.endpoint
    )
    assert manifest.source["location"] == url
    a, b = read_manifest(tmp_path / "local"), read_manifest(tmp_path / "spark")
    assert [f.to_dict() for f in b.files] == [f.to_dict() for f in a.files]
    assert (
        load_export(tmp_path / "spark", verify=True)
        .arrow()
        .equals(load_export(tmp_path / "local").arrow())
    )


def copy_export(source: Path, root: Path) -> Path:
    """A copy of an export's tree (manifests and data) under ``root``."""
    base = source.parents[1]  # .../<prefix>
    for path in base.rglob("*"):
        if path.is_file() and (source.name in path.parts or path.parent.name == "data"):
            target = root / path.relative_to(base.parent)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return root / source.relative_to(base.parent)


def corrupt_a_file(export: Path) -> None:
    entries = [json.loads(x) for x in (export / "manifest-files.json").read_text().splitlines()]
    data = export.parents[1].parent / entries[0]["dataFileS3Key"]
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    data.write_bytes(bytes(raw))


def miscount_a_file(export: Path) -> None:
    lines = (export / "manifest-files.json").read_text().splitlines()
    entries = [json.loads(x) for x in lines]
    entries[2]["itemCount"] += 1
    summary = json.loads((export / "manifest-summary.json").read_text())
    summary["itemCount"] += 1
    files = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries).encode()
    (export / "manifest-files.json").write_bytes(files)
    (export / "manifest-files.checksum").write_text(hashlib.md5(files).hexdigest())
    summary_bytes = (json.dumps(summary, indent=2) + "\n").encode()
    (export / "manifest-summary.json").write_bytes(summary_bytes)
    (export / "manifest-summary.checksum").write_text(hashlib.md5(summary_bytes).hexdigest())


@pytest.mark.parametrize(
    ("damage", "words"),
    [(corrupt_a_file, "does not match manifest-files.json"), (miscount_a_file, "items but")],
)
def test_same_refusals(spark: Any, tmp_path: Path, damage: Any, words: str) -> None:
    export = copy_export(FULL, tmp_path / "src")
    damage(export)
    with pytest.raises(ExportError) as local:
        ingest_export(export, tmp_path / "local", key_schema=KEY, executor="thread")
    with pytest.raises(ExportError) as on_spark:
        ingest_export_spark(export, tmp_path / "spark", key_schema=KEY)
    assert str(on_spark.value) == str(local.value)
    assert words in str(on_spark.value)
    assert on_spark.value.path == local.value.path
    assert not read_manifest(tmp_path / "spark").complete
    assert list((tmp_path / "spark" / "data").iterdir()) == []


def test_job_entry_point_ingests_and_diffs(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cluster job (``pitrdiff.spark.job``): ingest two exports, diff them, as Glue runs it."""
    from pitrdiff.spark.job import main

    glue = ["--JOB_NAME", "pitrdiff", "--TempDir", "s3://glue-temp/"]  # ignored
    for name, source in (("live", FULL), ("restored", FULL)):
        main([*glue, "--command", "ingest", "--source", str(source), "--key", KEY,
              "--out", str(tmp_path / name)])  # fmt: skip
        assert json.loads(capsys.readouterr().out)["items"] == 7
    main([*glue, "--command", "diff", "--live", str(tmp_path / "live"),
          "--restored", str(tmp_path / "restored"), "--out", str(tmp_path / "diff")])  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["same"] is True
    counts = result["counts"]
    assert counts.pop("unchanged") == 7
    assert set(counts) >= {"deleted", "changed", "added"} and set(counts.values()) == {0}
    with pytest.raises(SystemExit) as exited:
        main(["--command", "diff", "--live", str(tmp_path / "live"), "--out", str(tmp_path / "x")])
    assert exited.value.code == 2
    assert (
        capsys.readouterr().err == "pitrdiff: --command diff needs --live DIR and --restored DIR\n"
    )


def upload_tree(client: Any, bucket: str, local: Path, prefix: str) -> None:
    for path in local.rglob("*"):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(local).as_posix()}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


def test_job_diffs_exports_on_s3_into_a_diff_on_s3(
    spark: Any, moto_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Glue's case: exports on S3 in, the diff dataset on S3 out (manifest last), verified."""
    import pitrdiff
    from pitrdiff.diff.exports import diff_exports
    from pitrdiff.diff.notebook import load_diff
    from pitrdiff.spark.job import main

    case = json.loads((Path(__file__).parent / "data" / "diff_cases" / "every_class.json")
                      .read_text(encoding="utf-8"))  # fmt: skip
    for side in ("live", "restored"):
        pitrdiff.write_export(case[side], tmp_path / side, table_name=f"Orders-{side}",
                              key_schema=case["key_schema"],
                              attribute_definitions=case["attribute_definitions"])  # fmt: skip
    client = s3_client(AwsConfig(region="us-east-1"), endpoint_url=moto_server.endpoint)
    bucket = "pitrdiff-spark-datasets"
    client.create_bucket(Bucket=bucket)
    for side in ("live", "restored"):
        upload_tree(client, bucket, tmp_path / side, f"exports/{side}")
    args = ["--command", "diff", "--live", f"s3://{bucket}/exports/live", "--restored",
            f"s3://{bucket}/exports/restored", "--out", f"s3://{bucket}/diffs/one",
            "--s3-endpoint-url", moto_server.endpoint]  # fmt: skip
    main(args)
    assert json.loads(capsys.readouterr().out)["same"] is False
    keys = [
        o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="diffs/one/")["Contents"]
    ]
    local = tmp_path / "downloaded"
    for key in keys:
        target = local / key.removeprefix("diffs/one/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    on_s3 = load_diff(local, verify=True)
    reference = diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "duck")
    assert on_s3.manifest.counts == reference.manifest.counts
    assert on_s3.manifest.live["path"] == f"s3://{bucket}/exports/live"
    for entry in reference.manifest.files:
        assert pq.read_table(local / entry.path).equals(pq.read_table(reference.path / entry.path))
    with pytest.raises(SystemExit) as again:  # a complete diff is not replaced unasked
        main(args)
    assert again.value.code == 2
    assert "already holds a diff" in capsys.readouterr().err
    part = next((tmp_path / "restored" / "data").glob("*.parquet"))
    key = f"exports/restored/data/{part.name}"
    client.put_object(Bucket=bucket, Key=key, Body=part.read_bytes()[:-10])  # truncated
    with pytest.raises(SystemExit) as corrupt:
        main([*args, "--overwrite", "true"])
    assert corrupt.value.code == 2
    assert "the manifest says" in capsys.readouterr().err


def test_job_ingests_into_an_export_dataset_on_s3(
    spark: Any, moto_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each task uploads its parts; the manifest comes last; the dataset equals the local one."""
    from pitrdiff.spark.job import main

    client = s3_client(AwsConfig(region="us-east-1"), endpoint_url=moto_server.endpoint)
    bucket = "pitrdiff-spark-ingest"
    client.create_bucket(Bucket=bucket)
    out = f"s3://{bucket}/exports/orders"
    args = ["--command", "ingest", "--source", str(FULL), "--key", KEY, "--out", out,
            "--s3-endpoint-url", moto_server.endpoint]  # fmt: skip
    main(args)
    assert json.loads(capsys.readouterr().out)["items"] == 7
    local = ingest_export(FULL, tmp_path / "local", key_schema=KEY, executor="thread")
    listed = client.list_objects_v2(Bucket=bucket, Prefix="exports/orders/")["Contents"]
    keys = sorted(o["Key"].removeprefix("exports/orders/") for o in listed)
    assert keys == sorted(["manifest.json", *(f.path for f in local.files)])
    copy = tmp_path / "copy"
    for key in keys:
        (copy / key).parent.mkdir(parents=True, exist_ok=True)
        body = client.get_object(Bucket=bucket, Key=f"exports/orders/{key}")["Body"].read()
        (copy / key).write_bytes(body)
    assert_same_dataset(tmp_path / "local", copy)
    with pytest.raises(SystemExit) as again:
        main(args)
    assert again.value.code == 2
    assert "already holds a complete export" in capsys.readouterr().err

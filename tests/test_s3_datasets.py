"""Export and diff datasets on S3 (``s3://bucket/prefix``) for every command, against moto's S3.

The same rules as on disk: parts first and the manifest last (marked
incomplete before any part changes), the manifest read first and refused
unless complete, every file checked against the manifest's size and xxh3-128
before use, ``--out`` prefixes refused as directories are; and no local copy
outlives the run (an interrupt included).
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

import pitrdiff
from pitrdiff.aws import AwsConfig, s3_client
from pitrdiff.cli.app import load_commands
from pitrdiff.errors import (
    EXIT_BAD_INPUT,
    EXIT_DIFFERENCES,
    EXIT_OK,
    DiffError,
    ExportError,
    IncompleteExportError,
    InputError,
    RefusedError,
)
from pitrdiff.export import outdir, remote
from pitrdiff.export.scan import export_table
from pitrdiff.progress import SILENT
from tests.helpers import InterruptAfter, Server

CASE = json.loads(
    (Path(__file__).parent / "data" / "diff_cases" / "every_class.json").read_text("utf-8")
)


def own_copies() -> list[str]:
    """This process's local copies of S3 datasets still on disk."""
    tag = f"-{os.getpid()}-"
    return sorted(
        e.name
        for e in Path(tempfile.gettempdir()).iterdir()
        if e.name.startswith("pitrdiff-s3-") and tag in e.name
    )


@pytest.fixture
def s3(moto_server: Server) -> Any:
    """A fresh bucket; the client and the endpoint."""
    client = s3_client(AwsConfig(region="us-east-1"), endpoint_url=moto_server.endpoint)
    bucket = f"datasets-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)

    class S3:
        endpoint = moto_server.endpoint
        name = bucket

        @staticmethod
        def keys(prefix: str) -> list[str]:
            listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
            return sorted(o["Key"].removeprefix(f"{prefix}/") for o in listed.get("Contents", []))

        @staticmethod
        def get(key: str) -> bytes:
            return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())

        @staticmethod
        def put(key: str, body: bytes) -> None:
            client.put_object(Bucket=bucket, Key=key, Body=body)

        @staticmethod
        def download(prefix: str, target: Path) -> Path:
            for key in S3.keys(prefix):
                (target / key).parent.mkdir(parents=True, exist_ok=True)
                (target / key).write_bytes(S3.get(f"{prefix}/{key}"))
            return target

    yield S3
    gc.collect()  # a copy whose owner a caught exception's traceback still held in a cycle
    assert own_copies() == []


def upload_exports(s3: Any, tmp_path: Path) -> None:
    """The every-class case as two local exports, published to ``exports/live|restored``."""
    for side in ("live", "restored"):
        local = tmp_path / side
        pitrdiff.write_export(
            CASE[side],
            local,
            table_name="Orders" if side == "live" else "Orders-restored",
            key_schema=CASE["key_schema"],
            attribute_definitions=CASE["attribute_definitions"],
        )
        where = remote.S3Prefix.parse(f"s3://{s3.name}/exports/{side}", endpoint_url=s3.endpoint)
        remote.publish(local, where, remote.check_out(where, "export", overwrite=False))


def cli(*args: str) -> Any:
    return CliRunner().invoke(load_commands(), list(args))


def test_export_diff_plan_report_and_notebook_on_s3(
    moto_server: Server, s3: Any, table_name: str, tmp_path: Path
) -> None:
    """Every command on s3:// datasets; a plan from S3 equals one from the same diff on disk."""
    moto_server.create_table(table_name)
    items = [{"pk": {"S": f"k{n}"}, "sk": {"S": "a"}, "v": {"N": str(n)}} for n in range(12)]
    moto_server.put_items(table_name, items)
    ep = ("--endpoint-url", moto_server.endpoint, "--s3-endpoint-url", s3.endpoint)
    url = f"s3://{s3.name}/incident"
    result = cli("export", table_name, "--out", f"{url}/restored", *ep)
    assert result.exit_code == EXIT_OK, result.output
    written = orjson.loads(s3.get("incident/restored/manifest.json"))
    assert written["complete"] is True and written["items"] == 12
    assert s3.keys("incident/restored") == sorted(
        ["manifest.json", *(f["path"] for f in written["files"])]
    )
    client = moto_server.client()
    client.delete_item(TableName=table_name, Key={"pk": {"S": "k3"}, "sk": {"S": "a"}})
    moto_server.put_items(table_name, [{"pk": {"S": "k4"}, "sk": {"S": "a"}, "v": {"N": "44"}}])
    result = cli("export", table_name, "--out", f"{url}/live", *ep, "--json")
    assert result.exit_code == EXIT_OK, result.output
    assert json.loads(result.stdout)["out"] == f"{url}/live"

    result = cli("diff", f"{url}/live", f"{url}/restored", "--out", f"{url}/diff", *ep, "--json")
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    shown = json.loads(result.stdout)
    assert (shown["diff"], shown["report"]) == (f"{url}/diff", f"{url}/diff/report.md")
    assert s3.keys("incident/diff") == [
        "added.parquet", "changed.parquet", "deleted.parquet", "expired.parquet",
        "manifest.json", "report.html", "report.md",
    ]  # fmt: skip
    manifest = orjson.loads(s3.get("incident/diff/manifest.json"))
    assert manifest["counts"] == {
        "deleted": 1, "changed": 1, "added": 0, "expired": 0, "unchanged": 10,
    }  # fmt: skip
    assert (manifest["live"]["path"], manifest["restored"]["path"]) == (
        f"{url}/live",
        f"{url}/restored",
    )

    local = s3.download("incident/diff", tmp_path / "diff")
    plans = {}
    for name, source in (("s3", f"{url}/diff"), ("disk", str(local))):
        out = tmp_path / f"{name}.jsonl"
        result = cli("plan", source, "--out", str(out), "--include", "deleted,changed", *ep)
        assert result.exit_code == EXIT_OK, result.output
        plans[name] = out.read_bytes().splitlines()
    headers = {name: orjson.loads(lines[0]) for name, lines in plans.items()}
    assert headers["s3"]["diff"]["path"] == f"{url}/diff"
    assert headers["disk"]["diff"]["path"] == str(local.resolve())
    for header in headers.values():
        header.pop("created_at"), header["diff"].pop("path")
    assert headers["s3"] == headers["disk"]
    assert plans["s3"][1:-1] == plans["disk"][1:-1]  # operations, byte for byte
    trailers = [orjson.loads(lines[-1]) for lines in plans.values()]
    assert trailers[0]["operations"] == trailers[1]["operations"] == 2  # checksums cover headers
    assert len(plans["s3"]) == 1 + 2 + 1  # header, two operations, trailer

    remote.S3Prefix.parse(f"{url}/diff", endpoint_url=s3.endpoint).delete(["report.html"])
    result = cli("report", f"{url}/diff", *ep)
    assert result.exit_code == EXIT_OK, result.output
    assert result.stdout.strip() == f"{url}/diff/report.html"
    result = cli("report", str(local), *ep)  # the same diff on disk renders the same page
    assert s3.get("incident/diff/report.html") == (local / "report.html").read_bytes()
    assert cli("report", f"{url}/diff", "--open", *ep).exit_code == EXIT_BAD_INPUT

    diff = pitrdiff.load_diff(f"{url}/diff", s3_endpoint_url=s3.endpoint)
    assert repr(diff).endswith(f" at {url}/diff>")
    assert list(diff.deleted()["pk"]) == ["k3"]
    assert diff.sql("select count(*) as n from changed")["n"].tolist() == [1]
    copy = diff.path
    assert copy.is_dir() and own_copies()
    del diff
    gc.collect()
    assert not copy.exists()


def test_library_diff_s3_to_s3_matches_disk(s3: Any, tmp_path: Path) -> None:
    upload_exports(s3, tmp_path)
    url = f"s3://{s3.name}"
    export = pitrdiff.load_export(f"{url}/exports/live", s3_endpoint_url=s3.endpoint)
    assert (export.url, export.manifest.items) == (f"{url}/exports/live", len(CASE["live"]))
    assert export.to_pandas().shape[0] == len(CASE["live"])
    del export
    on_s3 = pitrdiff.diff_exports(
        f"{url}/exports/live", tmp_path / "restored", f"{url}/diffs/one",
        s3_endpoint_url=s3.endpoint,
    )  # fmt: skip
    on_disk = pitrdiff.diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    assert on_s3.manifest.counts == on_disk.manifest.counts
    assert on_s3.manifest.live["path"] == f"{url}/exports/live"
    for entry in on_disk.manifest.files:
        assert s3.get(f"diffs/one/{entry.path}") == (on_disk.path / entry.path).read_bytes()
    del on_s3
    with pytest.raises(RefusedError, match="already holds a diff of 'Orders'; pass --overwrite"):
        pitrdiff.diff_exports(tmp_path / "live", tmp_path / "restored", f"{url}/diffs/one",
                              s3_endpoint_url=s3.endpoint)  # fmt: skip
    with pytest.raises(RefusedError, match="inside the diff dataset"):
        pitrdiff.diff_exports(tmp_path / "live", tmp_path / "restored", f"{url}/diffs/one/x",
                              s3_endpoint_url=s3.endpoint)  # fmt: skip


def test_corrupt_truncated_and_missing_parts_are_refused(s3: Any, tmp_path: Path) -> None:
    upload_exports(s3, tmp_path)
    url = f"s3://{s3.name}/exports/restored"
    part = "exports/restored/data/part-000000.parquet"
    good = s3.get(part)
    s3.put(part, good[:-1] + bytes([good[-1] ^ 1]))  # same size, one bit flipped
    with pytest.raises(ExportError, match=r"part data/part-000000\.parquet does not match its ch"):
        pitrdiff.load_export(url, s3_endpoint_url=s3.endpoint)
    result = cli("diff", f"s3://{s3.name}/exports/live", url, "--out", str(tmp_path / "d"),
                 "--s3-endpoint-url", s3.endpoint)  # fmt: skip
    assert result.exit_code == EXIT_BAD_INPUT
    assert "restored export: export s3://" in result.output
    assert not (tmp_path / "d").exists()
    s3.put(part, good[:-10])
    with pytest.raises(ExportError, match=f"is {len(good) - 10} bytes, the manifest says"):
        pitrdiff.load_export(url, s3_endpoint_url=s3.endpoint)
    remote.S3Prefix.parse(url, endpoint_url=s3.endpoint).delete(["data/part-000000.parquet"])
    with pytest.raises(ExportError, match=r"part data/part-000000\.parquet is missing"):
        pitrdiff.load_export(url, s3_endpoint_url=s3.endpoint)
    s3.put(part, good)
    s3.put("exports/restored/data/part-000007.parquet", good)
    with pytest.raises(IncompleteExportError, match="part\\(s\\) the manifest does not list"):
        pitrdiff.load_export(url, s3_endpoint_url=s3.endpoint)


def test_incomplete_or_missing_datasets_are_refused(s3: Any, tmp_path: Path) -> None:
    upload_exports(s3, tmp_path)
    doc = orjson.loads(s3.get("exports/live/manifest.json"))
    s3.put("exports/live/manifest.json", orjson.dumps({**doc, "complete": False}))
    url = f"s3://{s3.name}/exports/live"
    with pytest.raises(IncompleteExportError, match=f"export {url} is not complete"):
        pitrdiff.load_export(url, s3_endpoint_url=s3.endpoint)
    with pytest.raises(ExportError, match=r"is not an export: it has no manifest\.json"):
        pitrdiff.load_export(f"s3://{s3.name}/nothing", s3_endpoint_url=s3.endpoint)
    with pytest.raises(DiffError, match="is an export dataset, not a diff"):
        pitrdiff.load_diff(f"s3://{s3.name}/exports/restored", s3_endpoint_url=s3.endpoint)
    with pytest.raises(InputError, match="bucket 'no-such-bucket-h1' does not exist"):
        pitrdiff.load_export("s3://no-such-bucket-h1/x", s3_endpoint_url=s3.endpoint)
    for bad in ("s3://", "s3://bucket-only", "s3://bucket/a//b"):
        with pytest.raises(InputError, match="expected s3://BUCKET/PREFIX"):
            pitrdiff.load_export(bad, s3_endpoint_url=s3.endpoint)
    result = cli("plan", f"s3://{s3.name}/exports/live", "--out", str(tmp_path / "p.jsonl"),
                 "--s3-endpoint-url", s3.endpoint)  # fmt: skip
    assert (result.exit_code, tmp_path.joinpath("p.jsonl").exists()) == (EXIT_BAD_INPUT, False)


def test_out_prefix_refusals_and_overwrite(s3: Any, tmp_path: Path) -> None:
    upload_exports(s3, tmp_path)
    live = remote.S3Prefix.parse(f"s3://{s3.name}/exports/live", endpoint_url=s3.endpoint)
    with pytest.raises(RefusedError, match="already holds a complete export of 'Orders'"):
        remote.check_out(live, "export", overwrite=False)
    # an older export there listed a second part: --overwrite removes it after the new manifest
    doc = orjson.loads(s3.get("exports/live/manifest.json"))
    extra = {**doc["files"][0], "path": "data/part-000001.parquet"}
    s3.put("exports/live/data/part-000001.parquet", b"old")
    s3.put("exports/live/manifest.json", orjson.dumps({**doc, "files": [*doc["files"], extra]}))
    old = remote.check_out(live, "export", overwrite=True)
    remote.publish(tmp_path / "live", live, old)
    assert s3.keys("exports/live") == ["data/part-000000.parquet", "manifest.json"]
    assert s3.get("exports/live/manifest.json") == (tmp_path / "live/manifest.json").read_bytes()

    s3.put("exports/live/notes.txt", b"mine")
    with pytest.raises(RefusedError, match=r"1 object\(s\) pitrdiff did not write \(notes.txt\)"):
        remote.check_out(live, "export", overwrite=True)
    s3.put("other/readme.md", b"x")
    other = remote.S3Prefix.parse(f"s3://{s3.name}/other", endpoint_url=s3.endpoint)
    with pytest.raises(RefusedError, match="is not empty and is not an export; choose another"):
        remote.check_out(other, "export", overwrite=True)
    with pytest.raises(RefusedError, match="is not empty and is not a diff"):
        remote.check_out(other, "diff", overwrite=True)
    inside = remote.S3Prefix.parse(f"s3://{s3.name}/exports/live/sub", endpoint_url=s3.endpoint)
    with pytest.raises(RefusedError, match="refusing to write a diff inside the export dataset"):
        remote.check_out(inside, "diff", overwrite=True)


def test_interrupts_leave_no_local_copy_and_a_replaceable_prefix(
    moto_server: Server, s3: Any, table_name: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """Ctrl-C while exporting, uploading or copying: no local copy is left on disk."""
    moto_server.create_table(table_name)
    moto_server.put_items(table_name, [{"pk": {"S": f"k{n}"}, "sk": {"S": "a"}} for n in range(30)])
    url = f"s3://{s3.name}/scan"

    def export(progress: Any, overwrite: bool = False) -> Any:
        return remote.export_to_s3(
            url,
            lambda local: export_table(table_name, local, aws=moto_server.aws, progress=progress),
            overwrite=overwrite,
            endpoint_url=s3.endpoint,
        )

    with pytest.raises(KeyboardInterrupt):
        export(InterruptAfter(1))  # during the scan: nothing on S3 yet
    assert (own_copies(), s3.keys("scan")) == ([], [])

    real_upload = remote.S3Prefix.upload

    def interrupted(self: remote.S3Prefix, local: Path, relative: str) -> None:
        real_upload(self, local, relative)
        raise KeyboardInterrupt

    monkeypatch.setattr(remote.S3Prefix, "upload", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export(SILENT)
    monkeypatch.undo()
    assert own_copies() == []
    assert orjson.loads(s3.get("scan/manifest.json"))["complete"] is False
    with pytest.raises(IncompleteExportError):
        pitrdiff.load_export(url, s3_endpoint_url=s3.endpoint)
    manifest = export(SILENT)  # an interrupted one is replaced without --overwrite
    assert manifest.complete and manifest.items == 30

    real_read = remote.checked_read

    def read_then_interrupt(*args: Any, **kwargs: Any) -> Any:
        real_read(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(remote, "checked_read", read_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        pitrdiff.load_export(url, s3_endpoint_url=s3.endpoint)
    assert own_copies() == []


NATIVE = Path(__file__).parent / "data" / "s3exports" / "exports" / "AWSDynamoDB"


def test_native_ingestion_and_incremental_diff_into_s3(s3: Any, tmp_path: Path) -> None:
    """``export --from-s3 … --out s3://…`` and ``diff --incremental … --out s3://…``."""
    ep = ("--s3-endpoint-url", s3.endpoint)
    key = ("--key", "pk:S,sk:N")
    full = str(NATIVE / "01761573600000-f0f0f0f0")
    result = cli("export", "--from-s3", full, *key, "--out", f"s3://{s3.name}/ingested", *ep)
    assert result.exit_code == EXIT_OK, result.output
    on_disk = cli("export", "--from-s3", full, *key, "--out", str(tmp_path / "ingested"))
    assert on_disk.exit_code == EXIT_OK, on_disk.output
    local = pitrdiff.load_export(tmp_path / "ingested")
    staged = pitrdiff.load_export(f"s3://{s3.name}/ingested", s3_endpoint_url=s3.endpoint)
    assert [f.xxh3_128 for f in staged.manifest.files] == [f.xxh3_128 for f in local.manifest.files]
    assert staged.manifest.items == local.manifest.items == 7
    del staged

    incremental = str(NATIVE / "01761577200000-a1a1a1a1")
    out = f"s3://{s3.name}/window"
    result = cli("diff", "--incremental", incremental, *key, "--out", out, *ep, "--json")
    assert result.exit_code == EXIT_DIFFERENCES, result.output
    assert json.loads(result.stdout)["diff"] == out
    counts = orjson.loads(s3.get("window/manifest.json"))["counts"]
    assert (counts["deleted"], counts["changed"]) == (1, 3)
    result = cli("diff", "--incremental", incremental, *key, "--out", out, *ep)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "already holds a diff" in result.output


def test_library_export_and_ingest_to_s3_never_make_a_local_s3_folder(
    moto_server: Server, s3: Any, table_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``export_table`` and ``ingest_export`` given ``out="s3://…"`` publish there (not ./s3:)."""
    monkeypatch.chdir(tmp_path)
    moto_server.create_table(table_name)
    items = [{"pk": {"S": f"k{n}"}, "sk": {"S": "a"}, "v": {"N": str(n)}} for n in range(5)]
    moto_server.put_items(table_name, items)
    manifest = export_table(
        table_name, f"s3://{s3.name}/lib/scan", aws=moto_server.aws, s3_endpoint_url=s3.endpoint
    )
    assert manifest.items == 5
    assert orjson.loads(s3.get("lib/scan/manifest.json"))["items"] == 5
    ingested = pitrdiff.ingest_export(
        str(NATIVE / "01761573600000-f0f0f0f0"),
        f"s3://{s3.name}/lib/native",
        key_schema="pk:S,sk:N",
        s3_endpoint_url=s3.endpoint,
    )
    assert ingested.items == orjson.loads(s3.get("lib/native/manifest.json"))["items"] == 7
    with pytest.raises(RefusedError):  # a complete export is there now
        export_table(
            table_name, f"s3://{s3.name}/lib/scan", aws=moto_server.aws, s3_endpoint_url=s3.endpoint
        )
    assert list(tmp_path.iterdir()) == []


def test_spark_reads_s3_inputs_on_the_executors(s3: Any, tmp_path: Path) -> None:
    """With ``engine="spark"`` an s3:// input is not copied to the driver: Spark's executors
    check and read its parts on S3 (that diff itself: tests/test_spark_native.py's job test)."""
    from pitrdiff.diff.exports import _open_input
    from pitrdiff.spark.s3 import S3Export

    upload_exports(s3, tmp_path)
    url = f"s3://{s3.name}/exports/live"
    on_spark = _open_input(url, "live", spark=True, s3_endpoint_url=s3.endpoint)
    assert isinstance(on_spark, S3Export) and on_spark.url == url
    assert on_spark.parquet_files == [f"{url}/data/part-000000.parquet"]
    assert own_copies() == []
    on_duckdb = _open_input(url, "live", spark=False, s3_endpoint_url=s3.endpoint)
    assert not isinstance(on_duckdb, S3Export) and on_duckdb.path.is_dir()
    del on_duckdb
    s3.put("exports/live/manifest.json", b"{")
    with pytest.raises(ExportError, match=r"^live export: s3://.* is not valid JSON"):
        _open_input(url, "live", spark=True, s3_endpoint_url=s3.endpoint)


def test_incremental_start_export_on_s3(s3: Any, tmp_path: Path) -> None:
    """``--start-export s3://…`` is staged like any input (a Path would fold ``//``)."""
    from tests.test_s3export import PK_SK, build

    start = tmp_path / "start"
    pitrdiff.write_export(
        [build.A1, build.B1, build.C1], start, table_name="Orders", key_schema=PK_SK
    )
    where = remote.S3Prefix.parse(f"s3://{s3.name}/start", endpoint_url=s3.endpoint)
    remote.publish(start, where, remote.check_out(where, "export", overwrite=False))
    new_image = str(NATIVE / build.NEW_IMAGE_ID)
    args = ("--key", "pk:S,sk:N", "--s3-endpoint-url", s3.endpoint, "--json")
    on_s3 = cli("diff", "--incremental", new_image, "--start-export", f"s3://{s3.name}/start",
                "--out", str(tmp_path / "a"), *args)  # fmt: skip
    on_disk = cli("diff", "--incremental", new_image, "--start-export", str(start),
                  "--out", str(tmp_path / "b"), *args)  # fmt: skip
    assert on_s3.exit_code == on_disk.exit_code == EXIT_DIFFERENCES, on_s3.output
    counts = [orjson.loads((tmp_path / d / "manifest.json").read_bytes())["counts"] for d in "ab"]
    assert counts[0] == counts[1] == {
        "deleted": 1, "expired": 0, "changed": 1, "added": 1, "unchanged": 0,
    }  # fmt: skip


# --------------------------------------------------------------------------- bad URLs and paths


def test_malformed_endpoint_urls_are_one_line_bad_input(
    moto_server: Server, s3: Any, table_name: str, tmp_path: Path
) -> None:
    """``--endpoint-url`` / ``--s3-endpoint-url`` that botocore cannot use: exit 2, one line."""
    moto_server.create_table(table_name)
    url = f"s3://{s3.name}/ep"
    cases = [
        (["diff", f"{url}/a", f"{url}/b", "--out", str(tmp_path / "d"),
          "--s3-endpoint-url", "notaurl"], "'notaurl' (--s3-endpoint-url)"),
        (["export", table_name, "--out", f"{url}/x", "--endpoint-url", moto_server.endpoint,
          "--s3-endpoint-url", "ftp://x"], "'ftp://x' (--s3-endpoint-url)"),
        (["export", table_name, "--out", f"{url}/x", "--endpoint-url", "notaurl",
          "--s3-endpoint-url", s3.endpoint], "'notaurl' (--endpoint-url)"),
        (["export", table_name, "--out", str(tmp_path / "e"), "--endpoint-url", "http://"],
         "'http://' (--endpoint-url)"),
        (["plan", f"{url}/d", "--out", str(tmp_path / "p.jsonl"),
          "--s3-endpoint-url", "http://h:99999"], "'http://h:99999' (--s3-endpoint-url)"),
    ]  # fmt: skip
    for args, named in cases:
        result = cli(*args)
        lines = result.output.strip().splitlines()
        assert (result.exit_code, len(lines)) == (EXIT_BAD_INPUT, 1), result.output
        assert lines[0] == f"error: invalid endpoint URL {named}: expected http://HOST[:PORT] or "\
            "https://HOST[:PORT]"  # fmt: skip
    assert s3.keys("ep") == [] and list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match=r"^invalid endpoint URL 'x y' \(--s3-endpoint-url\)"):
        pitrdiff.load_export(f"{url}/a", s3_endpoint_url="x y")
    with pytest.raises(InputError, match=r"^invalid endpoint URL 'ftp://x' \(--endpoint-url\)"):
        export_table(table_name, tmp_path / "e", aws=AwsConfig(endpoint_url="ftp://x"))


def test_local_paths_that_look_like_s3_urls_are_refused(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``s3:/b/x``, ``S3://b/x``, ``Path("s3://…")``: never a local ``s3:`` directory (exit 2)."""
    monkeypatch.chdir(tmp_path)
    upload_exports(s3, tmp_path / "src")
    ep = ("--s3-endpoint-url", s3.endpoint)
    live, restored = (f"s3://{s3.name}/exports/{s}" for s in ("live", "restored"))
    for out in (f"s3:/{s3.name}/x", f"S3://{s3.name}/upper", "s3:"):
        result = cli("export", "Orders", "--out", out, *ep)
        assert result.exit_code == EXIT_BAD_INPUT, result.output
        assert f"error: '{out}' is not a dataset URL: expected s3://BUCKET/PREFIX" in result.output
        result = cli("diff", live, restored, "--out", out, *ep)
        assert result.exit_code == EXIT_BAD_INPUT, result.output
        assert f"'{out}' is not a dataset URL" in result.output
    assert cli("diff", live, restored, "--out", f"s3://{s3.name}/d", *ep).exit_code == 1
    result = cli("plan", f"s3://{s3.name}/d", "--out", f"s3://{s3.name}/d/p.jsonl", *ep)
    assert (result.exit_code, result.output) == (
        EXIT_BAD_INPUT,
        f"error: 's3:/{s3.name}/d/p.jsonl' looks like an S3 URL, and the plan file is local: "
        "give a local path\n",
    )
    result = cli("diff", live, restored, "--out", "d2", "--temp-dir", f"s3://{s3.name}/t", *ep)
    assert (result.exit_code, result.output) == (
        EXIT_BAD_INPUT,
        f"error: --temp-dir s3://{s3.name}/t must be a local directory, not S3\n",
    )
    with pytest.raises(InputError, match="in Python a Path folds '//': pass the URL as a str"):
        pitrdiff.load_export(Path(live), s3_endpoint_url=s3.endpoint)
    with pytest.raises(InputError, match="'S3://b/x' is not a dataset URL"):
        pitrdiff.load_diff("S3://b/x", s3_endpoint_url=s3.endpoint)
    with pytest.raises(InputError, match="'s3:/b/p' looks like an S3 URL, and a plan is local"):
        pitrdiff.write_plan(tmp_path / "src" / "live", "s3:/b/p")
    with pytest.raises(InputError, match="'S3:' looks like an S3 URL"):
        outdir.dataset_above("S3:")  # a drill's --workdir passes here too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_dot_and_dot_dot_segments_are_refused(s3: Any, tmp_path: Path) -> None:
    upload_exports(s3, tmp_path)
    for bad, what in (("a/..", "'..'"), ("./b", "'.'"), ("x//y", "empty segment (//)")):
        url = f"s3://{s3.name}/odd/{bad}"
        native = str(NATIVE / "01761573600000-f0f0f0f0")
        result = cli("export", "--from-s3", native, "--key", "pk:S,sk:N", "--out", url,
                     "--s3-endpoint-url", s3.endpoint)  # fmt: skip
        assert result.exit_code == EXIT_BAD_INPUT, result.output
        assert f"not a {what}" in result.output or f"not an {what}" in result.output
        with pytest.raises(InputError, match=r"without empty, '\.' or '\.\.' segments"):
            pitrdiff.load_export(url, s3_endpoint_url=s3.endpoint)
    assert s3.keys("odd") == []
    assert remote.S3Prefix.parse(f"s3://{s3.name}/v1.2/x/").url == f"s3://{s3.name}/v1.2/x"


# --------------------------------------------------------------------------- concurrent writers


def test_the_later_of_two_publishers_to_one_prefix_is_refused(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs check the same new prefix; the second to publish is refused, nothing mixed."""
    upload_exports(s3, tmp_path)  # local exports at tmp_path/live ('Orders'), /restored
    where = remote.S3Prefix.parse(f"s3://{s3.name}/conc", endpoint_url=s3.endpoint)
    first = remote.check_out(where, "export", overwrite=False)
    second = remote.check_out(where, "export", overwrite=False)
    remote.publish(tmp_path / "live", where, first)
    refusal = (
        f"^s3://{s3.name}/conc was written by another run while this export was being written "
        r"\(it now holds a complete export of 'Orders'\); this export was not published"
    )
    with pytest.raises(RefusedError, match=refusal):
        remote.publish(tmp_path / "restored", where, second)
    assert s3.get("conc/manifest.json") == (tmp_path / "live/manifest.json").read_bytes()

    # a writer landing between the ETag check and the PUT: S3's If-None-Match refuses it
    third = remote.check_out(where.__class__.parse(f"s3://{s3.name}/c2",
                                                   endpoint_url=s3.endpoint), "export",
                             overwrite=False)  # fmt: skip
    c2 = remote.S3Prefix.parse(f"s3://{s3.name}/c2", endpoint_url=s3.endpoint)
    remote.publish(tmp_path / "live", c2, remote.check_out(c2, "export", overwrite=False))
    monkeypatch.setattr(remote.S3Prefix, "etag", lambda self, relative: None)  # a stale look
    with pytest.raises(RefusedError, match="was written by another run"):
        remote.publish(tmp_path / "restored", c2, third)
    monkeypatch.undo()
    assert s3.get("c2/manifest.json") == (tmp_path / "live/manifest.json").read_bytes()

    # --overwrite: another run replaced the dataset while this one uploaded its parts; caught
    # by the ETag check, and (blind: that check sees this run's own manifest) by If-Match
    real_upload, real_put = remote.S3Prefix.upload, remote.S3Prefix.put
    for blind in (False, True):
        found = remote.check_out(c2, "export", overwrite=True)
        rival = orjson.dumps({**orjson.loads(s3.get("c2/manifest.json")), "complete": False,
                              "blind": blind})  # fmt: skip
        ours: list[str | None] = []

        def upload_then_rival(self: remote.S3Prefix, local: Path, relative: str) -> None:
            real_upload(self, local, relative)
            s3.put("c2/manifest.json", rival)  # noqa: B023 - used within the iteration

        def put(self: remote.S3Prefix, relative: str, data: bytes, **kw: Any) -> str | None:
            ours.append(real_put(self, relative, data, **kw))  # noqa: B023
            return ours[-1]  # noqa: B023

        monkeypatch.setattr(remote.S3Prefix, "upload", upload_then_rival)
        monkeypatch.setattr(remote.S3Prefix, "put", put)
        if blind:
            monkeypatch.setattr(remote.S3Prefix, "etag", lambda self, r: ours[-1] if ours else found.etag)  # noqa: B023, E501  # fmt: skip
        with pytest.raises(RefusedError, match=r"while this export was being uploaded \(it now "
                           "holds an unfinished export of 'Orders'\\)"):  # fmt: skip
            remote.publish(tmp_path / "restored", c2, found)
        monkeypatch.undo()
        assert len(ours) == 1  # the incomplete manifest; never the complete one
        assert s3.get("c2/manifest.json") == rival  # never marked complete by this run


def test_an_unfinished_scan_export_of_another_table_is_refused(
    moto_server: Server, s3: Any, table_name: str, tmp_path: Path
) -> None:
    """As on disk: refused before the scan (CLI) or at publish (library), even with --overwrite."""
    moto_server.create_table(table_name)
    moto_server.put_items(table_name, [{"pk": {"S": "k"}, "sk": {"S": "a"}}])
    upload_exports(s3, tmp_path)
    doc = orjson.loads(s3.get("exports/live/manifest.json"))
    unfinished = orjson.dumps({**doc, "complete": False, "source": {"kind": "scan"}})
    s3.put("exports/live/manifest.json", unfinished)
    url = f"s3://{s3.name}/exports/live"
    refusal = (f"{url} holds an unfinished export of 'Orders', not '{table_name}'; "
               "finish it or choose another --out")  # fmt: skip
    for extra in ((), ("--overwrite",)):
        result = cli("export", table_name, "--out", url, "--endpoint-url", moto_server.endpoint,
                     "--s3-endpoint-url", s3.endpoint, *extra)  # fmt: skip
        assert (result.exit_code, result.output) == (EXIT_BAD_INPUT, f"error: {refusal}\n")
    with pytest.raises(RefusedError, match=f"^{refusal}$"):
        export_table(table_name, url, aws=moto_server.aws, s3_endpoint_url=s3.endpoint)
    assert s3.get("exports/live/manifest.json") == unfinished
    assert s3.keys("exports/live") == ["data/part-000000.parquet", "manifest.json"]


def test_spark_ingest_publish_is_refused_when_another_run_wrote_the_prefix(
    s3: Any, tmp_path: Path
) -> None:
    """The Spark job's export to S3: its final manifest PUT is conditional, as publish's is."""
    from pitrdiff.spark.s3 import prepare_export_out, put_manifest

    pitrdiff.write_export(CASE["live"], tmp_path / "x", table_name="Orders",
                          key_schema=CASE["key_schema"],
                          attribute_definitions=CASE["attribute_definitions"])  # fmt: skip
    manifest = pitrdiff.load_export(tmp_path / "x").manifest
    url = f"s3://{s3.name}/ingest"
    prepare_export_out(url, overwrite=False, endpoint_url=s3.endpoint)
    s3.put("ingest/manifest.json", b'{"complete": true, "table_name": "Other"}')  # another run
    with pytest.raises(RefusedError, match="was written by another run"):
        put_manifest(url, manifest, endpoint_url=s3.endpoint)
    assert orjson.loads(s3.get("ingest/manifest.json"))["table_name"] == "Other"
    prepare_export_out(f"{url}2", overwrite=False, endpoint_url=s3.endpoint)
    etag = put_manifest(f"{url}2", manifest, endpoint_url=s3.endpoint)  # nobody else: written
    etag = put_manifest(f"{url}2", manifest, endpoint_url=s3.endpoint, only_if=etag)  # its own
    assert orjson.loads(s3.get("ingest2/manifest.json"))["items"] == manifest.items
    s3.put("ingest2/manifest.json", b'{"complete": false, "table_name": "Other"}')
    with pytest.raises(RefusedError, match="was written by another run"):
        put_manifest(f"{url}2", manifest, endpoint_url=s3.endpoint, only_if=etag)

"""The Spark engine writes the same diff dataset as the DuckDB engine.

Both engines run on the same exports (``tests/data/diff_cases`` and the key
cases below); everything they write must match: class rows in the same order
with the same Arrow types, counts, bytes, summary, ``report.md``, and the
operation lines of a plan made from each. Refusals must match too.

Spark runs in local mode (``local[2]``, Java from the machine); one session
serves the whole test session (the ``spark`` fixture of ``tests/conftest.py``: its
JVM start is paid once).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pitrdiff
from pitrdiff.diff.engine import ENGINES, EngineOptions, make_engine
from pitrdiff.diff.exports import diff_exports
from pitrdiff.diff.notebook import Diff
from pitrdiff.diff.schema import CLASSES
from pitrdiff.errors import (
    ExportError,
    IncompleteExportError,
    PitrdiffError,
    SchemaMismatchError,
)
from pitrdiff.export.dataset import load_export
from pitrdiff.recovery.plan import write_plan
from pitrdiff.spark.choose import AUTO_SPARK_MIN_ITEMS, choose_engine

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:pyspark.*"),
]

CASES_DIR = Path(__file__).parent / "data" / "diff_cases"
CASES = sorted(p.stem for p in CASES_DIR.glob("*.json"))


def write_pair(tmp: Path, case: dict[str, Any]) -> tuple[Path, Path]:
    live, restored = tmp / "live", tmp / "restored"
    common = {
        "key_schema": case["key_schema"],
        "attribute_definitions": case.get("attribute_definitions"),
    }
    pitrdiff.write_export(case["live"], live, table_name=case["table_name"], **common)
    pitrdiff.write_export(
        case["restored"], restored, table_name=case["table_name"] + "-restored", **common
    )
    return live, restored


def both_engines(tmp: Path, live: Path, restored: Path) -> tuple[Diff, Diff]:
    duck = diff_exports(live, restored, tmp / "duckdb")
    spark = diff_exports(live, restored, tmp / "spark", engine="spark")
    return duck, spark


def plan_operations(diff: Diff, out: Path) -> list[bytes]:
    write_plan(diff, out, include="deleted,changed,added")
    lines = out.read_bytes().splitlines()
    return [line for line in lines if line.startswith(b'{"kind":"op"')]


def assert_same_dataset(duck: Diff, spark: Diff, tmp: Path) -> None:
    assert class_names(spark) == class_names(duck)
    assert set(CLASSES) <= set(class_names(duck))
    for name in class_names(duck):
        a, b = pq.read_table(duck.file_path(name)), pq.read_table(spark.file_path(name))
        assert a.schema == b.schema, name
        assert a.equals(b), name
    md, ms = duck.manifest, spark.manifest
    assert ms.counts == md.counts
    assert ms.bytes == md.bytes
    assert ms.summary == md.summary
    assert [(f.path, f.rows) for f in ms.files] == [(f.path, f.rows) for f in md.files]
    assert set(ms.timings) >= {"classify_s", "extract_s", "write_s"}
    report_duck = (duck.path / "report.md").read_text(encoding="utf-8")
    report_spark = (spark.path / "report.md").read_text(encoding="utf-8")
    assert report_spark == report_duck.replace(str(duck.path), str(spark.path))
    ops_duck = plan_operations(duck, tmp / "duckdb.plan")
    ops_spark = plan_operations(spark, tmp / "spark.plan")
    assert ops_spark == ops_duck
    assert len(ops_duck) == sum(md.counts[c] for c in ("deleted", "changed", "added"))


def main_counts(diff: Diff) -> dict[str, int]:
    """Counts of deleted, changed, added and unchanged items."""
    return {c: diff.manifest.counts[c] for c in ("deleted", "changed", "added", "unchanged")}


def class_names(diff: Diff) -> list[str]:
    """The class files of a diff, in manifest order."""
    return [Path(f.path).stem for f in diff.manifest.files]


@pytest.mark.parametrize("name", CASES)
def test_case_datasets_are_identical(spark: Any, tmp_path: Path, name: str) -> None:
    case = json.loads((CASES_DIR / f"{name}.json").read_text(encoding="utf-8"))
    live, restored = write_pair(tmp_path, case)
    duck, spark_diff = both_engines(tmp_path, live, restored)
    assert_same_dataset(duck, spark_diff, tmp_path)
    expected = case["expected"]
    assert main_counts(spark_diff) == {
        **{c: len(expected[c]) for c in ("deleted", "changed", "added")},
        "unchanged": expected["unchanged"],
    }


# Keys whose byte order differs from UTF-16 and from code-unit order: a BMP
# character above the surrogates (U+FF5E) against one outside the BMP (U+1F600),
# composed and decomposed é, quotes and backslashes (escaped in the canonical
# key), control characters, a NUL.
S_KEYS = [
    "a",
    "Z",
    "é",
    "e\u0301",
    "\uff5e",
    "\U0001f600",
    "日本",
    'q"uote',
    "back\\slash",
    "tab\there",
    "nul\x00",
    "~",
    "\x7f",
]
B_KEYS = [b"", b"\x00", b"\x00\x00", b"\xff", b"\x7f", b"\x80", b"\xfb\xff", b"\xfc", b"a"]


def key_case(kind: str) -> dict[str, Any]:
    if kind == "S":
        values = [{"S": k} for k in S_KEYS if k]
    else:
        values = [{"B": base64.b64encode(k).decode()} for k in B_KEYS if k]
    restored = [{"pk": v, "sk": {"N": "1"}, "v": {"N": str(i)}} for i, v in enumerate(values)]
    # live: the first third deleted, the second third changed, plus one added per key
    third = len(values) // 3
    live = [
        {"pk": v, "sk": {"N": "1"}, "v": {"N": str(i + (100 if i >= 2 * third else 0))}}
        for i, v in enumerate(values)
        if i >= third
    ]
    live += [{"pk": v, "sk": {"N": "2"}, "new": {"BOOL": True}} for v in values]
    return {
        "table_name": f"Keys{kind}",
        "key_schema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "attribute_definitions": [
            {"AttributeName": "pk", "AttributeType": kind},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        "live": live,
        "restored": restored,
    }


@pytest.mark.parametrize("kind", ["S", "B"])
def test_non_ascii_and_binary_keys_in_the_same_order(spark: Any, tmp_path: Path, kind: str) -> None:
    case = key_case(kind)
    live, restored = write_pair(tmp_path, case)
    duck, spark_diff = both_engines(tmp_path, live, restored)
    assert_same_dataset(duck, spark_diff, tmp_path)
    n = len(case["restored"])
    assert main_counts(spark_diff) == {
        "deleted": n // 3,
        "changed": n - 2 * (n // 3),
        "added": n,
        "unchanged": n // 3,
    }
    keys = pq.read_table(spark_diff.file_path("added")).column("_key").to_pylist()
    assert keys == sorted(keys, key=lambda k: k.encode("utf-8"))
    pk_type = pq.read_table(spark_diff.file_path("deleted")).schema
    hash_field = pk_type.field("restored_hash")
    assert hash_field.type == pa.uint64()


def test_order_holds_across_many_partitions(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sorted rows come back in order when Spark range-partitions them (``orderBy``)."""
    from pitrdiff.diff import spark_engine

    monkeypatch.setattr(spark_engine, "ONE_PARTITION_ROWS", 10)
    values = [f"{chr(0x41 + i % 60)}{chr(0xE9 + i % 7)}{i}\U0001f600"[::-1] for i in range(600)]
    case = {
        "table_name": "Many",
        "key_schema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "attribute_definitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "live": [{"pk": {"S": v}, "x": {"N": "1"}} for v in values[:400]],
        "restored": [{"pk": {"S": v}, "x": {"N": "2"}} for v in values[200:]],
    }
    live, restored = write_pair(tmp_path, case)
    spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
    spark.conf.set("spark.sql.shuffle.partitions", "5")
    try:
        duck, spark_diff = both_engines(tmp_path, live, restored)
    finally:
        spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "true")
        spark.conf.set("spark.sql.shuffle.partitions", "2")
    for name in class_names(duck):
        assert pq.read_table(spark_diff.file_path(name)).equals(pq.read_table(duck.file_path(name)))
    assert main_counts(spark_diff) == {
        "deleted": 200,
        "changed": 200,
        "added": 200,
        "unchanged": 0,
    }


# --------------------------------------------------------------------------- refusals


def refusal(engine: str, live: Path, restored: Path, out: Path) -> PitrdiffError:
    with pytest.raises(PitrdiffError) as caught:
        diff_exports(live, restored, out, engine=engine)
    return caught.value


def assert_same_refusal(tmp: Path, live: Path, restored: Path, kind: type[Exception]) -> str:
    duck = refusal("duckdb", live, restored, tmp / "d1")
    spark = refusal("spark", live, restored, tmp / "d2")
    assert type(duck) is type(spark) is kind
    assert str(spark) == str(duck)
    assert not (tmp / "d2" / "manifest.json").exists()
    return str(spark)


def every_class(tmp: Path) -> tuple[Path, Path, dict[str, Any]]:
    case = json.loads((CASES_DIR / "every_class.json").read_text(encoding="utf-8"))
    live, restored = write_pair(tmp, case)
    return live, restored, case


def test_same_refusal_of_an_incomplete_export(spark: Any, tmp_path: Path) -> None:
    live, restored, _ = every_class(tmp_path)
    doc = json.loads((live / "manifest.json").read_text())
    doc["complete"] = False
    (live / "manifest.json").write_text(json.dumps(doc))
    assert "not complete" in assert_same_refusal(tmp_path, live, restored, IncompleteExportError)


def test_same_refusal_of_a_corrupt_part(spark: Any, tmp_path: Path) -> None:
    live, restored, _ = every_class(tmp_path)
    part = next((restored / "data").glob("*.parquet"))
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    assert "checksum" in assert_same_refusal(tmp_path, live, restored, ExportError)


def test_same_refusal_of_different_key_schemas(spark: Any, tmp_path: Path) -> None:
    live, _, _ = every_class(tmp_path)
    other = tmp_path / "other"
    pitrdiff.write_export(
        [{"id": {"S": "x"}}],
        other,
        table_name="Other",
        key_schema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    message = assert_same_refusal(tmp_path, live, other, SchemaMismatchError)
    assert "different key schemas" in message


@pytest.mark.parametrize("side", ["live", "restored"])
def test_same_refusal_of_a_key_held_twice(spark: Any, tmp_path: Path, side: str) -> None:
    """Both refuse; Spark names the export that holds the key twice.

    (The DuckDB engine blames the restored export when live holds the key
    twice: its pass-1 table holds the key once per live copy, so the restored
    row is selected twice. The lead has the one-word fix.)
    """
    live, restored, case = every_class(tmp_path)
    twice = tmp_path / "twice"
    pitrdiff.write_export(
        [*case[side], {"pk": {"S": "t1"}, "sk": {"N": "1"}, "price": {"N": "99"}}],
        twice,
        table_name="Orders",
        key_schema=case["key_schema"],
        attribute_definitions=case["attribute_definitions"],
    )
    pair = (twice, restored) if side == "live" else (live, twice)
    duck = refusal("duckdb", *pair, tmp_path / "d1")
    spark_error = refusal("spark", *pair, tmp_path / "d2")
    assert type(duck) is type(spark_error) is ExportError
    assert str(spark_error) == (
        f'{side} export {twice} holds the key {{"pk":{{"S":"t1"}},"sk":{{"N":"1"}}}} more than '
        "once (a corrupt export); re-run the export"
    )
    assert str(duck) == str(spark_error)
    assert not (tmp_path / "d2" / "manifest.json").exists()


# --------------------------------------------------------------------------- choosing


def test_the_spark_engine_is_registered(spark: Any) -> None:
    assert ENGINES["spark"] == "pitrdiff.diff.spark_engine:SparkEngine"
    engine = make_engine("spark", EngineOptions(threads=2))
    assert engine.name == "spark"


def test_auto_picks_spark_only_above_the_stated_size(tmp_path: Path) -> None:
    small = AUTO_SPARK_MIN_ITEMS // 2 - 1
    assert choose_engine("auto", [small, small]) == "duckdb"
    assert choose_engine("auto", [AUTO_SPARK_MIN_ITEMS // 2, AUTO_SPARK_MIN_ITEMS // 2]) == "spark"
    assert choose_engine("auto", [AUTO_SPARK_MIN_ITEMS, 0], spark_available=False) == "duckdb"
    assert choose_engine("duckdb", [AUTO_SPARK_MIN_ITEMS * 10]) == "duckdb"
    assert choose_engine("spark", [0]) == "spark"
    with pytest.raises(PitrdiffError, match="duckdb, spark or auto"):
        choose_engine("polars", [0])


def test_reading_an_empty_export_keeps_the_dataset_types(spark: Any, tmp_path: Path) -> None:
    from pitrdiff.diff.spark_engine import read_export

    case = json.loads((CASES_DIR / "both_empty.json").read_text(encoding="utf-8"))
    live, _ = write_pair(tmp_path, case)
    export = load_export(live)
    frame = read_export(spark, export, export.key_schema)
    assert frame.count() == 0
    types = dict(frame.dtypes)
    assert types["_hash"] == "decimal(20,0)" and types["_size"] == "int"
    shutil.rmtree(live)


# --------------------------------------------------------------------------- command line


def cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from pitrdiff.cli.app import load_commands

    return CliRunner().invoke(load_commands(), list(args))


def test_cli_diff_on_spark_writes_the_same_dataset(spark: Any, tmp_path: Path) -> None:
    live, restored, _ = every_class(tmp_path)
    duck = cli("diff", str(live), str(restored), "--out", str(tmp_path / "d1"), "--json")
    on_spark = cli(
        "diff", str(live), str(restored), "--out", str(tmp_path / "d2"), "--json",
        "--engine", "spark", "--spark-master", "local[2]",
    )  # fmt: skip
    assert (duck.exit_code, on_spark.exit_code) == (1, 1), on_spark.output
    for name in CLASSES:
        assert pq.read_table(tmp_path / "d2" / f"{name}.parquet").equals(
            pq.read_table(tmp_path / "d1" / f"{name}.parquet")
        )
    doc_spark, doc_duck = json.loads(on_spark.stdout), json.loads(duck.stdout)
    assert doc_spark["summary"] == doc_duck["summary"]
    assert doc_spark["same"] is doc_duck["same"] is False


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--engine", "duckdb", "--spark-master", "local[2]"], "--spark-master goes with"),
        (["--engine", "polars"], "choose duckdb, spark or auto"),
        (
            ["--incremental", "s3://b/p/AWSDynamoDB/x", "--engine", "spark", "--workers", "2"],
            "one task per data file",
        ),
    ],
)
def test_cli_engine_refusals(tmp_path: Path, args: list[str], words: str) -> None:
    live, restored, _ = every_class(tmp_path)
    inputs = [] if "--incremental" in args else [str(live), str(restored)]
    result = cli("diff", *inputs, "--out", str(tmp_path / "d"), *args)
    assert result.exit_code == 2
    assert words in result.output
    assert not (tmp_path / "d").exists()


def test_cli_auto_stays_on_duckdb_for_small_exports(tmp_path: Path) -> None:
    live, restored, _ = every_class(tmp_path)
    result = cli("diff", str(live), str(restored), "--out", str(tmp_path / "d"), "--engine", "auto")
    assert result.exit_code == 1, result.output
    assert "spark" not in json.dumps(json.loads((tmp_path / "d" / "manifest.json").read_text()))


def test_classified_batches_have_the_duckdb_engine_types(spark: Any, tmp_path: Path) -> None:
    """The engine's own output (before the shared writer casts anything)."""
    from pitrdiff.diff.schema import merge_key_schemas
    from pitrdiff.progress import SILENT

    live, restored, _ = every_class(tmp_path)
    exports = load_export(live), load_export(restored)
    key_schema = merge_key_schemas(exports[0].key_schema, exports[1].key_schema)
    outputs = {}
    for name in ("duckdb", "spark"):
        classified = make_engine(name, EngineOptions(threads=2)).classify(
            *exports, key_schema, progress=SILENT
        )
        outputs[name] = {
            cls: pa.Table.from_batches(list(getattr(classified, cls)))
            for cls in ("deleted", "changed", "added")
        }
        outputs[name]["counts"] = (classified.unchanged_count, classified.unchanged_bytes)
        classified.close()
        classified.close()  # idempotent (the engine contract)
    for cls in ("deleted", "changed", "added"):
        duck, on_spark = outputs["duckdb"][cls], outputs["spark"][cls]
        assert on_spark.num_rows == duck.num_rows > 0
        for column in duck.column_names:
            assert on_spark.schema.field(column).type == duck.schema.field(column).type, column
            assert on_spark.column(column).to_pylist() == duck.column(column).to_pylist()
    assert outputs["spark"]["counts"] == outputs["duckdb"]["counts"]
    assert outputs["spark"]["deleted"].schema.field("restored_hash").type == pa.uint64()


def test_a_job_launched_by_spark_submit_keeps_the_launcher_s_master(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On Glue / EMR, no master is forced on the session (else it would run on the driver)."""
    from pitrdiff.spark.session import master_to_set

    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    assert master_to_set(None, "local[2]") == "local[2]"
    assert master_to_set("yarn", "local[2]") == "yarn"
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "41234")
    assert master_to_set(None, "local[2]") is None
    assert master_to_set("local[4]", "local[2]") == "local[4]"


def test_ctrl_c_stays_the_command_lines_once_spark_started(spark: Any) -> None:
    """pyspark's SparkContext replaces the SIGINT handler; pitrdiff's is put back, after a
    cancel of Spark's jobs, so a Ctrl-C exits 130 (not 3, "Spark failed")."""
    import signal

    from pitrdiff.spark.session import _keep_sigint_handler

    calls: list[int] = []

    def ours(signum: int, frame: Any) -> None:
        calls.append(signum)
        raise KeyboardInterrupt

    saved = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, lambda signum, frame: None)  # as pyspark's would be
        _keep_sigint_handler(ours, spark)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert calls == [signal.SIGINT]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _keep_sigint_handler(signal.default_int_handler, spark)  # no handler of the caller's
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, saved)

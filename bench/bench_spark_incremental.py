"""Benchmark ``diff --incremental`` on DuckDB and on Spark ``local[2]``, side by side.

A synthetic NEW_AND_OLD_IMAGES incremental export (``--n`` change records in
``--files`` gzip files, in DynamoDB's layout, by ``tests/data/s3exports/build.py``):
60% updates, 20% inserts, 15% deletes, 5% removals past their TTL
(``expires``), ~300-byte items. Each engine runs ``diff_incremental`` in its
own process (``bench_spark.py``'s runner: peak RSS of the whole process tree,
sampled every 0.1 s); Spark's JVM start and first query are timed apart.
Per stage (reading = staging the files, classifying, writing) wall and CPU
seconds of the whole process tree, and records per CPU-second.

Usage::

    python3 bench/bench_spark_incremental.py --n 200000 --files 8
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "data" / "s3exports"))

import bench_spark  # noqa: E402  (bench/ is not a package)

KEY = "pk:S,sk:N"
STEPS = ("duckdb", "spark")


def make_export(root: Path, n: int, files: int) -> Path:
    """``n`` change records over ``files`` files; returns the export directory."""
    import build

    now = build.T0 // 1_000_000
    pad = "x" * 200

    def item(i: int, version: int, **extra: Any) -> dict[str, Any]:
        return build.order(f"tenant-{i % 997}", i, v={"N": str(version)}, note={"S": pad}, **extra)

    records = []
    for i in range(n):
        k, at = build.key(f"tenant-{i % 997}", i), i % 3600
        share = i % 20
        if share < 12:
            records.append(build.change(k, old=item(i, 1), new=item(i, 2), at=at))
        elif share < 16:
            records.append(build.change(k, new=item(i, 1), at=at))
        elif share < 19:
            records.append(build.change(k, old=item(i, 1), at=at))
        else:
            gone = item(i, 1, expires={"N": str(now - 86_400)})
            records.append(build.change(k, old=gone, at=at))
    chunks = [records[f::files] for f in range(files)]
    return Path(build.write_incremental_export(root, chunks, export_id="01-bench"))


def child(step: str, source: Path, out: Path) -> dict[str, Any]:
    from pitrdiff.diff.incremental import diff_incremental

    clock = time.perf_counter()
    warm = clock
    if step == "spark":
        from pitrdiff.spark.session import get_session

        spark = get_session(f"local[{bench_spark.CORES}]", config={"spark.driver.memory": "2g"})
        started = time.perf_counter()
        spark.range(1000).selectExpr("sum(id)").collect()  # the first query of a fresh JVM
        warm = time.perf_counter()
    stages = bench_spark.StageClock()
    options: dict[str, Any] = {"engine": "spark"} if step == "spark" else {"workers": 2}
    diff = diff_incremental(
        source,
        out,
        key_schema=KEY,
        ttl_attribute="expires",
        overwrite=True,
        progress=stages,
        **options,
    )
    result = {
        "diff_s": time.perf_counter() - warm,
        "counts": diff.manifest.counts,
        "records": diff.manifest.live["records"],
        "stages": stages.stages,
    }
    if step == "spark":
        result |= {"jvm_start_s": started - clock, "first_query_s": warm - started}
    return result


def run(step: str, source: Path, out: Path) -> dict[str, Any]:
    result_file = out.parent / f".bench-{step}.json"
    command = [sys.executable, __file__, "--child", step, "--source", str(source),
               "--out", str(out), "--result", str(result_file)]  # fmt: skip
    peak = [0]
    clock = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], bench_spark.tree_rss(proc.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    stop.set()
    sampler.join()
    if code != 0:
        return {"step": step, "error": f"exit {code}"}
    result: dict[str, Any] = json.loads(result_file.read_text())
    return {"step": step, "wall_s": time.perf_counter() - clock,
            "peak_rss_mb": peak[0] / 2**20, **result}  # fmt: skip


def show(results: list[dict[str, Any]], n: int) -> None:
    print(f"records: {n:,}; counts: {results[0].get('counts')}")
    for r in results:
        if "error" in r:
            print(f"{r['step']}: {r['error']}")
            continue
        extra = ""
        if "jvm_start_s" in r:
            extra = f" (JVM start {r['jvm_start_s']:.1f} s, first query {r['first_query_s']:.1f} s)"
        print(f"{r['step']:>7}: wall {r['wall_s']:.1f} s{extra}, diff {r['diff_s']:.1f} s, "
              f"peak RSS {r['peak_rss_mb']:,.0f} MB")  # fmt: skip
        for name, stage in r["stages"].items():
            rate = n / stage["cpu_s"] if stage["cpu_s"] else float("inf")
            print(f"         {name[:40]:<40} {stage['wall_s']:6.1f} s wall "
                  f"{stage['cpu_s']:6.1f} CPU-s  {rate:,.0f} records/CPU-s")  # fmt: skip
    same = len({json.dumps(r.get("counts"), sort_keys=True) for r in results}) == 1
    print(f"same counts: {same}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--child")
    parser.add_argument("--source")
    parser.add_argument("--out")
    parser.add_argument("--result")
    args = parser.parse_args()
    if args.child:
        result = child(args.child, Path(args.source), Path(args.out))
        Path(args.result).write_text(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        clock = time.perf_counter()
        source = make_export(Path(tmp) / "src", args.n, args.files)
        print(f"export written in {time.perf_counter() - clock:.1f} s")
        results = [run(step, source, Path(tmp) / step) for step in STEPS]
    show(results, args.n)


if __name__ == "__main__":
    main()

"""Benchmark the diff on DuckDB and on Spark ``local[2]``, side by side, and project a cluster.

On one live / restored pair made by ``gen_exports.py`` (1% deleted, 1%
changed, 0.5% added, ~700-byte items), each engine runs ``diff_exports`` in
its own process:

- ``duckdb``: the default engine, 2 threads;
- ``spark``: the Spark engine on ``local[2]``; the JVM start and a first,
  warm-up query are timed apart (a fresh JVM runs its first query 4-7x slower),
  then the diff.

Reported per engine: wall time, peak RSS of the whole process tree (the JVM
included, sampled every 0.1 s), and per stage (classify = pass 1, extract =
pass 2, write = the shared writer on the driver) the throughput in items per
core-second (input items of both exports / (stage seconds x cores)).

The projection: the cluster cores (and 4-vCPU workers) at which 1 billion
items diff in under 30 minutes, assuming Spark's per-core rate on a cluster
equals the local one for passes 1 and 2 (they scale out), while the writer
stays on the driver (serial: its time is the differing rows at the measured
writer rate), plus a fixed allowance for cluster start and S3 reads.

Usage::

    python3 bench/bench_spark.py --n 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STEPS = ("duckdb", "spark")
INGEST_STEPS = ("ingest-threads", "ingest-processes", "ingest-spark")
CORES = 2
TARGET_ITEMS = 1_000_000_000
TARGET_S = 30 * 60
CLUSTER_OVERHEAD_S = 180  # cluster / JVM start, first-query warm-up, S3 listing (assumed)
DIFFERING = 0.025  # the bench pair's differing share (1% + 1% + 0.5%)


# --------------------------------------------------------------------------- child side


def child_duckdb(pair: Path, out: Path) -> dict[str, Any]:
    from pitrdiff.diff.exports import diff_exports

    clock = time.perf_counter()
    diff = diff_exports(pair / "live", pair / "restored", out, overwrite=True, threads=CORES)
    return {"diff_s": time.perf_counter() - clock, "timings": diff.manifest.timings,
            "counts": diff.manifest.counts}  # fmt: skip


def child_spark(pair: Path, out: Path) -> dict[str, Any]:
    from pitrdiff.diff.exports import diff_exports
    from pitrdiff.spark.session import get_session

    clock = time.perf_counter()
    spark = get_session(f"local[{CORES}]", config={"spark.driver.memory": "2g"})
    started = time.perf_counter()
    spark.range(1000).selectExpr("sum(id)").collect()  # the first query of a fresh JVM
    warm = time.perf_counter()
    diff = diff_exports(pair / "live", pair / "restored", out, overwrite=True, engine="spark")
    done = time.perf_counter()
    return {
        "jvm_start_s": started - clock,
        "first_query_s": warm - started,
        "diff_s": done - warm,
        "timings": diff.manifest.timings,
        "counts": diff.manifest.counts,
    }


def child_ingest(export_dir: Path, out: Path, how: str) -> dict[str, Any]:
    """Ingest a native export on one machine (threads, processes) or Spark local[2]."""
    clock = time.perf_counter()
    if how == "ingest-spark":
        from pitrdiff.export.native_spark import ingest_export_spark
        from pitrdiff.spark.session import get_session

        get_session(f"local[{CORES}]").range(1000).selectExpr("sum(id)").collect()
        warm = time.perf_counter()
        manifest = ingest_export_spark(export_dir, out, key_schema="pk:S,sk:N", overwrite=True)
    else:
        from pitrdiff.export.native import ingest_export

        warm = clock
        executor = {"ingest-threads": "thread", "ingest-processes": "process"}[how]
        manifest = ingest_export(
            export_dir,
            out,
            key_schema="pk:S,sk:N",
            overwrite=True,
            workers=CORES,
            executor=executor,
        )
    return {"start_s": warm - clock, "ingest_s": time.perf_counter() - warm,
            "items": manifest.items}  # fmt: skip


def make_native_export(root: Path, items: int, files: int) -> Path:
    """A native full export of ``items`` order items in ``files`` files (bench_s3export's)."""
    sys.path.insert(0, str(HERE))
    import bench_s3export

    return Path(bench_s3export.generate(root, "order", items, files))


# --------------------------------------------------------------------------- runner side


def tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def run_step(step: str, pair: Path) -> dict[str, Any]:
    """Run one engine in a child process; its result, wall time, peak tree RSS."""
    result_file = pair / f".bench-spark-{step}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", step, "--pair",
               str(pair), "--result", str(result_file)]  # fmt: skip
    peak = [0]
    clock = time.perf_counter()
    child = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(child.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = child.wait()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - clock
    if code != 0:
        return {"step": step, "error": f"exit {code}", "wall_s": wall}
    result = json.loads(result_file.read_text())
    result_file.unlink()
    return {"step": step, "wall_s": wall, "peak_rss_mb": peak[0] / 2**20, **result}


def per_core_second(items: int, seconds: float, cores: int) -> float:
    return items / (seconds * cores) if seconds > 0 else float("inf")


def projection(spark: dict[str, Any], items: int) -> dict[str, Any]:
    """Cores for 1B items in 30 min: passes 1-2 scale out, the writer does not."""
    t = spark["timings"]
    parallel_core_s_per_item = (t["classify_s"] + t["extract_s"]) * CORES / items
    differing_rows = sum(spark["counts"].get(c, 0) for c in ("deleted", "changed", "added"))
    writer_rows_per_s = differing_rows / t["write_s"] if t["write_s"] else float("inf")
    target_differing = TARGET_ITEMS * DIFFERING
    serial_s = target_differing / writer_rows_per_s + CLUSTER_OVERHEAD_S
    budget = TARGET_S - serial_s
    core_s = TARGET_ITEMS * parallel_core_s_per_item  # n counts items per export
    cores = math.ceil(core_s / budget) if budget > 0 else None
    return {
        "core_s_per_1b_pair": core_s,
        "writer_rows_per_s": writer_rows_per_s,
        "serial_s_at_1b": serial_s,
        "budget_s": budget,
        "cores": cores,
        "workers_4vcpu": math.ceil(cores / 4) if cores else None,
    }


def show(results: list[dict[str, Any]], n: int) -> None:
    items = n * 2  # both exports (live ~n, restored n)
    print(f"\n{n:,} items per export; load: {os.getloadavg()[0]:.2f} (1-min average at the end)")
    print(f"{'engine':<8} {'wall s':>8} {'peak RSS MB':>12} {'JVM s':>7} {'1st q s':>8} "
          f"{'classify':>9} {'extract':>8} {'write':>7}   items per core-second "
          "(classify / extract / write)")  # fmt: skip
    for r in results:
        if "error" in r:
            print(f"{r['step']:<8} {r['error']}")
            continue
        t = r["timings"]
        rates = [
            per_core_second(items, t["classify_s"], CORES),
            per_core_second(items, t["extract_s"], CORES),
            per_core_second(items, t["write_s"], 1),
        ]
        print(
            f"{r['step']:<8} {r['wall_s']:>8.1f} {r['peak_rss_mb']:>12.0f} "
            f"{r.get('jvm_start_s', 0):>7.1f} {r.get('first_query_s', 0):>8.1f} "
            f"{t['classify_s']:>9.2f} {t['extract_s']:>8.2f} {t['write_s']:>7.2f}   "
            + " / ".join(f"{x:,.0f}" for x in rates)
        )
    ok = [r for r in results if "error" not in r]
    if len(ok) == 2:
        duck, spark = ok
        same = duck["counts"] == spark["counts"]
        ratio, wall_ratio = spark["diff_s"] / duck["diff_s"], spark["wall_s"] / duck["wall_s"]
        print(f"\nsame counts: {same}; Spark / DuckDB: diff {ratio:.1f}x, wall {wall_ratio:.1f}x")
        p = projection(spark, n)
        print(
            f"projection, 1B items per export in 30 min: passes 1-2 need "
            f"{p['core_s_per_1b_pair']:,.0f} core-seconds; the driver's writer "
            f"{p['writer_rows_per_s']:,.0f} rows/s -> {p['serial_s_at_1b']:,.0f} s serial "
            f"(incl. {CLUSTER_OVERHEAD_S} s start); cores: {p['cores']} "
            f"(~{p['workers_4vcpu']} workers of 4 vCPU)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="DuckDB vs Spark local[2] diff.")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pitrdiff-bench-spark"))
    parser.add_argument("--skip", default="")
    parser.add_argument("--ingest-items", type=int, default=200_000,
                        help="items of the native export ingested (0: skip)")  # fmt: skip
    parser.add_argument("--child", choices=STEPS + INGEST_STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--pair", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child in INGEST_STEPS:
        out = args.pair.parents[2] / f"out-{args.child}"  # beside the export, not in it
        result = child_ingest(args.pair, out, args.child)
        args.result.write_text(json.dumps(result))
        return
    if args.child:
        fn = child_duckdb if args.child == "duckdb" else child_spark
        result = fn(args.pair, args.pair / f"diff-{args.child}")
        args.result.write_text(json.dumps(result))
        return
    pair = args.dir / f"pair-{args.n}"
    if not (pair / "restored" / "manifest.json").exists():
        print(f"generating {args.n:,} items in {pair} ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "gen_exports.py"), "--n", str(args.n),
                        "--out", str(pair)], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    skip = set(filter(None, args.skip.split(",")))
    results = []
    for step in STEPS:
        if step not in skip:
            print(f"running {step} ...", flush=True)
            results.append(run_step(step, pair))
    show(results, args.n)
    if args.ingest_items:
        ingest(args.dir, args.ingest_items)


def ingest(root: Path, items: int) -> None:
    """Native export ingestion: threads, processes and Spark local[2], side by side."""
    export_dir = root / f"native-{items}" / "exports" / "AWSDynamoDB" / "01700000000000-be4c4be4"
    if not (export_dir / "manifest-files.json").exists():
        print(f"generating a native export of {items:,} items ...", flush=True)
        make_native_export(root / f"native-{items}", items, 8)
    print(f"\nnative export ingestion, {items:,} items in 8 files, {CORES} cores")
    print(f"{'how':<18} {'wall s':>8} {'start s':>8} {'ingest s':>9} {'peak RSS MB':>12} "
          f"{'items/s':>9} {'items per core-s':>17}")  # fmt: skip
    for step in INGEST_STEPS:
        r = run_step(step, export_dir)
        if "error" in r:
            print(f"{step:<18} {r['error']}")
            continue
        rate = r["items"] / r["ingest_s"]
        print(f"{step:<18} {r['wall_s']:>8.1f} {r['start_s']:>8.1f} {r['ingest_s']:>9.1f} "
              f"{r['peak_rss_mb']:>12.0f} {rate:>9,.0f} {rate / CORES:>17,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()

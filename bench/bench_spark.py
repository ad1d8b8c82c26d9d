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
pass 2, write = the shared writer on the driver, which for Spark also pulls
the sorted class rows) wall and CPU seconds of the whole process tree, and
the throughput in items per CPU-second (both exports' items for passes 1-2,
differing rows for the writer). CPU seconds do not depend on how busy the
machine is; wall times on a shared 2-core machine do.

The projection: the cluster cores (and 4-vCPU workers) at which 1 billion
items per export diff in under 30 minutes, assuming a cluster core does
Spark's passes 1 and 2 at the CPU rate measured here (they scale out), while
the writer stays on the driver (serial: the differing rows at DuckDB's
write-stage rate), plus a fixed allowance for cluster start and S3 listing.
Then native-export ingestion side by side: threads, processes, Spark.

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


def tree_cpu() -> float:
    """CPU seconds (user + system) of this process and every descendant, reaped ones too.

    Spark's JVM and its Python workers are descendants: per-stage CPU is then
    a load-independent measure of work (wall time on a busy 2-core machine is not).
    """
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


class StageClock:
    """A Progress that records wall and tree CPU seconds per task of the diff."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}
        self._current: tuple[str, float, float] | None = None

    def start(self, task: str, total: float | None = None, unit: str = "items") -> None:
        self._current = (task, time.perf_counter(), tree_cpu())

    def advance(self, amount: float = 1, **fields: float) -> None:
        pass

    def status(self, message: str) -> None:
        pass

    def finish(self) -> None:
        if self._current is not None:
            task, wall, cpu = self._current
            stage = self.stages.setdefault(task, {"wall_s": 0.0, "cpu_s": 0.0})
            stage["wall_s"] += time.perf_counter() - wall
            stage["cpu_s"] += tree_cpu() - cpu
            self._current = None


def child_duckdb(pair: Path, out: Path) -> dict[str, Any]:
    from pitrdiff.diff.exports import diff_exports

    clock, stages = time.perf_counter(), StageClock()
    diff = diff_exports(
        pair / "live", pair / "restored", out, overwrite=True, threads=CORES, progress=stages
    )
    return {"diff_s": time.perf_counter() - clock, "timings": diff.manifest.timings,
            "counts": diff.manifest.counts, "stages": stages.stages}  # fmt: skip


def child_spark(pair: Path, out: Path) -> dict[str, Any]:
    from pitrdiff.diff.exports import diff_exports
    from pitrdiff.spark.session import get_session

    clock = time.perf_counter()
    spark = get_session(f"local[{CORES}]", config={"spark.driver.memory": "2g"})
    started = time.perf_counter()
    spark.range(1000).selectExpr("sum(id)").collect()  # the first query of a fresh JVM
    warm = time.perf_counter()
    stages = StageClock()
    diff = diff_exports(
        pair / "live", pair / "restored", out, overwrite=True, engine="spark", progress=stages
    )
    done = time.perf_counter()
    return {
        "jvm_start_s": started - clock,
        "first_query_s": warm - started,
        "diff_s": done - warm,
        "timings": diff.manifest.timings,
        "counts": diff.manifest.counts,
        "stages": stages.stages,
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


STAGES = (("classify", "classifying"), ("extract", "extracting"), ("write", "writing the diff"))


def differing(result: dict[str, Any]) -> int:
    return sum(result["counts"].get(c, 0) for c in ("deleted", "changed", "added", "expired"))


def rates(result: dict[str, Any], n: int) -> list[float]:
    """Items per CPU-second per stage: passes 1-2 over both exports' items, the writer per row."""
    out = []
    for short, task in STAGES:
        cpu = result["stages"].get(task, {}).get("cpu_s", 0.0)
        amount = differing(result) if short == "write" else 2 * n
        out.append(amount / cpu if cpu > 0 else float("inf"))
    return out


def projection(duck: dict[str, Any], spark: dict[str, Any], n: int) -> dict[str, Any]:
    """Cores for 1B items per export in 30 min: passes 1-2 scale out, the writer does not.

    Serial: the shared writer on the driver (attribute-level changes, Parquet),
    at DuckDB's write-stage CPU per differing row (DuckDB's own share of it
    is small), for DIFFERING of 1B rows. Parallel: Spark's CPU for passes 1-2
    plus its share of the write stage (sorting and shipping the class rows),
    per input item, on cores as fast as these.
    """
    cpu = {name: {task: r["stages"][task]["cpu_s"] for _, task in STAGES} for name, r in
           (("duck", duck), ("spark", spark))}  # fmt: skip
    writer_s_per_row = cpu["duck"]["writing the diff"] / max(1, differing(duck))
    parallel = (
        cpu["spark"]["classifying"]
        + cpu["spark"]["extracting"]
        + max(0.0, cpu["spark"]["writing the diff"] - cpu["duck"]["writing the diff"])
    ) / n
    serial_s = TARGET_ITEMS * DIFFERING * writer_s_per_row + CLUSTER_OVERHEAD_S
    budget = TARGET_S - serial_s
    core_s = TARGET_ITEMS * parallel
    cores = math.ceil(core_s / budget) if budget > 0 else None
    return {"core_s": core_s, "writer_rows_per_s": 1 / writer_s_per_row, "serial_s": serial_s,
            "cores": cores, "workers": math.ceil(cores / 4) if cores else None}  # fmt: skip


def show(results: list[dict[str, Any]], n: int) -> None:
    print(f"\n{n:,} items per export; load {os.getloadavg()[0]:.2f} (1-min average, at the end)")
    print(f"{'engine':<8} {'wall s':>7} {'peak RSS MB':>12} {'JVM s':>6} {'1st q s':>8}   "
          "stage wall s / CPU s: classify, extract, write   "
          "items per CPU-second: classify / extract / write (rows)")  # fmt: skip
    for r in results:
        if "error" in r:
            print(f"{r['step']:<8} {r['error']}")
            continue
        st = r["stages"]
        walls = ", ".join(f"{st[task]['wall_s']:.1f}/{st[task]['cpu_s']:.1f}" for _, task in STAGES)
        print(
            f"{r['step']:<8} {r['wall_s']:>7.1f} {r['peak_rss_mb']:>12.0f} "
            f"{r.get('jvm_start_s', 0):>6.1f} {r.get('first_query_s', 0):>8.1f}   {walls:<44}"
            + " / ".join(f"{x:,.0f}" for x in rates(r, n))
        )
    ok = {r["step"]: r for r in results if "error" not in r}
    if len(ok) == 2:
        duck, spark = ok["duckdb"], ok["spark"]
        ratio, wall_ratio = spark["diff_s"] / duck["diff_s"], spark["wall_s"] / duck["wall_s"]
        print(
            f"\nsame counts: {duck['counts'] == spark['counts']}; "
            f"Spark / DuckDB: diff {ratio:.1f}x, wall {wall_ratio:.1f}x"
        )
        p = projection(duck, spark, n)
        print(
            f"projection, 1B items per export, {DIFFERING:.1%} differing, in 30 min: "
            f"passes 1-2 need {p['core_s']:,.0f} CPU-seconds; the driver's writer "
            f"{p['writer_rows_per_s']:,.0f} rows/CPU-s -> {p['serial_s']:,.0f} s serial "
            f"(incl. {CLUSTER_OVERHEAD_S} s start); cores: {p['cores']} "
            f"(~{p['workers']} workers of 4 vCPU)"
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

"""Peak memory of ``diff --memory-limit`` on many large deleted items (issue 12).

The case (``--case deleted``): 100,000 deleted items of about 3 KB (300 MB
of items: the restored export holds them, the live export is empty), diffed
with ``--memory-limit 300MB``; ``--case changed`` edits every item in live
instead. Each run is a child process; its peak RSS (``wait4``) is reported
beside the interpreter's baseline (``import pitrdiff`` + DuckDB + pyarrow
loaded, nothing diffed).

Usage::

    python3 bench/bench_diff_memory.py                    # 100,000 items, 300MB
    python3 bench/bench_diff_memory.py --n 20000 --limit 300MB,100MB
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHILD = r"""
import sys, time
import duckdb, pyarrow, pyarrow.parquet
import pitrdiff
from pitrdiff.diff.exports import diff_exports
live, restored, out, limit, tmp = sys.argv[1:6]
if limit == "baseline":
    sys.exit(0)
started = time.perf_counter()
diff = diff_exports(live, restored, out, memory_limit=limit, temp_dir=tmp, overwrite=True)
print(diff.summary.headline(), f"{time.perf_counter() - started:.1f}s", flush=True)
"""


def make_exports(root: Path, n: int, case: str) -> tuple[Path, Path]:
    """Restored: n items of ~3 KB; live: empty (``deleted``) or each item edited (``changed``)."""
    live, restored = root / f"live-{case}-{n}", root / f"restored-{n}"
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    from pitrdiff.export.dataset import write_export

    def items(edit: str) -> Any:
        for i in range(n):
            body = f"{i:08d}" + "x" * 3000
            yield {"pk": {"S": f"item#{i:08d}"}, "body": {"S": body + edit}}

    if not (restored / "manifest.json").exists():
        write_export(items(""), restored, table_name="Big-restored", key_schema=schema)
    if not (live / "manifest.json").exists():
        rows = items("!") if case == "changed" else []
        write_export(rows, live, table_name="Big", key_schema=schema)
    return live, restored


def run(live: Path, restored: Path, limit: str, work: Path) -> tuple[float, float, str]:
    """Peak RSS (MiB), seconds and output of one child run."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(live),
            str(restored),
            str(work / "diff"),
            limit,
            str(work),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    out = (proc.stdout.read() + proc.stderr.read()).decode() if proc.stdout and proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        out = "FAILED: " + out.strip().splitlines()[-1]
    return usage.ru_maxrss / 1024, elapsed, out.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--limit", default="300MB", help="comma-separated memory limits")
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "pitrdiff-bench-mem"))
    parser.add_argument("--case", choices=("deleted", "changed"), default="deleted")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    if args.generate:
        make_exports(data, args.n, args.case)
        return
    started = time.perf_counter()
    # In a child: this process stays small, and a child's peak RSS (wait4) counts
    # the parent's memory it was forked from.
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--generate",
            "--n",
            str(args.n),
            "--data",
            str(data),
            "--case",
            args.case,
        ],
        check=True,
    )
    live, restored = data / f"live-{args.case}-{args.n}", data / f"restored-{args.n}"
    print(f"exports ready ({time.perf_counter() - started:.0f}s): {args.n:,} {args.case} items")
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")
    print(f"{'run':<12} {'peak RSS':>10} {'seconds':>8}  result")
    for limit in ["baseline", *args.limit.split(",")]:
        work = Path(tempfile.mkdtemp(prefix="pitrdiff-bench-", dir=data))
        try:
            rss, seconds, out = run(live, restored, limit, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"{limit:<12} {rss:>7.0f} MiB {seconds:>8.1f}  {out}")


if __name__ == "__main__":
    main()

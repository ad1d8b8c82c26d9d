"""Peak memory and time of ``pitrdiff plan`` against the plan's size.

Usage: ``python bench/bench_plan.py [WORKDIR] [N ...]`` (default 25000 100000 200000).

Builds, once per N, a diff whose N deleted items are ~3 KB each (an empty live
export against a restored export of N items), then runs ``write_plan`` in a fresh
subprocess per N and prints peak RSS (``ru_maxrss``) and elapsed time side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}]
DEFS = [{"AttributeName": "pk", "AttributeType": "S"}]

CHILD = """
import json, resource, sys, time
from pitrdiff.recovery.plan import write_plan
start = time.perf_counter()
kwargs = json.loads(sys.argv[3])
summary = write_plan(sys.argv[1], sys.argv[2], **kwargs)
print(json.dumps({"ops": summary.operations, "s": time.perf_counter() - start,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build(work: Path, n: int) -> Path:
    """A diff with ``n`` deleted items of about 3 KB (built once, reused)."""
    from pitrdiff.diff.core import diff_exports
    from pitrdiff.export.dataset import write_export

    diff = work / f"diff-{n}"
    if (diff / "manifest.json").exists():
        return diff
    filler = "x" * 3000
    items = ({"pk": {"S": f"item#{i:09d}"}, "body": {"S": filler}} for i in range(n))
    write_export(items, work / f"restored-{n}", table_name="Bench", key_schema=KEYS,
                 attribute_definitions=DEFS, overwrite=True)  # fmt: skip
    write_export([], work / f"live-{n}", table_name="Bench", key_schema=KEYS,
                 attribute_definitions=DEFS, overwrite=True)  # fmt: skip
    diff_exports(work / f"live-{n}", work / f"restored-{n}", diff, overwrite=True)
    return diff


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pitrdiff-bench-plan")
    sizes = [int(a) for a in sys.argv[2:]] or [25_000, 100_000, 200_000]
    work.mkdir(parents=True, exist_ok=True)
    kwargs = json.loads(os.environ.get("BENCH_PLAN_KWARGS", "{}"))
    print(f"{'deleted items':>14} {'operations':>11} {'peak RSS MB':>12} {'seconds':>8}")
    for n in sizes:
        diff = build(work, n)
        out = work / f"plan-{n}.jsonl"
        out.unlink(missing_ok=True)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(diff), str(out), json.dumps(kwargs)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"plan of {n} failed: {done.stderr.strip().splitlines()[-1:]}")
        result = json.loads(done.stdout)
        wall = time.perf_counter() - started
        print(f"{n:>14,} {result['ops']:>11,} {result['peak_mb']:>12,.0f} {wall:>8.1f}")
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()

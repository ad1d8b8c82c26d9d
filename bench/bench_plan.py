"""Peak memory and time of ``write_plan`` against the plan's size, side by side with a baseline.

Usage::

    python bench/bench_plan.py [--baseline OLD_PLAN_PY] [--workdir DIR] [N ...]

``N`` (default 25000 100000 200000): deleted items of about 3 KB each (an
empty live export against a restored export of N items), built once per N in
the work directory. Each plan runs in a fresh subprocess; peak RSS is sampled
with psutil every 5 ms (``ru_maxrss`` would include the forking parent's).
``--baseline`` names another version of ``pitrdiff/recovery/plan.py`` (e.g.
``git show cd4d2a3:pitrdiff/recovery/plan.py > /tmp/old_plan.py``), run on the
same diffs for a second pair of columns.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}]
DEFS = [{"AttributeName": "pk", "AttributeType": "S"}]

CHILD = """
import importlib.util, json, sys, threading, time
import psutil
if sys.argv[3]:
    spec = importlib.util.spec_from_file_location("baseline_plan", sys.argv[3])
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_plan"] = module
    spec.loader.exec_module(module)
    write_plan, kwargs = module.write_plan, {}
else:
    from pitrdiff.recovery.plan import write_plan
    kwargs = {"overwrite": True}
process, peak, done = psutil.Process(), [0], threading.Event()
def sample():
    while not done.wait(0.005):
        peak[0] = max(peak[0], process.memory_info().rss)
sampler = threading.Thread(target=sample)
sampler.start()
start = time.perf_counter()
summary = write_plan(sys.argv[1], sys.argv[2], **kwargs)
elapsed = time.perf_counter() - start
done.set()
sampler.join()
print(json.dumps({"ops": summary.operations, "s": elapsed, "peak_mb": peak[0] / 2**20}))
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


def run(diff: Path, out: Path, baseline: str) -> dict[str, float]:
    """One plan in a fresh process: operations, seconds, peak RSS (MB)."""
    out.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(diff), str(out), baseline],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"plan of {diff} failed: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[25_000, 100_000, 200_000])
    parser.add_argument("--baseline", default="", help="another plan.py to compare with")
    parser.add_argument("--workdir", default="/tmp/pitrdiff-bench-plan")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    header = f"{'deleted items':>14} {'peak MB':>8} {'seconds':>8}"
    if args.baseline:
        header += f" {'baseline peak MB':>17} {'baseline s':>11}"
    print(header)
    for n in args.sizes:
        diff = build(work, n)
        now = run(diff, work / f"plan-{n}.jsonl", "")
        assert now["ops"] == n, now
        line = f"{n:>14,} {now['peak_mb']:>8,.0f} {now['s']:>8.1f}"
        if args.baseline:
            old = run(diff, work / f"plan-{n}-baseline.jsonl", args.baseline)
            line += f" {old['peak_mb']:>17,.0f} {old['s']:>11.1f}"
        print(line, flush=True)
    print("load average:", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()

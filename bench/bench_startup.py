"""Start-up time of the command line, side by side (issue 17: help under 0.25 s).

Each row is a fresh interpreter run N times (wall clock, min and median):

- ``python -c pass``: the interpreter alone, the floor;
- ``pitrdiff --help`` and ``pitrdiff COMMAND --help`` as users run them
  (``python -m pitrdiff``), command modules loaded lazily;
- ``eager --help``: every command module imported first (what ``pitrdiff --help``
  cost before the lazy registry, ~1 s: boto3, pyarrow, numpy, DuckDB …);
- the heavy libraries each help page imported (from ``sys.modules``).

Then the largest cumulative imports of ``pitrdiff diff --help`` by
``python -X importtime``; and the CPU time (user + sys) of importing pyarrow
and pandas, as every command that reads a dataset does, with numpy's OpenBLAS
as it starts by default (a spinning thread per core) and with
``OPENBLAS_NUM_THREADS=1``, which the command line sets unless the user did.
Usage: ``python bench/bench_startup.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("boto3", "botocore", "pyarrow", "duckdb", "pandas", "numpy", "rich")
COMMANDS = ("export", "diff", "plan", "apply", "window", "restore", "recover", "demo")


def timed(argv: list[str], runs: int) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def heavy_modules(code: str) -> str:
    probe = code + f"\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "-"


def run_app(args: list[str], eager: bool = False) -> str:
    load = "from pitrdiff.cli.app import load_commands; load_commands()\n" if eager else ""
    return (
        f"import contextlib, io\n{load}from pitrdiff.cli.app import run_app\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    run_app({args!r})"
    )


def importtime(args: list[str], top: int) -> list[tuple[int, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pitrdiff", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(2)) <= 3:  # top-level and first-level imports
            rows.append((int(match.group(1)), match.group(2) + match.group(3)))
    return sorted(rows, reverse=True)[:top]


def import_cpu(env_extra: dict[str, str], runs: int) -> float:
    """Least CPU seconds of a process importing pyarrow and pandas (then idle 0.5 s)."""
    code = "import time, pyarrow, pandas\ntime.sleep(0.5)"
    best = float("inf")
    for _ in range(runs):
        before = os.times()
        subprocess.run([sys.executable, "-c", code], env={**os.environ, **env_extra}, check=True)
        after = os.times()
        spent = (after.children_user - before.children_user) + (
            after.children_system - before.children_system
        )
        best = min(best, spent)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    python = [sys.executable]
    root_help = heavy_modules(run_app(["--help"]))
    rows: list[tuple[str, list[str], str]] = [
        ("python -c pass", [*python, "-c", "pass"], "-"),
        ("pitrdiff --help", [*python, "-m", "pitrdiff", "--help"], root_help),
    ]
    for name in COMMANDS:
        rows.append(
            (
                f"pitrdiff {name} --help",
                [*python, "-m", "pitrdiff", name, "--help"],
                heavy_modules(run_app([name, "--help"])),
            )
        )
    eager = run_app(["--help"], eager=True)
    rows.append(("eager --help (all modules)", [*python, "-c", eager], heavy_modules(eager)))
    load = os.getloadavg()
    print(f"runs per row: {options.runs}; load average before: {load[0]:.2f} {load[1]:.2f}")
    print(f"{'command':<30} {'min s':>7} {'median s':>9}  heavy libraries imported")
    for label, argv, heavy in rows:
        best, median = timed(argv, options.runs)
        print(f"{label:<30} {best:>7.3f} {median:>9.3f}  {heavy}")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f}")
    print("\nlargest imports of `pitrdiff diff --help` (python -X importtime, cumulative µs):")
    for micros, name in importtime(["diff", "--help"], 12):
        print(f"  {micros:>8}  {name}")
    runs = max(3, options.runs // 2)
    default = import_cpu({}, runs)
    single = import_cpu({"OPENBLAS_NUM_THREADS": "1"}, runs)
    print(
        f"\nCPU of importing pyarrow + pandas (least of {runs}): OpenBLAS default {default:.3f} s,"
        f" OPENBLAS_NUM_THREADS=1 {single:.3f} s ({default - single:+.3f} s)"
    )


if __name__ == "__main__":
    main()

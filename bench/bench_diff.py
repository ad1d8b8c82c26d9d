"""Benchmark ``pitrdiff diff`` against DuckDB's full read, pandas and datacompy.

Side by side in one run, on one live / restored pair made by ``gen_exports.py``
(1% deleted, 1% changed, 0.5% added, ~700-byte items):

- ``duckdb-read``: DuckDB reading every column of both exports (the floor);
- ``duckdb-classify``: a bare DuckDB full outer join on ``_key`` comparing ``_hash``;
- ``pitrdiff-diff``: the ``pitrdiff diff`` command, attribute-level changes,
  summary and report included, with ``--memory-limit`` (1GB by default);
- ``pandas-merge``: both exports in pandas, an outer merge with indicator, hashes compared;
- ``datacompy``: ``datacompy.PandasCompare`` on the same DataFrames (join on ``_key``);
- ``walk-vs-deepdiff``: per changed pair, pitrdiff's change walk vs deepdiff.

Every step runs in its own process; wall time and that process's peak RSS
(``wait4``) are reported, then the ratios the targets are stated in. The
children run with Python's bytecode cache on (``pitrdiff/`` is compiled first),
as an installed pitrdiff does, whatever ``PYTHONDONTWRITEBYTECODE`` says.

Usage::

    python3 bench/bench_diff.py --n 1000000                 # generate if needed, run all
    python3 bench/bench_diff.py --n 10000000 --skip pandas-merge,datacompy
    python3 bench/bench_diff.py --n 1000000 --compression zstd,lz4   # lz4 parts too
    # before / after in one run: the diff step again with an older tree's pitrdiff
    git archive <rev> | tar -x -C /tmp/base
    python3 bench/bench_diff.py --n 1000000 --baseline /tmp/base --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STEPS = (
    "duckdb-read",
    "duckdb-classify",
    "pitrdiff-diff",
    "pandas-merge",
    "datacompy",
    "walk-vs-deepdiff",
)


# --------------------------------------------------------------------------- the steps (child side)


def _files(path: Path) -> list[str]:
    import pitrdiff

    return pitrdiff.load_export(path).parquet_files


def _sql_list(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def step_duckdb_read(pair: Path, memory_limit: str) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(config={"threads": 2, "memory_limit": memory_limit})
    totals = []
    for side in ("live", "restored"):
        row = con.execute(
            "SELECT count(*), sum(length(_key)), sum(length(_item)), sum(_hash), sum(_size), "
            "sum(length(key.tenant)), sum(length(key.id)) "
            f"FROM read_parquet({_sql_list(_files(pair / side))})"
        ).fetchall()[0]
        totals.append(int(row[0]))
    return {"rows": totals}


def step_duckdb_classify(pair: Path, memory_limit: str) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(config={"threads": 2, "memory_limit": memory_limit})
    live, restored = _sql_list(_files(pair / "live")), _sql_list(_files(pair / "restored"))
    rows = con.execute(
        "SELECT CASE WHEN l._key IS NULL THEN 'deleted' WHEN r._key IS NULL THEN 'added' "
        "ELSE 'changed' END AS cls, count(*) "
        f"FROM read_parquet({live}) l FULL OUTER JOIN read_parquet({restored}) r "
        "ON l._key = r._key WHERE l._key IS NULL OR r._key IS NULL OR l._hash <> r._hash "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {"classes": {k: int(v) for k, v in rows}}


def step_pitrdiff_diff(pair: Path, memory_limit: str) -> dict[str, Any]:
    from typer.testing import CliRunner  # in-process, same as the console script

    from pitrdiff.cli.app import load_commands

    out = pair / "diff"
    result = CliRunner().invoke(
        load_commands(),
        [
            "diff",
            str(pair / "live"),
            str(pair / "restored"),
            "--out",
            str(out),
            "--memory-limit",
            memory_limit,
            "--overwrite",
            "--json",
        ],
    )
    if result.exit_code not in (0, 1):
        raise SystemExit(f"pitrdiff diff failed ({result.exit_code}): {result.output}")
    document = json.loads(result.stdout)
    return {"counts": document["summary"]["counts"], "timings": document["timings"]}


def _frames(pair: Path) -> tuple[Any, Any]:
    import pyarrow.parquet as pq

    # The key struct column flattened into plain columns (key.tenant, key.id), as
    # a user would load the exports into pandas.
    live = pq.ParquetDataset(_files(pair / "live")).read().flatten().to_pandas()
    restored = pq.ParquetDataset(_files(pair / "restored")).read().flatten().to_pandas()
    return live, restored


def step_pandas_merge(pair: Path, memory_limit: str) -> dict[str, Any]:
    live, restored = _frames(pair)
    merged = live.merge(restored, on="_key", how="outer", suffixes=("_l", "_r"), indicator=True)
    both = merged["_merge"] == "both"
    return {
        "deleted": int((merged["_merge"] == "right_only").sum()),
        "added": int((merged["_merge"] == "left_only").sum()),
        "changed": int((both & (merged["_hash_l"] != merged["_hash_r"])).sum()),
    }


def step_datacompy(pair: Path, memory_limit: str) -> dict[str, Any]:
    import warnings

    warnings.simplefilter("ignore")
    import datacompy

    live, restored = _frames(pair)
    # datacompy >= 1.0 calls it PandasCompare; earlier versions Compare.
    compare_class = getattr(datacompy, "PandasCompare", None) or datacompy.Compare
    compare = compare_class(restored, live, join_columns=["_key"])
    compare.report()
    return {
        "deleted": len(compare.df1_unq_rows),
        "added": len(compare.df2_unq_rows),
        "changed": int(compare.intersect_rows_mismatch_count())
        if hasattr(compare, "intersect_rows_mismatch_count")
        else len(compare.all_mismatch()),
    }


def step_walk_vs_deepdiff(pair: Path, memory_limit: str) -> dict[str, Any]:
    import orjson
    import pyarrow.parquet as pq
    from deepdiff import DeepDiff

    from pitrdiff import codec
    from pitrdiff.diff.changes import diff_json

    table = pq.read_table(pair / "diff" / "changed.parquet", columns=["live_item", "restored_item"])
    sample = table.slice(0, 2000)
    lives = sample.column("live_item").to_pylist()
    restoreds = sample.column("restored_item").to_pylist()
    clock = time.perf_counter()
    for live, restored in zip(lives, restoreds, strict=True):
        diff_json(restored, live)
    walk = (time.perf_counter() - clock) / len(lives)
    few = min(300, len(lives))
    clock = time.perf_counter()
    for live, restored in zip(lives[:few], restoreds[:few], strict=True):
        DeepDiff(
            codec.item_to_python(orjson.loads(restored)), codec.item_to_python(orjson.loads(live))
        )
    deep = (time.perf_counter() - clock) / few
    return {"pairs": len(lives), "walk_us": walk * 1e6, "deepdiff_us": deep * 1e6}


STEP_FUNCTIONS = {
    "duckdb-read": step_duckdb_read,
    "duckdb-classify": step_duckdb_classify,
    "pitrdiff-diff": step_pitrdiff_diff,
    "pandas-merge": step_pandas_merge,
    "datacompy": step_datacompy,
    "walk-vs-deepdiff": step_walk_vs_deepdiff,
}


# --------------------------------------------------------------------------- the runner


def _child_env() -> dict[str, str]:
    """The children's environment: Python's bytecode cache on, as for an installed package.

    This development machine sets ``PYTHONDONTWRITEBYTECODE=1``, so every
    process would compile pitrdiff's ~50 modules from source (0.3-0.4 s); an
    installed pitrdiff (and every library in site-packages) has its ``.pyc``.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _compile(tree: Path) -> None:
    """Write the ``.pyc`` files of a tree's ``pitrdiff`` package (``__pycache__``, git-ignored)."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(tree / "pitrdiff")],
        check=True,
        env=_child_env(),
        stdout=subprocess.DEVNULL,
    )


def run_step(step: str, pair: Path, memory_limit: str, code: Path | None = None) -> dict[str, Any]:
    """Run one step in a child process; return its result, wall time and peak RSS.

    ``code``: a source tree whose ``pitrdiff`` the child imports (``PYTHONPATH``)
    instead of the installed one, for a before / after comparison in one run.
    """
    result_file = pair / f".bench-{step}.json"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        step,
        "--pair",
        str(pair),
        "--memory-limit",
        memory_limit,
        "--result",
        str(result_file),
    ]
    env = _child_env()
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    clock = time.perf_counter()
    child = subprocess.Popen(command, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - clock
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        return {"step": step, "error": f"exit {child.returncode}", "wall_s": wall}
    result = json.loads(result_file.read_text())
    result_file.unlink()
    return {
        "step": step,
        "wall_s": wall,
        "inner_s": result.pop("_elapsed_s"),
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        **result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark pitrdiff diff.")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pitrdiff-bench"))
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--skip", default="", help="comma-separated steps to skip")
    parser.add_argument(
        "--compression",
        default="zstd",
        help="Parquet codecs of the pair's parts, comma-separated (zstd,lz4 compares the "
        "read and the diff on both; the other steps run on the first)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a source tree (e.g. `git archive REV | tar -x -C DIR`): its pitrdiff diff "
        "runs too, alternating with this tree's, and the two are printed side by side",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of the diff step(s); the fastest is kept"
    )
    parser.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--pair", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        clock = time.perf_counter()
        result = STEP_FUNCTIONS[args.child](args.pair, args.memory_limit)
        result["_elapsed_s"] = time.perf_counter() - clock
        args.result.write_text(json.dumps(result))
        return

    codecs = [c for c in args.compression.split(",") if c]
    pairs = {c: args.dir / (f"n{args.n}" if c == "zstd" else f"n{args.n}-{c}") for c in codecs}
    for codec, pair in pairs.items():
        if (
            not (pair / "live" / "manifest.json").exists()
            or not (pair / "restored" / "manifest.json").exists()
        ):
            # In a child process: the parent stays small, so the children's peak RSS
            # (which Linux carries across exec from the fork) is theirs.
            print(f"generating {args.n:,} items ({codec} parts) into {pair} ...", flush=True)
            clock = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "gen_exports.py"),
                    "--n",
                    str(args.n),
                    "--out",
                    str(pair),
                    "--compression",
                    codec,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(f"  generated in {time.perf_counter() - clock:.1f}s", flush=True)
    _compile(HERE.parent)
    if args.baseline:
        _compile(args.baseline)
    skip = {s for s in args.skip.split(",") if s}
    first = codecs[0]
    if "pitrdiff-diff" in skip and not (pairs[first] / "diff" / "changed.parquet").exists():
        skip.add("walk-vs-deepdiff")
    results: dict[str, dict[str, Any]] = {}
    for codec, pair in pairs.items():
        for step in STEPS:
            if step in skip or (codec != first and step not in ("duckdb-read", "pitrdiff-diff")):
                continue
            label = step if codec == first else f"{step} [{codec}]"
            variants = [(label, None)]
            if step == "pitrdiff-diff" and args.baseline:
                variants.insert(0, (f"{label} [baseline]", args.baseline))
            runs = args.repeat if step == "pitrdiff-diff" else 1
            for _ in range(runs):  # alternating, so load changes hit both alike
                for name, code in variants:
                    print(f"running {name} ...", flush=True)
                    r = run_step(step, pair, args.memory_limit, code)
                    print(
                        f"  {name}: {r['wall_s']:.1f}s wall, peak RSS "
                        f"{r.get('peak_rss_mb', 0):,.0f} MB  "
                        + json.dumps(
                            {
                                k: v
                                for k, v in r.items()
                                if k not in ("step", "wall_s", "peak_rss_mb")
                            }
                        ),
                        flush=True,
                    )
                    best = results.get(name)
                    if best is None or "error" in best or r.get("wall_s", 1e9) < best["wall_s"]:
                        results[name] = r
    report(args, results, codecs)
    (pairs[first] / "bench-results.json").write_text(json.dumps(results, indent=2))
    if os.environ.get("BENCH_CLEAN"):
        for pair in pairs.values():
            shutil.rmtree(pair / "diff", ignore_errors=True)


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]], codecs: list[str]) -> None:
    """Print the side-by-side table and the ratios the targets are stated in."""
    print()
    print(
        f"N = {args.n:,} restored items, memory limit {args.memory_limit}, cpus {os.cpu_count()}, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, parts {codecs[0]}"
    )
    print(f"{'step':<26} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12}")
    for step, r in results.items():
        if "error" in r:
            print(f"{step:<26} {'failed':>8}  {r['error']}")
        elif not step.startswith("walk-vs-deepdiff"):
            print(f"{step:<26} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} {r['peak_rss_mb']:>12,.0f}")
    read = results.get("duckdb-read", {}).get("wall_s")
    diff = results.get("pitrdiff-diff", {}).get("wall_s")
    before = results.get("pitrdiff-diff [baseline]", {})
    if diff and before.get("wall_s"):
        after = results["pitrdiff-diff"]
        print(
            f"pitrdiff diff, this tree / baseline  = {diff / before['wall_s']:.2f}x wall, "
            f"{after['cpu_s'] / before['cpu_s']:.2f}x CPU"
        )
        for phase, seconds in after.get("timings", {}).items():
            print(
                f"  {phase:<14} {before.get('timings', {}).get(phase, 0):>7.2f}s -> {seconds:.2f}s"
            )
        if read:
            print(f"  baseline / DuckDB full read         = {before['wall_s'] / read:.2f}x")
        if compy_wall := results.get("datacompy", {}).get("wall_s"):
            print(f"  datacompy / baseline                = {compy_wall / before['wall_s']:.1f}x")
    compy = results.get("datacompy", {})
    if read and diff:
        print(f"pitrdiff diff / DuckDB full read      = {diff / read:.2f}x  (target <= 2x)")
        cpu_read, cpu_diff = results["duckdb-read"]["cpu_s"], results["pitrdiff-diff"]["cpu_s"]
        print(f"  the same in CPU seconds             = {cpu_diff / cpu_read:.2f}x")
    if diff and compy.get("wall_s") and "error" not in compy:
        print(
            f"datacompy / pitrdiff diff (time)      = {compy['wall_s'] / diff:.1f}x  (target >= 6x)"
        )
        print(
            "  the same in CPU seconds             = "
            f"{compy['cpu_s'] / results['pitrdiff-diff']['cpu_s']:.1f}x"
        )
        print(
            "datacompy / pitrdiff diff (peak RSS)  = "
            f"{compy['peak_rss_mb'] / results['pitrdiff-diff']['peak_rss_mb']:.1f}x"
        )
    walk = results.get("walk-vs-deepdiff", {})
    if walk.get("walk_us"):
        print(
            f"change walk {walk['walk_us']:.1f} us/pair vs deepdiff {walk['deepdiff_us']:.0f} "
            f"us/pair ({walk['deepdiff_us'] / walk['walk_us']:.0f}x)"
        )
    for codec in codecs[1:]:
        other_read = results.get(f"duckdb-read [{codec}]", {}).get("wall_s")
        other_diff = results.get(f"pitrdiff-diff [{codec}]", {}).get("wall_s")
        if read and other_read:
            print(f"DuckDB full read, {codec} / {codecs[0]}      = {other_read / read:.2f}x")
        if diff and other_diff:
            print(f"pitrdiff diff, {codec} / {codecs[0]}         = {other_diff / diff:.2f}x")
        if other_diff and compy.get("wall_s") and "error" not in compy:
            print(f"datacompy / pitrdiff diff [{codec}]    = {compy['wall_s'] / other_diff:.1f}x")


if __name__ == "__main__":
    main()

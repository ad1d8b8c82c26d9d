"""Read cost of export parts by Parquet codec: zstd (what pitrdiff writes) vs lz4 and others.

Takes the restored export of a pair made by ``gen_exports.py`` (default: the
1M pair of ``bench_diff.py``), rewrites its parts with each codec (same row
groups), then, alternating the codecs round by round, measures in this process:

- ``read all``: DuckDB reading every column of every part (the diff's floor);
- ``read _item``: DuckDB reading only the ``_item`` column (what the diff's
  extract pass decompresses);
- ``write``: pyarrow writing the parts (what every export pays).

CPU seconds (user + sys of this process, DuckDB's threads included) are less
disturbed by other jobs than wall seconds; both are printed, best of ``--rounds``.

Usage::

    python3 bench/bench_parts.py --pair /tmp/pitrdiff-bench/n1000000 --codecs zstd,lz4
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rewrite(parts: list[Path], codec: str, out: Path) -> tuple[list[Path], float, float, int]:
    """Write ``parts`` again with ``codec``; return the files, CPU s, wall s and bytes."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    start_cpu, start_wall = cpu(), time.perf_counter()
    for part in parts:
        table = pq.read_table(part)
        target = out / part.name
        pq.write_table(table, target, compression=codec, row_group_size=128 * 1024)
        files.append(target)
    read_cpu = 0.0
    for part in parts:  # the read above is not part of the write cost
        t0 = cpu()
        pq.read_table(part)
        read_cpu += cpu() - t0
    return (
        files,
        cpu() - start_cpu - 2 * read_cpu,
        time.perf_counter() - start_wall,
        sum(f.stat().st_size for f in files),
    )


def timed_query(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[float, float]:
    start_cpu, start_wall = cpu(), time.perf_counter()
    con.execute(sql).fetchall()
    return cpu() - start_cpu, time.perf_counter() - start_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pair", type=Path, default=Path("/tmp/pitrdiff-bench/n1000000"))
    parser.add_argument("--codecs", default="zstd,lz4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    codecs = [c for c in args.codecs.split(",") if c]
    parts = sorted((args.pair / "restored" / "data").glob("*.parquet"))
    if not parts:
        raise SystemExit(f"no parts under {args.pair / 'restored' / 'data'}; run gen_exports.py")
    con = duckdb.connect(config={"threads": args.threads})
    best: dict[tuple[str, str], tuple[float, float]] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        written: dict[str, list[Path]] = {}
        for codec in codecs:
            files, write_cpu, write_wall, size = rewrite(parts, codec, Path(tmp) / codec)
            written[codec], sizes[codec] = files, size
            best[(codec, "write")] = (write_cpu, write_wall)
        for _ in range(args.rounds):
            for codec in codecs:
                listing = ", ".join(f"'{f}'" for f in written[codec])
                for label, sql in (
                    (
                        "read all",
                        "SELECT count(*), sum(length(_key)), sum(length(_item)), sum(_hash), "
                        f"sum(_size), count(key) FROM read_parquet([{listing}])",
                    ),
                    ("read _item", f"SELECT sum(length(_item)) FROM read_parquet([{listing}])"),
                ):
                    figures = timed_query(con, sql)
                    if (codec, label) not in best or figures[0] < best[(codec, label)][0]:
                        best[(codec, label)] = figures
    rows = pq.ParquetFile(parts[0]).metadata.num_rows
    print(
        f"{len(parts)} parts of {args.pair / 'restored'} ({rows:,} rows in the first), "
        f"DuckDB threads {args.threads}, best of {args.rounds}, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"{'codec':<8}{'MB':>8}{'':>4}"
        + "".join(f"{x:>22}" for x in ("read all", "read _item", "write"))
    )
    print(f"{'':<20}" + "".join(f"{'CPU s':>11}{'wall s':>11}" for _ in range(3)))
    for codec in codecs:
        cells = "".join(
            f"{best[(codec, x)][0]:>11.2f}{best[(codec, x)][1]:>11.2f}"
            for x in ("read all", "read _item", "write")
        )
        print(f"{codec:<8}{sizes[codec] / 1e6:>8.0f}{'':>4}{cells}")
    base = codecs[0]
    for codec in codecs[1:]:
        ratios = ", ".join(
            f"{x} {best[(codec, x)][0] / best[(base, x)][0]:.2f}x CPU"
            for x in ("read all", "read _item", "write")
        )
        print(f"{codec} / {base}: {ratios}, size {sizes[codec] / sizes[base]:.2f}x")


if __name__ == "__main__":
    main()

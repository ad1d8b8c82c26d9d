"""Ingestion rate of native DynamoDB exports (gzip DynamoDB JSON) into an export dataset.

Prints items/s (wall clock) and items per CPU-second (user + system time of
this process and its worker processes: the per-core rate, robust on a busy
machine) for:

- the *floor*: merely decompressing the same files and ``orjson.loads`` of each
  line (what any reader must pay);
- ``ingest_export`` with one worker (per-core rate, the figure to compare);
- ``ingest_export`` with N threads and with N processes (N = --workers).

Usage::

    python3 bench/bench_s3export.py [--items 200000] [--files 8] [--workers 2]

The export is generated (deterministically) in the DynamoDB layout under a
temporary directory, read from local disk (no S3 transfer in the figures).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import importlib.util
import os
import resource
import shutil
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import orjson

from pitrdiff.export.native import ingest_export, read_summary

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "s3export_fixtures", ROOT / "tests" / "data" / "s3exports" / "build.py"
)
assert _spec and _spec.loader
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


def item(n: int) -> dict[str, Any]:
    """A plausible order item, ~350 bytes of DynamoDB JSON, every common type."""
    return {
        "pk": {"S": f"tenant-{n % 997:04d}"},
        "sk": {"N": str(n)},
        "status": {"S": ("open", "paid", "shipped", "returned")[n % 4]},
        "price": {"N": f"{n % 10000}.{n % 100:02d}"},
        "qty": {"N": str(n % 13)},
        "gift": {"BOOL": n % 5 == 0},
        "tags": {"SS": [f"t{n % 7}", f"t{n % 11}", "vip"]},
        "address": {
            "M": {
                "city": {"S": ("Zürich", "Lyon", "Austin")[n % 3]},
                "zip": {"S": f"{n % 99999:05d}"},
            }
        },
        "lines": {
            "L": [
                {"M": {"sku": {"S": f"sku-{n % 501}"}, "qty": {"N": "1"}}},
                {"M": {"sku": {"S": f"sku-{n % 307}"}, "qty": {"N": "2"}}},
            ]
        },
        "token": {"B": base64.b64encode(n.to_bytes(8, "big")).decode()},
    }


def generate(root: Path, items: int, files: int) -> Path:
    per_file = items // files
    return build.write_full_export(
        root,
        [(item(n) for n in range(i * per_file, (i + 1) * per_file)) for i in range(files)],
        export_id="01700000000000-be4c4be4",
    )


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def floor(export_dir: Path) -> tuple[int, float, float]:
    """Decompress and parse every line; nothing else."""
    summary = read_summary(export_dir)
    count = 0
    started = time.perf_counter()
    cpu = cpu_seconds()
    for data_file in summary.files:
        path = export_dir.parent / data_file.key.split("AWSDynamoDB/", 1)[1]
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        pending = b""
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                lines = (pending + decompressor.decompress(chunk)).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    orjson.loads(line)
                    count += 1
    return count, time.perf_counter() - started, cpu_seconds() - cpu


def ingest(export_dir: Path, out: Path, workers: int, executor: str) -> tuple[int, float, float]:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    cpu = cpu_seconds()
    manifest = ingest_export(
        export_dir, out, key_schema="pk:S,sk:N", workers=workers, executor=executor
    )
    return manifest.items, time.perf_counter() - started, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-s3export-"))
    try:
        started = time.perf_counter()
        export_dir = generate(work / "src", args.items, args.files)
        compressed = sum(p.stat().st_size for p in (work / "src").rglob("*.json.gz"))
        raw = sum(len(gzip.decompress(p.read_bytes())) for p in (work / "src").rglob("*.gz"))
        print(
            f"export: {args.items:,} items in {args.files} files, {raw / 1e6:.1f} MB JSON, "
            f"{compressed / 1e6:.1f} MB gzip (generated in {time.perf_counter() - started:.1f}s)"
        )
        print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
        count, seconds, cpu = floor(export_dir)
        floor_rate = count / cpu
        print(
            f"{'floor: gzip + orjson.loads':<34}: {count / seconds:>9,.0f} items/s wall, "
            f"{floor_rate:>8,.0f} items/CPU-s"
        )
        rows = [("ingest_export  1 worker", 1, "thread")]
        if args.workers > 1:
            rows += [
                (f"ingest_export  {args.workers} threads", args.workers, "thread"),
                (f"ingest_export  {args.workers} processes", args.workers, "process"),
            ]
        for label, workers, executor in rows:
            count, seconds, cpu = ingest(export_dir, work / "out", workers, executor)
            print(
                f"{label:<34}: {count / seconds:>9,.0f} items/s wall, "
                f"{count / cpu:>8,.0f} items/CPU-s ({count / cpu / floor_rate:.0%} of the floor)"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

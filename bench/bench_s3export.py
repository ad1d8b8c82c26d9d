"""Ingestion rate of native DynamoDB exports (gzip DynamoDB JSON) into an export dataset.

Prints, side by side per item shape (``bench/shapes.py``: the five shapes of
issue 17, flat, nested, binary, numbers, wide; and ``order``, the original
benchmark item), items per CPU-second (user + system time of this process and
its worker processes: the per-core rate, robust on a busy machine) and items/s
wall clock for:

- the *floor*: merely decompressing the same files and ``orjson.loads`` of each
  line (what any reader must pay);
- ``ingest_export`` with one worker (per-core rate, the figure compared with
  the floor: issue 17's target is at least 40% of it);
- ``codec.encode_record`` alone on the same items (the share of the codec);
- with ``--workers N`` (N > 1): ``ingest_export`` with N threads and N processes.

Usage::

    python3 bench/bench_s3export.py                      # all shapes, 40,000 items each
    python3 bench/bench_s3export.py --shape nested --items 100000 --workers 2

The export is generated (deterministically) in the DynamoDB layout under a
temporary directory, read from local disk (no S3 transfer in the figures).
Wide items (~5 KB) are generated a tenth as many.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import importlib.util
import os
import resource
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import orjson

from pitrdiff.codec import encode_record
from pitrdiff.export.native import ingest_export, read_summary

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "s3export_fixtures", ROOT / "tests" / "data" / "s3exports" / "build.py"
)
assert _spec and _spec.loader
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
sys.path.insert(0, str(ROOT / "bench"))

from shapes import ISSUE_SHAPES, SHAPES  # noqa: E402

SCALE = {"wide": 0.1}  # wide items are ~10x larger


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


def maker(shape: str) -> Any:
    return item if shape == "order" else SHAPES[shape]


def generate(root: Path, shape: str, items: int, files: int) -> Path:
    make = maker(shape)
    per_file = items // files
    return build.write_full_export(
        root,
        [(make(n) for n in range(i * per_file, (i + 1) * per_file)) for i in range(files)],
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
        path = export_dir / "data" / data_file.key.rsplit("/data/", 1)[1]
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


def codec_only(shape: str, items: int) -> tuple[int, float]:
    """``encode_record`` alone on the same items (parsed beforehand): count, CPU seconds."""
    make = maker(shape)
    parsed = [orjson.loads(orjson.dumps(make(n))) for n in range(items)]
    names = ("pk", "sk")
    cpu = cpu_seconds()
    for one in parsed:
        encode_record(one, names)
    return len(parsed), cpu_seconds() - cpu


def run_shape(shape: str, args: argparse.Namespace, work: Path) -> list[str]:
    """Measure one shape; its rows of the table."""
    items = max(args.files, int(args.items * SCALE.get(shape, 1.0)))
    shutil.rmtree(work, ignore_errors=True)
    export_dir = generate(work / "src", shape, items, args.files)
    raw = sum(len(gzip.decompress(p.read_bytes())) for p in (work / "src").rglob("*.gz"))
    count, seconds, cpu = floor(export_dir)
    floor_rate = count / cpu
    rows = [
        f"{shape:<8} {count:>8,} items {raw / count:>6,.0f} B/item | "
        f"{'floor: gzip + orjson':<24} {floor_rate:>9,.0f} items/CPU-s {count / seconds:>9,.0f}/s"
    ]
    variants = [("ingest_export 1 worker", 1, "thread")]
    if args.workers > 1:
        variants += [
            (f"ingest_export {args.workers} threads", args.workers, "thread"),
            (f"ingest_export {args.workers} processes", args.workers, "process"),
        ]
    pad = " " * 36 + "| "
    for label, workers, executor in variants:
        count, seconds, cpu = ingest(export_dir, work / "out", workers, executor)
        rows.append(
            f"{pad}{label:<24} {count / cpu:>9,.0f} items/CPU-s {count / seconds:>9,.0f}/s "
            f"{count / cpu / floor_rate:>4.0%} of the floor"
        )
    encoded, cpu = codec_only(shape, min(items, 20_000))
    rows.append(
        f"{pad}{'encode_record alone':<24} {encoded / cpu:>9,.0f} items/CPU-s"
        f"{'':>13}{floor_rate / (encoded / cpu):>5.0%} of a floor item's time"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40_000, help="items per shape")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--shape", default="all", choices=["all", "order", *ISSUE_SHAPES], help="item shape"
    )
    args = parser.parse_args()
    shapes = ISSUE_SHAPES if args.shape == "all" else (args.shape,)
    print(f"cores: {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    work = Path(tempfile.mkdtemp(prefix="bench-s3export-"))
    try:
        for shape in shapes:
            for row in run_shape(shape, args, work / shape):
                print(row, flush=True)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"peak RSS of this process: {peak:.0f} MiB; load average after {os.getloadavg()[0]:.2f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

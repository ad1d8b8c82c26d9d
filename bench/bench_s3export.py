"""Ingestion rate of native DynamoDB exports (gzip DynamoDB JSON) into an export dataset.

Prints, side by side per item shape (``bench/shapes.py``: the five shapes of
issue 17, flat, nested, binary, numbers, wide; and ``order``, the original
benchmark item), CPU time per item (user + system of this process and its
worker processes: the per-core cost, robust on a busy machine; the least of
``--repeat`` runs) of:

- ``gzip``: decompressing the files and splitting them into lines;
- ``floor``: + ``orjson.loads`` of each line: what any reader that builds the
  items must pay, the denominator of issue 17's target (``loads`` = floor - gzip);
- ``encode``: ``codec.encode_lines`` after ``gzip``, ingestion's codec: each
  line's JSON text straight to the record (canonical item, key, hash, size) in
  C, no ``orjson.loads``;
- ``write``: the export dataset's ``PartBuffer`` on top (Arrow, Parquet zstd,
  files), as ingestion's sink does it;
- ``ingest``: ``ingest_export`` itself, one worker; ``rest`` is what it costs
  beyond ``gzip + encode + write`` (manifests, MD5, streaming, worker loop, sinks);

then items per CPU-second of the floor and of ``ingest_export``, and the
ratio (issue 17's target: at least 40%). The last columns run ``ingest_export``
in the same process the two earlier ways: with the C walk per line
(``orjson.loads`` then the C ``encode_record``: the previous round's path,
``codec._compiled_lines`` set to None) and with the Python walk
(``codec._compiled`` set to None: the code before any C). With ``--workers N``
(N > 1): ``ingest_export`` with N threads and with N processes.

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
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from pitrdiff import codec as codec_module
from pitrdiff.codec import encode_lines
from pitrdiff.export.dataset import DEFAULT_PART_BYTES, PartBuffer
from pitrdiff.export.native import ingest_export, key_schema_from_spec, read_summary

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
    return Path(
        build.write_full_export(
            root,
            [(make(n) for n in range(i * per_file, (i + 1) * per_file)) for i in range(files)],
            export_id="01700000000000-be4c4be4",
        )
    )


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def data_files(export_dir: Path) -> list[Path]:
    summary = read_summary(export_dir)
    return [export_dir / "data" / f.key.rsplit("/data/", 1)[1] for f in summary.files]


def pieces_of(paths: list[Path]) -> Iterator[list[bytes]]:
    """The lines of each decompressed 1 MiB piece (the last one incomplete: kept for the next)."""
    for path in paths:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        pending = b""
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                lines = (pending + decompressor.decompress(chunk)).split(b"\n")
                pending = lines.pop()
                yield lines


def lines_of(paths: list[Path]) -> Iterator[bytes]:
    """Every line of the data files: what any reader must decompress and split."""
    for lines in pieces_of(paths):
        yield from lines


def batches_of(paths: list[Path]) -> Iterator[list[bytes]]:
    """The non-empty lines of each decompressed piece at once, as ingestion takes them."""
    for lines in pieces_of(paths):
        yield [line for line in lines if line]


def best_cpu(repeat: int, run: Callable[[], Any]) -> float:
    """The least CPU time (this process and its children) of ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        cpu = cpu_seconds()
        run()
        best = min(best, cpu_seconds() - cpu)
    return best


def stages(export_dir: Path, work: Path, repeat: int) -> dict[str, float]:
    """CPU seconds of the floor and of ingestion's stages, in process."""
    paths = data_files(export_dir)
    names = ("pk", "sk")
    declared = ("S", "N")
    schema = key_schema_from_spec("pk:S,sk:N")

    def gzip_only() -> None:
        for _ in lines_of(paths):
            pass

    def floor() -> None:
        for line in lines_of(paths):
            orjson.loads(line)

    def encode() -> None:
        for batch in batches_of(paths):
            columns: Any = ([], [], [], [], ([], []))
            assert encode_lines(batch, 0, names, declared, columns, 1 << 60)[0] == len(batch)

    def write() -> None:
        shutil.rmtree(work / "writer", ignore_errors=True)
        buffer = PartBuffer(work / "writer", schema, "bench", part_bytes=DEFAULT_PART_BYTES)
        for batch in batches_of(paths):
            index = 0
            while index < len(batch):
                index, count, characters, _ = encode_lines(
                    batch, index, names, declared, buffer.columns, buffer.room
                )
                buffer.took(count, characters)
                if buffer.full:
                    buffer.flush()
        buffer.flush()

    runs = {"gzip": gzip_only, "floor": floor, "encode": encode, "write": write}
    return {name: best_cpu(repeat, run) for name, run in runs.items()}


def ingest(export_dir: Path, out: Path, workers: int, executor: str, repeat: int) -> float:
    """Least CPU seconds of ``ingest_export`` over ``repeat`` runs."""

    def run() -> None:
        shutil.rmtree(out, ignore_errors=True)
        ingest_export(export_dir, out, key_schema="pk:S,sk:N", workers=workers, executor=executor)

    return best_cpu(repeat, run)


HEADER = (
    f"{'shape':<8} {'items':>7} {'B/item':>6} | {'gzip':>5} {'loads':>5} {'floor':>5} | "
    f"{'encode':>6} {'write':>5} {'rest':>5} {'ingest':>6} µs/item | "
    f"{'floor':>9} {'ingest':>8} items/CPU-s | of floor | "
    f"per-line C walk: ingest µs, of floor | Python walk: ingest µs, of floor"
)


def without(name: str, run: Callable[[], float]) -> float:
    """``run()`` with ``codec.<name>`` set to None (the C line encoder, or all C code)."""
    saved = getattr(codec_module, name)
    setattr(codec_module, name, None)
    try:
        return run()
    finally:
        setattr(codec_module, name, saved)


def run_shape(shape: str, args: argparse.Namespace, work: Path) -> list[str]:
    """Measure one shape; its rows of the table (the columns: the module's docstring)."""
    items = max(args.files, int(args.items * SCALE.get(shape, 1.0)))
    shutil.rmtree(work, ignore_errors=True)
    export_dir = generate(work / "src", shape, items, args.files)
    raw = sum(len(gzip.decompress(p.read_bytes())) for p in (work / "src").rglob("*.gz"))
    cpu = stages(export_dir, work, args.repeat)
    cpu["ingest"] = ingest(export_dir, work / "out", 1, "thread", args.repeat)
    cpu["ingest_walk"] = without(
        "_compiled_lines", lambda: ingest(export_dir, work / "out", 1, "thread", args.repeat)
    )
    cpu["ingest_py"] = without(
        "_compiled", lambda: ingest(export_dir, work / "out", 1, "thread", args.repeat)
    )
    us = {k: v / items * 1e6 for k, v in cpu.items()}
    rest = us["ingest"] - us["write"]
    rows = [
        f"{shape:<8} {items:>7,} {raw / items:>6,.0f} | {us['gzip']:>5.2f} "
        f"{us['floor'] - us['gzip']:>5.2f} {us['floor']:>5.2f} | "
        f"{us['encode'] - us['gzip']:>6.2f} {us['write'] - us['encode']:>5.2f} {rest:>5.2f} "
        f"{us['ingest']:>6.2f}         | "
        f"{items / cpu['floor']:>9,.0f} {items / cpu['ingest']:>8,.0f}             | "
        f"{cpu['floor'] / cpu['ingest']:>7.0%}  | "
        f"{us['ingest_walk']:>22.2f} {cpu['floor'] / cpu['ingest_walk']:>5.0%}   | "
        f"{us['ingest_py']:>18.2f} {cpu['floor'] / cpu['ingest_py']:>5.0%}"
    ]
    if args.workers > 1:
        for executor in ("thread", "process"):
            spent = ingest(export_dir, work / "out", args.workers, executor, 1)
            rows.append(
                f"{'':<8} ingest_export, {args.workers} {executor} workers: "
                f"{items / spent:,.0f} items/CPU-s "
                f"({cpu['floor'] / spent:.0%} of the floor)"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40_000, help="items per shape")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (least CPU)")
    parser.add_argument(
        "--shape", default="all", choices=["all", "order", *ISSUE_SHAPES], help="item shape"
    )
    args = parser.parse_args()
    shapes = ISSUE_SHAPES if args.shape == "all" else (args.shape,)
    print(f"cores: {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"codec.COMPILED={codec_module.COMPILED}")
    work = Path(tempfile.mkdtemp(prefix="bench-s3export-"))
    print(HEADER)
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

"""Where a scan export's client CPU goes, stage by stage, in one thread.

For each shape (``bench/shapes.py``) it scans the table once with pitrdiff's
orjson response parsing, keeping the pages, then times in this process:

- ``fetch+parse``: the scan itself (HTTP, signing, ``orjson.loads`` of bodies);
- ``encode``: ``codec.encode_record`` of every item;
- ``add``: ``PartBuffer.add_page`` of every page's records (the per-item path);
- ``fetch raw``: the scan as the export makes it, each body's ``Items`` left as
  text (only the rest parsed: ``install_fast_parse(raw_items=True)``);
- ``encode text``: ``codec.encode_items`` of each page into the part buffer's
  columns, straight from the text (the export's path when the C code is built);
- ``flush``: ``PartBuffer.flush`` (Arrow arrays, Parquet with the part codec,
  checksum, file write), as one part; ``--codec`` rewrites that part with
  another codec too, for comparison.

CPU seconds per item (``time.process_time``), GC thresholds as the export sets
them. One thread, so no GIL hand-offs: ``bench_export.py`` gives the threaded total.

Usage::

    python3 bench/bench_export_stages.py --shape all --items 20000
    python3 bench/bench_export_stages.py --endpoint http://127.0.0.1:PORT --shape wide
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_export import SCALE, load, table_of  # noqa: E402
from shapes import ISSUE_SHAPES, SHAPES  # noqa: E402


def scan_pages(client: Any, table: str) -> list[Any]:
    """Every page's ``Items`` of one scan of ``table``."""
    pages = []
    request: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**request)
        pages.append(page["Items"])
        if "LastEvaluatedKey" not in page:
            return pages
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def stages(endpoint: str, shape: str, codecs: list[str]) -> dict[str, float]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pitrdiff import codec
    from pitrdiff.aws import AwsConfig, dynamodb_client
    from pitrdiff.export.dataset import PartBuffer
    from pitrdiff.export.scan import _EXPORT_GC_THRESHOLD, describe_table, install_fast_parse

    pa.array([""], pa.string())  # pyarrow's one-time pandas import, not a per-item cost
    client = dynamodb_client(AwsConfig(endpoint_url=endpoint, region="us-east-1"))
    install_fast_parse(client)
    description = describe_table(client, table_of(shape))
    saved = gc.get_threshold()
    gc.set_threshold(*_EXPORT_GC_THRESHOLD)
    try:
        t0 = time.process_time()
        pages = scan_pages(client, table_of(shape))
        figures = {"fetch+parse": time.process_time() - t0}
        count = sum(map(len, pages))
        raw_client = dynamodb_client(AwsConfig(endpoint_url=endpoint, region="us-east-1"))
        install_fast_parse(raw_client, raw_items=True)
        t0 = time.process_time()
        raw_pages = scan_pages(raw_client, table_of(shape))
        figures["fetch raw"] = time.process_time() - t0
        names = description.key_schema.names
        with tempfile.TemporaryDirectory() as tmp:
            buffer = PartBuffer(tmp, description.key_schema, "seg-0000", part_bytes=1 << 40)
            declared = description.key_schema.declared_types
            t0 = time.process_time()
            for raw in raw_pages:
                taken, characters, _, complete = codec.encode_items(
                    raw.body, raw.start, raw.end, names, declared, buffer.columns
                )
                assert complete
                buffer.took(taken, characters)
            figures["encode text"] = time.process_time() - t0
            assert buffer.buffered_items == count
        t0 = time.process_time()
        records = [[codec.encode_record(item, names) for item in page] for page in pages]
        figures["encode"] = time.process_time() - t0
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "data").mkdir()
            buffer = PartBuffer(tmp, description.key_schema, "seg-0000", part_bytes=1 << 40)
            t0 = time.process_time()
            for page_records in records:
                buffer.add_page(page_records)
            figures["add"] = time.process_time() - t0
            t0 = time.process_time()
            entry = buffer.flush()
            figures["flush"] = time.process_time() - t0
            assert entry is not None
            table = pq.read_table(Path(tmp) / entry.path)
            for name in codecs:
                t0 = time.process_time()
                pq.write_table(
                    table,
                    io.BytesIO(),
                    compression=name,
                    row_group_size=128 * 1024,
                    use_dictionary=False,
                    write_statistics=buffer._statistics,
                )
                figures[f"parquet write {name}"] = time.process_time() - t0
    finally:
        gc.set_threshold(*saved)
    return {stage: seconds / count * 1e6 for stage, seconds in figures.items()} | {"items": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="all", help=f"{', '.join(SHAPES)} or all")
    parser.add_argument("--items", type=int, default=20_000, help="items per shape (wide: 1/10)")
    parser.add_argument("--endpoint", help="a server already loaded by bench_export.py")
    parser.add_argument("--codec", default="zstd,lz4", help="Parquet codecs to time the write of")
    args = parser.parse_args()
    shapes = list(ISSUE_SHAPES) if args.shape == "all" else [args.shape]
    codecs = [c for c in args.codec.split(",") if c]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    process = None
    endpoint = args.endpoint
    if endpoint is None:
        from tests.conftest import free_port, start_dynalite

        port = free_port()
        process = start_dynalite(port)
        endpoint = f"http://127.0.0.1:{port}"
    results = {}
    try:
        for shape in shapes:
            if process is not None:
                load(endpoint, shape, max(100, int(args.items * SCALE.get(shape, 1.0))))
            results[shape] = stages(endpoint, shape, codecs)
    finally:
        if process is not None:
            process.terminate()
            process.wait()
    columns = ["fetch+parse", "encode", "add", "fetch raw", "encode text", "flush"]
    columns += [f"parquet write {c}" for c in codecs]
    print(f"CPU µs per item, one thread; load average {os.getloadavg()[0]:.1f}")
    print(f"{'shape':<9}{'items':>8}" + "".join(f"{c:>{max(len(c) + 2, 10)}}" for c in columns))
    for shape, row in results.items():
        print(
            f"{shape:<9}{row['items']:>8,.0f}"
            + "".join(f"{row[c]:>{max(len(c) + 2, 10)}.1f}" for c in columns)
        )


if __name__ == "__main__":
    main()

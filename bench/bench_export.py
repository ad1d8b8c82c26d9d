"""Client CPU of pitrdiff's export versus a plain boto3 scan loop, side by side.

Starts dynalite on loopback, loads items of one or more shapes
(``bench/shapes.py``: flat, nested, binary, numbers, wide, mixed), one table
per shape, then runs each variant in its own child process and reads that
process's CPU time (user + sys, from ``resource.getrusage``) around the work
only, so dynalite's CPU and interpreter start-up are not counted:

- ``boto3``: a plain boto3 client segmented scan (threads, same segment count)
  that does nothing with the items;
- ``fastparse``: the same loop with pitrdiff's orjson response parsing and the
  export's GC thresholds (no export);
- ``pitrdiff``: ``pitrdiff.export_table`` into a temporary directory (the
  codec's C code, ``pitrdiff._canon``, when built: each response's items are
  encoded straight from its JSON text, ``codec.encode_items``);
- ``pitrdiff-walk``: the same, but each response parsed with orjson and each
  item encoded by the C walk (``codec.encode_record``: the previous round's path);
- ``pitrdiff-py``: the same with ``PITRDIFF_NO_COMPILED=1`` (the codec's
  Python walk: the figures before any C).

It also prints the floor: ``json.loads`` (and orjson) of the same response
bodies, and ``codec.encode_record`` alone on the items of those bodies (C walk,
and Python walk).

Usage::

    python bench/bench_export.py --shape all         # the five shapes of issue 17
    python bench/bench_export.py --shape nested --items 20000
    python bench/bench_export.py                     # mixed, 30k items
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from shapes import ISSUE_SHAPES, SHAPES, make_mixed  # noqa: E402

make_item = make_mixed  # bench_apply.py's items
# Items per shape at --items N: wide items are ~10x larger, so fewer of them.
SCALE = {"wide": 0.1}


def table_of(shape: str) -> str:
    return f"bench-{shape}"


def load(endpoint: str, shape: str, count: int, threads: int = 8) -> None:
    from pitrdiff import codec
    from pitrdiff.aws import AwsConfig, dynamodb_client

    config = AwsConfig(endpoint_url=endpoint, region="us-east-1")
    make = SHAPES[shape]
    table = table_of(shape)
    client = dynamodb_client(config, max_pool_connections=threads + 2)
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.1})

    def worker(start: int) -> None:
        for base in range(start * 25, count, threads * 25):
            batch = [
                {"PutRequest": {"Item": codec.to_botocore(make(i))}}
                for i in range(base, min(base + 25, count))
            ]
            pending: dict[str, Any] = {table: batch}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
                pending = pending or {}

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(variant: str, endpoint: str, segments: int, table: str) -> None:
    """Run one variant in this (child) process; print a JSON line of figures."""
    import orjson

    from pitrdiff.aws import AwsConfig, dynamodb_client
    from pitrdiff.export.scan import export_table, install_fast_parse

    config = AwsConfig(endpoint_url=endpoint, region="us-east-1")
    result: dict[str, Any] = {"variant": variant}
    if variant in ("boto3", "fastparse", "bodies"):
        client = dynamodb_client(config, max_pool_connections=segments + 2)
        bodies: list[bytes] = []
        if variant == "fastparse":
            install_fast_parse(client)
            # The export raises the GC thresholds while it runs (scan._gc_relax); so
            # does this loop, or collections of the parsed pages would dominate it.
            import gc

            gc.set_threshold(100_000, 50, 100)
        if variant == "bodies":

            def grab(response_dict: dict[str, Any], **_: Any) -> None:
                bodies.append(response_dict["body"])

            client.meta.events.register("before-parse.dynamodb.Scan", grab)
        client.describe_table(TableName=table)  # warm the client (models, connection)
        counts = [0] * segments

        def scan(segment: int) -> None:
            kwargs: dict[str, Any] = {
                "TableName": table,
                "Segment": segment,
                "TotalSegments": segments,
            }
            while True:
                page = client.scan(**kwargs)
                for _item in page["Items"]:
                    counts[segment] += 1
                if "LastEvaluatedKey" not in page:
                    return
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        start_cpu, start_wall = cpu(), time.monotonic()
        pool = [threading.Thread(target=scan, args=(s,)) for s in range(segments)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        result.update(cpu=cpu() - start_cpu, wall=time.monotonic() - start_wall, items=sum(counts))
        if variant == "bodies":
            # The floor: parsing the same bytes with json / orjson, nothing else.
            t0 = time.process_time()
            for body in bodies:
                json.loads(body)
            result["json_loads_cpu"] = time.process_time() - t0
            t0 = time.process_time()
            for body in bodies:
                orjson.loads(body)
            result["orjson_loads_cpu"] = time.process_time() - t0
            result["wire_bytes"] = sum(len(b) for b in bodies)
            # codec.encode_record alone on the items exactly as the export receives
            # them (the server's spelling), with the export's GC thresholds.
            import gc

            from pitrdiff import codec

            gc.set_threshold(1_000_000, 100, 100)
            pages = [orjson.loads(body)["Items"] for body in bodies]
            for key, walk in (("encode_cpu", codec._compiled), ("encode_py_cpu", None)):
                codec._compiled = walk
                t0 = time.process_time()
                for page in pages:
                    for item in page:
                        codec.encode_record(item, ("pk", "sk"))
                result[key] = time.process_time() - t0
            result["compiled"] = codec.COMPILED
    elif variant in ("pitrdiff", "pitrdiff-walk", "pitrdiff-py"):
        from pitrdiff import codec

        assert codec.COMPILED is (variant != "pitrdiff-py"), "pitrdiff._canon not built?"
        if variant == "pitrdiff-walk":
            codec._items_span = None  # every response parsed, every item walked
        dynamodb_client(config).describe_table(TableName=table)  # same warm-up as above
        # pyarrow's first pa.array() imports pandas (~0.2 s CPU once per process);
        # like the client warm-up above it is a one-time cost, reported apart.
        import pyarrow as pa

        start_cpu = cpu()
        pa.array([""], pa.string())
        # numpy's OpenBLAS threads, started by that import, spin for a while after
        # it (~0.09 s of CPU on 2 cores): let them settle, so that is one-time too.
        time.sleep(0.5)
        result["one_time_cpu"] = cpu() - start_cpu
        # The first export pays one-time costs (imports of the export and Parquet
        # code, first calls); a second export of the same table in the same
        # process shows the cost per item ("warm"). The Python walk's number
        # cache is emptied in between, so the warm run does not start with it full.
        with tempfile.TemporaryDirectory() as out:
            for run in ("cold", "warm"):
                codec._short_number_sizes.clear()
                start_cpu, start_wall = cpu(), time.monotonic()
                manifest = export_table(table, Path(out) / run, segments=segments, aws=config)
                spent, wall = cpu() - start_cpu, time.monotonic() - start_wall
                if run == "cold":
                    result.update(cpu=spent, wall=wall, items=manifest.items)
                else:
                    result.update(warm_cpu=spent, warm_wall=wall)
    else:
        raise SystemExit(f"unknown variant {variant}")
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(json.dumps(result) + "\n")


def run_child(variant: str, endpoint: str, segments: int, table: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--endpoint", endpoint, "--table", table],
        check=True,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BENCH_SEGMENTS": str(segments),
            "PITRDIFF_NO_COMPILED": "1" if variant == "pitrdiff-py" else "0",
        },
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def measure(endpoint: str, shape: str, segments: int, repeat: int) -> dict[str, Any]:
    """Figures of every variant on one shape's table (the best of ``repeat`` runs)."""
    table = table_of(shape)
    floor = run_child("bodies", endpoint, segments, table)
    best: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        for variant in ("boto3", "fastparse", "pitrdiff", "pitrdiff-walk", "pitrdiff-py"):
            figures = run_child(variant, endpoint, segments, table)
            if variant not in best or figures["cpu"] < best[variant]["cpu"]:
                best[variant] = figures
    items = best["boto3"]["items"]
    for variant, figures in best.items():
        assert figures["items"] == items, (shape, variant, figures["items"], items)
    return {"floor": floor, "best": best, "items": items}


def print_shape(shape: str, result: dict[str, Any], segments: int, repeat: int) -> None:
    floor, best, items = result["floor"], result["best"], result["items"]
    print(
        f"\n== {shape}: {items:,} items, {floor['wire_bytes'] / items:.0f} wire bytes/item, "
        f"{segments} segments, {os.cpu_count()} cores, best of {repeat}"
    )
    print(
        f"{'variant':<38}{'client CPU s':>13}{'µs/item':>9}{'wall s':>8}{'ratio':>7}"
        f"{'peak RSS MB':>13}"
    )
    base = best["boto3"]["cpu"]
    rows = [
        ("boto3 client scan loop", best["boto3"]),
        ("scan loop + orjson parse (no export)", best["fastparse"]),
        ("pitrdiff export_table (C, from JSON text)", best["pitrdiff"]),
        ("pitrdiff export_table (C walk per item)", best["pitrdiff-walk"]),
        ("pitrdiff export_table (Python walk)", best["pitrdiff-py"]),
    ]
    for label, variant in (
        ("  the same, warm: C, from JSON text", "pitrdiff"),
        ("  the same, warm: C walk per item", "pitrdiff-walk"),
        ("  the same, warm: Python walk", "pitrdiff-py"),
    ):
        warm = best[variant]
        rows.append((label, {**warm, "cpu": warm["warm_cpu"], "wall": warm["warm_wall"]}))
    for label, figures in rows:
        print(
            f"{label:<38}{figures['cpu']:>13.2f}{figures['cpu'] / items * 1e6:>9.1f}"
            f"{figures['wall']:>8.1f}{figures['cpu'] / base:>7.3f}{figures['maxrss_mb']:>13.0f}"
        )
    for label, key in (
        ("floor: json.loads", "json_loads_cpu"),
        ("floor: orjson.loads", "orjson_loads_cpu"),
    ):
        seconds = floor[key]
        print(
            f"{label:<38}{seconds:>13.2f}{seconds / items * 1e6:>9.1f}{'':>8}{seconds / base:>7.3f}"
        )
    print(
        f"{'(one-time, not counted: pa.array imports pandas, numpy)':<51}"
        f"{best['pitrdiff']['one_time_cpu']:>.2f} s"
    )
    for label, key in (("C walk", "encode_cpu"), ("Python walk", "encode_py_cpu")):
        encode_us = floor[key] / items * 1e6
        print(
            f"{'codec.encode_record alone, ' + label:<38}{'':>13}{encode_us:>9.1f}{'':>8}"
            f"{encode_us * items / 1e6 / base:>7.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="mixed", help=f"{', '.join(SHAPES)} or all")
    parser.add_argument("--items", type=int, default=30_000, help="items per shape (wide: 1/10)")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="runs per variant (best is kept)")
    parser.add_argument("--endpoint", help="use this server (already loaded) instead of dynalite")
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    segments = int(os.environ.get("BENCH_SEGMENTS", args.segments))
    if args.child:
        child(args.child, args.endpoint, segments, args.table)
        return
    shapes = list(ISSUE_SHAPES) if args.shape == "all" else [args.shape]
    for shape in shapes:
        if shape not in SHAPES:
            parser.error(f"unknown shape {shape!r}; one of {', '.join(SHAPES)} or all")

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
    results: dict[str, dict[str, Any]] = {}
    try:
        for shape in shapes:
            count = max(100, int(args.items * SCALE.get(shape, 1.0)))
            if process is not None:
                t0 = time.monotonic()
                load(endpoint, shape, count)
                print(f"loaded {count:,} {shape} items in {time.monotonic() - t0:.1f}s")
            results[shape] = measure(endpoint, shape, segments, args.repeat)
    finally:
        if process is not None:
            process.terminate()
            process.wait()
    for shape in shapes:
        print_shape(shape, results[shape], segments, args.repeat)
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{'shape':<9}{'boto3 µs':>10}{'pitrdiff µs':>13}{'pitrdiff/boto3':>16}"
        f"{'parse+encode/boto3':>20}{'orjson/boto3':>14}{'warm: C text/boto3':>20}"
        f"{'C walk/boto3':>14}{'Python walk/boto3':>19}"
    )
    for shape in shapes:
        best, floor, items = (
            results[shape]["best"],
            results[shape]["floor"],
            results[shape]["items"],
        )
        base = best["boto3"]["cpu"]
        parse_encode = best["fastparse"]["cpu"] + floor["encode_cpu"]
        print(
            f"{shape:<9}{base / items * 1e6:>10.1f}{best['pitrdiff']['cpu'] / items * 1e6:>13.1f}"
            f"{best['pitrdiff']['cpu'] / base:>16.3f}{parse_encode / base:>20.3f}"
            f"{floor['orjson_loads_cpu'] / base:>14.3f}"
            f"{best['pitrdiff']['warm_cpu'] / base:>20.3f}"
            f"{best['pitrdiff-walk']['warm_cpu'] / base:>14.3f}"
            f"{best['pitrdiff-py']['warm_cpu'] / base:>19.3f}"
        )


if __name__ == "__main__":
    main()

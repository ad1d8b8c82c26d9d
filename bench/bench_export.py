"""Client CPU of pitrdiff's export versus a plain boto3 scan loop, side by side.

Starts dynalite on loopback, loads N items of mixed types (~700 bytes of wire
JSON each), then runs each variant in its own child process and reads that
process's CPU time (user + sys, from ``resource.getrusage``) around the work
only, so dynalite's CPU and interpreter start-up are not counted:

- ``boto3``: a plain boto3 client segmented scan (threads, same segment count)
  that does nothing with the items;
- ``fastparse``: the same loop with pitrdiff's orjson response parsing (no export);
- ``pitrdiff``: ``pitrdiff.export_table`` into a temporary directory.

It also prints the floor: ``json.loads`` (and orjson) of the same response bodies.

Usage::

    python bench/bench_export.py                 # 100k items, 4 segments
    python bench/bench_export.py --items 20000   # a quicker run
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
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

TABLE = "bench"


def make_item(i: int) -> dict[str, Any]:
    """One item of mixed types, about 700 bytes of wire JSON."""
    rng = random.Random(i)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    return {
        "pk": {"S": f"customer#{i % 5000:05d}"},
        "sk": {"N": str(i)},
        "name": {"S": " ".join(rng.choice(words) for _ in range(4))},
        "email": {"S": f"user{i}@example.com"},
        "price": {"N": f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}"},
        "qty": {"N": str(rng.randint(0, 1000))},
        "active": {"BOOL": bool(i % 2)},
        "deleted_at": {"NULL": True},
        "tags": {"SS": sorted({rng.choice(words) for _ in range(3)})},
        "scores": {"NS": sorted({str(rng.randint(0, 100)) for _ in range(3)}, key=int)},
        "blob": {"B": base64.b64encode(rng.randbytes(48)).decode()},
        "address": {
            "M": {
                "street": {"S": f"{rng.randint(1, 999)} {rng.choice(words)} street"},
                "city": {"S": rng.choice(words).title()},
                "zip": {"S": f"{rng.randint(10000, 99999)}"},
            }
        },
        "history": {
            "L": [
                {"M": {"at": {"N": str(1700000000 + k)}, "what": {"S": rng.choice(words)}}}
                for k in range(3)
            ]
        },
        "notes": {"S": " ".join(rng.choice(words) for _ in range(11))},
    }


def load(endpoint: str, count: int, threads: int = 8) -> None:
    from pitrdiff import codec
    from pitrdiff.aws import AwsConfig, dynamodb_client

    config = AwsConfig(endpoint_url=endpoint, region="us-east-1")
    client = dynamodb_client(config, max_pool_connections=threads + 2)
    client.create_table(
        TableName=TABLE,
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
    client.get_waiter("table_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 0.1})

    def worker(start: int) -> None:
        for base in range(start * 25, count, threads * 25):
            batch = [
                {"PutRequest": {"Item": codec.to_botocore(make_item(i))}}
                for i in range(base, min(base + 25, count))
            ]
            pending: dict[str, Any] = {TABLE: batch}
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


def child(variant: str, endpoint: str, segments: int) -> None:
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
        if variant == "bodies":

            def grab(response_dict: dict[str, Any], **_: Any) -> None:
                bodies.append(response_dict["body"])

            client.meta.events.register("before-parse.dynamodb.Scan", grab)
        client.describe_table(TableName=TABLE)  # warm the client (models, connection)
        counts = [0] * segments

        def scan(segment: int) -> None:
            kwargs: dict[str, Any] = {
                "TableName": TABLE,
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
    elif variant == "pitrdiff":
        dynamodb_client(config).describe_table(TableName=TABLE)  # same warm-up as above
        with tempfile.TemporaryDirectory() as out:
            start_cpu, start_wall = cpu(), time.monotonic()
            manifest = export_table(TABLE, Path(out) / "x", segments=segments, aws=config)
            result.update(
                cpu=cpu() - start_cpu, wall=time.monotonic() - start_wall, items=manifest.items
            )
    else:
        raise SystemExit(f"unknown variant {variant}")
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(json.dumps(result) + "\n")


def run_child(variant: str, endpoint: str, segments: int) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--endpoint", endpoint],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "BENCH_SEGMENTS": str(segments)},
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="runs per variant (best is kept)")
    parser.add_argument("--endpoint", help="use this server (already loaded) instead of dynalite")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    segments = int(os.environ.get("BENCH_SEGMENTS", args.segments))
    if args.child:
        child(args.child, args.endpoint, segments)
        return

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
        t0 = time.monotonic()
        load(endpoint, args.items)
        print(f"loaded {args.items:,} items into dynalite in {time.monotonic() - t0:.1f}s")
    try:
        floor = run_child("bodies", endpoint, segments)
        best: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeat):
            for variant in ("boto3", "fastparse", "pitrdiff"):
                figures = run_child(variant, endpoint, segments)
                if variant not in best or figures["cpu"] < best[variant]["cpu"]:
                    best[variant] = figures
    finally:
        if process is not None:
            process.terminate()
            process.wait()
    items = best["boto3"]["items"]
    print(
        f"{items:,} items, {floor['wire_bytes'] / items:.0f} wire bytes/item, "
        f"{segments} segments, {os.cpu_count()} cores, best of {args.repeat}"
    )
    print(
        f"{'variant':<38}{'client CPU s':>13}{'µs/item':>9}{'wall s':>8}{'ratio':>7}"
        f"{'peak RSS MB':>13}"
    )
    base = best["boto3"]["cpu"]
    rows = [
        ("boto3 client scan loop", best["boto3"]),
        ("scan loop + orjson parse (no export)", best["fastparse"]),
        ("pitrdiff export_table", best["pitrdiff"]),
    ]
    for label, figures in rows:
        assert figures["items"] == items, (label, figures["items"], items)
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
    print(f"ratio pitrdiff / boto3 = {best['pitrdiff']['cpu'] / base:.3f}")


if __name__ == "__main__":
    main()

"""Client CPU per applied operation: ``pitrdiff apply`` versus a bare PutItem loop.

Starts dynalite on loopback, builds a plan of N deleted items (mixed types,
~700 bytes of wire JSON each: the export benchmark's items) and applies it to
an empty table with each variant, in its own child process, reading that
process's CPU time (user + sys, ``resource.getrusage``) around the work only,
so dynalite's CPU and interpreter start-up are not counted:

- ``bare``: a loop of the same conditional PutItem calls (``attribute_not_exists``
  on the key, the same items read from the plan file), one thread, nothing else;
- ``pitrdiff-w1``: ``pitrdiff.apply_plan`` with one worker (plan verification,
  journal, conflict classification, report included);
- ``pitrdiff-w8``: the same with eight workers (the default).

Usage::

    python bench/bench_apply.py                # 5000 items
    python bench/bench_apply.py --items 1000   # a quicker run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
DEFINITIONS = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "N"},
]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(variant: str, plan: str, endpoint: str, table: str) -> None:
    import orjson

    from pitrdiff import codec
    from pitrdiff.aws import AwsConfig, dynamodb_client
    from pitrdiff.recovery.apply import apply_plan

    config = AwsConfig(endpoint_url=endpoint, region="us-east-1")
    if variant == "bare":
        client = dynamodb_client(config)
        client.describe_table(TableName=table)  # warm the connection like apply does
        start_cpu, start = cpu(), time.perf_counter()
        count = 0
        with open(plan, "rb") as handle:
            for line in handle:
                doc = orjson.loads(line)
                if doc.get("kind") != "op":
                    continue
                client.put_item(
                    TableName=table,
                    Item=codec.to_botocore(doc["item"]),
                    ConditionExpression="attribute_not_exists(#k0)",
                    ExpressionAttributeNames={"#k0": "pk"},
                )
                count += 1
        applied = count
    else:
        workers = int(variant.rsplit("w", 1)[1])
        start_cpu, start = cpu(), time.perf_counter()
        report = apply_plan(plan, table=table, workers=workers, aws=config)
        applied = report.applied
    print(
        json.dumps(
            {
                "variant": variant,
                "applied": applied,
                "cpu_s": cpu() - start_cpu,
                "wall_s": time.perf_counter() - start,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--child", nargs=4, metavar=("VARIANT", "PLAN", "ENDPOINT", "TABLE"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from bench_export import make_item

    from pitrdiff.aws import AwsConfig, dynamodb_client
    from pitrdiff.diff.core import diff_exports
    from pitrdiff.export.dataset import write_export
    from pitrdiff.recovery.plan import write_plan
    from tests.conftest import free_port, start_dynalite

    port = free_port()
    server = start_dynalite(port)
    endpoint = f"http://127.0.0.1:{port}"
    client = dynamodb_client(AwsConfig(endpoint_url=endpoint, region="us-east-1"))
    try:
        with tempfile.TemporaryDirectory() as work_dir:
            work = Path(work_dir)
            items = [make_item(i) for i in range(args.items)]
            write_export(
                [],
                work / "live",
                table_name="bench",
                key_schema=KEYS,
                attribute_definitions=DEFINITIONS,
            )
            write_export(
                items,
                work / "restored",
                table_name="bench-restored",
                key_schema=KEYS,
                attribute_definitions=DEFINITIONS,
            )
            diff_exports(work / "live", work / "restored", work / "diff")
            plan = work / "plan.jsonl"
            write_plan(work / "diff", plan, table="bench")
            print(f"{args.items} deleted items to put back, dynalite on {endpoint}")
            results: dict[str, Any] = {}
            for variant in ("bare", "pitrdiff-w1", "pitrdiff-w8"):
                table = f"bench-{variant}"
                client.create_table(
                    TableName=table,
                    KeySchema=KEYS,
                    AttributeDefinitions=DEFINITIONS,
                    BillingMode="PAY_PER_REQUEST",
                )
                for leftover in work.glob("plan.jsonl.*"):
                    leftover.unlink()  # no journal from the previous variant
                out = subprocess.run(
                    [sys.executable, __file__, "--child", variant, str(plan), endpoint, table],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                results[variant] = result
                per_op = result["cpu_s"] / max(1, result["applied"]) * 1e6
                print(
                    f"{variant:12s} applied {result['applied']:6d}  client CPU "
                    f"{result['cpu_s']:6.2f} s  = {per_op:6.0f} µs/op  wall "
                    f"{result['wall_s']:6.2f} s"
                )
            bare = results["bare"]["cpu_s"] / max(1, results["bare"]["applied"])
            for variant in ("pitrdiff-w1", "pitrdiff-w8"):
                mine = results[variant]["cpu_s"] / max(1, results[variant]["applied"])
                print(
                    f"{variant}: {mine / bare:.2f}x the bare loop's client CPU per op "
                    "(target <= 1.5x)"
                )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()

"""Client CPU per applied operation: ``pitrdiff apply`` versus a bare loop of the same writes.

Two plans of N items (mixed types, ~700 bytes of wire JSON each: the export
benchmark's items): **deleted** items put back into an empty table (on
dynalite), and **changed** items (one top-level attribute differs) repaired in
a table holding their live versions (on moto, which compares whole maps and
lists with ``=`` as AWS does; dynalite does not). Each variant runs in its own
child process, which reads its own CPU time (user + sys, ``resource.getrusage``)
around the work only, so the server's CPU and interpreter start-up are not
counted:

- ``bare``: one thread reading the plan's lines and sending the very same
  requests (``PutItem`` with ``attribute_not_exists``, or the strict
  ``UpdateItem`` with its condition and ``ReturnValues=ALL_OLD``, built by the
  same function), nothing else: no verification, journal, threads or report;
- ``pitrdiff-w1``: ``pitrdiff.apply_plan`` with one worker (plan verification,
  requests, limit and index checks, journal, classification, report included);
- ``pitrdiff-w8``: the same with eight workers (the default).

Usage::

    python bench/bench_apply.py                # 3000 items of each class
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

    from pitrdiff.aws import AwsConfig, dynamodb_client
    from pitrdiff.recovery.apply import apply_plan
    from pitrdiff.recovery.conditions import plan_writes
    from pitrdiff.recovery.plan import load_plan

    config = AwsConfig(endpoint_url=endpoint, region="us-east-1")
    if variant == "bare":
        client = dynamodb_client(config)
        client.describe_table(TableName=table)  # warm the connection like apply does
        schema = load_plan(plan).key_schema
        calls = {"put": client.put_item, "update": client.update_item}
        start_cpu, start = cpu(), time.perf_counter()
        applied = 0
        with open(plan, "rb") as handle:
            for line in handle:
                doc = orjson.loads(line)
                if doc.get("kind") != "op":
                    continue
                for write in plan_writes(doc["class"], schema, doc["expected"], doc.get("item")):
                    calls[write.action](**write.to_request(table))
                applied += 1
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


def changed(item: dict[str, Any]) -> dict[str, Any]:
    """The live version of a changed item: one top-level attribute differs."""
    return {**item, "bench_changed": {"S": "corrupted"}}


def put_all(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    from pitrdiff import codec

    for start in range(0, len(items), 25):
        pending: Any = {
            table: [
                {"PutRequest": {"Item": codec.to_botocore(i)}} for i in items[start : start + 25]
            ]
        }
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")


def run_class(name: str, work: Path, items: list[dict[str, Any]], endpoint: str) -> dict[str, Any]:
    """Build one class's plan, run every variant on its own table, print the figures."""
    from pitrdiff.aws import AwsConfig, dynamodb_client
    from pitrdiff.diff.core import diff_exports
    from pitrdiff.export.dataset import write_export
    from pitrdiff.recovery.plan import write_plan

    client = dynamodb_client(AwsConfig(endpoint_url=endpoint, region="us-east-1"))
    live = [changed(i) for i in items] if name == "changed" else []
    base = work / name
    for part, content in (("live", live), ("restored", items)):
        write_export(
            content, base / part, table_name="bench", key_schema=KEYS,
            attribute_definitions=DEFINITIONS,
        )  # fmt: skip
    diff_exports(base / "live", base / "restored", base / "diff")
    plan = base / "plan.jsonl"
    write_plan(base / "diff", plan, table="bench", include=name)
    print(f"{len(items)} {name} items, server at {endpoint}")
    results: dict[str, Any] = {}
    for variant in ("bare", "pitrdiff-w1", "pitrdiff-w8"):
        table = f"bench-{name}-{variant}"
        client.create_table(
            TableName=table, KeySchema=KEYS, AttributeDefinitions=DEFINITIONS,
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        put_all(client, table, live)
        for leftover in base.glob("plan.jsonl.*"):
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
            f"  {variant:12s} applied {result['applied']:6d}  client CPU "
            f"{result['cpu_s']:6.2f} s = {per_op:6.0f} µs/op  wall {result['wall_s']:6.2f} s"
        )
    bare = results["bare"]["cpu_s"] / max(1, results["bare"]["applied"])
    for variant in ("pitrdiff-w1", "pitrdiff-w8"):
        mine = results[variant]["cpu_s"] / max(1, results[variant]["applied"])
        print(f"  {variant}: {mine / bare:.2f}x the bare loop's client CPU per op (target <= 1.5x)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--child", nargs=4, metavar=("VARIANT", "PLAN", "ENDPOINT", "TABLE"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import logging

    from bench_export import make_item
    from moto.server import ThreadedMotoServer

    from tests.conftest import free_port, start_dynalite, wait_for_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print(f"load average: {os.getloadavg()}")
    items = [make_item(i) for i in range(args.items)]
    port = free_port()
    server = start_dynalite(port)
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    wait_for_port(moto_port)
    try:
        with tempfile.TemporaryDirectory() as work_dir:
            run_class("deleted", Path(work_dir), items, f"http://127.0.0.1:{port}")
            run_class("changed", Path(work_dir), items, f"http://127.0.0.1:{moto_port}")
    finally:
        server.terminate()
        server.wait()
        moto.stop()
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()

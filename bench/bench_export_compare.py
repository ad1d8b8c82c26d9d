"""The export's client CPU, this tree against a git revision, side by side in one run.

Starts dynalite, loads one table per shape (``bench/shapes.py``) and a
10-item table, then runs, alternately and each in its own child process:
``bench_export.py``'s plain boto3 client scan loop (client made and warmed
before the clock starts, as there); ``export_table`` from ``--base``
(default ``HEAD``, extracted with ``git archive`` plus the built
``pitrdiff/_canon`` extension); and ``export_table`` from this working tree.
Each export child exports the table once to warm up (imports, first calls),
then twice more (*warm*, best kept), then the 10-item table three times: the
best of those is the export's **fixed cost** (a new botocore client with its
service model, ``DescribeTable``, ``DescribeTimeToLive``, manifest and
checkpoint files, threads), which a plain loop that reuses a warmed client does
not pay and which a table of millions of items spreads to nothing. It prints
per item: warm CPU, fixed cost, warm CPU less the fixed cost (the cost per
item of a long export), and their ratios to the boto3 loop.

Usage::

    python bench/bench_export_compare.py --shape flat,binary,numbers --items 20000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TINY = "bench-tiny"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(endpoint: str, table: str, segments: int) -> None:
    """Export ``table`` (warm-up, then 2 warm runs) and the tiny table 3 times; print JSON."""
    from pitrdiff import codec
    from pitrdiff.aws import AwsConfig
    from pitrdiff.export.scan import export_table

    assert codec.COMPILED, "pitrdiff._canon not built?"
    config = AwsConfig(endpoint_url=endpoint, region="us-east-1")
    result: dict[str, Any] = {"source": str(Path(codec.__file__).parent.parent)}
    with tempfile.TemporaryDirectory() as out:
        manifest = export_table(table, Path(out) / "warm-up", segments=segments, aws=config)
        result["items"] = manifest.items
        warm = []
        for run in range(2):
            start = cpu()
            export_table(table, Path(out) / f"warm{run}", segments=segments, aws=config)
            warm.append(cpu() - start)
        fixed = []
        for run in range(3):
            start = cpu()
            export_table(TINY, Path(out) / f"tiny{run}", segments=segments, aws=config)
            fixed.append(cpu() - start)
    result.update(warm=min(warm), fixed=min(fixed))
    sys.stdout.write(json.dumps(result) + "\n")


def run(args: list[str], pythonpath: Path) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=pythonpath,
        env={**os.environ, "PYTHONPATH": str(pythonpath), "PITRDIFF_NO_COMPILED": "0"},
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def extract(base: str, into: Path) -> Path:
    """``git archive`` of ``base``'s ``pitrdiff`` into ``into``, plus the built extension."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", base, "pitrdiff"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for built in (ROOT / "pitrdiff").glob("_canon*.so"):
        shutil.copy2(built, into / "pitrdiff" / built.name)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="flat", help="comma-separated shapes")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--base", default="HEAD")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.endpoint, args.child, args.segments)
        return
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_export import SCALE, load, table_of

    from tests.conftest import free_port, start_dynalite

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    shapes = args.shape.split(",")
    port = free_port()
    process = start_dynalite(port)
    endpoint = f"http://127.0.0.1:{port}"
    rows = []
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory() as scratch:
        base_tree = extract(args.base, Path(scratch))
        try:
            load(endpoint, "flat", 10)
            from pitrdiff.aws import AwsConfig, dynamodb_client

            client = dynamodb_client(AwsConfig(endpoint_url=endpoint, region="us-east-1"))
            copy_tiny(client)
            for shape in shapes:
                count = max(100, int(args.items * SCALE.get(shape, 1.0)))
                load(endpoint, shape, count)
                table = table_of(shape)
                best: dict[str, dict[str, Any]] = {}
                for _ in range(args.repeat):
                    figures = {
                        "boto3": run(
                            [
                                str(ROOT / "bench/bench_export.py"),
                                "--child",
                                "boto3",
                                "--endpoint",
                                endpoint,
                                "--table",
                                table,
                            ],
                            ROOT,
                        ),
                        "base": run(
                            [
                                script,
                                "--child",
                                table,
                                "--endpoint",
                                endpoint,
                                "--segments",
                                str(args.segments),
                            ],
                            base_tree,
                        ),
                        "new": run(
                            [
                                script,
                                "--child",
                                table,
                                "--endpoint",
                                endpoint,
                                "--segments",
                                str(args.segments),
                            ],
                            ROOT,
                        ),
                    }
                    for name, value in figures.items():
                        key = "cpu" if name == "boto3" else "warm"
                        if name not in best or value[key] < best[name][key]:
                            best[name] = value
                rows.append((shape, best))
        finally:
            process.terminate()
            process.wait()
    print_table(rows, args)


def copy_tiny(client: Any) -> None:
    """The 10-item table for the fixed cost: ``bench-flat``'s items under another name."""
    client.create_table(
        TableName=TINY,
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
    client.get_waiter("table_exists").wait(TableName=TINY, WaiterConfig={"Delay": 0.1})
    for item in client.scan(TableName="bench-flat")["Items"]:
        client.put_item(TableName=TINY, Item=item)
    client.delete_table(TableName="bench-flat")
    client.get_waiter("table_not_exists").wait(TableName="bench-flat", WaiterConfig={"Delay": 0.1})


def print_table(rows: list[tuple[str, dict[str, dict[str, Any]]]], args: Any) -> None:
    print(
        f"\nclient CPU per item, {args.segments} segments in threads, {os.cpu_count()} cores, "
        f"best of {args.repeat}; base = {args.base}, new = working tree"
    )
    print(
        f"{'shape':<9}{'items':>7}{'boto3 µs':>10}"
        f"{'warm µs base/new':>18}{'fixed ms base/new':>19}{'per item µs base/new':>22}"
        f"{'warm/boto3 base/new':>21}{'per item/boto3 base/new':>26}"
    )
    for shape, best in rows:
        items = best["new"]["items"]
        assert best["base"]["items"] == items == best["boto3"]["items"], best
        boto = best["boto3"]["cpu"] / items * 1e6
        b, n = best["base"], best["new"]
        warm = (b["warm"] / items * 1e6, n["warm"] / items * 1e6)
        fixed = (b["fixed"] * 1e3, n["fixed"] * 1e3)
        per = ((b["warm"] - b["fixed"]) / items * 1e6, (n["warm"] - n["fixed"]) / items * 1e6)
        print(
            f"{shape:<9}{items:>7}{boto:>10.1f}"
            f"{warm[0]:>10.1f} /{warm[1]:>6.1f}{fixed[0]:>11.0f} /{fixed[1]:>6.0f}"
            f"{per[0]:>14.1f} /{per[1]:>6.1f}"
            f"{warm[0] / boto:>13.3f} /{warm[1] / boto:>6.3f}"
            f"{per[0] / boto:>18.3f} /{per[1] / boto:>6.3f}"
        )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

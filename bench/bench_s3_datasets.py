"""Datasets on S3: the cost of the copy (stage) and the upload (publish) beside a diff on disk.

Runs moto's S3 server on loopback (an in-process Python server: its figures are
an upper bound of the overhead, not S3's), writes two exports of ``--n`` items
(2% differing), and times, side by side in one run: the diff disk -> disk, and
s3:// -> s3:// (staging both inputs with their checks, the diff, the upload).

    python3 bench/bench_s3_datasets.py --n 100000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import tempfile
import time
from pathlib import Path

import pitrdiff
from pitrdiff.aws import AwsConfig, s3_client
from pitrdiff.export import remote


def items(n: int, changed: bool) -> list[dict[str, dict[str, str]]]:
    out = []
    for i in range(n):
        noise = "".join(hashlib.sha256(f"{i}-{j}".encode()).hexdigest() for j in range(3))
        value = noise + ("-new" if changed and i % 50 == 0 else "")
        out.append({"pk": {"S": f"k{i:09d}"}, "sk": {"N": str(i % 7)}, "v": {"S": value}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    n = parser.parse_args().n
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3_client(AwsConfig(region="us-east-1"), endpoint_url=endpoint).create_bucket(Bucket="bench")
    key = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for side, changed in (("live", True), ("restored", False)):
            pitrdiff.write_export(items(n, changed), root / side, table_name="T", key_schema=key)
            t = time.perf_counter()
            where = remote.S3Prefix.parse(f"s3://bench/{side}", endpoint_url=endpoint)
            remote.publish(root / side, where, remote.check_out(where, "export", overwrite=False))
            upload = time.perf_counter() - t
        size = sum(p.stat().st_size for p in (root / "live").rglob("*.parquet"))
        t = time.perf_counter()
        local = pitrdiff.diff_exports(root / "live", root / "restored", root / "diff")
        disk = time.perf_counter() - t
        t = time.perf_counter()
        staged = pitrdiff.load_export("s3://bench/live", s3_endpoint_url=endpoint)
        stage = time.perf_counter() - t
        del staged
        t = time.perf_counter()
        on_s3 = pitrdiff.diff_exports(
            "s3://bench/live", "s3://bench/restored", "s3://bench/diff", s3_endpoint_url=endpoint
        )
        s3 = time.perf_counter() - t
        assert on_s3.manifest.counts == local.manifest.counts
    server.stop()
    print(
        f"items per export {n:,}; export parts {size / 1e6:.1f} MB; load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'diff disk -> disk':<34}{disk:7.2f} s")
    print(f"{'diff s3:// -> s3:// (moto)':<34}{s3:7.2f} s")
    print(f"{'  of which: stage one export':<34}{stage:7.2f} s")
    print(f"{'publish one export (moto)':<34}{upload:7.2f} s")


if __name__ == "__main__":
    main()

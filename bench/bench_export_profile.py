"""Where the threaded export's CPU goes: cProfile in every scan thread, merged.

Starts dynalite, loads one shape's table (``bench/shapes.py``), exports it
twice in this process (the first run warms imports up) with a profiler
installed in every thread (``threading.setprofile``), and prints the merged
profile of the second run sorted by own time, plus the process's CPU per item.

Usage::

    python bench/bench_export_profile.py --shape flat --items 20000
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_export import load, table_of  # noqa: E402


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="flat")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    from pitrdiff.aws import AwsConfig
    from pitrdiff.export.scan import export_table
    from tests.conftest import free_port, start_dynalite

    port = free_port()
    process = start_dynalite(port)
    endpoint = f"http://127.0.0.1:{port}"
    config = AwsConfig(endpoint_url=endpoint, region="us-east-1")
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def install(*_: Any) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        sys.setprofile(None)
        profile.enable()

    try:
        load(endpoint, args.shape, args.items)
        table = table_of(args.shape)
        with tempfile.TemporaryDirectory() as out:
            export_table(table, Path(out) / "cold", segments=args.segments, aws=config)
            start = cpu()
            plain = export_table(table, Path(out) / "plain", segments=args.segments, aws=config)
            plain_cpu = cpu() - start
            threading.setprofile(install)
            main_profile = cProfile.Profile()
            main_profile.enable()
            export_table(table, Path(out) / "warm", segments=args.segments, aws=config)
            main_profile.disable()
            threading.setprofile(None)
    finally:
        process.terminate()
        process.wait()
    for profile in profiles:
        profile.disable()
    stats = pstats.Stats(main_profile)
    for profile in profiles:
        stats.add(profile)
    print(f"unprofiled warm export: {plain_cpu / plain.items * 1e6:.1f} µs/item CPU")
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""The codec's Python walk against its C walk (pitrdiff/_canon.c), per item shape.

Prints, side by side per shape (``bench/shapes.py``), CPU µs per item of
``codec.canonicalize`` and ``codec.encode_record`` with the Python walk and
with the C walk, and the ratio, on two inputs: the items as the shapes spell
them (numbers with exponents and trailing zeros, sets unsorted: the S3 export
case) and the same items in canonical spelling (what a DynamoDB scan returns).
Every C result is checked against the Python result first.

``--leak-check N`` then encodes N items with the C walk in a loop and prints the
process's RSS every N/10 items: it must stay flat (reference counting).

Usage::

    python3 bench/bench_codec.py                 # all shapes, 5,000 items each, best of 3
    python3 bench/bench_codec.py --leak-check 200000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shapes import ISSUE_SHAPES, SHAPES

from pitrdiff import codec

KEY = ("pk", "sk")


def best_us(work: Callable[[], None], items: int, repeat: int) -> float:
    """Least CPU time of ``repeat`` runs of ``work``, in µs per item."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        work()
        best = min(best, time.process_time() - t0)
    return best / items * 1e6


def measure(batch: list[dict[str, Any]], repeat: int) -> dict[str, float]:
    compiled = codec._compiled
    assert compiled is not None, "pitrdiff._canon is not built (or PITRDIFF_NO_COMPILED is set)"
    for item in batch:  # the C walk accepts every item and agrees with Python
        result = compiled(item)
        assert result is not None
        expected = codec._canonicalize_python(item)
        assert result[1] == expected[1]
        assert orjson.dumps(result[0], option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            expected[0], option=orjson.OPT_SORT_KEYS
        )
    python = codec._canonicalize_python
    figures = {
        "canon_py": best_us(lambda: [python(item) for item in batch], len(batch), repeat),
        "canon_c": best_us(lambda: [compiled(item) for item in batch], len(batch), repeat),
    }
    encode = codec.encode_record
    try:
        codec._compiled = None
        figures["encode_py"] = best_us(lambda: [encode(i, KEY) for i in batch], len(batch), repeat)
    finally:
        codec._compiled = compiled
    figures["encode_c"] = best_us(lambda: [encode(i, KEY) for i in batch], len(batch), repeat)
    return figures


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def leak_check(count: int) -> None:
    """Encode ``count`` items of every shape through the C walk; print RSS as it goes."""
    makers = [SHAPES[shape] for shape in ("mixed", *ISSUE_SHAPES)]
    spelled = [make(i) for make in makers for i in range(50)]
    canonical = [orjson.loads(codec.canonical_json(item)) for item in spelled]
    pool = spelled + canonical
    # Items the C walk gives up on part-way (after copying, respelling, sorting):
    # its clean-up paths must free what they made.
    fallbacks: list[Any] = [
        {"pk": {"S": "a"}, "sk": {"N": "1.50"}, "s": {"SS": ["b", "a"]}, "z": {"N": "1E999"}},
        {"pk": {"S": "a"}, "m": {"M": {"n": {"NS": ["2", "1.0"]}, "b": {"B": "AB=="}}}},
        {"pk": {"S": "a"}, "l": {"L": [{"B": b"\x00"}, {"BS": [b"\x01", "AA=="]}, {"X": 1}]}},
        {"pk": {"B": "AA=="}, "sk": {"BOOL": True}},  # not a key type: encode_record gives up
        {"pk": {"S": "a"}},  # no sk
    ]
    from pitrdiff import _canon

    print(f"\nleak check: {count:,} encode_record calls, C walk, RSS MB every {count // 10:,}")
    print(f"(and as many calls of the C walk on {len(fallbacks)} items it gives up on)")
    readings = []
    for n in range(count):
        codec.encode_record(pool[n % len(pool)], KEY)
        bad = fallbacks[n % len(fallbacks)]
        assert _canon.encode_record(bad, KEY) is None
        _canon.canonicalize(bad)
        if n % (count // 10) == 0:
            readings.append(rss_mb())
    readings.append(rss_mb())
    print(" ".join(f"{mb:.1f}" for mb in readings))
    print(f"growth after the first tenth: {readings[-1] - readings[1]:+.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="all", help=f"{', '.join(SHAPES)} or all")
    parser.add_argument("--items", type=int, default=5_000, help="items per shape (wide: 1/10)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--leak-check", type=int, default=0, metavar="N")
    args = parser.parse_args()
    shapes = [*ISSUE_SHAPES, "mixed"] if args.shape == "all" else [args.shape]
    print(f"codec.COMPILED={codec.COMPILED}, {args.repeat} runs each, best kept; CPU µs per item")
    header = f"{'shape':<9}{'input':<11}" + "".join(
        f"{h:>11}" for h in ("canon py", "canon C", "C/py", "encode py", "encode C", "C/py")
    )
    print(header)
    for shape in shapes:
        count = max(100, args.items // 10 if shape == "wide" else args.items)
        spelled = [SHAPES[shape](i) for i in range(count)]
        canonical = [orjson.loads(codec.canonical_json(item)) for item in spelled]
        for label, batch in (("as spelled", spelled), ("canonical", canonical)):
            f = measure(batch, args.repeat)
            print(
                f"{shape:<9}{label:<11}{f['canon_py']:>11.2f}{f['canon_c']:>11.2f}"
                f"{f['canon_c'] / f['canon_py']:>11.3f}{f['encode_py']:>11.2f}"
                f"{f['encode_c']:>11.2f}{f['encode_c'] / f['encode_py']:>11.3f}"
            )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.leak_check:
        leak_check(args.leak_check)


if __name__ == "__main__":
    main()

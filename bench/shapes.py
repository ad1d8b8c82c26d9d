"""Item shapes for the export and codec benchmarks (wire form, binary as base64).

Each ``make_<shape>(i)`` returns item ``i`` of that shape with key ``pk`` (S) and
``sk`` (N); the same ``i`` always gives the same item.

- ``mixed``: the original benchmark item (S, N, B, BOOL, NULL, SS, NS, M, L of M),
  ~700 wire bytes;
- ``flat``: 16 scalar attributes (S, N, BOOL, NULL), ~400 wire bytes;
- ``nested``: maps of lists of maps 3-4 levels deep, sets, binary, long strings
  and non-ASCII names, ~400 wire bytes;
- ``binary``: B values of 32-200 bytes and a BS set, ~700 wire bytes;
- ``numbers``: 38-digit numbers, exponent spellings (``1.5E+10``, ``-2.5e-7``),
  trailing zeros and an NS of such numbers, ~700 wire bytes;
- ``wide``: 200 short attributes (S, N, BOOL), ~5 KB wire bytes.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from typing import Any

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
ACCENTED = ["café", "naïve", "Zürich", "señor", "Ørsted", "東京", "Straße"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def make_mixed(i: int) -> dict[str, Any]:
    """One item of mixed types, about 700 bytes of wire JSON."""
    rng = random.Random(i)
    words = WORDS
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
        "blob": {"B": _b64(rng.randbytes(48))},
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


def make_flat(i: int) -> dict[str, Any]:
    """16 scalar attributes, about 400 bytes of wire JSON."""
    rng = random.Random(i)
    return {
        "pk": {"S": f"user#{i % 5000:05d}"},
        "sk": {"N": str(i)},
        "first_name": {"S": rng.choice(WORDS).title()},
        "last_name": {"S": rng.choice(WORDS).title()},
        "email": {"S": f"user{i}@example.com"},
        "country": {"S": rng.choice(["DE", "FR", "US", "JP", "BR"])},
        "age": {"N": str(rng.randint(18, 90))},
        "balance": {"N": f"{rng.randint(0, 99999)}.{rng.randint(1, 99):02d}".rstrip("0")},
        "logins": {"N": str(rng.randint(0, 10_000))},
        "verified": {"BOOL": rng.random() < 0.5},
        "admin": {"BOOL": False},
        "deleted_at": {"NULL": True},
        "created": {"S": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z"},
        "plan": {"S": rng.choice(["free", "pro", "team"])},
        "referrer": {"S": rng.choice(WORDS)},
        "bio": {"S": " ".join(rng.choice(WORDS) for _ in range(6))},
    }


def make_nested(i: int) -> dict[str, Any]:
    """Nested documents with sets, binary and non-ASCII names, ~400 wire bytes."""
    rng = random.Random(i)
    return {
        "pk": {"S": f"doc#{i % 5000:05d}"},
        "sk": {"N": str(i)},
        "größe": {"S": rng.choice(ACCENTED)},
        "doc": {
            "M": {
                "title": {"S": " ".join(rng.choice(WORDS) for _ in range(5))},
                "meta": {
                    "M": {
                        "tags": {"SS": [rng.choice(WORDS), rng.choice(ACCENTED)]},  # disjoint
                        "rev": {"N": str(rng.randint(1, 99))},
                        "flags": {"L": [{"BOOL": True}, {"NULL": True}]},
                    }
                },
                "sections": {
                    "L": [
                        {
                            "M": {
                                "h": {"S": rng.choice(WORDS)},
                                "n": {"N": str(k)},
                                "ids": {
                                    "NS": [str(rng.randint(1, 250)), str(rng.randint(251, 500))]
                                },
                            }
                        }
                        for k in range(2)
                    ]
                },
            }
        },
        "thumb": {"B": _b64(rng.randbytes(12))},
        "note": {"S": " ".join(rng.choice(ACCENTED) for _ in range(6))},
    }


def make_binary(i: int) -> dict[str, Any]:
    """Binary-heavy: B values of 32-200 bytes and a BS set, ~700 wire bytes."""
    rng = random.Random(i)
    return {
        "pk": {"S": f"blob#{i % 5000:05d}"},
        "sk": {"N": str(i)},
        "digest": {"B": _b64(rng.randbytes(32))},
        "payload": {"B": _b64(rng.randbytes(200))},
        "iv": {"B": _b64(rng.randbytes(16))},
        "signature": {"B": _b64(rng.randbytes(64))},
        "chunks": {"BS": [_b64(bytes([k]) + rng.randbytes(23)) for k in range(4)]},
        "content_type": {"S": "application/octet-stream"},
    }


def make_numbers(i: int) -> dict[str, Any]:
    """Number-heavy: 38-digit values, exponent spellings, trailing zeros; ~700 wire bytes."""
    rng = random.Random(i)
    big = "".join(rng.choice("123456789") for _ in range(38))
    return {
        "pk": {"S": f"metric#{i % 5000:05d}"},
        "sk": {"N": str(i)},
        "total": {"N": big},
        "precise": {"N": f"-{big[:20]}.{big[20:]}"},
        "tiny": {"N": f"{rng.randint(1, 9)}.{rng.randint(10, 99)}E-{rng.randint(20, 120)}"},
        "huge": {"N": f"{rng.randint(1, 9)}.{rng.randint(10, 99)}e+{rng.randint(20, 120)}"},
        "rate": {"N": f"{rng.randint(0, 99)}.{rng.randint(0, 9)}0"},
        "count": {"N": str(rng.randint(0, 10**12))},
        "ratio": {"N": f"0.{rng.randint(0, 10**9):09d}"},
        "scaled": {"N": f"{rng.randint(1, 999)}E{rng.randint(1, 30)}"},
        "samples": {
            "NS": [
                f"{rng.randint(1, 10**6)}.{rng.randint(1, 999)}E{k * 20 - rng.randint(50, 60)}"
                for k in range(6)
            ]
        },
        "series": {"L": [{"N": str(rng.randint(-(10**15), 10**15))} for _ in range(6)]},
    }


def make_wide(i: int) -> dict[str, Any]:
    """200 short attributes (S, N, BOOL), ~5 KB wire bytes."""
    rng = random.Random(i)
    item: dict[str, Any] = {"pk": {"S": f"wide#{i % 5000:05d}"}, "sk": {"N": str(i)}}
    for a in range(198):
        kind = a % 3
        if kind == 0:
            item[f"attr_{a:03d}"] = {"S": rng.choice(WORDS)}
        elif kind == 1:
            item[f"attr_{a:03d}"] = {"N": str(rng.randint(0, 100_000))}
        else:
            item[f"attr_{a:03d}"] = {"BOOL": rng.random() < 0.5}
    return item


SHAPES: dict[str, Callable[[int], dict[str, Any]]] = {
    "mixed": make_mixed,
    "flat": make_flat,
    "nested": make_nested,
    "binary": make_binary,
    "numbers": make_numbers,
    "wide": make_wide,
}
"""Shape name → item factory; ``all`` in the benchmarks means the five issue shapes."""

ISSUE_SHAPES = ("flat", "nested", "binary", "numbers", "wide")

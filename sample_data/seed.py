"""Deterministic sample orders table: the seed items of the demo, notebooks and tests.

Run ``python3 sample_data/seed.py`` to (re)write ``sample_data/seed_items.jsonl.gz``
byte for byte identically (fixed random seed, gzip without a timestamp). Each
line is one item in canonical DynamoDB JSON (binary as base64).

The table: partition key ``pk`` (``TENANT#acme``), sort key ``sk``
(``ORDER#000123``); every DynamoDB type appears — ``S``, ``N`` (integers and
decimal prices), ``B`` (a payment token digest), ``BOOL``, ``NULL``, ``M``
(customer, address), ``L`` of ``M`` (line items), ``SS`` (tags), ``NS``
(warehouse ids), ``BS`` (attachments) — and ``updated_at`` (ISO 8601 UTC)
dates each order's last change for the forensics notebook.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import random
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from pitrdiff import codec
from pitrdiff.files import write_bytes

SEED = 20261027
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark")
ORDERS_PER_TENANT = 500
SEED_FILE = Path(__file__).with_name("seed_items.jsonl.gz")
KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]
# Orders were created in the four weeks before this moment and last touched before it.
EPOCH = dt.datetime(2026, 10, 27, 12, 0, tzinfo=dt.timezone.utc)

STATUSES = ("PENDING", "PAID", "PAID", "SHIPPED", "SHIPPED", "DELIVERED", "DELIVERED", "CANCELLED")
PRODUCTS = (
    ("SKU-1001", "Espresso beans 1kg", Decimal("24.90")),
    ("SKU-1002", "Filter papers x100", Decimal("4.35")),
    ("SKU-1003", "Burr grinder", Decimal("129.00")),
    ("SKU-1004", "Milk jug 600ml", Decimal("18.75")),
    ("SKU-1005", "Descaler", Decimal("9.99")),
    ("SKU-1006", "Travel mug", Decimal("21.50")),
    ("SKU-1007", "Scale 0.1g", Decimal("39.95")),
    ("SKU-1008", "Tamper 58mm", Decimal("27.40")),
)
CITIES = (
    ("Berlin", "DE", "10115"),
    ("Lyon", "FR", "69001"),
    ("Porto", "PT", "4000-001"),
    ("Austin", "US", "73301"),
    ("Osaka", "JP", "530-0001"),
    ("Québec", "CA", "G1R 4P5"),
)
FIRST = ("Ada", "Linus", "Grace", "Émile", "Noor", "Kenji", "Zoë", "Ravi", "Mia", "Olu")
LAST = ("Lovelace", "Torvalds", "Hopper", "Durand", "Haddad", "Sato", "Novak", "Iyer", "Berg")
TAGS = ("gift", "express", "b2b", "repeat", "promo", "fragile", "eco")


def iso(moment: dt.datetime) -> str:
    """ISO 8601 UTC with a ``Z``, to the second."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def make_order(rng: random.Random, tenant: str, number: int) -> dict[str, Any]:
    """One order as plain Python values (Decimal, bytes, sets, dicts, lists, None)."""
    created = EPOCH - dt.timedelta(minutes=rng.randrange(60, 28 * 24 * 60))
    updated = min(
        EPOCH - dt.timedelta(minutes=1),
        created + dt.timedelta(minutes=rng.randrange(0, 5 * 24 * 60)),
    )
    lines = []
    for product in rng.sample(PRODUCTS, rng.randint(1, 4)):
        sku, name, price = product
        lines.append({"sku": sku, "name": name, "qty": rng.randint(1, 3), "unit_price": price})
    total = sum((line["unit_price"] * line["qty"] for line in lines), Decimal("0"))
    city, country, postcode = rng.choice(CITIES)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    gift = rng.random() < 0.15
    order: dict[str, Any] = {
        "pk": f"TENANT#{tenant}",
        "sk": f"ORDER#{number:06d}",
        "order_id": f"{tenant[:3].upper()}-{number:06d}",
        "status": rng.choice(STATUSES),
        "currency": "EUR" if country in ("DE", "FR", "PT") else "USD",
        "total": total,
        "discount_rate": Decimal(rng.choice(("0", "0.05", "0.1", "0.125"))),
        "line_items": lines,
        "customer": {
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}@example.com",
            "vip": rng.random() < 0.1,
        },
        "address": {
            "line1": f"{rng.randint(1, 200)} Main Street",
            "city": city,
            "postcode": postcode,
            "country": country,
        },
        "gift": gift,
        "gift_note": "Happy birthday!" if gift and rng.random() < 0.5 else None,
        "warehouse_ids": set(rng.sample(range(1, 12), rng.randint(1, 3))),
        "payment_token": hashlib.sha256(f"{tenant}/{number}/{SEED}".encode()).digest()[:16],
        "version": rng.randint(1, 6),
        "created_at": iso(created),
        "updated_at": iso(updated),
    }
    tags = {t for t in TAGS if rng.random() < 0.2}
    if tags:
        order["tags"] = tags
    if rng.random() < 0.1:
        order["attachments"] = {rng.randbytes(8) for _ in range(rng.randint(1, 2))}
    return order


def generate() -> Iterator[dict[str, Any]]:
    """Every seed item in wire form, deterministically, in key order."""
    rng = random.Random(SEED)
    for tenant in TENANTS:
        for number in range(1, ORDERS_PER_TENANT + 1):
            yield codec.item_from_python(make_order(rng, tenant, number))


def encode(items: Iterator[dict[str, Any]]) -> bytes:
    """Gzipped JSON Lines of canonical items, with no timestamp so the bytes are stable."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        for item in items:
            gz.write(codec.canonical_json(item).encode("utf-8") + b"\n")
    return buffer.getvalue()


def load_items(path: str | Path = SEED_FILE) -> list[dict[str, Any]]:
    """Read the committed seed items (wire form, binary as base64 text)."""
    with gzip.open(path, "rb") as handle:
        return [codec.loads(line) for line in handle if line.strip()]


def main() -> None:
    """Write ``seed_items.jsonl.gz`` beside this script."""
    data = encode(generate())
    write_bytes(SEED_FILE, data)
    print(f"wrote {SEED_FILE} ({len(data):,} bytes, {len(TENANTS) * ORDERS_PER_TENANT} items)")


if __name__ == "__main__":
    sys.exit(main())

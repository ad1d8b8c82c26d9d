"""Generate a live / restored pair of pitrdiff exports of N items for benchmarks.

The pair differs the way an incident leaves a table: 1% of the restored items
are deleted in live, 1% are changed (most only in ``amount``, some also in
``items[*].qty`` or ``status``), and live holds 0.5% more items added since.
Items are ~700 bytes of mixed types (S, N, B, BOOL, M, L, SS).

``pitrdiff.write_export`` canonicalises every item in Python (tens of µs per
item); for 10M items this script builds the canonical JSON directly from a
template (numbers already in canonical spelling, keys sorted), computes the
xxh3-64 hash and the AWS item size, and writes Parquet parts and a manifest in
the export format. A self-check compares the first items with pitrdiff's codec
(canonical JSON, hash, size), and ``--check`` verifies the whole pair with
``pitrdiff.load_export(verify=True)``; ``--via-write-export`` uses
``pitrdiff.write_export`` instead (slow, for small N).

Usage::

    python3 bench/gen_exports.py --n 1000000 --out /tmp/pitrdiff-bench/1m
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from xxhash import xxh3_64_intdigest as xxh3_64

import pitrdiff
from pitrdiff import codec
from pitrdiff.export.dataset import (
    DATA_DIR,
    FileEntry,
    KeySchema,
    Manifest,
    prepare_directory,
    utc_now,
    write_manifest,
)

TABLE = "BenchOrders"
RESTORED_TABLE = "BenchOrders-restored"
KEY_SCHEMA = [
    {"AttributeName": "tenant", "KeyType": "HASH"},
    {"AttributeName": "id", "KeyType": "RANGE"},
]
ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": "tenant", "AttributeType": "S"},
    {"AttributeName": "id", "AttributeType": "S"},
]
CHUNK = 262_144
STATUSES = ("paid", "pending", "shipped", "refunded", "cancelled")
TIERS = ("bronze", "silver", "gold", "platinum")
FLAGS = ("fragile", "gift", "express", "priority", "eco", "insured")
LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat duis aute irure "
    "dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur "
)


def number_size(canonical: str) -> int:
    """AWS size of a positive number (same rule as pitrdiff.codec)."""
    digits = len(canonical.replace(".", "").strip("0")) or 1
    return (digits + 1) // 2 + 1


def cents(value: int) -> str:
    """Canonical spelling of value/100 (no trailing fractional zeros)."""
    whole, frac = divmod(value, 100)
    if frac == 0:
        return str(whole)
    if frac % 10 == 0:
        return f"{whole}.{frac // 10}"
    return f"{whole}.{frac:02d}"


class Generator:
    """Deterministic items: item ``i`` in canonical JSON, plus key, hash and size."""

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed

    def chunk(
        self,
        start: int,
        stop: int,
        variant: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> pa.Table:
        """Items ``start .. stop-1`` (or only ``rows`` of them, offsets from ``start``).

        ``variant`` (per item of the range; 0 = base) selects a changed version.
        """
        n = stop - start
        rng = np.random.default_rng([self.seed, start])
        tenants = ((rng.zipf(1.3, n) - 1) % 500 + 1).tolist()
        amounts = rng.integers(1, 10_000_000, n).tolist()
        days = rng.integers(1, 29, n).tolist()
        seconds = rng.integers(0, 86_400, n).tolist()
        tiers = rng.integers(0, len(TIERS), n).tolist()
        statuses = rng.integers(0, len(STATUSES), n).tolist()
        flag_bits = rng.integers(1, 64, n).tolist()
        qty = rng.integers(1, 9, (n, 3)).tolist()
        prices = rng.integers(1, 100_000, (n, 3)).tolist()
        skus = rng.integers(0, 1_000_000, (n, 3)).tolist()
        note_start = rng.integers(0, 100, n).tolist()
        note_len = rng.integers(200, 300, n).tolist()
        versions = rng.integers(1, 50, n).tolist()
        paid = rng.integers(0, 2, n).tolist()
        payload = rng.integers(0, 256, (n, 96), dtype=np.uint8)
        variants = [0] * n if variant is None else variant.tolist()
        flag_sets = [sorted(f for k, f in enumerate(FLAGS) if bits >> k & 1) for bits in range(64)]
        flag_json = [",".join(f'"{f}"' for f in flags) for flags in flag_sets]
        flag_size = [sum(len(f) for f in flags) for flags in flag_sets]

        keys: list[str] = []
        items: list[str] = []
        hashes: list[int] = []
        sizes: list[int] = []
        tenant_col: list[str] = []
        id_col: list[str] = []
        note_text = LOREM * 3
        for j in range(n) if rows is None else (int(r) for r in rows):
            i = start + j
            v = variants[j]
            tenant = f"t{tenants[j]:03d}"
            oid = f"o{i:010d}"
            amount = cents(amounts[j] + (7 if v else 0))
            status = STATUSES[statuses[j]]
            if v == 3:
                status = "refunded" if status != "refunded" else "paid"
            q = qty[j]
            if v == 2:
                q = [q[0] + 1, q[1], q[2]]
            sec = seconds[j]
            created = (
                f"2026-10-{days[j]:02d}T{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z"
            )
            user = i % 997_331
            email = f"user{user}@example.com"
            name = f"Customer {user}"
            tier = TIERS[tiers[j]]
            bits = flag_bits[j]
            note = note_text[note_start[j] : note_start[j] + note_len[j]].strip()
            raw = payload[j].tobytes()
            b64 = base64.b64encode(raw).decode("ascii")
            lines = []
            line_sizes = 3
            for k in range(3):
                price = cents(prices[j][k])
                sku = f"SKU-{skus[j][k]:06d}"
                lines.append(
                    f'{{"M":{{"price":{{"N":"{price}"}},"qty":{{"N":"{q[k]}"}},'
                    f'"sku":{{"S":"{sku}"}}}}}}'
                )
                # An L element: 1 + (M: 3 + per entry 1 + name + value); qty is one digit.
                line_sizes += 1 + 3 + (6 + number_size(price)) + (4 + 2) + (4 + len(sku))
            version = str(versions[j] + (1 if v else 0))
            item = (
                f'{{"amount":{{"N":"{amount}"}},"created_at":{{"S":"{created}"}},'
                f'"customer":{{"M":{{"email":{{"S":"{email}"}},"name":{{"S":"{name}"}},'
                f'"tier":{{"S":"{tier}"}}}}}},"flags":{{"SS":[{flag_json[bits]}]}},'
                f'"id":{{"S":"{oid}"}},"items":{{"L":[{",".join(lines)}]}},'
                f'"note":{{"S":"{note}"}},"paid":{{"BOOL":{"true" if paid[j] else "false"}}},'
                f'"payload":{{"B":"{b64}"}},"status":{{"S":"{status}"}},'
                f'"tenant":{{"S":"{tenant}"}},"version":{{"N":"{version}"}}}}'
            )
            size = (
                (6 + number_size(amount))
                + (10 + len(created))
                + (8 + 3 + (6 + len(email)) + (5 + len(name)) + (5 + len(tier)))
                + (5 + flag_size[bits])
                + (2 + len(oid))
                + (5 + line_sizes)
                + (4 + len(note))
                + (4 + 1)
                + (7 + len(raw))
                + (6 + len(status))
                + (6 + len(tenant))
                + (7 + number_size(version))
            )
            keys.append(f'{{"id":{{"S":"{oid}"}},"tenant":{{"S":"{tenant}"}}}}')
            items.append(item)
            hashes.append(xxh3_64(item.encode("ascii")))
            sizes.append(size)
            tenant_col.append(tenant)
            id_col.append(oid)
        schema = key_schema()
        key = pa.StructArray.from_arrays(
            [pa.array(tenant_col, pa.string()), pa.array(id_col, pa.string())],
            fields=list(schema.key_struct_type()),
        )
        return pa.Table.from_arrays(
            [
                pa.array(keys, pa.string()),
                pa.array(items, pa.string()),
                pa.array(hashes, pa.uint64()),
                pa.array(sizes, pa.int32()),
                key,
            ],
            schema=schema.arrow_schema(),
        )


def key_schema() -> KeySchema:
    return KeySchema.from_boto(KEY_SCHEMA, ATTRIBUTE_DEFINITIONS)


def classes(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Per base item: in restored only (deleted), and the live variant (0 = same)."""
    index = np.arange(start, stop)
    slot = index % 200
    deleted = slot < 2  # 1%
    variant = np.zeros(len(index), dtype=np.int8)
    changed = (slot >= 2) & (slot < 4)  # 1%
    # Most changes only touch amount (variant 1); some also a line's qty (2) or status (3).
    variant[changed] = 1
    variant[changed & (index % 1000 == 3)] = 2
    variant[changed & (index % 1000 == 202)] = 3
    return deleted, variant


class PartWriter:
    """Writes Parquet parts of one export and remembers their manifest entries."""

    def __init__(self, root: Path, compression: str = "zstd") -> None:
        self.root = root
        self.compression = compression
        self.files: list[FileEntry] = []
        self.items = 0
        self.bytes = 0

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        relative = f"{DATA_DIR}/part-{len(self.files):06d}.parquet"
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=self.compression, row_group_size=128 * 1024)
        data = sink.getvalue().to_pybytes()
        path = self.root / relative
        path.write_bytes(data)
        path.chmod(0o600)
        self.files.append(
            FileEntry(relative, table.num_rows, len(data), xxhash.xxh3_128_hexdigest(data))
        )
        self.items += table.num_rows
        self.bytes += int(pa.compute.sum(table.column("_size")).as_py() or 0)


def self_check(table: pa.Table, rows: int = 300) -> None:
    """The template's items must be exactly what pitrdiff's codec produces."""
    for row in table.slice(0, rows).to_pylist():
        wire = orjson.loads(row["_item"])
        assert codec.canonical_json(wire) == row["_item"], row["_item"]
        assert codec.content_hash(row["_item"]) == row["_hash"]
        assert codec.item_size(wire) == row["_size"], (codec.item_size(wire), row["_size"])
        assert codec.canonical_key(wire, ["tenant", "id"]) == row["_key"]


def generate(
    n: int, out: Path, *, seed: int = 42, quiet: bool = False, compression: str = "zstd"
) -> tuple[Path, Path]:
    """Write ``out/live`` and ``out/restored``; return their paths."""
    live_root = prepare_directory(out / "live", overwrite=True)
    restored_root = prepare_directory(out / "restored", overwrite=True)
    schema = key_schema()
    restore_time = utc_now()
    time.sleep(0.002)
    started = utc_now()
    live_writer = PartWriter(live_root, compression)
    restored_writer = PartWriter(restored_root, compression)
    gen = Generator(seed)
    clock = time.perf_counter()
    checked = False
    added_total = n // 200  # 0.5%
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        deleted, variant = classes(start, stop)
        base = gen.chunk(start, stop)
        if not checked:
            self_check(base)
            checked = True
        restored_writer.write(base)
        live = base.filter(pa.array(~deleted))
        changed_rows = np.flatnonzero(~deleted & (variant > 0))
        if len(changed_rows):
            # Rebuild the changed rows' live versions and splice them in.
            live_variant = gen.chunk(start, stop, variant)
            keep = pa.array(~deleted & (variant == 0))
            live = pa.concat_tables([base.filter(keep), live_variant.take(pa.array(changed_rows))])
        live_writer.write(live)
        if not quiet:
            rate = stop / (time.perf_counter() - clock)
            print(f"  generated {stop:,}/{n:,} ({rate:,.0f} items/s)", flush=True)
    for start in range(n, n + added_total, CHUNK):
        live_writer.write(gen.chunk(start + 10 * n, min(n + added_total, start + CHUNK) + 10 * n))
    finished = utc_now()
    for root, writer, name, table in (
        (
            restored_root,
            restored_writer,
            RESTORED_TABLE,
            {"restore": {"source_table_name": TABLE, "restore_date_time": restore_time}},
        ),
        (live_root, live_writer, TABLE, {}),
    ):
        write_manifest(
            root,
            Manifest(
                table_name=name,
                key_schema=schema,
                source={
                    "kind": "items",
                    "generator": "bench/gen_exports.py",
                    "seed": seed,
                    "started_at": started,
                    "finished_at": finished,
                },
                complete=True,
                files=tuple(writer.files),
                items=writer.items,
                bytes=writer.bytes,
                table=table,
            ),
        )
    return live_root, restored_root


def generate_via_write_export(n: int, out: Path, *, seed: int = 42) -> tuple[Path, Path]:
    """The same pair through ``pitrdiff.write_export`` (slow; small N only)."""
    gen = Generator(seed)

    def items(table: pa.Table) -> Iterator[dict[str, object]]:
        for text in table.column("_item").to_pylist():
            yield orjson.loads(text)

    deleted, variant = classes(0, n)
    base = gen.chunk(0, n)
    live_variant = gen.chunk(0, n, variant)
    live_rows = [
        live_variant.slice(i, 1) if variant[i] else base.slice(i, 1)
        for i in range(n)
        if not deleted[i]
    ]
    added = gen.chunk(11 * n, 11 * n + n // 200) if n >= 200 else base.slice(0, 0)
    live = pa.concat_tables([*live_rows, added]) if live_rows else added
    kwargs = {"key_schema": KEY_SCHEMA, "attribute_definitions": ATTRIBUTE_DEFINITIONS}
    pitrdiff.write_export(items(live), out / "live", table_name=TABLE, overwrite=True, **kwargs)
    pitrdiff.write_export(
        items(base), out / "restored", table_name=RESTORED_TABLE, overwrite=True, **kwargs
    )
    return out / "live", out / "restored"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="restored items")
    parser.add_argument("--out", type=Path, default=Path("/tmp/pitrdiff-bench/pair"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--check", action="store_true", help="verify with load_export")
    parser.add_argument("--via-write-export", action="store_true")
    parser.add_argument(
        "--compression", default="zstd", help="Parquet codec of the parts (pitrdiff writes zstd)"
    )
    args = parser.parse_args()
    clock = time.perf_counter()
    if args.via_write_export:
        live, restored = generate_via_write_export(args.n, args.out, seed=args.seed)
    else:
        live, restored = generate(args.n, args.out, seed=args.seed, compression=args.compression)
    elapsed = time.perf_counter() - clock
    if args.check:
        for path in (live, restored):
            pitrdiff.load_export(path, verify=True)
    lm, rm = pitrdiff.load_export(live).manifest, pitrdiff.load_export(restored).manifest
    print(
        f"wrote {live} ({lm.items:,} items, {lm.bytes / lm.items if lm.items else 0:.0f} B/item) "
        f"and {restored} ({rm.items:,} items) in {elapsed:.1f}s"
    )


if __name__ == "__main__":
    main()

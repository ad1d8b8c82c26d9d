"""Regenerate the sample exports, diff and plan in ``sample_data/`` from the demo's story.

Run ``python3 sample_data/make.py`` (needs the ``demo`` extra: moto's server). It
runs :func:`pitrdiff.demo.run_demo` on an embedded moto server with ``keep`` in
a temporary directory — seed ``Orders`` from ``seed_items.jsonl.gz``, restore it
(the state at T), play the scripted incident, export both tables — and then
writes, beside this script:

- ``restored/``: the export of the restored table (the state at T: the seed);
- ``live/``: the export of the live table after the incident;
- ``diff/``: their diff (``pitrdiff diff live restored --out diff``);
- ``plan.jsonl``: the demo's repair plan (every deleted order, and the changed
  orders whose only change is ``total``);
- ``expected.json``: what the incident did, so tests and notebooks can check it.

The result is byte for byte reproducible: items are rewritten sorted by key
with :func:`pitrdiff.write_export`, and the moments the manifests and the plan
header record (creation times, export and restore times) are pinned to the
story's clock below; the diff's timings are zeroed. Paths are recorded relative
to this directory, so the diff's ``live`` / ``restored`` SQL views work wherever
the checkout is. ``--out DIR`` writes elsewhere (e.g. to compare with
``diff -r``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import xxhash

from pitrdiff import demo
from pitrdiff.diff.core import diff_exports, load_diff
from pitrdiff.export.dataset import Export, load_export, read_manifest, write_export, write_manifest
from pitrdiff.files import write_bytes, write_json
from pitrdiff.recovery.plan import load_plan, write_plan

HERE = Path(__file__).resolve().parent
# The story's clock (UTC): seed data last touched before 12:00, restore point T at
# 13:55, the incident from 14:00 (the demo's clock), exports taken afterwards.
RESTORE_AT = "2026-10-27T13:55:00.000Z"
EXPORT_TIMES = {
    "restored": ("2026-10-27T15:00:00.000Z", "2026-10-27T15:00:04.000Z"),
    "live": ("2026-10-27T15:01:00.000Z", "2026-10-27T15:01:04.000Z"),
}
DIFF_AT = "2026-10-27T15:02:00.000Z"
PLAN_AT = "2026-10-27T15:03:00.000Z"


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run a block in ``path`` so the datasets record paths relative to it."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def sorted_items(export: Export) -> list[dict[str, Any]]:
    """Every item of an export, in canonical key order (a scan's order is the server's)."""
    table = export.arrow(["_key", "_item"]).sort_by("_key")
    return [orjson.loads(text) for text in table.column("_item").to_pylist()]


def rewrite_export(source: Path, side: str, out: Path) -> None:
    """Rewrite one demo export into ``out/side`` deterministically."""
    export = load_export(source, verify=True)
    table = dict(export.manifest.table)
    if table.get("restore"):
        table["restore"] = {**table["restore"], "restore_date_time": RESTORE_AT}
    started, finished = EXPORT_TIMES[side]
    write_export(
        sorted_items(export),
        out / side,
        table_name=export.table_name,
        key_schema=export.key_schema,
        source={"origin": "pitrdiff demo: scan of the embedded server, sorted by key"},
        table=table,
        overwrite=True,
    )
    written = read_manifest(out / side)
    write_manifest(
        out / side,
        replace(
            written,
            created_at=started,
            source={**written.source, "started_at": started, "finished_at": finished},
        ),
    )


def pin_diff(root: Path) -> None:
    """Pin the diff manifest's creation time and zero its (measured) timings."""
    manifest = load_diff(root).manifest
    pinned = replace(
        manifest,
        created_at=DIFF_AT,
        timings={name: 0.0 for name in manifest.timings},
    )
    write_json(root / "manifest.json", pinned.to_dict())


def pin_plan(path: Path, diff_path: str) -> None:
    """Pin the plan header's creation time and diff path; re-seal the trailer."""
    lines = path.read_bytes().splitlines(keepends=True)
    header = orjson.loads(lines[0])
    header["created_at"] = PLAN_AT
    header["diff"]["path"] = diff_path
    body = [orjson.dumps(header) + b"\n", *lines[1:-1]]
    digest = xxhash.xxh3_128()
    for line in body:
        digest.update(line)
    trailer = {"kind": "trailer", "operations": len(body) - 1, "xxh3_128": digest.hexdigest()}
    write_bytes(path, b"".join(body) + orjson.dumps(trailer) + b"\n")
    load_plan(path)  # refuses a plan whose trailer does not match


def build(demo_dir: Path, out: Path, result: demo.DemoResult) -> None:
    """Write the sample datasets into ``out`` from a kept demo directory."""
    out.mkdir(parents=True, exist_ok=True)
    for side in ("restored", "live"):
        rewrite_export(demo_dir / side, side, out)
    with working_directory(out):
        diff_exports("live", "restored", "diff", overwrite=True)
        pin_diff(Path("diff"))
        write_plan(
            "diff",
            "plan.jsonl",
            include=demo.REPAIR_INCLUDE,
            where=demo.REPAIR_WHERE,
            overwrite=True,
        )
        pin_plan(Path("plan.jsonl"), "diff")
    summary = load_diff(out / "diff").summary
    expected = {
        "table": demo.TABLE,
        "restored_table": demo.RESTORED_TABLE,
        "restore_at": RESTORE_AT,
        "incident_at": demo.INCIDENT_AT.isoformat().replace("+00:00", "Z"),
        "cleaned_tenant": demo.CLEANED_TENANT,
        "corrupted_tenants": list(demo.CORRUPTED_TENANTS),
        "corrupted_attribute": demo.CORRUPTED_ATTRIBUTE,
        "repair_where": demo.REPAIR_WHERE,
        "incident": dict(result.counts),
        "diff": {
            "deleted": summary.deleted,
            "changed": summary.changed,
            "added": summary.added,
            "unchanged": summary.unchanged,
            "signatures": {s.signature: s.items for s in summary.top_signatures},
        },
        "plan_operations": load_plan(out / "plan.jsonl").operation_count,
    }
    write_json(out / "expected.json", expected)


def main(argv: list[str] | None = None) -> int:
    """Run the demo and write the sample datasets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: here)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pitrdiff-sample-") as tmp:
        demo_dir = Path(tmp) / "demo"
        result = demo.run_demo(keep=demo_dir)
        if not result.ok:
            print(f"the demo did not recover: {result.verdict}", file=sys.stderr)
            return 1
        build(demo_dir, args.out.resolve(), result)
    print(f"wrote the sample data to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

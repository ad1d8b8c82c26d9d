"""The whole story on an embedded DynamoDB: seed, restore, incident, diff, plan, apply, verify.

:func:`run_demo` starts moto's ``ThreadedMotoServer`` in this process on a free
loopback port (no AWS account, no network), and walks through a recovery:

1. seed an ``Orders`` table from ``sample_data/seed_items.jsonl.gz`` (3,000
   orders of six tenants, every DynamoDB type) and turn PITR on;
2. take the point-in-time restore. moto restores the table *as it is when the
   restore is called* (it keeps no history), so the demo restores first and
   plays the incident afterwards; on AWS you restore to a time before the
   incident and the order does not matter;
3. play the incident: a bad cleanup script deletes every order of one tenant,
   a buggy deploy multiplies ``total`` by 100 on a subset of orders, and normal
   traffic keeps writing (new orders, legitimate status updates, a few of them
   on orders the bug had corrupted);
4. export both tables, diff them, plan (every deleted item, and the changed
   items whose only change is ``total``); a few corrupted orders then get a
   legitimate status update (after the diff); apply with writes that cannot
   clobber (strict: those few are conflicts, left untouched), apply again with
   ``--merge`` (their ``total`` restored, the newer status kept), and verify:
   the lost orders are back, the corrupted totals repaired, every legitimate
   write kept. ``--keep`` leaves the plan's journal bound to the demo's
   endpoint: an apply of the kept plan anywhere else is refused.

The library reports each step through ``on_step`` and long operations through
``progress``; it never prints. The fake credentials it needs exist only in the
environment of this process while the demo runs, and are removed afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import os
import random
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pitrdiff import codec, pitr
from pitrdiff.aws import AwsConfig, dynamodb_client, translate_errors
from pitrdiff.embedded import demo_credentials, embedded_server
from pitrdiff.errors import InputError, RefusedError, StorageError
from pitrdiff.files import make_dir
from pitrdiff.progress import SILENT, Progress

TABLE = "Orders"
RESTORED_TABLE = "Orders-pitr-demo"
SEED_FILE = Path(__file__).resolve().parent.parent / "sample_data" / "seed_items.jsonl.gz"
INCIDENT_SEED = 42
CLEANED_TENANT = "TENANT#initech"
CORRUPTED_TENANTS = ("TENANT#acme", "TENANT#globex")
CORRUPTED_ATTRIBUTE = "total"
CORRUPTED_COUNT = 120
OVERLAP_COUNT = 5
NEW_ORDERS = 40
LEGIT_UPDATES = 60
# Incident clock: fixed, so a kept demo directory is reproducible.
INCIDENT_AT = dt.datetime(2026, 10, 27, 14, 0, tzinfo=dt.timezone.utc)
REPAIR_WHERE = f"class = 'deleted' OR signature = '{CORRUPTED_ATTRIBUTE}'"
REPAIR_INCLUDE = ("deleted", "changed")


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo, as it completes.

    Attributes
    ----------
    number
        1-based step number.
    name
        ``seed``, ``pitr``, ``restore``, ``incident``, ``export``, ``diff``,
        ``plan``, ``apply``, ``merge`` or ``verify``.
    title
        One line saying what happened.
    lines
        Details, one per line.
    elapsed_s
        Seconds the step took.
    payload
        The library result behind the step (a diff summary, plan summary or
        apply report), for renderers that show it in full.
    """

    number: int
    name: str
    title: str
    lines: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    payload: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The step as plain JSON values (without the payload)."""
        return {
            "number": self.number,
            "name": self.name,
            "title": self.title,
            "lines": list(self.lines),
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class Check:
    """One verification of the demo's outcome."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """The check as plain JSON values."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class DemoResult:
    """What the demo did and whether the recovery worked.

    Attributes
    ----------
    ok
        Every check passed.
    verdict
        One sentence summing up the outcome.
    steps
        The steps, in order.
    checks
        The verifications.
    counts
        Seeded, incident and diff figures.
    top_signature
        The most common change signature found by the diff.
    kept
        The directory holding the exports, diff and plan (``--keep``), else ``None``.
    elapsed_s
        Total seconds.
    """

    ok: bool
    verdict: str
    steps: tuple[DemoStep, ...]
    checks: tuple[Check, ...]
    counts: Mapping[str, int]
    top_signature: str | None
    kept: Path | None
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values."""
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "steps": [s.to_dict() for s in self.steps],
            "checks": [c.to_dict() for c in self.checks],
            "counts": dict(self.counts),
            "top_signature": self.top_signature,
            "kept": None if self.kept is None else str(self.kept),
            "elapsed_s": round(self.elapsed_s, 3),
        }


# --------------------------------------------------------------------------- seed data


def seed_items(path: str | os.PathLike[str] = SEED_FILE) -> list[dict[str, Any]]:
    """The committed seed orders (wire form), read from ``sample_data/``.

    Raises
    ------
    InputError
        When the file is missing (the demo runs from a source checkout).
    """
    try:
        with gzip.open(path, "rb") as handle:
            return [codec.loads(line) for line in handle if line.strip()]
    except FileNotFoundError as exc:
        raise InputError(
            f"sample data not found at {path}: run the demo from a source checkout "
            "installed with pip install -e '.[demo]'"
        ) from exc
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


# --------------------------------------------------------------------------- server


def _put_all(client: Any, table: str, items: Sequence[Mapping[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        pending: Any = {
            table: [
                {"PutRequest": {"Item": codec.to_botocore(i)}} for i in items[start : start + 25]
            ]
        }
        with translate_errors(table=table, action="seeding"):
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")


def _scan(client: Any, table: str) -> dict[str, str]:
    """Every item of ``table`` as {canonical key: canonical item}."""
    from pitrdiff.export.scan import install_fast_parse

    install_fast_parse(client)
    out: dict[str, str] = {}
    request: dict[str, Any] = {"TableName": table}
    with translate_errors(table=table, action="verifying"):
        while True:
            page = client.scan(**request)
            for item in page["Items"]:
                out[codec.canonical_key(item, ("pk", "sk"))] = codec.canonical_json(item)
            if not page.get("LastEvaluatedKey"):
                return out
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _key(item: Mapping[str, Any]) -> str:
    return codec.canonical_key(item, ("pk", "sk"))


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class _Incident:
    """What the scripted incident did, to verify against."""

    deleted: list[str] = field(default_factory=list)
    corrupted_only: list[str] = field(default_factory=list)
    overlap: list[str] = field(default_factory=list)
    new_orders: dict[str, str] = field(default_factory=dict)
    legit_updates: dict[str, str] = field(default_factory=dict)
    later_updates: Callable[[], None] | None = None  # traffic on corrupted orders, after the diff


def _play_incident(client: Any, items: Sequence[Mapping[str, Any]]) -> _Incident:
    """Traffic, the bad cleanup, traffic, the buggy deploy, traffic — all deterministic."""
    rng = random.Random(INCIDENT_SEED)
    result = _Incident()
    clock = iter(INCIDENT_AT + dt.timedelta(seconds=7 * i) for i in range(100_000))
    by_key = {_key(i): dict(i) for i in items}
    cleaned = sorted(k for k, i in by_key.items() if i["pk"]["S"] == CLEANED_TENANT)
    candidates = sorted(
        k
        for k, i in by_key.items()
        if i["pk"]["S"] in CORRUPTED_TENANTS and i["status"]["S"] != "CANCELLED"
    )
    corrupted = sorted(rng.sample(candidates, CORRUPTED_COUNT))
    overlap = set(rng.sample(corrupted, OVERLAP_COUNT))
    untouched = sorted(set(by_key) - set(cleaned) - set(corrupted))
    legit = sorted(rng.sample(untouched, LEGIT_UPDATES - OVERLAP_COUNT))

    def legit_update(key: str) -> None:
        item = codec.loads(codec.canonical_json(by_key[key]))
        item["status"] = {"S": "DELIVERED" if item["status"]["S"] == "SHIPPED" else "SHIPPED"}
        item["version"] = {"N": str(int(item["version"]["N"]) + 1)}
        item["updated_at"] = {"S": _iso(next(clock))}
        _put_all(client, TABLE, [item])
        by_key[key] = item
        result.legit_updates[key] = codec.canonical_json(item)

    def new_order(index: int) -> None:
        tenant = rng.choice(("acme", "globex", "initech", "umbrella", "hooli", "stark"))
        template = codec.loads(codec.canonical_json(by_key[rng.choice(untouched)]))
        template["pk"] = {"S": f"TENANT#{tenant}"}
        template["sk"] = {"S": f"ORDER#{900000 + index:06d}"}
        template["order_id"] = {"S": f"{tenant[:3].upper()}-{900000 + index:06d}"}
        template["status"] = {"S": "PENDING"}
        now = _iso(next(clock))
        template["created_at"] = {"S": now}
        template["updated_at"] = {"S": now}
        _put_all(client, TABLE, [template])
        result.new_orders[_key(template)] = codec.canonical_json(template)

    # normal traffic before the incident
    for index in range(NEW_ORDERS // 2):
        new_order(index)
    for key in legit[: len(legit) // 2]:
        legit_update(key)
    # 1. a cleanup script with the wrong tenant id deletes every order of initech
    with translate_errors(table=TABLE, action="playing the incident"):
        for start in range(0, len(cleaned), 25):
            pending: Any = {
                TABLE: [
                    {"DeleteRequest": {"Key": codec.to_botocore(codec.loads(key))}}
                    for key in cleaned[start : start + 25]
                ]
            }
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
    result.deleted = cleaned
    # 2. a deploy stores totals in cents in the euro field: total * 100, nothing else touched
    with translate_errors(table=TABLE, action="playing the incident"):
        for key in corrupted:
            total = Decimal(by_key[key][CORRUPTED_ATTRIBUTE]["N"]) * 100
            client.update_item(
                TableName=TABLE,
                Key=codec.to_botocore(codec.loads(key)),
                UpdateExpression="SET #a = :v",
                ExpressionAttributeNames={"#a": CORRUPTED_ATTRIBUTE},
                ExpressionAttributeValues={":v": {"N": codec.normalize_number(str(total))}},
            )
            by_key[key] = {**by_key[key], CORRUPTED_ATTRIBUTE: {"N": str(total)}}
    # normal traffic goes on; some of it reaches orders the bug had corrupted
    # later, after the diff (played by later_updates while the repair is prepared)
    for index in range(NEW_ORDERS // 2, NEW_ORDERS):
        new_order(index)
    for key in legit[len(legit) // 2 :]:
        legit_update(key)

    def later_updates() -> None:
        for key in sorted(overlap):
            legit_update(key)

    result.later_updates = later_updates
    result.overlap = sorted(overlap)
    result.corrupted_only = sorted(set(corrupted) - overlap)
    return result


# --------------------------------------------------------------------------- the demo


def run_demo(
    *,
    keep: str | os.PathLike[str] | None = None,
    on_step: Callable[[DemoStep], None] | None = None,
    progress: Progress = SILENT,
) -> DemoResult:
    """Run the whole recovery story on an embedded moto server.

    The stages, in order: seed, PITR on and restore, the incident, export both
    tables, diff, plan, apply (strict, then ``--merge`` for the orders updated
    since the diff), verify.

    Parameters
    ----------
    keep
        Leave the exports (``live/``, ``restored/``), the diff (``diff/``) and
        the plan (``plan.jsonl``) in this directory (created; must be empty).
    on_step
        Called with each :class:`DemoStep` as it completes.
    progress
        Reports long operations (exports, diff, apply).

    Returns
    -------
    DemoResult
        Steps, checks and the verdict; ``ok`` when every check passed.

    Raises
    ------
    InputError
        moto is not installed, or the sample data is missing.
    RefusedError
        ``keep`` is not empty.
    """
    started = time.monotonic()
    _refuse_a_used_keep(keep)
    items = seed_items()
    with contextlib.ExitStack() as stack:
        demo = _open_demo(stack, keep, on_step, progress)
        _seed(demo, items)
        _restore(demo)
        incident = _incident(demo, items)
        _export_both(demo)
        summary, top = _diff(demo)
        plan = _plan(demo)
        report, merged = _apply_stages(
            demo.work / "plan.jsonl", demo.aws, incident, demo.step, progress
        )
        checks = _verify_live(demo, incident, top, merged.conflicts + merged.failed)
    counts = {
        "seeded": len(items),
        **_incident_counts(incident),
        "diff_deleted": summary.deleted,
        "diff_changed": summary.changed,
        "diff_added": summary.added,
        "diff_unchanged": summary.unchanged,
        "plan_operations": plan.operations,
        "applied": report.applied,
        "strict_conflicts": report.conflicts,
        "merged": merged.merged,
        "conflicts": merged.conflicts,
    }
    return DemoResult(
        ok=all(c.ok for c in checks),
        verdict=_verdict(incident, checks),
        steps=tuple(demo.steps),
        checks=checks,
        counts=counts,
        top_signature=top,
        kept=None if keep is None else Path(keep),
        elapsed_s=time.monotonic() - started,
    )


@dataclass
class _Demo:
    """What the demo's stages share: where they work, the server, the steps so far."""

    work: Path
    endpoint: str
    aws: AwsConfig
    progress: Progress
    on_step: Callable[[DemoStep], None] | None
    steps: list[DemoStep] = field(default_factory=list)

    def step(self, name: str, title: str, since: float, *lines: str, payload: Any = None) -> None:
        """Record a finished stage and tell ``on_step``."""
        done = DemoStep(
            len(self.steps) + 1, name, title, tuple(lines), time.monotonic() - since, payload
        )
        self.steps.append(done)
        if self.on_step is not None:
            self.on_step(done)


def _refuse_a_used_keep(keep: str | os.PathLike[str] | None) -> None:
    if keep is not None:
        keep_dir = Path(keep)
        if keep_dir.exists() and (not keep_dir.is_dir() or any(keep_dir.iterdir())):
            raise RefusedError(f"{keep_dir} is not empty; --keep needs a new or empty directory")


def _open_demo(
    stack: contextlib.ExitStack,
    keep: str | os.PathLike[str] | None,
    on_step: Callable[[DemoStep], None] | None,
    progress: Progress,
) -> _Demo:
    """The work directory, fake credentials and the embedded server, closed by ``stack``."""
    if keep is None:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pitrdiff-demo-")))
    else:
        work = make_dir(keep)
    stack.enter_context(demo_credentials())
    endpoint = stack.enter_context(embedded_server())
    aws = AwsConfig(endpoint_url=endpoint, region="us-east-1")
    return _Demo(work=work, endpoint=endpoint, aws=aws, progress=progress, on_step=on_step)


def _seed(demo: _Demo, items: Sequence[Mapping[str, Any]]) -> None:
    """Stage 1: create ``Orders`` and put the seed orders."""
    t = time.monotonic()
    client = dynamodb_client(demo.aws)
    with translate_errors(table=TABLE, action="creating the table"):
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    demo.progress.start("seeding Orders", total=len(items))
    for start in range(0, len(items), 500):
        _put_all(client, TABLE, items[start : start + 500])
        demo.progress.advance(len(items[start : start + 500]))
    demo.progress.finish()
    tenants = sorted({i["pk"]["S"] for i in items})
    demo.step(
        "seed",
        f"Seeded {TABLE} with {len(items):,} orders of {len(tenants)} tenants",
        t,
        f"embedded DynamoDB (moto) at {demo.endpoint}; no AWS account, nothing leaves this machine",
        "every DynamoDB type: S N B BOOL NULL M L SS NS BS (prices as exact decimals)",
    )


def _restore(demo: _Demo) -> None:
    """Stage 2: point-in-time recovery on, then restore into ``Orders-pitr-demo``."""
    t = time.monotonic()
    window = pitr.enable_pitr(TABLE, aws=demo.aws)
    frozen = window.length is not None and window.length < dt.timedelta(minutes=1)
    demo.step(
        "pitr",
        "Point-in-time recovery turned on",
        t,
        f"restorable window: {window.describe()}",
        *(("(moto freezes the window when PITR is turned on; AWS's moves with time)",) * frozen),
    )
    t = time.monotonic()
    restored = pitr.restore(
        TABLE,
        latest=True,
        target=RESTORED_TABLE,
        aws=demo.aws,
        progress=demo.progress,
        poll_seconds=0.2,
    )
    demo.step(
        "restore",
        f"Restored {TABLE} at {pitr.format_time(restored.requested_at)} into {restored.target}",
        t,
        "honest note: moto keeps no history and restores the table as it is when asked,",
        "so the demo restores first and plays the incident afterwards. On AWS you run",
        f"`pitrdiff restore {TABLE} --at <a time before the incident>` after the fact.",
    )


def _incident(demo: _Demo, items: Sequence[Mapping[str, Any]]) -> _Incident:
    """Stage 3: the bad cleanup, the buggy deploy and normal traffic on the live table."""
    t = time.monotonic()
    incident = _play_incident(dynamodb_client(demo.aws), items)
    demo.step(
        "incident",
        "Incident played on the live table",
        t,
        f"bad cleanup: deleted all {len(incident.deleted):,} orders of {CLEANED_TENANT}",
        f"buggy deploy: {CORRUPTED_ATTRIBUTE} x100 on "
        f"{len(incident.corrupted_only) + len(incident.overlap)} orders of "
        f"{' and '.join(CORRUPTED_TENANTS)}",
        f"normal traffic meanwhile: {len(incident.new_orders)} new orders, "
        f"{len(incident.legit_updates)} status updates "
        f"({len(incident.overlap)} more land on corrupted orders after the diff)",
    )
    return incident


def _export_both(demo: _Demo) -> None:
    """Stage 4: export the restored and the live table (one segment: reproducible parts)."""
    from pitrdiff.export.scan import export_table

    t = time.monotonic()
    exported = {
        name: export_table(
            table, demo.work / name, segments=1, aws=demo.aws, progress=demo.progress
        )
        for name, table in (("restored", RESTORED_TABLE), ("live", TABLE))
    }
    demo.step(
        "export",
        "Exported both tables to Parquet",
        t,
        f"restored: {exported['restored'].items:,} items  ->  {demo.work / 'restored'}",
        f"live:     {exported['live'].items:,} items  ->  {demo.work / 'live'}",
    )


def _diff(demo: _Demo) -> tuple[Any, str | None]:
    """Stage 5: diff live against restored; the top change signature names the bug."""
    from pitrdiff.diff.core import diff_exports

    t = time.monotonic()
    work = demo.work
    summary = diff_exports(
        work / "live", work / "restored", work / "diff", progress=demo.progress
    ).summary
    top = summary.top_signatures[0].signature if summary.top_signatures else None
    demo.step(
        "diff",
        f"Diff: {summary.deleted:,} deleted, {summary.changed:,} changed, "
        f"{summary.added:,} added, {summary.unchanged:,} unchanged",
        t,
        f"top change signature: {top!r} — the attribute the deploy corrupted",
        payload=summary,
    )
    return summary, top


def _plan(demo: _Demo) -> Any:
    """Stage 6: the deleted orders and the changed ones whose only change is ``total``."""
    from pitrdiff.recovery.plan import write_plan

    t = time.monotonic()
    work = demo.work
    plan = write_plan(
        work / "diff", work / "plan.jsonl", include=REPAIR_INCLUDE, where=REPAIR_WHERE
    )
    demo.step(
        "plan",
        f"Plan: {plan.operations:,} conditional puts",
        t,
        f'pitrdiff plan diff --include deleted,changed --where "{REPAIR_WHERE}"',
        "changed items with more than 'total' changed (legitimate status updates) are left",
        "out: the plan puts back only what the deploy damaged",
        payload=plan,
    )
    return plan


def _verify_live(demo: _Demo, incident: _Incident, top: str | None, left: int) -> tuple[Check, ...]:
    """Stage 9: read the live table back and check every part of the story."""
    from pitrdiff.export.dataset import load_export

    t = time.monotonic()
    live_now = _scan(dynamodb_client(demo.aws), TABLE)
    restored_now = {
        codec.canonical_key(i, ("pk", "sk")): codec.canonical_json(i)
        for i in load_export(demo.work / "restored").items()
    }
    checks = _verify(incident, live_now, restored_now, top, left)
    demo.step(
        "verify",
        "Verified the live table",
        t,
        *(f"{'OK ' if c.ok else 'FAILED'} {c.name}: {c.detail}" for c in checks),
    )
    return tuple(checks)


def _incident_counts(incident: _Incident) -> dict[str, int]:
    return {
        "deleted_by_cleanup": len(incident.deleted),
        "corrupted": len(incident.corrupted_only) + len(incident.overlap),
        "corrupted_then_updated": len(incident.overlap),
        "new_orders": len(incident.new_orders),
        "legit_updates": len(incident.legit_updates),
    }


def _verdict(incident: _Incident, checks: Sequence[Check]) -> str:
    failed = ", ".join(c.name for c in checks if not c.ok)
    if failed:
        return f"NOT RECOVERED: {failed}"
    return (
        f"RECOVERED: {len(incident.deleted):,} lost orders are back, "
        f"{len(incident.corrupted_only)} corrupted totals repaired, "
        f"{len(incident.new_orders) + len(incident.legit_updates)} legitimate writes kept; "
        f"{len(incident.overlap)} corrupted orders updated since the diff were repaired "
        f"by --merge ({CORRUPTED_ATTRIBUTE} restored, their newer status kept)."
    )


def _apply_stages(
    plan: Path, aws: AwsConfig, incident: _Incident, step: Callable[..., None], progress: Progress
) -> tuple[Any, Any]:
    """Apply strict, with traffic on corrupted orders since the diff; repair those with --merge."""
    from pitrdiff.recovery.apply import apply_plan

    t = time.monotonic()
    if incident.later_updates is not None:
        incident.later_updates()  # status updates land after the diff, before the apply
    report = apply_plan(plan, aws=aws, progress=progress)
    step(
        "apply",
        f"Applied: {report.applied:,} written, {report.conflicts} conflicts, "
        f"{report.failed} failed",
        t,
        "strict: every write was conditional on the item's observed attributes",
        f"{report.conflicts} corrupted orders got a status update after the diff: "
        "left untouched (a conflict)",
        payload=report,
    )
    t = time.monotonic()
    merged = apply_plan(plan, aws=aws, merge=True, progress=progress)
    step(
        "merge",
        f"Applied with --merge: {merged.merged} merged, {merged.conflicts} conflicts",
        t,
        f"only '{CORRUPTED_ATTRIBUTE}' (what the diff found changed) is written, on condition "
        "it still has the corrupted value;",
        "the newer status, version and updated_at written since are kept",
        payload=merged,
    )
    return report, merged


def _merged(updated: str, restored: str) -> str:
    """The order written since the diff with the corrupted attribute restored."""
    item = codec.loads(updated)
    item[CORRUPTED_ATTRIBUTE] = codec.loads(restored)[CORRUPTED_ATTRIBUTE]
    return codec.canonical_json(item)


def _verify(
    incident: _Incident,
    live: Mapping[str, str],
    restored: Mapping[str, str],
    top_signature: str | None,
    problems: int,
) -> tuple[Check, ...]:
    back = sum(1 for k in incident.deleted if live.get(k) == restored.get(k) is not None)
    repaired = sum(1 for k in incident.corrupted_only if live.get(k) == restored.get(k))
    new_kept = sum(1 for k, v in incident.new_orders.items() if live.get(k) == v)
    updates_kept = sum(
        1
        for k, v in incident.legit_updates.items()
        if k not in incident.overlap and live.get(k) == v
    )
    overlap_merged = sum(
        1
        for k in incident.overlap
        if live.get(k) == _merged(incident.legit_updates[k], restored[k])
    )
    plain_updates = len(incident.legit_updates) - len(incident.overlap)
    return (
        Check(
            "change signature",
            top_signature == CORRUPTED_ATTRIBUTE,
            f"the most common change is {top_signature!r}",
        ),
        Check(
            "lost orders back",
            back == len(incident.deleted),
            f"{back:,}/{len(incident.deleted):,} deleted orders restored exactly",
        ),
        Check(
            "corrupted orders repaired",
            repaired == len(incident.corrupted_only),
            f"{repaired}/{len(incident.corrupted_only)} equal their restored version again",
        ),
        Check(
            "new orders kept",
            new_kept == len(incident.new_orders),
            f"{new_kept}/{len(incident.new_orders)} orders written after the restore untouched",
        ),
        Check(
            "legitimate updates kept",
            updates_kept == plain_updates,
            f"{updates_kept}/{plain_updates} status updates untouched",
        ),
        Check(
            "corrupted, then updated: repaired by --merge",
            overlap_merged == len(incident.overlap),
            f"{overlap_merged}/{len(incident.overlap)} orders updated since the diff have "
            f"{CORRUPTED_ATTRIBUTE} restored and keep their newer status",
        ),
        Check("no conflicts", problems == 0, f"{problems} conflicts or failures during apply"),
    )

"""Building, writing, loading and verifying re-put plans.

A plan turns a diff dataset into the writes that put back what was lost:

- **deleted** (in restored, not in live): put the restored item, expecting the
  item to be absent;
- **changed** (only when included): write the restored item, expecting the
  live item exactly as the diff observed it;
- **added** (only when included, never by default): delete the item, expecting
  it exactly as observed;
- **expired** (only when included, never by default): deleted items that the
  live table's TTL had removed (docs/FORMAT.md section 3); put like deleted ones.

The plan file is JSON Lines (``docs/FORMAT.md`` section 4): a header, one
operation per line, and a trailer with the operation count and the xxh3-128
checksum of every byte before it. It is written atomically, owner-only, and
never over anything but a plan (:mod:`pitrdiff.recovery.planfile`).

Selection
---------
``include`` names the classes; ``where`` is a boolean DuckDB SQL expression over
the diff rows, evaluated once per row (:mod:`pitrdiff.recovery.selection`);
``keys`` a list of keys to keep and ``exclude_keys`` a deny list of keys no
plan may contain (:mod:`pitrdiff.recovery.keys`). The expression is evaluated
over one view, ``rows``, with these columns (NULL where a class has no value):

============== ======================================================
column         meaning
============== ======================================================
``class``      ``deleted``, ``changed``, ``added`` or ``expired``
``_key``       canonical key (DynamoDB JSON text)
``key``        the key attribute values, a struct with one field per key
               attribute named as it is (``key.sk``; ``S``/``N`` as text,
               ``B`` as blob); of two names equal but for letter case the
               second gets ``_1`` (``key.pk``, ``key.PK_1``)
``live_item``  the live item as canonical DynamoDB JSON (changed, added)
``restored_item`` the restored item (deleted, expired, changed)
``live_hash``, ``restored_hash``  content hashes (uint64)
``live_size``, ``restored_size``  item sizes in bytes
``changes``    attribute-level changes (changed only): list of struct
               ``path``, ``kind``, ``old``, ``new``
``signature``  change signature (changed only)
============== ======================================================

Attribute values are reached by JSON path into either version, e.g.
``json_extract_string(restored_item, '$.tenant.S') = 'acme'``, or with the
macros :meth:`pitrdiff.diff.Diff.sql` documents (``attr``, ``attr_type``,
``attr_text``, ``attr_num``), e.g.
``attr_text(restored_item, 'updated_at') >= '2026-10-20'``.

The expression is parsed as an expression (never a statement), and it runs
with DuckDB's external access switched off and the configuration locked, so it
cannot read or write files or reach the network.

Checks before anyone applies
----------------------------
While the operations are written, each is checked against AWS's limits
(:func:`pitrdiff.recovery.conditions.unrestorable_reason`: no single safe
request can do it), and each put against the live table's TTL setting (the
item's TTL attribute is at most a day away, so TTL would delete it again).
The summary and the header count them and list a few keys.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson
import xxhash

from pitrdiff import __version__
from pitrdiff.diff.sql import check_memory_limit
from pitrdiff.diff.ttl import TtlRule
from pitrdiff.errors import DiffError, InputError
from pitrdiff.export.dataset import KeySchema, file_checksum, utc_now
from pitrdiff.files import private_temp_dir, storage_error
from pitrdiff.recovery.conditions import unrestorable_reason
from pitrdiff.recovery.keys import SAMPLE_SIZE, KeyList, KeySource, load_key_list
from pitrdiff.recovery.planfile import (
    CLASSES,
    OPERATION_OF_CLASS,
    PLAN_FORMAT,
    PLAN_FORMAT_VERSION,
    Operation,
    Plan,
    assemble,
    body_file,
    check_out,
    load_plan,
)
from pitrdiff.recovery.selection import (
    bind_where,
    check_where,
    empty_source,
    lock_down,
    source_name,
    stream_class,
)

if TYPE_CHECKING:
    from pitrdiff.aws import AwsConfig

__all__ = [
    "CLASSES",
    "DEFAULT_INCLUDE",
    "PLAN_FORMAT",
    "PLAN_FORMAT_VERSION",
    "Operation",
    "Plan",
    "PlanSummary",
    "check_where",
    "load_plan",
    "write_plan",
]

DEFAULT_INCLUDE = ("deleted",)
TTL_WARNING_S = 86_400
"""Puts whose TTL attribute is past, or at most this many seconds away, are reported."""
_ALL_COLUMNS = (
    "SELECT NULL::VARCHAR AS class, NULL::VARCHAR AS _key, NULL::VARCHAR AS live_item, "
    "NULL::VARCHAR AS restored_item, NULL::UBIGINT AS live_hash, NULL::UBIGINT AS restored_hash, "
    "NULL::INTEGER AS live_size, NULL::INTEGER AS restored_size, "
    "NULL::STRUCT(path VARCHAR, kind VARCHAR, old VARCHAR, new VARCHAR)[] AS changes, "
    "NULL::VARCHAR AS signature WHERE false"
)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class PlanSummary:
    """What :func:`write_plan` wrote, and what to know before applying it.

    Attributes
    ----------
    path
        The plan file.
    table
        The target table.
    operations
        Operations in the plan.
    counts
        Operations per included class (``deleted``, ``expired``, ``changed``,
        ``added``) and per kind (``put``, ``delete``).
    available
        Rows per class in the diff, before the selection.
    selection
        The selection as recorded in the header (``keys`` and ``exclude_keys``
        with their checksums when given).
    checksum
        xxh3-128 of the plan's bytes before the trailer.
    keys_unmatched
        With ``keys``: listed keys in no row of the included classes (a typo, a
        stray space); ``None`` without ``keys``.
    keys_unmatched_sample
        The first few of them (canonical keys).
    excluded
        With ``exclude_keys``: selected operations the deny list removed;
        ``None`` without one.
    ttl_attribute
        The live table's TTL attribute, when the diff knows it.
    ttl_expiring
        Puts whose item's TTL is past or at most a day away: DynamoDB's TTL will
        delete them again.
    ttl_expiring_sample
        The first few of their keys.
    unrestorable
        Operations no single safe request can do within AWS's limits (apply
        would report them as failed).
    unrestorable_sample
        The first few: ``{"seq", "key", "reason"}``.
    """

    path: str
    table: str
    operations: int
    counts: dict[str, int]
    available: dict[str, int]
    selection: dict[str, Any]
    checksum: str
    keys_unmatched: int | None = None
    keys_unmatched_sample: tuple[str, ...] = ()
    excluded: int | None = None
    ttl_attribute: str | None = None
    ttl_expiring: int = 0
    ttl_expiring_sample: tuple[str, ...] = ()
    unrestorable: int = 0
    unrestorable_sample: tuple[dict[str, Any], ...] = ()

    @property
    def empty(self) -> bool:
        """True when the selection selected nothing."""
        return self.operations == 0

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per thing to look at before applying (empty when none)."""
        lines = []
        if self.keys_unmatched:
            classes = ", ".join(self.selection.get("include") or ())
            lines.append(
                f"listed keys matching no {classes} row of the diff (a typo or a stray "
                f"space?): {self.keys_unmatched:,}, e.g. {', '.join(self.keys_unmatched_sample)}"
            )
        if self.unrestorable:
            first = self.unrestorable_sample[0]
            lines.append(
                "operations no single safe request can do within AWS's limits (apply reports "
                f"them as failed): {self.unrestorable:,}, e.g. {first['key']}: {first['reason']}"
            )
        if self.ttl_expiring:
            lines.append(
                f"items put back whose TTL ({self.ttl_attribute}) is past or less than a day "
                f"away (TTL will delete them again): {self.ttl_expiring:,}, e.g. "
                f"{', '.join(self.ttl_expiring_sample)}"
            )
        return tuple(lines)

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data."""
        return {
            "path": self.path,
            "table": self.table,
            "operations": self.operations,
            "counts": dict(self.counts),
            "available": dict(self.available),
            "selection": dict(self.selection),
            "checksum": self.checksum,
            "keys_unmatched": self.keys_unmatched,
            "keys_unmatched_sample": list(self.keys_unmatched_sample),
            "excluded": self.excluded,
            "ttl_attribute": self.ttl_attribute,
            "ttl_expiring": self.ttl_expiring,
            "ttl_expiring_sample": list(self.ttl_expiring_sample),
            "unrestorable": self.unrestorable,
            "unrestorable_sample": [dict(s) for s in self.unrestorable_sample],
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- the diff


@dataclass(frozen=True)
class _DiffInput:
    root: Path
    manifest: dict[str, Any]
    manifest_checksum: str
    key_schema: KeySchema
    table: str
    files: dict[str, Path]
    ttl_attribute: str | None
    location: str  # what the plan records: the directory, or the diff's s3:// URL
    staged: Any = None  # a diff on S3: its local copy lives as long as this input


def _footer_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except OSError as exc:
        raise storage_error(exc, path, "read") from exc
    except Exception as exc:  # pyarrow's ArrowInvalid: not a Parquet file
        raise DiffError(f"diff file {path} is not a valid Parquet file (corrupt?)") from exc


def _open_diff(diff: Any, include: Sequence[str], **s3: Any) -> _DiffInput:
    from pitrdiff.diff.manifest import check_figures, read_diff_manifest
    from pitrdiff.export.remote import is_s3_url

    if is_s3_url(diff):  # copy (and check) only the class files the plan reads
        from pitrdiff.diff.remote import open_s3_diff
        from pitrdiff.diff.schema import FILE_NAMES

        only = tuple(FILE_NAMES[c] for c in include if c in FILE_NAMES)
        diff = open_s3_diff(diff, only=only, endpoint_url=s3.get("s3_endpoint_url"),
                            aws=s3.get("aws"))  # fmt: skip
    root = Path(getattr(diff, "path", diff))
    # refuses what is not a diff, a diff of another version, or figures that disagree
    check_figures(read_diff_manifest(root), root)
    manifest_path = root / "manifest.json"
    try:
        raw = manifest_path.read_bytes()
    except OSError as exc:
        raise storage_error(exc, manifest_path, "read") from exc
    manifest = orjson.loads(raw)
    if manifest.get("complete") is not True:
        raise DiffError(f"diff {root} is incomplete: re-run pitrdiff diff")
    try:
        schema = KeySchema.from_list(manifest["key_schema"])
        table = str(manifest["table_name"])
    except (KeyError, TypeError, InputError) as exc:
        raise DiffError(f"{manifest_path} has no valid key schema or table name") from exc
    files: dict[str, Path] = {}
    listed = manifest.get("files") or {}
    for item_class in include:
        entry = listed.get(item_class) if isinstance(listed, dict) else None
        relative = (entry or {}).get("path") or f"{item_class}.parquet"
        path = root / relative
        if not path.is_file():
            raise DiffError(f"diff {root} has no {relative}")
        expected = (entry or {}).get("xxh3_128")
        if expected and file_checksum(path) != expected:
            raise DiffError(f"diff file {path} does not match its manifest checksum (corrupt?)")
        rows = (entry or {}).get("rows")
        if isinstance(rows, int) and (held := _footer_rows(path)) != rows:
            raise DiffError(
                f"diff {root}: {relative} does not match the manifest (edited): it holds "
                f"{held:,} rows, the manifest says {rows:,}"
            )
        files[item_class] = path
    return _DiffInput(
        root=root,
        manifest=manifest,
        manifest_checksum=xxhash.xxh3_128_hexdigest(raw),
        key_schema=schema,
        table=table,
        files=files,
        ttl_attribute=_ttl_attribute(manifest),
        location=str(getattr(diff, "url", None) or root.resolve()),
        staged=diff if hasattr(diff, "url") else None,
    )


def _ttl_attribute(manifest: Mapping[str, Any]) -> str | None:
    """The TTL attribute that will act on items put back; ``None`` when unknown or disabled.

    The one the diff used (its summary's ``ttl``, from ``diff --ttl-attribute``
    or the exports), else the live export's recorded setting: a restore does
    not carry the TTL setting, so the live table's is the one that applies.
    """
    summary = manifest.get("summary")
    live = manifest.get("live")
    candidates = [
        summary.get("ttl") if isinstance(summary, Mapping) else None,
        live.get("ttl") if isinstance(live, Mapping) else None,
    ]
    for setting in candidates:
        if not isinstance(setting, Mapping) or not isinstance(setting.get("attribute"), str):
            continue
        if str(setting.get("status") or "ENABLED").upper() in ("ENABLED", "ENABLING"):
            return str(setting["attribute"])
    return None


# --------------------------------------------------------------------------- selecting


def _parse_include(include: Iterable[str] | str) -> tuple[str, ...]:
    names = include.split(",") if isinstance(include, str) else list(include)
    chosen: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name not in CLASSES:
            raise InputError(f"unknown class {name!r} to include: choose from {', '.join(CLASSES)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise InputError(f"include at least one class: {', '.join(CLASSES)}")
    return tuple(c for c in CLASSES if c in chosen)


def _connect(diff: _DiffInput, include: Sequence[str], spill: str, memory_limit: str | None) -> Any:
    """A DuckDB connection with the ``rows`` view, then locked against external access.

    ``spill`` is an owner-only directory for DuckDB's temporary files (its
    default, ``./.tmp``, would leave table data readable by others). Each
    class's rows are empty until :func:`~pitrdiff.recovery.selection.stream_class`
    streams them.
    """
    from pitrdiff.diff.core import connect

    # No progress bar, and the attr() / attr_text() ... macros as in Diff.sql.
    # One thread: the rows stream out in the class file's order.
    con = connect(temp_dir=spill, threads=1, memory_limit=memory_limit)
    parts = []
    for item_class in include:
        name = source_name(item_class)
        con.register(name, empty_source(diff.files[item_class]))
        parts.append(f"SELECT '{item_class}' AS class, * FROM {name}")
    # Every column exists for every class (NULL where a class has no value), so
    # one expression works whatever the classes included.
    parts.insert(0, _ALL_COLUMNS)
    con.execute("CREATE VIEW rows AS " + " UNION ALL BY NAME ".join(parts))
    lock_down(con)
    return con


def _unmatched_keys(diff: _DiffInput, include: Sequence[str], wanted: KeyList) -> dict[str, Any]:
    """How many listed keys are in no row of the included classes, and a few of them."""
    import pyarrow.parquet as pq

    found: set[str] = set()
    for item_class in include:
        with pq.ParquetFile(diff.files[item_class]) as parquet:
            for batch in parquet.iter_batches(columns=["_key"], use_threads=False):
                found.update(k for k in batch.column(0).to_pylist() if k in wanted.members)
    count, sample = wanted.missing_from(found)
    return {"unmatched": count, "unmatched_sample": sample}


# --------------------------------------------------------------------------- writing


@dataclass
class _Tally:
    """What the operations written add up to (filled while they are written)."""

    key_schema: KeySchema
    ttl: TtlRule | None
    counts: dict[str, int] = field(default_factory=dict)
    excluded: int = 0
    ttl_expiring: int = 0
    ttl_sample: list[str] = field(default_factory=list)
    unrestorable: int = 0
    unrestorable_sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def operations(self) -> int:
        return sum(self.counts.values())

    def check(self, seq: int, item_class: str, key: str, live: Any, restored: Any) -> None:
        """Count what AWS cannot do in one safe request, and puts TTL will delete again."""
        reason = unrestorable_reason(item_class, self.key_schema, live, restored)
        if reason is not None:
            self.unrestorable += 1
            if len(self.unrestorable_sample) < SAMPLE_SIZE:
                self.unrestorable_sample.append({"seq": seq, "key": key, "reason": reason})
        if self.ttl is not None and item_class != "added" and self.ttl.expired(restored):
            self.ttl_expiring += 1
            if len(self.ttl_sample) < SAMPLE_SIZE:
                self.ttl_sample.append(key)


def _ttl_rule(attribute: str | None) -> TtlRule | None:
    """DynamoDB's TTL rule as it will stand a day from now.

    An item it calls expired (developer guide, "Time to Live (TTL)") is past
    its TTL, or will be within a day: TTL deletes it again once put back.
    """
    if attribute is None:
        return None
    tomorrow = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=TTL_WARNING_S)
    return TtlRule(attribute, tomorrow.isoformat(timespec="milliseconds"))


def _write_operations(
    con: Any,
    source: _DiffInput,
    include: Sequence[str],
    where: str | None,
    wanted: KeyList | None,
    denied: KeyList | None,
    handle: IO[bytes],
    tally: _Tally,
) -> None:
    """Stream the selected rows, class by class, into operation lines (selected once)."""
    for item_class in include:
        tally.counts[item_class] = 0
        path = source.files[item_class]
        # closed here, not when collected: its cleanup needs the open connection
        with contextlib.closing(
            stream_class(con, item_class, path, wanted=wanted, where=where)
        ) as batches:
            for batch in batches:
                _write_batch(batch, item_class, denied, handle, tally)


def _write_batch(
    batch: Any, item_class: str, denied: KeyList | None, handle: IO[bytes], tally: _Tally
) -> None:
    import pyarrow.compute as pc

    if denied is not None:
        mask = denied.contains(batch.column("_key"))
        removed = int(pc.sum(mask).as_py() or 0)
        if removed:
            tally.excluded += removed
            batch = batch.filter(pc.invert(mask))
    columns = batch.to_pydict()
    for key, live, restored in zip(
        columns["_key"], columns["live_item"], columns["restored_item"], strict=True
    ):
        seq = tally.operations
        handle.write(_op_line(seq, item_class, key, live, restored))
        tally.counts[item_class] += 1
        tally.check(seq, item_class, key, live, restored)


def _op_line(seq: int, item_class: str, key: str, live: str | None, restored: str | None) -> bytes:
    # The diff stores canonical JSON text; embed it as is (no re-encoding).
    if item_class in ("deleted", "expired"):
        body = f'"op":"put","class":"{item_class}","key":{key},"item":{restored},"expected":null'
    elif item_class == "changed":
        body = f'"op":"put","class":"changed","key":{key},"item":{restored},"expected":{live}'
    else:
        body = f'"op":"delete","class":"added","key":{key},"expected":{live}'
    return f'{{"kind":"op","seq":{seq},{body}}}\n'.encode()


def _op_counts(tally: _Tally) -> dict[str, int]:
    counts = dict(tally.counts)
    return {
        **counts,
        "put": sum(n for c, n in counts.items() if OPERATION_OF_CLASS[c] == "put"),
        "delete": sum(n for c, n in counts.items() if OPERATION_OF_CLASS[c] == "delete"),
    }


def _selection(
    include: Sequence[str],
    where: str | None,
    wanted: KeyList | None,
    unmatched: Mapping[str, Any] | None,
    denied: KeyList | None,
    tally: _Tally,
) -> dict[str, Any]:
    selection: dict[str, Any] = {"include": list(include), "where": where}
    if wanted is not None:
        selection["keys"] = {**wanted.to_dict(), **(unmatched or {})}
    if denied is not None:
        selection["exclude_keys"] = {**denied.to_dict(), "removed": tally.excluded}
    return selection


def _header(
    source: _DiffInput, target: str, selection: dict[str, Any], tally: _Tally
) -> dict[str, Any]:
    return {
        "kind": "header",
        "format": PLAN_FORMAT,
        "format_version": PLAN_FORMAT_VERSION,
        "tool_version": __version__,
        "created_at": utc_now(),
        "table": target,
        "key_schema": source.key_schema.to_list(),
        "diff": {
            "path": source.location,
            "table_name": source.table,
            "created_at": source.manifest.get("created_at"),
            "manifest_xxh3_128": source.manifest_checksum,
            "live": source.manifest.get("live"),
            "restored": source.manifest.get("restored"),
            "counts": source.manifest.get("counts"),
        },
        "selection": selection,
        "counts": {"operations": tally.operations, **_op_counts(tally)},
        "checks": _checks(source, tally),
    }


def _checks(source: _DiffInput, tally: _Tally) -> dict[str, Any]:
    return {
        "unrestorable": {"operations": tally.unrestorable, "sample": tally.unrestorable_sample},
        "ttl": {
            "attribute": source.ttl_attribute,
            "expiring_within_a_day": tally.ttl_expiring,
            "sample": tally.ttl_sample,
        },
    }


def write_plan(
    diff: Any,
    out: str | os.PathLike[str],
    *,
    include: Iterable[str] | str = DEFAULT_INCLUDE,
    where: str | None = None,
    keys: KeySource | None = None,
    exclude_keys: KeySource | None = None,
    table: str | None = None,
    overwrite: bool = False,
    memory_limit: str | None = None,
    s3_endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
) -> PlanSummary:
    """Write a selective re-put plan from a diff dataset.

    Parameters
    ----------
    diff
        The diff dataset directory, an object with a ``path`` attribute naming
        it, or ``s3://bucket/prefix`` (the class files the plan reads are
        copied into a private temporary directory, each checked against the
        manifest; the plan records the URL).
    out
        The plan file to write (atomically, owner-only). Refused inside an
        export or diff dataset, over anything but a plan, over a plan without
        ``overwrite``, and over an applied plan (see :mod:`pitrdiff.recovery.planfile`).
    include
        Classes to restore: ``deleted`` (default), ``changed``, ``added``,
        ``expired``; a sequence or a comma-separated string.
    where
        A boolean DuckDB SQL expression over the diff rows (see the module
        docstring for the columns), e.g.
        ``json_extract_string(restored_item, '$.tenant.S') = 'acme'``. Evaluated
        once per row.
    keys
        Only these keys: a CSV or JSON Lines file, or an iterable of key mappings
        (:mod:`pitrdiff.recovery.keys`).
    exclude_keys
        Never these keys (a deny list, e.g. erasure requests); same forms as ``keys``.
    table
        The target table; the diff's table by default.
    overwrite
        Replace a plan already at ``out``.
    memory_limit
        DuckDB's memory limit, e.g. ``"500MB"``; beyond it DuckDB spills into a
        private temporary directory. Memory does not grow with the plan's size.
        A negative or zero size is refused (``InputError``).
    s3_endpoint_url, aws
        Where S3 is, for an ``s3://`` diff (``AWS_ENDPOINT_URL_S3`` works too).

    Returns
    -------
    PlanSummary
        What was written; a selection of nothing writes a plan with no operations.

    Raises
    ------
    DiffError
        When ``diff`` is not a complete diff dataset.
    InputError
        For an unknown class, an invalid ``where`` expression or keys file.
    RefusedError
        For an ``out`` that could overwrite something (see above).
    StorageError
        When the plan cannot be written.
    """
    classes = _parse_include(include)
    expression = check_where(where) if where is not None else None
    memory_limit = check_memory_limit(memory_limit)
    target_path = check_out(out, overwrite=overwrite)
    source = _open_diff(diff, classes, s3_endpoint_url=s3_endpoint_url, aws=aws)
    wanted, denied = _key_lists(keys, exclude_keys, source.key_schema)
    tally = _Tally(key_schema=source.key_schema, ttl=_ttl_rule(source.ttl_attribute))
    with private_temp_dir("plan") as spill:
        con = _connect(source, classes, str(spill), memory_limit)
        try:
            bind_where(con, expression)
            with body_file(target_path) as (body, handle):
                _write_operations(con, source, classes, expression, wanted, denied, handle, tally)
                handle.flush()
                unmatched = _unmatched_keys(source, classes, wanted) if wanted else None
                selection = _selection(classes, expression, wanted, unmatched, denied, tally)
                header = _header(source, table or source.table, selection, tally)
                checksum = assemble(target_path, header, body, tally.operations)
        finally:
            con.close()
    return _summary(target_path, header, source, tally, checksum)


def _key_lists(
    keys: KeySource | None, exclude_keys: KeySource | None, key_schema: KeySchema
) -> tuple[KeyList | None, KeyList | None]:
    wanted = load_key_list(keys, key_schema, option="--keys") if keys is not None else None
    denied = (
        load_key_list(exclude_keys, key_schema, option="--exclude-keys")
        if exclude_keys is not None
        else None
    )
    return wanted, denied


def _summary(
    path: Path, header: dict[str, Any], source: _DiffInput, tally: _Tally, checksum: str
) -> PlanSummary:
    selection = header["selection"]
    keys = selection.get("keys") or {}
    return PlanSummary(
        path=str(path),
        table=header["table"],
        operations=tally.operations,
        counts=_op_counts(tally),
        available={c: int(v) for c, v in (source.manifest.get("counts") or {}).items()},
        selection=selection,
        checksum=checksum,
        keys_unmatched=keys.get("unmatched"),
        keys_unmatched_sample=tuple(keys.get("unmatched_sample") or ()),
        excluded=tally.excluded if "exclude_keys" in selection else None,
        ttl_attribute=source.ttl_attribute,
        ttl_expiring=tally.ttl_expiring,
        ttl_expiring_sample=tuple(tally.ttl_sample),
        unrestorable=tally.unrestorable,
        unrestorable_sample=tuple(tally.unrestorable_sample),
    )

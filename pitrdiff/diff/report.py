"""The forensic summary of a diff: what it holds, how it is computed, its Markdown form.

The summary answers the first questions after an incident: how many items were
deleted, changed and added (and how many bytes); which change signatures
dominate ("4,812 items changed; 4,800 of them only in ``price``"); which
attributes were most often added, removed or modified; which partition-key
values (tenants, customers) were hit; and a few sample keys per class.

It is computed by DuckDB over the diff dataset's Parquet files (bounded memory),
stored in the diff's ``manifest.json`` and rendered as ``report.md`` beside it.
Terminal rendering lives in the CLI (:mod:`pitrdiff.cli.diff`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pitrdiff.diff.schema import CLASSES

if TYPE_CHECKING:
    import duckdb

TOP_SIGNATURES = 10
TOP_ATTRIBUTES = 10
TOP_PARTITIONS = 10
SAMPLE_KEYS = 5


@dataclass(frozen=True)
class SignatureCount:
    """How many changed items share one change signature."""

    signature: str
    items: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"signature": self.signature, "items": self.items}


@dataclass(frozen=True)
class AttributeCount:
    """How many changed items had one (folded) path changed in one way."""

    path: str
    kind: str
    items: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"path": self.path, "kind": self.kind, "items": self.items}


@dataclass(frozen=True)
class PartitionCount:
    """Affected items of one partition-key value, per class.

    ``value`` is the key value as text (``B`` keys as base64).
    """

    value: str
    deleted: int
    changed: int
    added: int
    expired: int = 0

    @property
    def items(self) -> int:
        """All affected items of this partition."""
        return self.deleted + self.changed + self.added + self.expired

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "value": self.value,
            "items": self.items,
            "deleted": self.deleted,
            "changed": self.changed,
            "added": self.added,
            "expired": self.expired,
        }


@dataclass(frozen=True)
class SummaryFacts:
    """What the summary states besides counts: T and the TTL rule applied.

    Attributes
    ----------
    restore_time
        T, the restored input's restore time as its export recorded it (``None``
        when the restored export is not of a PITR restore).
    ttl_attribute, ttl_as_of
        The TTL attribute and the moment expiry was judged at (the live
        export's time); ``None`` when TTL was not enabled.
    changed_past_ttl
        Changed items whose live version had expired but was still there.
    """

    restore_time: str | None = None
    ttl_attribute: str | None = None
    ttl_as_of: str | None = None
    changed_past_ttl: int = 0


@dataclass(frozen=True)
class DiffSummary:
    """What a diff found, ready to render (terminal, JSON, Markdown).

    Attributes
    ----------
    table_name
        The (live) table diffed.
    live_table, restored_table
        The two inputs' table names.
    partition_key
        The partition key attribute's name.
    deleted, changed, added, unchanged, expired
        Item counts per class (``expired``: in restored, not in live, and
        removed by TTL: not lost).
    deleted_bytes, changed_bytes, added_bytes, unchanged_bytes, expired_bytes
        Item sizes (AWS rules) per class: deleted, expired and changed count
        the restored version (what putting back would write), added the live
        one. ``unchanged_bytes`` is ``None`` when not known.
    top_signatures
        The most common change signatures, most items first.
    top_attributes
        The (folded) paths most often added / removed / modified / type-changed.
    top_partitions
        Partition-key values with the most affected items.
    samples
        A few keys (canonical key JSON) per class, in key order.
    facts
        T and the TTL rule (:class:`SummaryFacts`).
    """

    table_name: str
    live_table: str
    restored_table: str
    partition_key: str
    deleted: int
    changed: int
    added: int
    unchanged: int
    deleted_bytes: int = 0
    changed_bytes: int = 0
    added_bytes: int = 0
    unchanged_bytes: int | None = None
    top_signatures: tuple[SignatureCount, ...] = ()
    top_attributes: tuple[AttributeCount, ...] = ()
    top_partitions: tuple[PartitionCount, ...] = ()
    samples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    expired: int = 0
    expired_bytes: int = 0
    facts: SummaryFacts = field(default_factory=SummaryFacts)

    @property
    def same(self) -> bool:
        """``True`` when the two tables hold the same items."""
        return not (self.deleted or self.changed or self.added or self.expired)

    @property
    def differing(self) -> int:
        """Items that differ (deleted + changed + added + expired)."""
        return self.deleted + self.changed + self.added + self.expired

    def to_dict(self) -> dict[str, Any]:
        """JSON form (also stored in the diff's ``manifest.json``)."""
        return {
            "table_name": self.table_name,
            "live_table": self.live_table,
            "restored_table": self.restored_table,
            "partition_key": self.partition_key,
            "same": self.same,
            "counts": {
                "deleted": self.deleted,
                "changed": self.changed,
                "added": self.added,
                "expired": self.expired,
                "unchanged": self.unchanged,
            },
            "bytes": {
                "deleted": self.deleted_bytes,
                "changed": self.changed_bytes,
                "added": self.added_bytes,
                "expired": self.expired_bytes,
                "unchanged": self.unchanged_bytes,
            },
            "restore_time": self.facts.restore_time,
            "ttl": {
                "attribute": self.facts.ttl_attribute,
                "as_of": self.facts.ttl_as_of,
                "changed_past_ttl": self.facts.changed_past_ttl,
            },
            "top_signatures": [s.to_dict() for s in self.top_signatures],
            "top_attributes": [a.to_dict() for a in self.top_attributes],
            "top_partitions": [p.to_dict() for p in self.top_partitions],
            "samples": {name: list(keys) for name, keys in self.samples.items()},
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DiffSummary:
        """Inverse of :meth:`to_dict`."""
        counts = doc.get("counts") or {}
        sizes = doc.get("bytes") or {}
        ttl = doc.get("ttl") or {}
        return cls(
            table_name=str(doc.get("table_name", "")),
            live_table=str(doc.get("live_table", "")),
            restored_table=str(doc.get("restored_table", "")),
            partition_key=str(doc.get("partition_key", "")),
            deleted=int(counts.get("deleted", 0)),
            changed=int(counts.get("changed", 0)),
            added=int(counts.get("added", 0)),
            unchanged=int(counts.get("unchanged", 0)),
            expired=int(counts.get("expired", 0)),
            deleted_bytes=int(sizes.get("deleted") or 0),
            changed_bytes=int(sizes.get("changed") or 0),
            added_bytes=int(sizes.get("added") or 0),
            expired_bytes=int(sizes.get("expired") or 0),
            unchanged_bytes=None if sizes.get("unchanged") is None else int(sizes["unchanged"]),
            facts=SummaryFacts(
                restore_time=doc.get("restore_time"),
                ttl_attribute=ttl.get("attribute"),
                ttl_as_of=ttl.get("as_of"),
                changed_past_ttl=int(ttl.get("changed_past_ttl") or 0),
            ),
            top_signatures=tuple(
                SignatureCount(str(s["signature"]), int(s["items"]))
                for s in doc.get("top_signatures") or ()
            ),
            top_attributes=tuple(
                AttributeCount(str(a["path"]), str(a["kind"]), int(a["items"]))
                for a in doc.get("top_attributes") or ()
            ),
            top_partitions=tuple(
                PartitionCount(
                    str(p["value"]),
                    int(p["deleted"]),
                    int(p["changed"]),
                    int(p["added"]),
                    int(p.get("expired", 0)),
                )
                for p in doc.get("top_partitions") or ()
            ),
            samples={
                str(name): tuple(str(k) for k in keys)
                for name, keys in (doc.get("samples") or {}).items()
            },
        )

    def headline(self) -> str:
        """One sentence: ``3 deleted, 2 changed, 1 added, 10 unchanged`` (``, 4 expired``)."""
        if self.same:
            return f"no differences: {self.unchanged:,} items are the same"
        expired = f", {self.expired:,} expired" if self.expired else ""
        return (
            f"{self.deleted:,} deleted, {self.changed:,} changed, {self.added:,} added, "
            f"{self.unchanged:,} unchanged{expired}"
        )

    def ttl_sentences(self, code: Callable[[str], str] | None = None) -> list[str]:
        """What TTL explains: expired items (not lost), changed items TTL will remove.

        ``312 of the 812 deleted items had expired by TTL (`expires` before
        2026-10-27T15:00:00.000Z): not lost.`` Without a single moment (an
        incremental diff judges each removal at its time): ``(`expires` passed
        before it was removed)``. Empty without a TTL attribute.
        """
        f = self.facts
        if not f.ttl_attribute:
            return []
        name = code(f.ttl_attribute) if code else f"`{f.ttl_attribute}`"
        gone = self.deleted + self.expired
        # An incremental diff judges each removal at its own time: no one moment.
        when = f"before {f.ttl_as_of}" if f.ttl_as_of else "passed before it was removed"
        lines = [
            f"{self.expired:,} of the {gone:,} deleted items had expired by TTL "
            f"({name} {when}): not lost."
        ]
        if f.changed_past_ttl == 1:
            lines.append(
                "1 changed item is past its TTL in live and not yet deleted: TTL will remove it."
            )
        elif f.changed_past_ttl:
            lines.append(
                f"{f.changed_past_ttl:,} changed items are past their TTL in live and not yet "
                "deleted: TTL will remove them."
            )
        return lines

    def signature_sentence(self, code: Callable[[str], str] | None = None) -> str | None:
        """``4,812 items changed; 4,800 of them only in `price`.`` (``None`` if none changed).

        ``code`` formats the signature (default: in backticks).
        """
        if not self.changed or not self.top_signatures:
            return None
        top = self.top_signatures[0]
        sig = code(top.signature) if code else f"`{top.signature}`"
        what = "only in" if ", " not in top.signature else "in exactly"
        if self.changed == 1:
            return f"1 item changed, in {sig}."
        if top.items == self.changed:
            return f"{self.changed:,} items changed, all of them {what} {sig}."
        return f"{self.changed:,} items changed; {top.items:,} of them {what} {sig}."


def summarize(
    con: duckdb.DuckDBPyConnection,
    files: Mapping[str, str],
    *,
    table_name: str,
    live_table: str,
    restored_table: str,
    partition_key: str,
    partition_key_type: str | None,
    counts: Mapping[str, int],
    sizes: Mapping[str, int | None],
    facts: SummaryFacts | None = None,
) -> DiffSummary:
    """Compute the summary of a written diff dataset with DuckDB.

    Parameters
    ----------
    con
        A DuckDB connection (its memory limit bounds the work).
    files
        Parquet path per class (``deleted``, ``changed``, ``added``, ``expired``).
    table_name, live_table, restored_table
        Names for the header.
    partition_key, partition_key_type
        The partition key attribute and its type (``B`` is shown as base64).
    counts, sizes
        Items and bytes per class (``unchanged`` included).
    facts
        T and the TTL rule, stated as given.
    """
    scans = {name: "read_parquet(" + _literal(path) + ")" for name, path in files.items()}
    signatures, attributes = _top_changes(con, scans["changed"], counts)
    partitions = _top_partitions(con, scans, partition_key_type, counts)
    samples: dict[str, tuple[str, ...]] = {}
    for name in CLASSES:
        if counts.get(name):
            rows = con.execute(
                f"SELECT _key FROM {scans[name]} ORDER BY _key LIMIT {SAMPLE_KEYS}"
            ).fetchall()
            samples[name] = tuple(str(r[0]) for r in rows)

    unchanged_bytes = sizes.get("unchanged")
    return DiffSummary(
        table_name=table_name,
        live_table=live_table,
        restored_table=restored_table,
        partition_key=partition_key,
        deleted=int(counts.get("deleted", 0)),
        changed=int(counts.get("changed", 0)),
        added=int(counts.get("added", 0)),
        unchanged=int(counts.get("unchanged", 0)),
        expired=int(counts.get("expired", 0)),
        deleted_bytes=int(sizes.get("deleted") or 0),
        changed_bytes=int(sizes.get("changed") or 0),
        added_bytes=int(sizes.get("added") or 0),
        expired_bytes=int(sizes.get("expired") or 0),
        unchanged_bytes=None if unchanged_bytes is None else int(unchanged_bytes),
        facts=facts or SummaryFacts(),
        top_signatures=signatures,
        top_attributes=attributes,
        top_partitions=partitions,
        samples=samples,
    )


def _top_changes(
    con: duckdb.DuckDBPyConnection, scan: str, counts: Mapping[str, int]
) -> tuple[tuple[SignatureCount, ...], tuple[AttributeCount, ...]]:
    """The most common change signatures and changed (folded) paths."""
    if not counts.get("changed"):
        return (), ()
    rows = con.execute(
        f"SELECT signature, count(*) AS n FROM {scan} "
        f"GROUP BY signature ORDER BY n DESC, signature LIMIT {TOP_SIGNATURES}"
    ).fetchall()
    signatures = tuple(SignatureCount(str(s), int(n)) for s, n in rows)
    rows = con.execute(
        "SELECT regexp_replace(c.path, '\\[[0-9]+\\]', '[*]', 'g') AS path, c.kind AS kind, "
        "count(DISTINCT _key) AS n "
        f"FROM (SELECT _key, unnest(changes) AS c FROM {scan}) "
        f"GROUP BY ALL ORDER BY n DESC, path, kind LIMIT {TOP_ATTRIBUTES}"
    ).fetchall()
    return signatures, tuple(AttributeCount(str(p), str(k), int(n)) for p, k, n in rows)


def _top_partitions(
    con: duckdb.DuckDBPyConnection,
    scans: Mapping[str, str],
    partition_key_type: str | None,
    counts: Mapping[str, int],
) -> tuple[PartitionCount, ...]:
    """The partition-key values with the most affected items, per class."""
    if not any(counts.get(name) for name in CLASSES):
        return ()
    # By position: the partition key is the key struct's first field (a name
    # could differ from the sort key's only in letter case, which SQL ignores).
    column = "struct_extract_at(key, 1)"
    value = f"base64({column})" if partition_key_type == "B" else f"CAST({column} AS VARCHAR)"
    union = " UNION ALL ".join(
        f"SELECT {value} AS v, '{name}' AS cls FROM {scans[name]}"
        for name in CLASSES
        if counts.get(name)
    )
    per_class = ", ".join(f"count(*) FILTER (cls = '{name}')" for name in CLASSES)
    rows = con.execute(
        f"SELECT v, {per_class}, count(*) AS n FROM ({union}) "
        f"GROUP BY v ORDER BY n DESC, v LIMIT {TOP_PARTITIONS}"
    ).fetchall()
    by_name = [dict(zip(CLASSES, (int(x) for x in r[1:-1]), strict=True)) for r in rows]
    return tuple(PartitionCount(str(r[0]), **n) for r, n in zip(rows, by_name, strict=True))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --------------------------------------------------------------------------- Markdown


def _md_text(value: Any) -> str:
    """Plain Markdown text: punctuation that would format is backslash-escaped."""
    text = str(value).replace("\n", " ")
    return "".join("\\" + c if c in "\\`*_[]<>#|" else c for c in text)


def _md_code(value: str, *, table: bool = False) -> str:
    """A code span that survives any backticks in ``value`` (and pipes in a table)."""
    text = value.replace("\n", " ")
    longest = max((len(run) for run in _runs(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if "`" in text else ""
    if table:
        text = text.replace("|", "\\|")  # GFM lets a table cell's code span escape pipes
    return f"{fence}{pad}{text}{pad}{fence}"


def _runs(text: str) -> list[str]:
    runs, current = [], ""
    for char in text:
        if char == "`":
            current += char
        elif current:
            runs.append(current)
            current = ""
    if current:
        runs.append(current)
    return runs


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _size(count: int | None) -> str:
    from pitrdiff.units import human_bytes

    return "?" if count is None else human_bytes(count)


def render_markdown(summary: DiffSummary, *, live: str = "", restored: str = "") -> str:
    """The summary as a Markdown report (``report.md`` in the diff directory).

    Parameters
    ----------
    summary
        What the diff found.
    live, restored
        How to name the two inputs (their paths or URLs) in the header.
    """
    s = summary
    lines = [f"# pitrdiff report: {_md_text(s.table_name)}", ""]
    lines.append(f"- live: {_md_code(s.live_table)}" + (f" ({_md_code(live)})" if live else ""))
    lines.append(
        f"- restored: {_md_code(s.restored_table)}"
        + (f" ({_md_code(restored)})" if restored else "")
    )
    if s.facts.restore_time:
        lines.append(f"- T (the restored table's restore time): {_md_text(s.facts.restore_time)}")
    lines.append(f"- result: **{s.headline()}**")
    sentence = s.signature_sentence(code=_md_code)
    if sentence:
        lines.append(f"- {sentence}")
    lines += [f"- {line}" for line in s.ttl_sentences(code=_md_code)]
    lines += ["", "## Items per class", ""]
    meaning = {
        "deleted": "in restored, not in live (lost since T)",
        "changed": "in both, different content",
        "added": "in live, not in restored (created since T)",
        "unchanged": "in both, same content (counted, not stored)",
        "expired": "in restored, not in live, its TTL had passed: removed by TTL, not lost",
    }
    count_rows = [
        [name, f"{count:,}", _size(size), meaning[name]]
        for name, count, size in (
            ("deleted", s.deleted, s.deleted_bytes),
            ("changed", s.changed, s.changed_bytes),
            ("added", s.added, s.added_bytes),
            ("unchanged", s.unchanged, s.unchanged_bytes),
            ("expired", s.expired, s.expired_bytes),
        )
        if name != "expired" or s.facts.ttl_attribute or count
    ]
    lines += _md_table(["class", "items", "bytes", "meaning"], count_rows, "lrrl")
    if s.top_signatures:
        lines += ["", "## Change signatures", ""]
        lines += _md_table(
            ["items", "changed paths"],
            [[f"{x.items:,}", _md_code(x.signature, table=True)] for x in s.top_signatures],
            "rl",
        )
    if s.top_attributes:
        lines += ["", "## Attributes changed most often", ""]
        lines += _md_table(
            ["items", "path", "change"],
            [[f"{x.items:,}", _md_code(x.path, table=True), x.kind] for x in s.top_attributes],
            "rll",
        )
    if s.top_partitions:
        lines += ["", f"## Most affected {_md_code(s.partition_key)} values", ""]
        shown = ["deleted", "changed", "added"] + (["expired"] if s.expired else [])
        lines += _md_table(
            [_md_text(s.partition_key), "items", *shown],
            [
                [_md_code(p.value, table=True), f"{p.items:,}"]
                + [f"{getattr(p, name):,}" for name in shown]
                for p in s.top_partitions
            ],
            "lr" + "r" * len(shown),
        )
    if s.samples:
        lines += ["", "## Sample keys", ""]
        for name in CLASSES:
            keys = s.samples.get(name)
            if keys:
                lines.append(f"- {name}: " + ", ".join(_md_code(k) for k in keys))
    return "\n".join(lines) + "\n"

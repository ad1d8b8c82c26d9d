"""``report.html``: a self-contained page people would rather look at than read.

:func:`render_html` turns a diff's summary and a few bounded DuckDB queries over
its Parquet files into one HTML page: counts per class with their meaning, T
and both tables, the change signatures as a bar chart, the attributes changed,
the most affected partitions, a timeline of affected items by a timestamp
attribute (detected, or given), sample items with their attribute-level
changes side by side, the TTL-expired section, and any extra sections a caller
adds (the settings diff, a drill's checks).

- The page comes from a Jinja2 template (``templates/report.html.j2``) with
  autoescaping on: every value from the data (attribute names, keys, values)
  is escaped.
- Charts are inline SVG written by :mod:`pitrdiff.diff.svgchart` from the
  aggregates DuckDB computes (no plotting library, nothing per item); their
  labels are escaped text, so a hostile attribute name is only ever text.
  Styles are inline: the page loads nothing.
- Times and numbers on the charts are floats for plotting only; every value
  shown as text is the exact DynamoDB value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from markupsafe import Markup

from pitrdiff.diff import svgchart
from pitrdiff.diff.report import DiffSummary
from pitrdiff.diff.schema import literal

HTML_REPORT_NAME = "report.html"
SAMPLE_ITEMS = 5
TIMELINE_BUCKETS = 40
DETECT_ROWS = 200
_MEANING = {
    "deleted": "in restored, not in live: lost since T",
    "changed": "in both, different content",
    "added": "in live, not in restored: created since T",
    "expired": "in restored, not in live, and past its TTL: removed by DynamoDB's TTL, not lost",
    "unchanged": "in both, same content (counted, not stored)",
}
# the same colours as the class badges of the template
CLASS_COLORS = {
    "deleted": "#c0392b",
    "changed": "#e67e22",
    "added": "#2e86c1",
    "expired": "#7f8c8d",
}
_TIME_NAME = re.compile(r"(updated|modified|changed|time|_at$|_ts$|^ts$|date)", re.IGNORECASE)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@dataclass(frozen=True)
class HtmlSection:
    """An extra section of the report (the settings diff, a drill's checks).

    Attributes
    ----------
    title
        The heading.
    anchor
        The HTML id (letters, digits, dashes).
    paragraphs
        Text before the table.
    columns, rows
        A table (optional); every cell is text.
    row_classes
        One CSS class per row (``pass``, ``fail``), or empty.
    """

    title: str
    anchor: str
    paragraphs: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    row_classes: tuple[str, ...] = ()
    details: tuple[tuple[str, str], ...] = field(default=())


def settings_section(document: Mapping[str, Any]) -> HtmlSection:
    """The section "Settings a restore does not carry" of a settings diff document.

    ``document`` is :meth:`pitrdiff.settings.SettingsDiff.to_dict` (or
    ``RecoverResult.settings``): one row per setting that differs, what a
    promotion of the restored table would need, and what was not compared.
    """
    from pitrdiff.settings import describe_value

    differences = list(document.get("differences") or ())
    unknown = dict(document.get("unknown") or {})
    return HtmlSection(
        "Settings a restore does not carry",
        "settings",
        paragraphs=(
            f"{len(differences)} settings of {document.get('live_table')} differ on "
            f"{document.get('restored_table')}. A point-in-time restore carries the data, "
            "indexes, capacity and encryption; not TTL, streams, PITR, deletion protection, "
            "tags, auto scaling, the resource policy or contributor insights.",
        ),
        columns=("setting", "live", "restored", "a promotion would need"),
        rows=tuple(
            (
                str(x["setting"]),
                describe_value(x["live"]),
                describe_value(x["restored"]),
                str(x["promotion"]),
            )
            for x in differences
        ),
        details=tuple((f"not compared: {k}", str(v)) for k, v in unknown.items()),
    )


def _bar_chart(labels: Sequence[str], values: Sequence[int], color: str) -> str:
    """A horizontal bar chart, largest first at the top, each bar's count at its end."""
    series = [svgchart.Series("items", color, tuple(int(v) for v in values))]
    return svgchart.stacked_bars(labels, series, title="change signatures", totals=True)


def _stacked_partitions(summary: DiffSummary) -> str:
    partitions = summary.top_partitions
    series = [
        svgchart.Series(name, color, tuple(int(getattr(p, name, 0)) for p in partitions))
        for name, color in CLASS_COLORS.items()
    ]
    return svgchart.stacked_bars([p.value for p in partitions], series, clip=40,
                                 title="most affected partitions")  # fmt: skip


# --------------------------------------------------------------------------- data


def _files(root: Path) -> dict[str, str]:
    names = {"deleted": "deleted", "changed": "changed", "added": "added", "expired": "expired"}
    return {
        name: str(root / f"{file}.parquet")
        for name, file in names.items()
        if (root / f"{file}.parquet").is_file()
    }


def _item_column(name: str) -> str:
    return "live_item" if name in ("changed", "added") else "restored_item"


def _json_path(attribute: str) -> str:
    """SQL: the JSON path literal of a top-level attribute (any name, quoted)."""
    return literal('$."' + attribute.replace("\\", "\\\\").replace('"', '\\"') + '"')


def _epoch_of(number: str, text: str) -> str:
    """SQL: epoch seconds of a Number (as DOUBLE, by magnitude) or else ISO 8601 text."""
    return (
        f"coalesce(CASE WHEN {number} > 1e17 THEN {number} / 1e9 "
        f"WHEN {number} > 1e14 THEN {number} / 1e6 "
        f"WHEN {number} > 1e11 THEN {number} / 1e3 ELSE {number} END, "
        f"epoch(TRY_CAST({text} AS TIMESTAMPTZ)))"
    )


def epoch_seconds_sql(item: str, attribute: str) -> str:
    """SQL: the attribute as epoch seconds (a Number in s, ms, µs or ns, or ISO 8601 text).

    The unit of a Number is told by its magnitude, as for any time after 1973:
    above 1e17 nanoseconds, above 1e14 microseconds, above 1e11 milliseconds,
    else seconds (1e11 seconds is the year 5138).
    """
    path = _json_path(attribute)
    number = f"TRY_CAST(json_extract_string({item}, {path} || '.N') AS DOUBLE)"
    text = f"json_extract_string({item}, {path} || '.S')"
    return _epoch_of(number, text)


def detect_time_attribute(
    con: Any, files: Mapping[str, str], *, exclude: Sequence[str] = ()
) -> str | None:
    """A top-level attribute that holds a time in most affected items, or ``None``.

    Looked for in the first rows of each class: a String in ISO 8601 or a
    Number of epoch seconds / milliseconds (2001–2096). Names that say
    "updated", "modified", "time", ``*_at`` win over others; the TTL attribute
    is excluded (it is a time in the future, not of the change).
    """
    counts: dict[str, int] = {}
    for name, path in files.items():
        rows = con.execute(
            f"SELECT {_item_column(name)} FROM read_parquet({literal(path)}) LIMIT {DETECT_ROWS}"
        ).fetchall()
        for (text,) in rows:
            for attribute, typed in orjson.loads(text).items():
                if attribute in exclude or not isinstance(typed, dict):
                    continue
                value = typed.get("S") if "S" in typed else typed.get("N")
                if value is None:
                    continue
                if ("S" in typed and _ISO.match(str(value))) or (
                    "N" in typed and _epoch_range(str(value))
                ):
                    counts[attribute] = counts.get(attribute, 0) + 1
    if not counts:
        return None
    best = max(counts.values())
    candidates = [a for a, n in counts.items() if n >= best * 0.8]
    candidates.sort(key=lambda a: (not _TIME_NAME.search(a), "created" in a.lower(), a))
    return candidates[0]


def _epoch_range(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return 1e9 <= value <= 4e9 or 1e12 <= value <= 4e12


_LAST_PLOTTABLE_S = 253_370_764_800  # 9999-01-01T00:00:00Z: Python's datetime ends in 9999


def _timeline(con: Any, files: Mapping[str, str], attribute: str) -> str | None:
    """A stacked histogram of affected items by the time attribute, per class.

    Each item's JSON is parsed once (both the ``N`` and the ``S`` path in one
    ``json_extract_string``) into a temporary table of (class, seconds); the
    bounds and the buckets are aggregates over it. No class file to read (a
    diff with no differences) gives no timeline, as no item holding a time does.
    """
    if not files:
        return None
    path = _json_path(attribute)
    union = " UNION ALL ".join(
        f"SELECT {literal(name)} AS cls, json_extract_string({_item_column(name)}, "
        f"[{path} || '.N', {path} || '.S']) AS v FROM read_parquet({literal(path_)})"
        for name, path_ in files.items()
    )
    # Only times a chart can place (1970 to 9998, in seconds): a sentinel such as
    # 9999-12-31, or microseconds read as seconds, is left out, never a failure.
    seconds = _epoch_of("TRY_CAST(v[1] AS DOUBLE)", "v[2]")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE pitrdiff_times AS SELECT cls, t FROM "
        f"(SELECT cls, {seconds} AS t FROM ({union})) "
        f"WHERE t BETWEEN 0 AND {_LAST_PLOTTABLE_S}"
    )
    bounds = con.execute("SELECT min(t), max(t) FROM pitrdiff_times").fetchone()
    if bounds is None or bounds[0] is None:
        return None
    low, high = float(bounds[0]), float(bounds[1])
    width = (high - low) / TIMELINE_BUCKETS if high > low else 1.0
    rows = con.execute(
        f"SELECT cls, least(floor((t - {low}) / {width}), {TIMELINE_BUCKETS - 1}) AS b, count(*) "
        "FROM pitrdiff_times GROUP BY ALL"
    ).fetchall()
    heights = {name: [0] * TIMELINE_BUCKETS for name in CLASS_COLORS}
    for cls, bucket, count in rows:
        heights[str(cls)][int(bucket)] = int(count)
    series = [svgchart.Series(n, c, tuple(heights[n])) for n, c in CLASS_COLORS.items()]
    return svgchart.time_columns(low, width, series, title="timeline of affected items",
                                 axis_label=f"{attribute} (UTC)")  # fmt: skip


def _value_text(typed: str | None) -> str:
    """A canonical typed value, compact: ``{"N":"1.5"}`` stays exact."""
    return "—" if typed is None else typed


def _samples(con: Any, files: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
    samples: dict[str, list[dict[str, Any]]] = {}
    if "changed" in files:
        rows = con.execute(
            f"SELECT _key, signature, changes FROM read_parquet({literal(files['changed'])}) "
            f"ORDER BY _key LIMIT {SAMPLE_ITEMS}"
        ).fetchall()
        samples["changed"] = [
            {
                "key": key,
                "signature": signature,
                "changes": [
                    {
                        "path": c["path"],
                        "kind": c["kind"],
                        "old": _value_text(c["old"]),
                        "new": _value_text(c["new"]),
                    }
                    for c in changes
                ],
            }
            for key, signature, changes in rows
        ]
    for name in ("deleted", "added", "expired"):
        if name in files:
            rows = con.execute(
                f"SELECT _key, {_item_column(name)} FROM read_parquet({literal(files[name])}) "
                f"ORDER BY _key LIMIT {SAMPLE_ITEMS}"
            ).fetchall()
            samples[name] = [
                {"key": key, "attributes": sorted(orjson.loads(item).items())} for key, item in rows
            ]
            for sample in samples[name]:
                sample["attributes"] = [
                    (a, orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode())
                    for a, v in sample["attributes"]
                ]
    return samples


def _connect() -> Any:
    import duckdb

    con = duckdb.connect(config={"threads": 2, "memory_limit": "512MB"})
    return con


def _visible_text(value: Any) -> Any:
    r"""Plain text with control characters drawn as escapes (``\x00``); markup unchanged."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return svgchart.visible(value)
    return value


def render_html(
    summary: DiffSummary,
    root: str | os.PathLike[str],
    *,
    inputs: Mapping[str, Mapping[str, Any]] | None = None,
    time_attr: str | None = None,
    extra_sections: Sequence[HtmlSection] = (),
    con: Any = None,
) -> str:
    """Render a diff as one self-contained HTML page (``report.html``).

    Parameters
    ----------
    summary
        The diff's summary (``Diff.summary``).
    root
        The diff directory; its class Parquet files are read (bounded queries:
        a few sample rows, aggregates for the charts).
    inputs
        ``{"live": {...}, "restored": {...}}`` as the diff manifest records them
        (``path``/``url``, ``table_name``, ``restore``): shown in the header.
    time_attr
        The timestamp attribute of the timeline; ``None`` detects one
        (:func:`detect_time_attribute`), ``""`` leaves the timeline out.
    extra_sections
        Sections added at the end (settings, drill checks).
    con
        A DuckDB connection to run the queries on (left open); ``None``: one
        of its own, closed after.

    Returns
    -------
    str
        The page. Nothing is written: the caller writes it (atomically).
    """
    import jinja2

    files = _files(Path(root))
    differing = {k: v for k, v in files.items() if getattr(summary, k, 0)}
    exclude = [summary.facts.ttl_attribute] if summary.facts.ttl_attribute else []
    own = con is None
    con = _connect() if own else con
    try:
        attribute = (
            time_attr
            if time_attr is not None
            else detect_time_attribute(con, differing, exclude=exclude)
        )
        timeline = _timeline(con, differing, attribute) if attribute else None
        samples = _samples(con, differing)
    finally:
        if own:
            con.close()
    signatures = summary.top_signatures
    signatures_chart = (
        _bar_chart([x.signature for x in signatures], [x.items for x in signatures], "#e67e22")
        if signatures
        else None
    )
    partitions_chart = _stacked_partitions(summary) if summary.top_partitions else None
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("pitrdiff.diff", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_visible_text,  # keys and values with control characters: escapes, never raw
    )
    return environment.get_template("report.html.j2").render(
        s=summary,
        facts=summary.facts,
        inputs=_inputs(summary, inputs or {}),
        classes=_class_rows(summary),
        signatures_chart=None if signatures_chart is None else Markup(signatures_chart),
        partitions_chart=None if partitions_chart is None else Markup(partitions_chart),
        time_attribute=attribute,
        timeline_chart=None if timeline is None else Markup(timeline),
        samples=samples,
        expired_sentence=_expired_sentence(summary),
        sections=extra_sections,
        signature_sentence=summary.signature_sentence(code=lambda x: x),
    )


def _inputs(summary: DiffSummary, inputs: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for role, table in (("live", summary.live_table), ("restored", summary.restored_table)):
        entry = inputs.get(role) or {}
        where = str(entry.get("path") or entry.get("url") or "")
        rows.append([role, table, where])
    return rows


def _class_rows(summary: DiffSummary) -> list[dict[str, Any]]:
    from pitrdiff.diff.report import _size  # the reports' one size formatter (report.md's)

    rows = []
    for name in ("deleted", "changed", "added", "expired", "unchanged"):
        count = int(getattr(summary, name, 0))
        if name == "expired" and not count and not summary.facts.ttl_attribute:
            continue
        size = getattr(summary, f"{name}_bytes", None)
        rows.append(
            {
                "name": name,
                "items": f"{count:,}",
                "bytes": _size(size),
                "meaning": _MEANING[name],
            }
        )
    return rows


def _expired_sentence(summary: DiffSummary) -> str | None:
    gone = summary.deleted + summary.expired
    if not summary.expired:
        return None
    return (
        f"{summary.expired:,} of the {gone:,} items gone from the live table had expired by "
        "TTL: not lost, and left out of plans unless --include expired."
    )


def write_html_report(
    diff_dir: str | os.PathLike[str],
    *,
    time_attr: str | None = None,
    extra_sections: Sequence[HtmlSection] = (),
) -> Path:
    """Render ``report.html`` of a diff dataset again and write it beside ``report.md``.

    Parameters
    ----------
    diff_dir
        The diff directory.
    time_attr
        See :func:`render_html`.
    extra_sections
        Sections added at the end.

    Returns
    -------
    Path
        The file written (atomically, owner-only).

    Raises
    ------
    DiffError
        When ``diff_dir`` is not a complete diff dataset.
    """
    from pitrdiff.diff.core import load_diff
    from pitrdiff.files import write_bytes

    diff = load_diff(diff_dir, verify=False)
    page = render_html(
        diff.summary,
        diff.path,
        inputs={"live": diff.manifest.live, "restored": diff.manifest.restored},
        time_attr=time_attr,
        extra_sections=extra_sections,
    )
    target = Path(diff.path) / HTML_REPORT_NAME
    write_bytes(target, page.encode("utf-8"))
    return target

"""report.html: parses, loads nothing, escapes everything, holds each section.

The demo's diff (``sample_data/diff``: 500 deleted, 175 changed, 40 added, the
top signature ``total``) gives every section but the TTL one; a tiny diff
built here with hostile names (``<script>`` in an attribute name, a key and
a value) and a TTL attribute gives the rest.
"""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import time
from pathlib import Path

from typer.testing import CliRunner

from pitrdiff.cli.app import load_commands
from pitrdiff.diff.core import load_diff
from pitrdiff.diff.html import HtmlSection, detect_time_attribute, render_html
from pitrdiff.errors import EXIT_BAD_INPUT, EXIT_OK
from pitrdiff.export.dataset import write_export

SAMPLE = Path(__file__).parent.parent / "sample_data" / "diff"
GOLDEN_HEADINGS = [
    "Items per class",
    "Change signatures",
    "Attributes changed",
    "Most affected partitions",
    "Timeline of affected items",
    "Sample items",
]
HOSTILE = "<script>alert(1)</script>"
THREE_DAYS_AGO = int(time.time()) - 3 * 86400


class Page(html.parser.HTMLParser):
    """Collects headings, element ids, src/href values and script elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[str] = []
        self.ids: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self.svgs = 0
        self._in_h2 = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "h2":
            self._in_h2 = True
            self.headings.append("")
        if tag == "script":
            self.scripts += 1
        if tag == "svg":
            self.svgs += 1
        if values.get("id") and tag == "section":
            self.ids.append(str(values["id"]))
        for name in ("src", "href", "xlink:href"):
            if values.get(name):
                self.links.append(str(values[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_h2:
            self.headings[-1] += data


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    return parser


def test_the_demo_diff_report_has_every_section() -> None:
    diff = load_diff(SAMPLE)
    page = render_html(
        diff.summary,
        SAMPLE,
        inputs={"live": diff.manifest.live, "restored": diff.manifest.restored},
        extra_sections=[
            HtmlSection(
                "Drill checks",
                "checks",
                columns=("check", "result"),
                rows=(("rto", "pass"),),
                row_classes=("pass",),
            )
        ],
    )
    parsed = parse(page)
    assert parsed.headings == [*GOLDEN_HEADINGS, "Drill checks"]
    assert parsed.ids == [
        "classes", "signatures", "attributes", "partitions", "timeline", "samples", "checks",
    ]  # fmt: skip
    assert parsed.svgs == 3  # signatures, partitions, timeline
    assert parsed.scripts == 0
    assert all(link.startswith("#") for link in parsed.links), parsed.links[:3]
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", page)
    text = " ".join(parsed.text)
    assert "500 deleted, 175 changed, 40 added" in text
    assert "TENANT#initech" in text  # the most affected partition
    assert "updated_at" in text  # the timeline's detected attribute
    assert f"{diff.summary.top_signatures[0].items:,}" in text


def _hostile_diff(tmp_path: Path) -> Path:
    """Restored: 3 items; live: one changed (the hostile attribute), one deleted, one expired.

    - changed: pk=a, ``<script>…`` attribute 1 → 2, and ``note`` gets a hostile value
    - deleted: pk=``<script>…`` (a hostile key)
    - expired: pk=s, ``expires`` = three days ago (epoch seconds) — TTL on ``expires``
    """
    restored = [
        {"pk": {"S": "a"}, HOSTILE: {"N": "1"}, "note": {"S": "ok"}, "ts": {"N": "1700000000"}},
        {"pk": {"S": HOSTILE}, "ts": {"N": "1700000100"}},
        {"pk": {"S": "s"}, "expires": {"N": str(THREE_DAYS_AGO)}, "ts": {"N": "1700000200"}},
    ]
    live = [
        {"pk": {"S": "a"}, HOSTILE: {"N": "2"}, "note": {"S": HOSTILE}, "ts": {"N": "1700000300"}}
    ]
    key = [{"AttributeName": "pk", "KeyType": "HASH"}]
    types = [{"AttributeName": "pk", "AttributeType": "S"}]
    ttl = {"attribute": "expires", "status": "ENABLED"}
    for name, items in (("live", live), ("restored", restored)):
        write_export(
            items,
            tmp_path / name,
            table_name="T",
            key_schema=key,
            attribute_definitions=types,
            ttl=ttl,
        )
    from pitrdiff.diff.core import diff_exports

    diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    return tmp_path / "diff"


def test_hostile_names_and_values_are_escaped(tmp_path: Path) -> None:
    root = _hostile_diff(tmp_path)
    diff = load_diff(root)
    page = render_html(
        diff.summary,
        root,
        extra_sections=[HtmlSection(HOSTILE, "x", paragraphs=(HOSTILE,), columns=(HOSTILE,),
                                    rows=((HOSTILE,),), details=((HOSTILE, HOSTILE),))],
    )  # fmt: skip
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 6
    parsed = parse(page)
    assert diff.summary.expired == 1 and diff.summary.deleted == 1
    assert "Expired by TTL" in parsed.headings
    assert "1 of the 2 items gone from the live table had expired by TTL" in " ".join(parsed.text)
    assert parsed.scripts == 0
    assert HOSTILE in " ".join(parsed.text)  # shown as text, exactly
    assert "Change signatures" in parsed.headings
    # the chart draws the hostile name as shapes: the SVG holds no such text either
    assert parsed.svgs >= 1


def test_time_attribute_detection_and_override(tmp_path: Path) -> None:
    import duckdb

    root = _hostile_diff(tmp_path)
    files = {n: str(root / f"{n}.parquet") for n in ("changed", "deleted")}
    con = duckdb.connect()
    assert detect_time_attribute(con, files) == "ts"
    assert detect_time_attribute(con, files, exclude=["ts"]) is None
    diff = load_diff(root)
    without = parse(render_html(diff.summary, root, time_attr=""))
    assert "Timeline of affected items" not in without.headings
    chosen = render_html(diff.summary, root, time_attr="ts")
    assert "Timeline of affected items" in parse(chosen).headings


def test_report_command_renders_again(tmp_path: Path) -> None:
    root = tmp_path / "diff"
    shutil.copytree(SAMPLE, root)
    (root / "report.html").unlink(missing_ok=True)
    runner = CliRunner()
    result = runner.invoke(load_commands(), ["report", str(root)])
    assert result.exit_code == EXIT_OK, result.output
    page = (root / "report.html").read_text()
    assert parse(page).headings == GOLDEN_HEADINGS
    as_json = runner.invoke(load_commands(), ["report", str(root), "--json", "--time-attr", ""])
    assert as_json.exit_code == EXIT_OK, as_json.output
    assert json.loads(as_json.stdout)["path"] == str(root / "report.html")
    assert "Timeline" not in (root / "report.html").read_text()
    missing = runner.invoke(load_commands(), ["report", str(tmp_path / "nope")])
    assert missing.exit_code == EXIT_BAD_INPUT
    assert "Traceback" not in missing.output


def test_every_diff_writes_report_html_beside_report_md(tmp_path: Path) -> None:
    root = _hostile_diff(tmp_path)
    assert (root / "report.md").exists()
    page = (root / "report.html").read_text()
    parsed = parse(page)
    assert parsed.headings[:3] == ["Items per class", "Expired by TTL", "Change signatures"]
    assert parsed.scripts == 0 and "<script" not in page
    assert (root / "report.html").stat().st_mode & 0o777 == 0o600


def test_times_a_chart_cannot_place_are_left_out_of_the_timeline(tmp_path: Path) -> None:
    """A sentinel far in the future (9999-12-31, or 1e16 as seconds) never breaks a diff.

    Restored: a, b, c; live: a changed with ``updated_at`` = 9999-12-31T23:59:59Z,
    b changed with an epoch of 10,000,000,000,000,000 (no year matplotlib can draw),
    c deleted with a plain 2026 time: the timeline shows c only, the diff is complete.
    """
    restored = [
        {"pk": {"S": "a"}, "v": {"N": "1"}, "updated_at": {"S": "2026-11-01T10:00:00Z"}},
        {"pk": {"S": "b"}, "v": {"N": "1"}, "updated_at": {"N": "1793000000"}},
        {"pk": {"S": "c"}, "v": {"N": "1"}, "updated_at": {"S": "2026-11-02T10:00:00Z"}},
    ]
    live = [
        {"pk": {"S": "a"}, "v": {"N": "2"}, "updated_at": {"S": "9999-12-31T23:59:59Z"}},
        {"pk": {"S": "b"}, "v": {"N": "2"}, "updated_at": {"N": "10000000000000000"}},
    ]
    key = [{"AttributeName": "pk", "KeyType": "HASH"}]
    types = [{"AttributeName": "pk", "AttributeType": "S"}]
    for name, items in (("live", live), ("restored", restored)):
        write_export(
            items, tmp_path / name, table_name="T", key_schema=key, attribute_definitions=types
        )
    from pitrdiff.diff.core import diff_exports

    diff = diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    assert (diff.summary.changed, diff.summary.deleted) == (2, 1)
    page = parse((tmp_path / "diff" / "report.html").read_text(encoding="utf-8"))
    assert diff.manifest.complete and "Timeline of affected items" in page.headings


def test_epoch_numbers_are_read_in_seconds_ms_us_or_ns_by_magnitude() -> None:
    """2020-01-01T00:00:00Z written four ways reads as the same second (drill --updated-attr)."""
    import duckdb

    from pitrdiff.diff.html import epoch_seconds_sql

    con = duckdb.connect()
    for value in ("1577836800", "1577836800000", "1577836800000000", "1577836800000000000"):
        item = json.dumps({"t": {"N": value}})
        row = con.execute(f"SELECT {epoch_seconds_sql('x', 't')} FROM (SELECT ? AS x)", [item])
        assert row.fetchone() == (1577836800.0,), value

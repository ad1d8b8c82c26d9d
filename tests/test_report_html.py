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
from typing import Any

import pytest
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
    # the charts hold the hostile name as escaped text (parsed.scripts == 0 above)
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


def _broken_copies(tmp_path: Path) -> list[tuple[Path, str]]:
    """Copies of the demo's diff, each broken one way, and the refusal each must give."""
    import pyarrow.parquet as pq

    def copy(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(SAMPLE, root)
        (root / "report.html").unlink()
        return root

    missing = copy("missing")
    (missing / "changed.parquet").unlink()
    empty = copy("empty")
    (empty / "deleted.parquet").write_bytes(b"")
    truncated = copy("truncated")
    data = (truncated / "deleted.parquet").read_bytes()
    (truncated / "deleted.parquet").write_bytes(data[: len(data) // 2])
    edited = copy("edited")  # a valid Parquet file, one row short: only the checksum tells
    pq.write_table(pq.read_table(edited / "added.parquet").slice(1), edited / "added.parquet")
    incomplete = copy("incomplete")
    manifest = json.loads((incomplete / "manifest.json").read_text())
    (incomplete / "manifest.json").write_text(json.dumps(manifest | {"complete": False}))
    cut = copy("cut-manifest")
    text = (cut / "manifest.json").read_text()
    (cut / "manifest.json").write_text(text[: len(text) // 2])
    blank = copy("blank-manifest")
    (blank / "manifest.json").write_text("")
    return [
        (missing, f"diff {missing}: changed.parquet is missing"),
        (empty, f"diff {empty}: deleted.parquet does not match the manifest (truncated, corrupt"),
        (truncated, f"diff {truncated}: deleted.parquet does not match the manifest"),
        (edited, f"diff {edited}: added.parquet does not match the manifest"),
        (incomplete, f"diff {incomplete} is not complete (interrupted?)"),
        (cut, f"{cut / 'manifest.json'} is not valid JSON"),
        (blank, f"{blank / 'manifest.json'} is not valid JSON"),
    ]


def test_report_refuses_a_broken_diff_with_one_line_and_exit_2(tmp_path: Path) -> None:
    """Missing, empty, truncated or edited class files, an incomplete or cut manifest."""
    runner = CliRunner()
    for root, words in _broken_copies(tmp_path):
        result = runner.invoke(load_commands(), ["report", str(root)])
        assert result.exit_code == EXIT_BAD_INPUT, (root.name, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {words}"), (root.name, lines)
        assert result.stdout == "" and "Traceback" not in result.output
        assert not (root / "report.html").exists(), root.name  # nothing written


def test_report_time_attr_that_gives_no_timeline_warns(tmp_path: Path) -> None:
    """An attribute no affected item has, or has as no time: one warning line on stderr."""
    root = tmp_path / "diff"
    shutil.copytree(SAMPLE, root)
    runner = CliRunner()
    warned = {}
    for attribute in ("nosuch", "status", "updated_at", ""):
        result = runner.invoke(load_commands(), ["report", str(root), "--time-attr", attribute])
        assert result.exit_code == EXIT_OK, result.output
        assert result.stdout == f"{root / 'report.html'}\n"
        warned[attribute] = result.stderr.splitlines()
    assert warned == {
        "nosuch": ["warning: --time-attr nosuch: no affected item has this attribute; no timeline"],
        "status": [
            "warning: --time-attr status: 715 affected items have it, none as a time (ISO 8601 "
            "text or an epoch number); no timeline"
        ],
        "updated_at": [],
        "": [],
    }


def test_report_open_without_a_browser_says_where_the_page_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webbrowser

    root = tmp_path / "diff"
    shutil.copytree(SAMPLE, root)
    runner = CliRunner()
    opened: list[str] = []

    def no_browser(url: str) -> bool:
        opened.append(url)
        return False

    def broken_browser(url: str) -> bool:
        raise webbrowser.Error("could not locate runnable browser")

    page = (root / "report.html").resolve()
    for fake in (no_browser, broken_browser):
        monkeypatch.setattr(webbrowser, "open", fake)
        result = runner.invoke(load_commands(), ["report", str(root), "--open"])
        assert result.exit_code == EXIT_OK, result.output
        assert result.stderr.splitlines() == [
            f"warning: no browser could be opened; the report is {page}"
        ]
    assert opened == [page.as_uri()]
    monkeypatch.setattr(webbrowser, "open", lambda url: True)
    result = runner.invoke(load_commands(), ["report", str(root), "--open"])
    assert result.exit_code == EXIT_OK and result.stderr == ""


def _control_character_diff(tmp_path: Path) -> Path:
    """Keys and attribute names holding NUL, tab, BEL and ESC (valid DynamoDB strings)."""
    key = [{"AttributeName": "pk", "KeyType": "HASH"}]
    types = [{"AttributeName": "pk", "AttributeType": "S"}]
    restored = [
        {"pk": {"S": "a\x00b"}, "v\tx": {"N": "1"}},
        {"pk": {"S": "t\tab"}, "v": {"N": "1"}},
        {"pk": {"S": "c\x07\x1b[31m"}, "v": {"N": "1"}},
    ]
    live = [
        {"pk": {"S": "a\x00b"}, "v\tx": {"N": "2"}},
        {"pk": {"S": "t\tab"}, "v": {"N": "2"}, "w\x00": {"S": "x"}},
    ]
    for name, items in (("live", live), ("restored", restored)):
        write_export(
            items, tmp_path / name, table_name="T", key_schema=key, attribute_definitions=types
        )
    return tmp_path


def test_control_characters_in_keys_and_names_emit_no_warning(tmp_path: Path) -> None:
    """No "Glyph missing" (nor any other) warning while report.html is made."""
    import warnings

    from pitrdiff.diff.core import diff_exports

    root = _control_character_diff(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        diff = diff_exports(root / "live", root / "restored", root / "diff")
        render_html(diff.summary, root / "diff", time_attr="")
    assert [str(w.message) for w in caught] == []
    assert (diff.summary.changed, diff.summary.deleted) == (2, 1)


def test_chart_labels_show_control_characters_as_escapes(tmp_path: Path) -> None:
    """A NUL, tab, BEL or ESC in a key is drawn as \\x00, \\t, \\x07, \\x1b: never raw."""
    from pitrdiff.diff.core import diff_exports

    root = _control_character_diff(tmp_path)
    diff_exports(root / "live", root / "restored", root / "diff")
    page = (root / "diff" / "report.html").read_text(encoding="utf-8")
    charts = re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL)
    assert charts
    raw = sorted({c for chart in charts for c in chart if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0})
    assert raw == []
    assert any(r"a\x00b" in chart for chart in charts)
    assert any(r"c\x07\x1b[31m" in chart for chart in charts)
    # nor anywhere else in the page (the sample tables, the attribute names)
    assert sorted({c for c in page if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0}) == ["\n"]


# --------------------------------------------------------------------------- t2 findings

ODD_TIME = 'up\'d "at" ⏰ x\\y'  # quotes, a space, unicode, a backslash


def _class_combination_diff(tmp_path: Path, classes: tuple[str, ...]) -> Path:
    """A diff whose non-empty classes are exactly ``classes`` (TTL on ``expires``).

    Every item holds ``ODD_TIME`` as ISO 8601 text; ``u`` is unchanged always.
    """
    when = {ODD_TIME: {"S": "2026-11-01T10:00:00Z"}}
    restored = [{"pk": {"S": "u"}, **when}]
    live = [{"pk": {"S": "u"}, **when}]
    if "deleted" in classes:
        restored.append({"pk": {"S": "d"}, **when})
    if "changed" in classes:
        restored.append({"pk": {"S": "c"}, "v": {"N": "1"}, **when})
        live.append({"pk": {"S": "c"}, "v": {"N": "2"}, **when})
    if "added" in classes:
        live.append({"pk": {"S": "a"}, **when})
    if "expired" in classes:
        restored.append({"pk": {"S": "e"}, "expires": {"N": str(THREE_DAYS_AGO)}, **when})
    key = [{"AttributeName": "pk", "KeyType": "HASH"}]
    types = [{"AttributeName": "pk", "AttributeType": "S"}]
    ttl = {"attribute": "expires", "status": "ENABLED"}
    for name, items in (("live", live), ("restored", restored)):
        write_export(items, tmp_path / name, table_name="T", key_schema=key,
                     attribute_definitions=types, ttl=ttl)  # fmt: skip
    from pitrdiff.diff.core import diff_exports

    diff = diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    assert {n for n in ("deleted", "changed", "added", "expired")
            if getattr(diff.summary, n)} == set(classes)  # fmt: skip
    return tmp_path / "diff"


def test_report_time_attr_on_every_combination_of_empty_classes(tmp_path: Path) -> None:
    """F13: a diff with no differences, or any class empty, never breaks ``--time-attr``.

    With no differences: exit 0 and one warning; else the timeline by the odd
    attribute name (quoted in the SQL, never spliced), and no warning.
    """
    from itertools import combinations

    names = ("deleted", "changed", "added", "expired")
    runner = CliRunner()
    for size in range(len(names) + 1):
        for classes in combinations(names, size):
            root = _class_combination_diff(tmp_path / ("-".join(classes) or "none"), classes)
            for given in ([], ["--time-attr", ODD_TIME], ["--time-attr", ""]):
                result = runner.invoke(load_commands(), ["report", str(root), *given])
                assert result.exit_code == EXIT_OK, (classes, given, result.output)
                assert result.stdout == f"{root / 'report.html'}\n"
                headings = parse((root / "report.html").read_text(encoding="utf-8")).headings
                timeline = "Timeline of affected items" in headings
                assert timeline == bool(classes and given != ["--time-attr", ""]), (classes, given)
                expected = (
                    [f"warning: --time-attr {ODD_TIME}: the diff has no differences; no timeline"]
                    if given and given[1] and not classes
                    else []
                )
                assert result.stderr.splitlines() == expected, (classes, given)


@pytest.mark.parametrize(
    "attribute",
    ["updated_at", "nosuch", "it's", 'say "hi"', "a b", "ünï⏰", "x')); DROP TABLE t; --",
     "a\\", "$.x[0]", "tab\there", "nul\x00"],
)  # fmt: skip
def test_report_time_attr_odd_names_on_an_empty_and_a_full_diff(
    tmp_path: Path, attribute: str
) -> None:
    """F13: any attribute name, on a diff with no differences and on one with every class."""
    from pitrdiff.output import visible

    runner = CliRunner()
    empty = _class_combination_diff(tmp_path / "empty", ())
    full = _class_combination_diff(tmp_path / "full", ("deleted", "changed", "added", "expired"))
    for root, reason in (
        (empty, "the diff has no differences; no timeline"),
        (full, "no affected item has this attribute; no timeline"),
    ):
        result = runner.invoke(load_commands(), ["report", str(root), "--time-attr", attribute])
        assert result.exit_code == EXIT_OK, (attribute, result.output)
        assert result.stderr.splitlines() == [
            f"warning: --time-attr {visible(attribute)}: {reason}"
        ], attribute


def test_report_time_attr_odd_name_draws_the_timeline(tmp_path: Path) -> None:
    """The odd name is read from the items (quoted JSON path) and labels the axis, escaped."""
    from markupsafe import escape

    root = _class_combination_diff(tmp_path, ("deleted", "changed"))
    diff = load_diff(root)
    page = render_html(diff.summary, root, time_attr=ODD_TIME)
    assert "Timeline of affected items" in parse(page).headings
    assert f"{escape(ODD_TIME)} (UTC)</text>" in page


def _edited_manifest(tmp_path: Path, name: str, edit: Any) -> Path:
    root = tmp_path / name
    shutil.copytree(SAMPLE, root)
    (root / "report.html").unlink()
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _set(path: str, value: Any) -> Any:
    def edit(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            document = document[part]
        document[last] = value

    return edit


def test_report_refuses_edited_counts_and_rows(tmp_path: Path) -> None:
    """F5: a count, a file's rows or a summary figure edited: refused in one line, exit 2.

    The demo's diff: deleted 500 rows, changed 175, added 40, expired 0, unchanged 2,325.
    """
    import pyarrow.parquet as pq

    m = "manifest.json does not match its class files (edited?)"
    cases = {
        "summary-count": (_set("summary.counts.deleted", 50),
                          f"{m}: files.deleted.rows 500, counts.deleted 500, "
                          "summary.counts.deleted 50"),
        "count": (_set("counts.deleted", 50),
                  f"{m}: files.deleted.rows 500, counts.deleted 50, summary.counts.deleted 500"),
        "rows": (_set("files.added.rows", 39),
                 f"{m}: files.added.rows 39, counts.added 40, summary.counts.added 40"),
        "count-string": (_set("summary.counts.changed", "175"),
                         f"{m}: files.changed.rows 175, counts.changed 175, "
                         "summary.counts.changed missing"),
        "unchanged": (_set("summary.counts.unchanged", 1),
                      f"{m}: counts.unchanged 2325, summary.counts.unchanged 1"),
        "bytes": (_set("summary.bytes.deleted", 1),
                  f"{m}: bytes.deleted 256164, summary.bytes.deleted 1"),
        "signature": (_set("summary.top_signatures", [{"signature": "x", "items": 176}]),
                      f"{m}: summary.top_signatures 176 items, counts.changed 175"),
        "partition": (_set("summary.top_partitions",
                           [{"value": "p", "deleted": 501, "changed": 0, "added": 0}]),
                      f"{m}: summary.top_partitions 501 deleted, counts.deleted 500"),
    }  # fmt: skip
    runner = CliRunner()
    for name, (edit, words) in cases.items():
        root = _edited_manifest(tmp_path, name, edit)
        result = runner.invoke(load_commands(), ["report", str(root)])
        assert result.exit_code == EXIT_BAD_INPUT, (name, result.output)
        assert result.stderr.splitlines() == [
            f"error: diff {root}: {words}; re-run `pitrdiff diff`"
        ], name
        assert result.stdout == "" and not (root / "report.html").exists(), name

    # every count edited alike, so the manifest agrees with itself: the footer tells
    def all_three(document: dict[str, Any]) -> None:
        for edit in (_set("files.added.rows", 41), _set("counts.added", 41),
                     _set("summary.counts.added", 41)):  # fmt: skip
            edit(document)

    root = _edited_manifest(tmp_path, "all-three", all_three)
    assert pq.read_metadata(root / "added.parquet").num_rows == 40
    result = runner.invoke(load_commands(), ["report", str(root)])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert result.stderr.splitlines() == [
        f"error: diff {root}: added.parquet does not match the manifest (edited): it holds 40 "
        "rows, the manifest says 41"
    ]


def test_partition_chart_and_table_show_cr_and_newline_as_escapes(tmp_path: Path) -> None:
    """F9: a CR or newline in a partition key is drawn as \\x0d / \\x0a (chart and table)."""
    from pitrdiff.diff.core import diff_exports

    key = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    types = [{"AttributeName": "pk", "AttributeType": "S"},
             {"AttributeName": "sk", "AttributeType": "S"}]  # fmt: skip
    keys = ["cr\rret", "new\nline", "esc\x1b[31m", "nul\x00"]
    restored = [{"pk": {"S": k}, "sk": {"S": "1"}} for k in keys]
    for name, items in (("live", []), ("restored", restored)):
        write_export(items, tmp_path / name, table_name="T", key_schema=key,
                     attribute_definitions=types)  # fmt: skip
    diff_exports(tmp_path / "live", tmp_path / "restored", tmp_path / "diff")
    page = (tmp_path / "diff" / "report.html").read_text(encoding="utf-8")
    section = page[page.index('id="partitions"') :]
    section = section[: section.index("</section>")]
    for shown in (r"cr\x0dret", r"new\x0aline", r"esc\x1b[31m", r"nul\x00"):
        assert section.count(shown) == 2, shown  # the chart's label and the table's cell
    assert sorted({c for c in page if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0}) == ["\n"]
    assert not re.search(r"new\nline|cr\rret", page)

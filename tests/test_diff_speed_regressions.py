"""What issue 17's diff work changed, pinned without timing anything.

- A diff imports neither pandas nor matplotlib (together ~0.7 s of a 1M-item
  diff): the changes are built as Arrow arrays from buffers
  (:func:`pitrdiff.diff.changes.string_array`), the report's charts are SVG
  text (:mod:`pitrdiff.diff.svgchart`).
- The charts escape every label and give whole-number ticks.
- An incremental diff states its TTL sentence, as a full diff does.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from pitrdiff.diff import svgchart
from pitrdiff.diff.changes import ChangeColumns, string_array
from pitrdiff.diff.incremental import diff_incremental
from pitrdiff.diff.schema import CHANGE_TYPE
from pitrdiff.export.dataset import write_export

sys.path.insert(0, str(Path(__file__).parent / "data" / "s3exports"))
import build

KEY = "pk:S,sk:N"


def test_a_diff_imports_neither_pandas_nor_matplotlib(tmp_path: Path) -> None:
    key = [{"AttributeName": "pk", "KeyType": "HASH"}]
    types = [{"AttributeName": "pk", "AttributeType": "S"}]
    restored = [
        {"pk": {"S": f"k{i}"}, "v": {"N": "1"}, "at": {"N": "1790000000"}} for i in range(6)
    ]
    live = [dict(item, v={"N": "2"}) for item in restored[:4]] + [{"pk": {"S": "new"}}]
    for name, items in (("live", live), ("restored", restored)):
        write_export(
            items, tmp_path / name, table_name="T", key_schema=key, attribute_definitions=types
        )
    script = (
        "import sys, json\n"
        "from pitrdiff.diff.core import diff_exports\n"
        f"d = diff_exports({str(tmp_path / 'live')!r}, {str(tmp_path / 'restored')!r}, "
        f"{str(tmp_path / 'diff')!r})\n"
        "print(json.dumps([d.summary.changed, d.summary.deleted, d.summary.added, "
        "sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=120
    )
    assert json.loads(out.stdout) == [4, 2, 1, []]
    page = (tmp_path / "diff" / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 3  # signatures, partitions, timeline (the "at" attribute)


@pytest.mark.parametrize(
    "values",
    [[], ["a", None, "é", ""], [None], ["x"] * 9, [None] * 9 + ["b"], ["\u0000", "𝄞" * 3]],
)
def test_string_array_is_the_array_pa_array_makes(values: list[str | None]) -> None:
    array = string_array(values)
    array.validate(full=True)
    assert array.type == pa.string()
    assert array.to_pylist() == values
    assert array.null_count == sum(v is None for v in values)


def test_change_columns_from_buffers() -> None:
    columns = ChangeColumns()
    columns.add_json('{"a":{"N":"1"},"c":{"S":"x"}}', '{"a":{"N":"2"},"b":{"S":"y"}}')
    columns.add_json('{"a":{"N":"1"}}', '{"a":{"N":"1"}}')
    changes, signatures = columns.arrays(CHANGE_TYPE)
    changes.validate(full=True)
    assert changes.type == CHANGE_TYPE
    assert changes.to_pylist() == [
        [
            {"path": "a", "kind": "modified", "old": '{"N":"1"}', "new": '{"N":"2"}'},
            {"path": "b", "kind": "added", "old": None, "new": '{"S":"y"}'},
            {"path": "c", "kind": "removed", "old": '{"S":"x"}', "new": None},
        ],
        [],
    ]
    assert signatures.to_pylist() == ["a, b, c", ""]


def test_nice_ticks() -> None:
    assert svgchart.nice_ticks(0) == [0, 1]
    assert svgchart.nice_ticks(1) == [0, 1]
    assert svgchart.nice_ticks(7) == [0, 2, 4, 6, 8]
    assert svgchart.nice_ticks(8000) == [0, 2000, 4000, 6000, 8000]
    assert svgchart.nice_ticks(6472) == [0, 2000, 4000, 6000, 8000]
    assert svgchart.nice_ticks(999, most=5) == [0, 500, 1000]


def test_chart_labels_are_escaped_text() -> None:
    hostile = '<script>alert("x")</script> & $x$'
    series = [
        svgchart.Series("deleted", "#c0392b", (3, 0)),
        svgchart.Series("added", "#2e86c1", (1, 2)),
    ]
    svg = svgchart.stacked_bars([hostile, "b"], series, title=hostile, clip=100, totals=True)
    assert "<script" not in svg
    assert (
        svg.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; $x$") == 2
    )  # label, title
    assert svg.count("<rect") == 3 + 2  # three bars, two legend keys
    assert ">4</text>" in svg and ">2</text>" in svg  # the totals
    columns = svgchart.time_columns(1_790_000_000.0, 3600.0, series, title="t", axis_label=hostile)
    assert columns.startswith("<svg") and columns.endswith("</svg>")
    assert "&lt;script&gt;" in columns and "<script" not in columns
    # two one-hour buckets from 2026-09-21T14:13:20Z: ticks at each bucket's start, UTC
    assert re.findall(r">(\d\d-\d\d \d\d:\d\d)<", columns) == [
        "09-21 14:13",
        "09-21 15:13",
        "09-21 16:13",
    ]


def _ttl_export(root: Path) -> Path:
    """Removals in one window: session#1's TTL had passed (expired), the others not."""
    now = build.T0 // 1_000_000
    removed = [
        (build.order("session#1", 1, expires={"N": str(now - 3 * 86_400)}), 10),
        (build.order("order#1", 1, total={"N": "10"}), 20),
        (build.order("session#2", 1, expires={"N": str(now + 86_400)}), 30),
    ]
    changes = [build.change(build.key(i["pk"]["S"], 1), old=i, at=at) for i, at in removed]
    return Path(build.write_incremental_export(root, [changes], export_id="01-ttl"))


def test_an_incremental_diff_states_its_ttl_sentence(tmp_path: Path) -> None:
    source = _ttl_export(tmp_path / "src")
    diff = diff_incremental(source, tmp_path / "diff", key_schema=KEY, ttl_attribute="expires")
    summary = diff.summary
    assert (summary.expired, summary.deleted) == (1, 2)
    assert (summary.facts.ttl_attribute, summary.facts.ttl_as_of) == ("expires", None)
    sentence = (
        "1 of the 3 deleted items had expired by TTL "
        "(`expires` passed before it was removed): not lost."
    )
    assert summary.ttl_sentences() == [sentence]
    report = (tmp_path / "diff" / "report.md").read_text(encoding="utf-8")
    assert f"- {sentence}\n" in report
    page = (tmp_path / "diff" / "report.html").read_text(encoding="utf-8")
    assert "judged at the time each item was removed" in page
    # without the TTL attribute nothing is expired and nothing is said of TTL
    plain = diff_incremental(source, tmp_path / "plain", key_schema=KEY)
    assert (plain.summary.expired, plain.summary.deleted) == (0, 3)
    assert plain.summary.facts.ttl_attribute is None and plain.summary.ttl_sentences() == []

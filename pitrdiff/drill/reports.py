"""The drill's reports: JUnit XML, the JSON document, report.html with the checks."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

from pitrdiff import pitr
from pitrdiff.drill.model import DIFF_DIR, JSON_NAME, DrillResult, DrillState
from pitrdiff.files import make_dir, write_bytes, write_json

# --------------------------------------------------------------------------- outputs


def junit_xml(result: DrillResult, error: str | None = None) -> bytes:
    """The drill as JUnit XML: one test case per check, its figures in ``system-out``.

    An error that stopped the drill is one more test case with an ``<error>``.
    """
    failures = len(result.failed)
    suite = ET.Element(
        "testsuite",
        name=f"pitrdiff drill {result.table}",
        tests=str(len(result.checks) + (1 if error else 0)),
        failures=str(failures),
        errors="1" if error else "0",
        time=f"{sum(s.elapsed_s for s in result.stages):.3f}",
        timestamp=result.stages[0].started_at if result.stages else "",
    )
    for check in result.checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"pitrdiff.drill.{result.table}", name=check.name
        )
        if not check.passed:
            ET.SubElement(
                case, "failure", message=check.message, type="DrillCheckFailed"
            ).text = check.message
        out = ET.SubElement(case, "system-out")
        out.text = check.message + "\n" + json.dumps(dict(check.figures), indent=2, default=str)
    if error:
        case = ET.SubElement(suite, "testcase", classname=f"pitrdiff.drill.{result.table}",
                             name="drill")  # fmt: skip
        ET.SubElement(case, "error", message=error, type="DrillError").text = error
    stages = ET.SubElement(suite, "system-out")
    stages.text = "\n".join(f"{s.name}: {s.elapsed_s:.3f}s" for s in result.stages)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + bytes(
        ET.tostring(root, encoding="utf-8", xml_declaration=False)
    )


def restored_sentence(result: DrillResult) -> str:
    """``restored into NAME (deleted)``, or ``no table was restored``."""
    if result.restored_table is None:
        return "no table was restored"
    return f"restored into {result.restored_table} ({result.cleaned_up})"


def _html_sections(d: DrillState, result: DrillResult) -> list[Any]:
    from pitrdiff.diff.html import HtmlSection

    sections = [
        HtmlSection(
            "Drill checks",
            "drill-checks",
            paragraphs=(
                f"Drill of {result.table}: {'every check passed' if result.passed else 'FAILED'}"
                f"; RTO {result.rto_s if result.rto_s is not None else '-'}s; T "
                f"{pitr.format_time(result.at) or '-'}; {restored_sentence(result)}.",
            ),
            columns=("check", "result", "what was found"),
            rows=tuple((c.name, "pass" if c.passed else "FAIL", c.message) for c in result.checks),
            row_classes=tuple("pass" if c.passed else "fail" for c in result.checks),
            details=tuple((s.name, f"{s.elapsed_s:.3f}s") for s in result.stages),
        )
    ]
    if d.settings is not None:
        from pitrdiff.diff.html import settings_section

        sections.append(settings_section(d.settings.to_dict()))
    return sections


def result_of(d: DrillState, cleaned_up: str, junit: Path, html: Path | None) -> DrillResult:
    """The frozen result of a drill's state (its checks so far, how it was cleaned up)."""
    return DrillResult(
        table=d.table,
        restored_table=d.restored,
        at=d.t,
        rto_s=d.rto_s,
        stages=tuple(d.stages),
        checks=tuple(d.checks),
        counts=dict(d.counts),
        settings=None if d.settings is None else d.settings.to_dict(),
        cleaned_up=cleaned_up,
        workdir=d.workdir,
        junit_path=junit,
        json_path=d.workdir / JSON_NAME,
        html_path=html,
    )


def write_outputs(d: DrillState, result: DrillResult, error: str | None) -> DrillResult:
    """Write report.html (with the checks), the JUnit XML and drill.json; return the result.

    ``error`` (a drill stopped by it) adds an ``<error>`` test case and an
    ``error`` field; report.html is then not rewritten.
    """
    html: Path | None = None
    if (d.workdir / DIFF_DIR / "manifest.json").is_file() and error is None:
        from pitrdiff.diff.html import write_html_report

        html = write_html_report(d.workdir / DIFF_DIR, extra_sections=_html_sections(d, result))
        result = replace(result, html_path=html)
    make_dir(result.junit_path.parent)  # --junit reports/drill.xml: the directory it names
    write_bytes(result.junit_path, junit_xml(result, error))
    # A drill stopped by an error did not pass, whatever the checks it ran said.
    document = result.to_dict() | ({"error": error, "passed": False} if error else {})
    write_json(result.json_path, document)
    return result

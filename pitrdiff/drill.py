"""Restore drills: restore, export both, diff, compare settings, and check the data is right.

AWS Backup's restore testing checks that a restore ran and how long it took;
a drill also checks that the restored **data** is right. :func:`run_drill`
reads as its list of stages:

1. ``window``: PITR is on and its earliest restorable time is at least
   ``min_window`` back;
2. ``restore``: restore into a new table (without indexes by default) and
   measure the RTO, restore request → table ACTIVE;
3. ``export-restored``, ``export-live``: export both tables (segmented scans);
4. ``diff``: restored against live;
5. ``settings``: the settings diff (what a restore does not carry);
6. ``checks``: every difference explained by writes after T (``updated_attr``),
   and the expectations of an ``--expect`` file;
7. ``report``: JUnit XML, a JSON document and ``report.html`` with the checks;
8. ``cleanup``: the restored table is deleted — after success, a failed check,
   an error or Ctrl-C — unless ``keep``.

Work directory::

    restored/  live/   the two exports
    diff/              the diff dataset, report.md, report.html (with the checks)
    drill.json         the result document
    junit.xml          one test case per check (unless --junit names another file)

Expectations (``--expect FILE``, YAML or JSON; every key optional)::

    max_rto_seconds: 3600          # longest acceptable restore (request → ACTIVE)
    restored_items: {min: 1000, max: 5000000}   # item count bounds of the restored table
    live_items: {min: 1000}        # … and of the live table
    max_deleted: 0                 # most items per class the diff may hold
    max_changed: 500
    max_added: 100000
    max_expired: 1000
    settings_must_match: [ttl, stream, tags]    # names as `pitrdiff settings` shows them
    keys_must_exist:               # keys the restored table must hold (plain values; B in base64)
      - {pk: "TENANT#acme", sk: "ORDER#000001"}
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pitrdiff import pitr
from pitrdiff.aws import AwsConfig
from pitrdiff.errors import (
    InputError,
    Interrupted,
    PitrdiffError,
    RefusedError,
    StorageError,
    TableNotFoundError,
)
from pitrdiff.files import make_dir, write_bytes, write_json
from pitrdiff.progress import SILENT, Progress

EXPECT_KEYS = frozenset(
    {
        "max_rto_seconds",
        "restored_items",
        "live_items",
        "max_deleted",
        "max_changed",
        "max_added",
        "max_expired",
        "settings_must_match",
        "keys_must_exist",
    }
)
RESTORED_DIR, LIVE_DIR, DIFF_DIR = "restored", "live", "diff"
JSON_NAME, JUNIT_NAME = "drill.json", "junit.xml"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class DrillCheck:
    """One check of a drill: a JUnit test case.

    Attributes
    ----------
    name
        ``pitr-window``, ``restore``, ``max-rto``, ``updated-attr``, ``max-deleted`` …
    passed
        Whether it holds.
    message
        One line saying what was checked and found.
    figures
        The numbers behind it (JSON values), written to the test case's output.
    """

    name: str
    passed: bool
    message: str
    figures: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The check as plain JSON values."""
        return {
            "name": self.name,
            "passed": self.passed,
            "message": self.message,
            "figures": dict(self.figures),
        }


@dataclass(frozen=True)
class DrillStage:
    """One stage that ran: its name, when it started and how long it took (seconds)."""

    name: str
    started_at: str
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        """The stage as plain JSON values."""
        return {"name": self.name, "started_at": self.started_at, "elapsed_s": self.elapsed_s}


@dataclass(frozen=True)
class DrillResult:
    """What a drill found.

    Attributes
    ----------
    table, restored_table
        The live table and the table restored for the drill (``None`` if no restore started).
    at
        T, the restore time asked for (with ``latest``, the window's latest time).
    rto_s
        Seconds from the restore request to the table ACTIVE (``None`` without a restore).
    stages, checks
        Every stage that ran and every check, in order.
    counts
        Items per diff class (empty when the diff did not run).
    settings
        The settings diff as a JSON document (``None`` when it did not run).
    cleaned_up
        ``deleted``, ``kept`` (``keep``), ``none`` (no restore) or ``failed: <why>``.
    workdir, junit_path, json_path, html_path
        Where the drill wrote its files.
    """

    table: str
    restored_table: str | None
    at: dt.datetime | None
    rto_s: float | None
    stages: tuple[DrillStage, ...]
    checks: tuple[DrillCheck, ...]
    counts: Mapping[str, int]
    settings: Mapping[str, Any] | None
    cleaned_up: str
    workdir: Path
    junit_path: Path
    json_path: Path
    html_path: Path | None

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[DrillCheck, ...]:
        """The checks that failed."""
        return tuple(c for c in self.checks if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values (also written as ``drill.json``)."""
        return {
            "table": self.table,
            "restored_table": self.restored_table,
            "at": pitr.format_time(self.at),
            "rto_s": self.rto_s,
            "passed": self.passed,
            "stages": [s.to_dict() for s in self.stages],
            "checks": [c.to_dict() for c in self.checks],
            "counts": dict(self.counts),
            "settings": self.settings,
            "cleaned_up": self.cleaned_up,
            "workdir": str(self.workdir),
            "junit": str(self.junit_path),
            "json": str(self.json_path),
            "report_html": None if self.html_path is None else str(self.html_path),
        }


# --------------------------------------------------------------------------- expectations


def load_expectations(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an ``--expect`` file (YAML or JSON) and check its keys and types.

    Raises
    ------
    InputError
        When the file is not a mapping of known expectations with valid values.
    StorageError
        When it cannot be read.
    """
    import yaml  # type: ignore[import-untyped]

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        document = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(f"{file} is not valid {(file.suffix == '.json' and 'JSON') or 'YAML'}: "
                         f"{str(exc).splitlines()[0]}") from exc  # fmt: skip
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InputError(f"{file}: expected a mapping of expectations")
    unknown = sorted(set(document) - EXPECT_KEYS)
    if unknown:
        raise InputError(
            f"{file}: unknown expectation {', '.join(unknown)} "
            f"(known: {', '.join(sorted(EXPECT_KEYS))})"
        )
    for name, value in document.items():
        if name.startswith("max_") and (not isinstance(value, (int, float)) or value < 0):
            raise InputError(f"{file}: {name} must be a number >= 0")
        if name.endswith("_items") and (not isinstance(value, dict) or set(value) - {"min", "max"}):
            raise InputError(f"{file}: {name} must be a mapping with min and/or max")
        if name == "settings_must_match" and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise InputError(f"{file}: settings_must_match must be a list of setting names")
        if name == "keys_must_exist" and not (
            isinstance(value, list) and all(isinstance(v, dict) for v in value)
        ):
            raise InputError(f"{file}: keys_must_exist must be a list of key mappings")
    return dict(document)


def parse_duration(text: str) -> dt.timedelta:
    """``90s``, ``15m``, ``6h``, ``7d`` (or plain seconds) → a timedelta.

    Raises
    ------
    InputError
        When the text is not such a duration.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "s")
    try:
        value = float(number)
    except ValueError as exc:
        raise InputError(f"not a duration: {text!r} (e.g. 90s, 15m, 6h, 7d)") from exc
    if value < 0:
        raise InputError(f"not a duration: {text!r} (negative)")
    return dt.timedelta(seconds=value * units[unit])


# --------------------------------------------------------------------------- the drill


@dataclass
class _Drill:
    """The state the stages share (mutable while the drill runs)."""

    table: str
    workdir: Path
    aws: AwsConfig
    progress: Progress
    at: dt.datetime | None
    latest: bool
    target: str
    no_indexes: bool
    segments: int | None
    min_window: dt.timedelta
    updated_attr: str | None
    expect: Mapping[str, Any]
    poll_seconds: float
    restored: str | None = None
    rto_s: float | None = None
    t: dt.datetime | None = None
    stages: list[DrillStage] = field(default_factory=list)
    checks: list[DrillCheck] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    settings: Any = None
    stop: bool = False


def _stage_window(d: _Drill) -> None:
    window = pitr.window(d.table, aws=d.aws)
    figures = window.to_dict() | {"min_window_s": d.min_window.total_seconds()}
    if not window.enabled or window.earliest is None:
        d.checks.append(DrillCheck("pitr-window", False, window.describe(), figures))
        d.stop = True  # nothing to restore
        return
    back = window.checked_at - window.earliest
    ok = back >= d.min_window
    message = (
        f"PITR on; earliest restorable {pitr.format_time(window.earliest)} is "
        f"{back.total_seconds():.0f}s back (at least {d.min_window.total_seconds():.0f}s asked)"
    )
    d.checks.append(DrillCheck("pitr-window", ok, message, figures))
    d.t = d.at if d.at is not None else window.latest


def _stage_restore(d: _Drill) -> None:
    requested = time.monotonic()
    started = pitr.restore(
        d.table,
        at=d.at,
        latest=d.latest,
        target=d.target,
        no_indexes=d.no_indexes,
        wait=False,
        aws=d.aws,
        progress=d.progress,
    )
    d.restored = started.target
    if started.requested_at is not None:
        d.t = started.requested_at
    info, _ = pitr.wait_for_table(
        started.target, aws=d.aws, progress=d.progress, poll_seconds=d.poll_seconds
    )
    d.rto_s = round(time.monotonic() - requested, 3)
    figures = {
        "rto_s": d.rto_s,
        "restored_table": started.target,
        "restore_date_time": pitr.format_time(info.restore_date_time),
        "indexes_left_out": list(started.dropped_indexes),
    }
    d.checks.append(
        DrillCheck("restore", True, f"{started.target} ACTIVE after {d.rto_s:.1f}s", figures)
    )


def _export(name_of: Callable[[_Drill], str | None], directory: str) -> Callable[[_Drill], None]:
    def stage(d: _Drill) -> None:
        from pitrdiff.export.scan import export_table

        table = name_of(d)
        assert table is not None
        manifest = export_table(
            table, d.workdir / directory, segments=d.segments, aws=d.aws, progress=d.progress
        )
        d.counts[f"{directory}_items"] = manifest.items

    return stage


def _stage_diff(d: _Drill) -> None:
    from pitrdiff.diff.core import diff_exports

    diff = diff_exports(
        d.workdir / LIVE_DIR, d.workdir / RESTORED_DIR, d.workdir / DIFF_DIR, progress=d.progress
    )
    summary = diff.summary
    for name in ("deleted", "changed", "added", "expired", "unchanged"):
        d.counts[name] = int(getattr(summary, name, 0))


def _stage_settings(d: _Drill) -> None:
    from pitrdiff.settings import compare_settings

    assert d.restored is not None
    d.settings = compare_settings(d.table, d.restored, aws=d.aws)


def _stage_checks(d: _Drill) -> None:
    if d.updated_attr:
        d.checks.append(_check_updated_attr(d))
    d.checks.extend(_check_expectations(d))


STAGES: tuple[tuple[str, Callable[[_Drill], None]], ...] = (
    ("window", _stage_window),
    ("restore", _stage_restore),
    ("export-restored", _export(lambda d: d.restored, RESTORED_DIR)),
    ("export-live", _export(lambda d: d.table, LIVE_DIR)),
    ("diff", _stage_diff),
    ("settings", _stage_settings),
    ("checks", _stage_checks),
)


# --------------------------------------------------------------------------- checks


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _check_updated_attr(d: _Drill) -> DrillCheck:
    """Every changed and added item's live version has ``updated_attr`` later than T."""
    import duckdb

    from pitrdiff.diff.html import epoch_seconds_sql

    assert d.t is not None and d.updated_attr is not None
    files = [d.workdir / DIFF_DIR / f"{n}.parquet" for n in ("changed", "added")]
    union = " UNION ALL ".join(
        f"SELECT _key, {epoch_seconds_sql('live_item', d.updated_attr)} AS t "
        f"FROM read_parquet({_sql_text(str(f))})"
        for f in files
        if f.is_file()
    )
    threshold = d.t.timestamp()
    union = union or "SELECT NULL AS _key, NULL::DOUBLE AS t WHERE false"
    con = duckdb.connect()
    try:
        checked, late, missing = con.execute(
            f"SELECT count(*), count(*) FILTER (t > {threshold!r}), count(*) FILTER (t IS NULL) "
            f"FROM ({union})"
        ).fetchone() or (0, 0, 0)
        samples = [
            r[0]
            for r in con.execute(
                f"SELECT _key FROM ({union}) WHERE t IS NULL OR t <= {threshold!r} "
                "ORDER BY _key LIMIT 5"
            ).fetchall()
        ]
    finally:
        con.close()
    unexplained = int(checked) - int(late)
    figures = {
        "attribute": d.updated_attr,
        "t": pitr.format_time(d.t),
        "checked": int(checked),
        "newer_than_t": int(late),
        "without_attribute": int(missing),
        "unexplained": unexplained,
        "sample_keys": samples,
        "deleted_not_checkable": d.counts.get("deleted", 0),
    }
    message = (
        f"{int(checked):,} changed/added items: {int(late):,} have {d.updated_attr} after T, "
        f"{unexplained:,} do not ({int(missing):,} without it)"
    )
    return DrillCheck("updated-attr", unexplained == 0, message, figures)


def _bound_check(name: str, what: str, value: int, bounds: Mapping[str, Any]) -> DrillCheck:
    low, high = bounds.get("min"), bounds.get("max")
    ok = (low is None or value >= low) and (high is None or value <= high)
    message = f"{what}: {value:,} (expected {low if low is not None else '-'} … " + (
        f"{high if high is not None else '-'})"
    )
    return DrillCheck(name, ok, message, {"value": value, "min": low, "max": high})


def _check_expectations(d: _Drill) -> list[DrillCheck]:
    e = d.expect
    checks: list[DrillCheck] = []
    if "max_rto_seconds" in e and d.rto_s is not None:
        limit = e["max_rto_seconds"]
        checks.append(
            DrillCheck("max-rto", d.rto_s <= limit, f"RTO {d.rto_s:.1f}s (at most {limit}s)",
                       {"rto_s": d.rto_s, "max_rto_seconds": limit})
        )  # fmt: skip
    for side in ("restored", "live"):
        if f"{side}_items" in e:
            count = d.counts.get(f"{side}_items", 0)
            checks.append(_bound_check(f"{side}-items", f"{side} items", count, e[f"{side}_items"]))
    for cls in ("deleted", "changed", "added", "expired"):
        if f"max_{cls}" in e:
            count, limit = d.counts.get(cls, 0), e[f"max_{cls}"]
            checks.append(
                DrillCheck(f"max-{cls}", count <= limit, f"{count:,} {cls} (at most {limit:,})",
                           {"items": count, "max": limit})
            )  # fmt: skip
    if "settings_must_match" in e and d.settings is not None:
        checks.append(_check_settings(d, list(e["settings_must_match"])))
    if "keys_must_exist" in e:
        checks.append(_check_keys(d, list(e["keys_must_exist"])))
    return checks


def _check_settings(d: _Drill, names: Sequence[str]) -> DrillCheck:
    from pitrdiff.settings import SETTINGS

    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise InputError(f"settings_must_match: unknown setting {', '.join(unknown)}")
    differing = [n for n in names if d.settings.difference(n) is not None]
    unanswered = [n for n in names if n in d.settings.unknown]
    ok = not differing and not unanswered
    message = (
        f"{len(names)} settings must match: "
        + (f"differ: {', '.join(differing)}" if differing else "none differs")
        + (f"; not answered: {', '.join(unanswered)}" if unanswered else "")
    )
    return DrillCheck(
        "settings-match", ok, message, {"settings": list(names), "differ": differing,
                                        "not_answered": unanswered}
    )  # fmt: skip


def _check_keys(d: _Drill, keys: Sequence[Mapping[str, Any]]) -> DrillCheck:
    """Each key (plain values; typed by the export's key schema) is in the restored export."""
    import duckdb

    from pitrdiff import codec
    from pitrdiff.export.dataset import KEY_COLUMN, load_export

    export = load_export(d.workdir / RESTORED_DIR)
    schema = export.key_schema
    wanted: list[str] = []
    for key in keys:
        typed: dict[str, Any] = {}
        for attribute in schema.attributes:
            if attribute.name not in key:
                raise InputError(f"keys_must_exist: {dict(key)} lacks {attribute.name}")
            value = key[attribute.name]
            typed[attribute.name] = {attribute.attribute_type or "S": str(value)}  # B: base64
        wanted.append(codec.canonical_key(typed, schema.names))
    con = duckdb.connect()
    try:
        files = ", ".join(_sql_text(f) for f in export.parquet_files)
        present = {
            r[0]
            for r in con.execute(
                f"SELECT {KEY_COLUMN} FROM read_parquet([{files}]) "
                f"WHERE {KEY_COLUMN} IN (SELECT unnest(?))",
                [wanted],
            ).fetchall()
        } if files else set()  # fmt: skip
    finally:
        con.close()
    missing = [k for k in wanted if k not in present]
    return DrillCheck(
        "keys-exist",
        not missing,
        f"{len(wanted) - len(missing)} of {len(wanted)} keys in the restored table",
        {"wanted": wanted, "missing": missing},
    )


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


def _html_sections(d: _Drill, result: DrillResult) -> list[Any]:
    from pitrdiff.diff.html import HtmlSection

    sections = [
        HtmlSection(
            "Drill checks",
            "drill-checks",
            paragraphs=(
                f"Drill of {result.table}: {'every check passed' if result.passed else 'FAILED'}"
                f"; RTO {result.rto_s if result.rto_s is not None else '-'}s; T "
                f"{pitr.format_time(result.at) or '-'}; restored into {result.restored_table}.",
            ),
            columns=("check", "result", "what was found"),
            rows=tuple((c.name, "pass" if c.passed else "FAIL", c.message) for c in result.checks),
            row_classes=tuple("pass" if c.passed else "fail" for c in result.checks),
            details=tuple((s.name, f"{s.elapsed_s:.3f}s") for s in result.stages),
        )
    ]
    if d.settings is not None:
        from pitrdiff.settings import describe_value

        sections.append(
            HtmlSection(
                "Settings a restore does not carry",
                "settings",
                paragraphs=(
                    f"{len(d.settings.differences)} settings of {d.table} differ on "
                    f"{d.settings.restored.name}.",
                ),
                columns=("setting", "live", "restored", "a promotion would need"),
                rows=tuple(
                    (x.setting, describe_value(x.live), describe_value(x.restored), x.promotion)
                    for x in d.settings.differences
                ),
                details=tuple((k, v) for k, v in d.settings.unknown.items()),
            )
        )
    return sections


def _result(d: _Drill, cleaned_up: str, junit: Path, html: Path | None) -> DrillResult:
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


def _write_outputs(d: _Drill, result: DrillResult, error: str | None) -> DrillResult:
    html: Path | None = None
    if (d.workdir / DIFF_DIR / "manifest.json").is_file() and error is None:
        from pitrdiff.diff.html import write_html_report

        html = write_html_report(d.workdir / DIFF_DIR, extra_sections=_html_sections(d, result))
        result = replace(result, html_path=html)
    write_bytes(result.junit_path, junit_xml(result, error))
    document = result.to_dict() | ({"error": error} if error else {})
    write_json(result.json_path, document)
    return result


def _cleanup(d: _Drill, keep: bool) -> str:
    """Delete the restored table (only a table DescribeTable shows as a restore)."""
    if d.restored is None:
        return "none"
    if keep:
        return "kept"
    try:
        pitr.cleanup(d.restored, aws=d.aws)
    except TableNotFoundError:
        return "none"
    except PitrdiffError as exc:
        return f"failed: {exc} (delete it with `pitrdiff cleanup {d.restored}`)"
    return "deleted"


def _prepare_workdir(workdir: str | os.PathLike[str]) -> Path:
    root = Path(workdir)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise RefusedError(f"{root} is not an empty directory; choose a new --workdir")
    return make_dir(root)


def run_drill(
    table: str,
    *,
    workdir: str | os.PathLike[str],
    at: dt.datetime | str | None = None,
    latest: bool = False,
    target: str | None = None,
    min_window: dt.timedelta | str = dt.timedelta(0),
    with_indexes: bool = False,
    segments: int | None = None,
    updated_attr: str | None = None,
    expect: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    junit: str | os.PathLike[str] | None = None,
    keep: bool = False,
    aws: AwsConfig | None = None,
    progress: Progress = SILENT,
    on_stage: Callable[[str], None] | None = None,
    poll_seconds: float = pitr.DEFAULT_POLL_SECONDS,
) -> DrillResult:
    """Run a restore drill of ``table`` and check that the restored data is right.

    Parameters
    ----------
    table
        The live table.
    workdir
        A new or empty directory for the exports, the diff and the reports.
    at, latest
        The restore time (aware datetime or ISO 8601 with a zone), or the
        latest restorable time; exactly one.
    target
        The restored table's name (default ``<table>-drill-<UTC now>``).
    min_window
        The PITR window must reach at least this far back (``7d``, ``6h`` …).
    with_indexes
        Restore the secondary indexes too (default: without, faster).
    segments
        Parallel scan segments for both exports.
    updated_attr
        A timestamp attribute (ISO 8601 or epoch seconds/milliseconds): every
        changed and added item's live version must be newer than T.
    expect
        Expectations (a mapping, or a YAML/JSON file; see the module docstring).
    junit
        Where to write the JUnit XML (default ``<workdir>/junit.xml``).
    keep
        Keep the restored table (it is deleted otherwise, whatever happens).
    aws
        Where to talk to AWS.
    progress
        Reports each stage's progress.
    on_stage
        Called with each stage's name before it runs.
    poll_seconds
        Seconds between ``DescribeTable`` calls while the restore runs.

    Returns
    -------
    DrillResult
        Every check; :attr:`DrillResult.passed` decides the exit code (0 or 1).

    Raises
    ------
    InputError
        Bad times, durations, expectations, or a workdir that is not empty.
    PitrdiffError
        An AWS or I/O failure (exit 3), after the reports are written and the
        restored table deleted.
    Interrupted
        Ctrl-C (exit 130), after the restored table is deleted.
    """
    if (at is None) == (not latest):
        raise InputError("give exactly one of a restore time (--at) or --latest")
    window = parse_duration(min_window) if isinstance(min_window, str) else min_window
    expectations = (
        load_expectations(expect) if isinstance(expect, (str, os.PathLike)) else dict(expect or {})
    )
    at_utc = pitr.parse_time(at) if at is not None else None
    now = dt.datetime.now(dt.timezone.utc)
    name = pitr.check_table_name(target or f"{table}-drill-{now.strftime(pitr.TIMESTAMP_FORMAT)}")
    d = _Drill(
        table=table, workdir=_prepare_workdir(workdir), aws=aws or AwsConfig(), progress=progress,
        at=at_utc, latest=latest, target=name, no_indexes=not with_indexes, segments=segments,
        min_window=window, updated_attr=updated_attr, expect=expectations,
        poll_seconds=poll_seconds,
    )  # fmt: skip
    junit_path = Path(junit) if junit is not None else d.workdir / JUNIT_NAME
    try:
        _run_stages(d, on_stage)
    except KeyboardInterrupt as exc:
        raise Interrupted(f"drill interrupted; restored table: {_cleanup(d, keep)}") from exc
    except Interrupted as exc:
        cleaned = _cleanup(d, keep)
        raise Interrupted(f"{exc.message}; the drill's restored table: {cleaned}") from exc
    except PitrdiffError as exc:
        cleaned = _cleanup(d, keep)
        _write_outputs(d, _result(d, cleaned, junit_path, None), str(exc))
        raise
    cleaned = _cleanup(d, keep)
    return _write_outputs(d, _result(d, cleaned, junit_path, None), None)


def _run_stages(d: _Drill, on_stage: Callable[[str], None] | None) -> None:
    """Run :data:`STAGES` in order (a failed window check stops before the restore)."""
    for name, stage in STAGES:
        if d.stop:
            return
        if on_stage is not None:
            on_stage(name)
        started, clock = pitr.format_time(dt.datetime.now(dt.timezone.utc)), time.monotonic()
        stage(d)
        d.stages.append(DrillStage(name, str(started), round(time.monotonic() - clock, 3)))

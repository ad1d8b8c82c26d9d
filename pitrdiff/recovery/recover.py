"""One-command recovery: restore → export restored → export live → diff → settings → plan.

:func:`recover` runs the stages in order inside a work directory and records
each completed stage in ``<workdir>/recover.json``, so running it again after
an interruption (or a failure) skips what is complete and resumes the rest. It
never writes to the live table: the result carries the exact ``pitrdiff apply``
command to run once the plan has been reviewed.

The live table is exported only after the restore has finished, so every
write up to the live export is visible in the diff; both export times are
recorded in the state file and in the result.

Work directory::

    recover.json     stages done, their times and results (the state file)
    restored/        export of the restored table (state at T)
    live/            export of the live table (now)
    diff/            the diff dataset
    plan.jsonl       the re-put plan (plus plan.jsonl.journal once applied)

:func:`recover` is its list of stages (``STAGE_FUNCTIONS``); each stage is a
function of the shared :class:`_Recovery` state returning what it produced.
The ``settings`` stage compares the live and the restored table's settings
(what a restore does not carry, :mod:`pitrdiff.settings`); it reads, never writes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pitrdiff import pitr
from pitrdiff.aws import AwsConfig
from pitrdiff.errors import ExportError, InputError, RefusedError, StorageError
from pitrdiff.export.dataset import read_manifest, utc_now
from pitrdiff.files import make_dir, write_json
from pitrdiff.progress import SILENT, Progress
from pitrdiff.recovery.keys import KeySource

log = logging.getLogger(__name__)

STATE_NAME = "recover.json"
STATE_FORMAT = "pitrdiff-recover-state"
STATE_VERSION = 1
STAGES = ("restore", "export-restored", "export-live", "diff", "settings", "plan")
RESTORED_DIR, LIVE_DIR, DIFF_DIR, PLAN_NAME = "restored", "live", "diff", "plan.jsonl"


@dataclass(frozen=True)
class StageResult:
    """One stage of a recovery.

    Attributes
    ----------
    name
        ``restore``, ``export-restored``, ``export-live``, ``diff``, ``settings`` or ``plan``.
    skipped
        ``True`` when a previous run had completed it.
    started_at, finished_at
        When it ran (ISO 8601 UTC), possibly in a previous run.
    elapsed_s
        How long it took when it ran.
    detail
        What it produced (table, path, counts).
    """

    name: str
    skipped: bool
    started_at: str
    finished_at: str
    elapsed_s: float
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``done in 1.2s`` or ``already done``."""
        return "already done" if self.skipped else f"done in {self.elapsed_s:.1f}s"

    def describe(self) -> str:
        """What the stage produced, in one line for people."""
        d = self.detail
        if self.name == "restore":
            how = "given with --restored" if d.get("provided") else "restored by this run"
            return f"{d.get('table')}  ({how})"
        if self.name.startswith("export"):
            items = d.get("items")
            count = f"{items:,}" if isinstance(items, int) else "?"
            return f"{count} items -> {d.get('path')}  (finished {d.get('finished_at')})"
        if self.name == "diff":
            return ", ".join(
                f"{d.get(k, 0):,} {k}" for k in ("deleted", "changed", "added", "unchanged")
            )
        if self.name == "settings":
            names = [str(x.get("setting")) for x in d.get("differences") or ()]
            return f"{len(names)} differ: {', '.join(names)}" if names else "every setting matches"
        if self.name == "plan":
            excluded = (d.get("excluded") or 0) if d.get("exclude_keys") else None
            denied = f" ({excluded:,} removed by the deny list)" if excluded else ""
            return f"{d.get('operations', 0):,} operations -> {d.get('path')}{denied}"
        return ", ".join(f"{k} {v}" for k, v in d.items())

    def to_dict(self) -> dict[str, Any]:
        """The stage as plain JSON values."""
        return {
            "name": self.name,
            "skipped": self.skipped,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "elapsed_s": round(self.elapsed_s, 3),
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class RecoverResult:
    """What :func:`recover` produced (nothing was applied).

    Attributes
    ----------
    table
        The live table.
    at
        The restore time (UTC).
    workdir
        The work directory.
    restored_table
        The restored table the diff compares against.
    stages
        Every stage, in order, with whether it was skipped.
    counts
        Items per class: ``deleted``, ``changed``, ``added``, ``unchanged``.
    top_signatures
        ``(signature, items)`` of the most common changes, most items first.
    diff_path, plan_path
        The diff dataset and the plan file.
    plan_operations
        Operations in the plan.
    restored_export_finished_at, live_export_started_at
        When the restored export finished and the live export started (ISO 8601 UTC).
    apply_command
        The exact command that applies the plan (review it first; ``--dry-run`` predicts).
    settings
        The settings diff (:meth:`pitrdiff.settings.SettingsDiff.to_dict`): what the
        restored table lacks compared with the live one.
    restore_created
        Whether this recovery (this run or an earlier one in the workdir)
        created the restored table; it should then be deleted when done.
    cleanup_command
        ``pitrdiff cleanup RESTORED`` (restored tables are billed).
    plan_excluded
        Operations the deny list (``exclude_keys``) removed, ``None`` without one.
    """

    table: str
    at: dt.datetime
    workdir: Path
    restored_table: str
    stages: tuple[StageResult, ...]
    counts: Mapping[str, int]
    top_signatures: tuple[tuple[str, int], ...]
    diff_path: Path
    plan_path: Path
    plan_operations: int
    restored_export_finished_at: str | None
    live_export_started_at: str | None
    apply_command: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    restore_created: bool = False
    cleanup_command: str = ""
    plan_excluded: int | None = None

    @property
    def nothing_to_apply(self) -> bool:
        """Whether the plan holds no operations (nothing to put back)."""
        return self.plan_operations == 0

    @property
    def settings_differences(self) -> tuple[Mapping[str, Any], ...]:
        """The settings that differ: ``setting``, ``live``, ``restored``, ``promotion``."""
        return tuple(self.settings.get("differences") or ())

    @property
    def skipped(self) -> tuple[str, ...]:
        """Names of the stages a previous run had completed."""
        return tuple(s.name for s in self.stages if s.skipped)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values."""
        return {
            "table": self.table,
            "at": pitr.format_time(self.at),
            "workdir": str(self.workdir),
            "restored_table": self.restored_table,
            "stages": [s.to_dict() for s in self.stages],
            "counts": dict(self.counts),
            "top_signatures": [{"signature": s, "items": n} for s, n in self.top_signatures],
            "diff": str(self.diff_path),
            "plan": str(self.plan_path),
            "plan_operations": self.plan_operations,
            "restored_export_finished_at": self.restored_export_finished_at,
            "live_export_started_at": self.live_export_started_at,
            "apply_command": self.apply_command,
            "applied": False,
            "nothing_to_apply": self.nothing_to_apply,
            "plan_excluded": self.plan_excluded,
            "settings": dict(self.settings),
            "restore_created": self.restore_created,
            "cleanup_command": self.cleanup_command,
        }


class _State:
    """The state file: which stages are complete, with their details."""

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path = path
        self.doc = document

    @classmethod
    def open(cls, workdir: Path, *, table: str, at: dt.datetime, restored: str | None) -> _State:
        path = workdir / STATE_NAME
        at_text = pitr.format_time(at)
        if not path.exists():
            if workdir.exists() and any(p.name != STATE_NAME for p in workdir.iterdir()):
                raise RefusedError(
                    f"{workdir} is not empty and holds no {STATE_NAME}; "
                    "choose an empty or new --workdir"
                )
            state = cls(
                path,
                {
                    "format": STATE_FORMAT,
                    "format_version": STATE_VERSION,
                    "table": table,
                    "at": at_text,
                    "restored_table": restored,
                    "created_at": utc_now(),
                    "stages": {},
                },
            )
            state.save()
            return state
        try:
            document = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        if document.get("format") != STATE_FORMAT:
            raise RefusedError(f"{path} is not a pitrdiff recover state file")
        if document.get("table") != table or document.get("at") != at_text:
            raise RefusedError(
                f"{workdir} holds a recovery of {document.get('table')} at {document.get('at')}, "
                f"not of {table} at {at_text}; choose another --workdir"
            )
        previous = document.get("restored_table")
        if restored is not None and previous is not None and restored != previous:
            raise RefusedError(
                f"{workdir} was started with restored table {previous}, not {restored}; "
                "choose another --workdir"
            )
        return cls(path, document)

    def stage(self, name: str) -> dict[str, Any] | None:
        value = self.doc["stages"].get(name)
        return value if isinstance(value, dict) else None

    def complete(self, name: str) -> bool:
        stage = self.stage(name)
        return bool(stage and stage.get("complete"))

    def record(self, name: str, entry: Mapping[str, Any]) -> None:
        self.doc["stages"][name] = dict(entry)
        self.save()

    def invalidate_from(self, name: str) -> None:
        for later in STAGES[STAGES.index(name) :]:
            stage = self.stage(later)
            if stage is not None:
                stage["complete"] = False
        self.save()

    def save(self) -> None:
        write_json(self.path, self.doc)


def _export_complete(path: Path, table: str) -> dict[str, Any] | None:
    """The manifest facts of a complete export of ``table`` at ``path``, else ``None``."""
    if not (path / "manifest.json").exists():
        return None
    try:
        manifest = read_manifest(path)
    except ExportError:
        return None
    if not manifest.complete or manifest.table_name != table:
        return None
    return {
        "table": table,
        "path": str(path),
        "items": manifest.items,
        "started_at": manifest.source.get("started_at"),
        "finished_at": manifest.source.get("finished_at"),
    }


@dataclass
class _Recovery:
    """What the stages share while a recovery runs."""

    table: str
    at: dt.datetime
    root: Path
    state: _State
    aws: AwsConfig
    progress: Progress
    given: str | None  # --restored
    classes: tuple[str, ...]
    where: str | None
    exclude_keys: KeySource | None
    segments: int | None
    no_indexes: bool
    results: list[StageResult] = field(default_factory=list)
    rerun: bool = False  # once a stage runs, every later stage runs again
    rerun_before_export: bool = False  # whether a stage before this export re-ran
    restored: str = ""

    def run(self, name: str, body: Callable[[_Recovery], dict[str, Any]]) -> dict[str, Any]:
        """Run one stage, or adopt it if a previous run completed it (and none before re-ran)."""
        previous = self.state.stage(name)
        if not self.rerun and previous is not None and previous.get("complete"):
            detail = dict(previous.get("detail") or {})
            self.results.append(
                StageResult(
                    name,
                    True,
                    str(previous.get("started_at")),
                    str(previous.get("finished_at")),
                    float(previous.get("elapsed_s", 0.0)),
                    detail,
                )
            )
            return detail
        self.rerun = True
        self.state.invalidate_from(name)
        started, clock = utc_now(), time.monotonic()
        detail = body(self)
        finished, elapsed = utc_now(), round(time.monotonic() - clock, 3)
        entry = {
            "complete": True,
            "started_at": started,
            "finished_at": finished,
            "elapsed_s": elapsed,
            "detail": detail,
        }
        if name == "restore":  # keep the target for a re-run
            entry["target"] = detail["table"]
        self.state.record(name, entry)
        self.results.append(StageResult(name, False, started, finished, elapsed, detail))
        return detail


def _check_restore_of(r: _Recovery, name: str) -> None:
    info = pitr.describe_table(name, aws=r.aws)
    source = pitr.describe_table(r.table, aws=r.aws)
    if not info.is_restore or info.restore_source_arn != source.arn:
        raise RefusedError(
            f"{name} is not a restore of {r.table} "
            f"(RestoreSummary source: {info.restore_source_arn or 'none'})"
        )


def stage_restore(r: _Recovery) -> dict[str, Any]:
    """Restore the table at T (or check and use the table given, or one a previous run started)."""
    previous = (r.state.stage("restore") or {}).get("target")
    target = r.given or previous
    if target is not None:  # given, or started by a previous run: check, then wait
        _check_restore_of(r, str(target))
    else:
        started = pitr.restore(
            r.table, at=r.at, no_indexes=r.no_indexes, wait=False, aws=r.aws, progress=r.progress
        )
        target = started.target
        r.state.record("restore", {"complete": False, "target": target, "created": True})
    r.state.doc["restored_table"] = str(target)
    r.state.save()
    ready, _ = pitr.wait_for_table(str(target), aws=r.aws, progress=r.progress)
    created = r.given is None and (
        previous is None or bool((r.state.stage("restore") or {}).get("created", True))
    )
    return {
        "table": str(target),
        "provided": r.given is not None,
        "created": created,
        "restore_date_time": pitr.format_time(ready.restore_date_time),
    }


def _stage_export(name_of: Callable[[_Recovery], str], directory: str) -> Callable[..., Any]:
    def stage(r: _Recovery) -> dict[str, Any]:
        from pitrdiff.export.scan import export_table

        table, path = name_of(r), r.root / directory
        done = _export_complete(path, table)
        # an export complete on disk is adopted only if no earlier stage re-ran
        if done is not None and not r.rerun_before_export:
            return done
        export_table(table, path, segments=r.segments, overwrite=True, aws=r.aws,
                     progress=r.progress)  # fmt: skip
        facts = _export_complete(path, table)
        if facts is None:  # pragma: no cover - export_table marks it complete
            raise ExportError(f"export of {table} at {path} is not complete", path=str(path))
        return facts

    stage.__doc__ = f"Export the {directory} table to ``<workdir>/{directory}/``."
    return stage


stage_export_restored = _stage_export(lambda r: r.restored, RESTORED_DIR)
stage_export_live = _stage_export(lambda r: r.table, LIVE_DIR)


def stage_diff(r: _Recovery) -> dict[str, Any]:
    """Diff live against restored into ``<workdir>/diff/``."""
    from pitrdiff.diff.core import diff_exports

    diff = diff_exports(
        r.root / LIVE_DIR, r.root / RESTORED_DIR, r.root / DIFF_DIR, overwrite=True,
        progress=r.progress,
    )  # fmt: skip
    summary = diff.summary
    return {"path": str(r.root / DIFF_DIR)} | {
        name: int(getattr(summary, name, 0))
        for name in ("deleted", "changed", "added", "expired", "unchanged")
    }


def stage_settings(r: _Recovery) -> dict[str, Any]:
    """Compare the live and the restored table's settings (read-only); add them to report.html."""
    from pitrdiff.diff.html import settings_section, write_html_report
    from pitrdiff.settings import compare_settings

    document = compare_settings(r.table, r.restored, aws=r.aws).to_dict()
    detail = {k: document[k] for k in ("live_table", "restored_table", "same", "differences",
                                       "unknown", "not_compared")}  # fmt: skip
    # report.html shows them beside the diff
    write_html_report(r.root / DIFF_DIR, extra_sections=[settings_section(detail)])
    return detail


def stage_plan(r: _Recovery) -> dict[str, Any]:
    """Write the plan (``--include``, ``--where``, ``exclude_keys``) to ``<workdir>/plan.jsonl``."""
    from pitrdiff.recovery.plan import write_plan

    plan_path = r.root / PLAN_NAME
    summary = write_plan(
        r.root / DIFF_DIR, plan_path, include=r.classes, where=r.where,
        exclude_keys=r.exclude_keys, table=r.table, overwrite=True,
    )  # fmt: skip
    return {
        "path": str(plan_path),
        "operations": summary.operations,
        "selection": _selection(r),
        "exclude_keys": summary.selection.get("exclude_keys"),
        "excluded": summary.excluded,
    }


def _selection(r: _Recovery) -> dict[str, Any]:
    """What the plan depends on besides the diff: a different one re-plans."""
    selection: dict[str, Any] = {"include": list(r.classes), "where": r.where}
    if r.exclude_keys is not None:
        import xxhash

        if isinstance(r.exclude_keys, (str, os.PathLike)):
            try:
                data = Path(r.exclude_keys).read_bytes()
            except OSError:
                data = b""  # write_plan reports the unreadable file
        else:
            data = orjson.dumps(list(r.exclude_keys), option=orjson.OPT_SORT_KEYS)
        selection["exclude_keys"] = xxhash.xxh3_128_hexdigest(data)
    return selection


# The recovery, in order: (state name, stage function).
STAGE_FUNCTIONS: tuple[tuple[str, Callable[[_Recovery], dict[str, Any]]], ...] = (
    ("restore", stage_restore),
    ("export-restored", stage_export_restored),
    ("export-live", stage_export_live),
    ("diff", stage_diff),
    ("settings", stage_settings),
    ("plan", stage_plan),
)


def recover(
    table: str,
    *,
    at: dt.datetime | str,
    workdir: str | os.PathLike[str],
    restored: str | None = None,
    include: Sequence[str] | str = ("deleted",),
    where: str | None = None,
    exclude_keys: KeySource | None = None,
    segments: int | None = None,
    no_indexes: bool = False,
    aws: AwsConfig | None = None,
    progress: Progress = SILENT,
) -> RecoverResult:
    """Restore, export both tables, diff, compare settings and plan — never apply.

    Parameters
    ----------
    table
        The live table.
    at
        The restore time (aware datetime or ISO 8601 text with a zone).
    workdir
        The work directory (created); re-running in it skips complete stages.
    restored
        An existing restored table to use instead of restoring (it must be a
        restore of ``table``).
    include
        Classes the plan puts back (``deleted`` by default; ``changed``,
        ``added``, ``expired``).
    where
        A DuckDB SQL condition over the diff rows selecting what the plan covers.
    exclude_keys
        A deny list of keys no plan may contain (the formats of ``--keys``),
        passed to :func:`pitrdiff.recovery.plan.write_plan`.
    segments
        Parallel scan segments for both exports.
    no_indexes
        Restore without secondary indexes (faster; the diff does not need them).
    aws
        Where to talk to AWS.
    progress
        Reports every stage.

    Returns
    -------
    RecoverResult
        The stages, the diff counts, the settings diff, the plan, the
        ``pitrdiff apply`` command and the ``pitrdiff cleanup`` command.

    Raises
    ------
    RefusedError
        The workdir belongs to another recovery, or ``restored`` is not a
        restore of ``table``.
    PitrError, InputError
        The restore time is not restorable or not valid.
    """
    at_utc = pitr.parse_time(at)
    if exclude_keys is not None and not isinstance(exclude_keys, (str, os.PathLike)):
        exclude_keys = [dict(k) for k in exclude_keys]  # read twice: selection, then plan
    created = not Path(workdir).exists()
    root = make_dir(workdir)
    try:
        r = _Recovery(
        table=table, at=at_utc, root=root,
            state=_State.open(root, table=table, at=at_utc, restored=restored),
            aws=aws or AwsConfig(), progress=progress, given=restored,
            classes=(include,) if isinstance(include, str) else tuple(include), where=where,
            exclude_keys=exclude_keys, segments=segments, no_indexes=no_indexes,
        )  # fmt: skip
        return _run_stages(r)
    except InputError:
        # Refused before any stage was done (e.g. a time outside the window):
        # leave nothing behind that the user did not have.
        _forget_if_empty(root, created)
        raise


def _forget_if_empty(root: Path, created: bool) -> None:
    """Remove a state file with no stage done (and the workdir this run made)."""
    state = root / STATE_NAME
    if state.exists():
        try:
            document = orjson.loads(state.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return
        if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
            return  # not ours: never removed
        if document.get("stages"):
            return
        state.unlink(missing_ok=True)
    if created and not any(root.iterdir()):
        root.rmdir()


def _run_stages(r: _Recovery) -> RecoverResult:
    """Run the stages in order, each skipped when its recorded result still holds."""
    previous_plan = r.state.stage("plan")
    if previous_plan is not None and (previous_plan.get("detail") or {}).get(
        "selection"
    ) != _selection(r):
        r.state.invalidate_from("plan")
    details: dict[str, dict[str, Any]] = {}
    for name, stage in STAGE_FUNCTIONS:
        if name.startswith("export"):
            r.rerun_before_export = r.rerun
        details[name] = r.run(name, stage)
        if name == "restore":
            r.restored = str(details[name]["table"])
    return _result(r, details)


def _result(r: _Recovery, details: Mapping[str, Mapping[str, Any]]) -> RecoverResult:
    from pitrdiff.diff.core import load_diff

    summary = load_diff(r.root / DIFF_DIR).summary
    plan = details["plan"]
    return RecoverResult(
        table=r.table,
        at=r.at,
        workdir=r.root,
        restored_table=r.restored,
        stages=tuple(r.results),
        counts={
            name: int(getattr(summary, name, 0))
            for name in ("deleted", "changed", "added", "expired", "unchanged")
        },
        top_signatures=tuple((s.signature, s.items) for s in summary.top_signatures),
        diff_path=r.root / DIFF_DIR,
        plan_path=r.root / PLAN_NAME,
        plan_operations=int(plan["operations"]),
        restored_export_finished_at=details["export-restored"].get("finished_at"),
        live_export_started_at=details["export-live"].get("started_at"),
        apply_command=shlex.join(["pitrdiff", "apply", str(r.root / PLAN_NAME)]),
        settings=dict(details["settings"]),
        restore_created=bool(details["restore"].get("created", r.given is None)),
        cleanup_command=shlex.join(["pitrdiff", "cleanup", r.restored]),
        plan_excluded=plan.get("excluded") if plan.get("exclude_keys") else None,
    )

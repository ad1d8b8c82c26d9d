"""One-command recovery: restore → export restored → export live → diff → plan.

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
from pitrdiff.errors import ExportError, RefusedError, StorageError
from pitrdiff.export.dataset import read_manifest, utc_now
from pitrdiff.files import make_dir, write_json
from pitrdiff.progress import SILENT, Progress

log = logging.getLogger(__name__)

STATE_NAME = "recover.json"
STATE_FORMAT = "pitrdiff-recover-state"
STATE_VERSION = 1
STAGES = ("restore", "export-restored", "export-live", "diff", "plan")
RESTORED_DIR, LIVE_DIR, DIFF_DIR, PLAN_NAME = "restored", "live", "diff", "plan.jsonl"


@dataclass(frozen=True)
class StageResult:
    """One stage of a recovery.

    Attributes
    ----------
    name
        ``restore``, ``export-restored``, ``export-live``, ``diff`` or ``plan``.
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
        if self.name == "plan":
            return f"{d.get('operations', 0):,} operations -> {d.get('path')}"
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


def recover(
    table: str,
    *,
    at: dt.datetime | str,
    workdir: str | os.PathLike[str],
    restored: str | None = None,
    include: Sequence[str] | str = ("deleted",),
    where: str | None = None,
    segments: int | None = None,
    no_indexes: bool = False,
    aws: AwsConfig | None = None,
    progress: Progress = SILENT,
) -> RecoverResult:
    """Restore, export both tables, diff and plan — never apply.

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
        Classes the plan puts back (``deleted`` by default; ``changed``, ``added``).
    where
        A DuckDB SQL condition over the diff rows selecting what the plan covers.
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
        The stages, the diff counts, the plan and the ``pitrdiff apply`` command.

    Raises
    ------
    RefusedError
        The workdir belongs to another recovery, or ``restored`` is not a
        restore of ``table``.
    PitrError, InputError
        The restore time is not restorable or not valid.
    """
    from pitrdiff.diff.core import diff_exports, load_diff
    from pitrdiff.export.scan import export_table
    from pitrdiff.recovery.plan import write_plan

    aws = aws or AwsConfig()
    at_utc = pitr.parse_time(at)
    classes = (include,) if isinstance(include, str) else tuple(include)
    root = make_dir(workdir)
    state = _State.open(root, table=table, at=at_utc, restored=restored)
    results: list[StageResult] = []
    rerun = False  # once a stage runs, every later stage runs again

    def run(name: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        nonlocal rerun
        previous = state.stage(name)
        if not rerun and previous is not None and previous.get("complete"):
            results.append(
                StageResult(
                    name,
                    True,
                    str(previous.get("started_at")),
                    str(previous.get("finished_at")),
                    float(previous.get("elapsed_s", 0.0)),
                    previous.get("detail") or {},
                )
            )
            return dict(previous.get("detail") or {})
        rerun = True
        state.invalidate_from(name)
        started, clock = utc_now(), time.monotonic()
        detail = body()
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
        state.record(name, entry)
        results.append(StageResult(name, False, started, finished, elapsed, detail))
        return detail

    # 1. restore (or check the table given)
    def check_restore_of(name: str) -> None:
        info = pitr.describe_table(name, aws=aws)
        source = pitr.describe_table(table, aws=aws)
        if not info.is_restore or info.restore_source_arn != source.arn:
            raise RefusedError(
                f"{name} is not a restore of {table} "
                f"(RestoreSummary source: {info.restore_source_arn or 'none'})"
            )

    def do_restore() -> dict[str, Any]:
        target = restored or (state.stage("restore") or {}).get("target")
        if target is not None:  # given, or started by a previous run: check, then wait
            check_restore_of(str(target))
        else:
            started = pitr.restore(
                table, at=at_utc, no_indexes=no_indexes, wait=False, aws=aws, progress=progress
            )
            target = started.target
            state.record("restore", {"complete": False, "target": target})
        state.doc["restored_table"] = str(target)
        state.save()
        ready, _ = pitr.wait_for_table(str(target), aws=aws, progress=progress)
        return {
            "table": str(target),
            "provided": restored is not None,
            "restore_date_time": pitr.format_time(ready.restore_date_time),
        }

    restore_detail = run("restore", do_restore)
    restored_table = str(restore_detail["table"])

    def export(name: str, path: Path) -> Callable[[], dict[str, Any]]:
        def body() -> dict[str, Any]:
            done = _export_complete(path, name)
            if done is not None and not rerun_exports[path.name]:
                return done
            export_table(name, path, segments=segments, overwrite=True, aws=aws, progress=progress)
            facts = _export_complete(path, name)
            if facts is None:  # pragma: no cover - export_table marks it complete
                raise ExportError(f"export of {name} at {path} is not complete", path=str(path))
            return facts

        return body

    # An export found complete on disk is adopted only if no earlier stage re-ran.
    rerun_exports = {RESTORED_DIR: False, LIVE_DIR: False}
    rerun_exports[RESTORED_DIR] = rerun
    restored_detail = run("export-restored", export(restored_table, root / RESTORED_DIR))
    rerun_exports[LIVE_DIR] = rerun
    live_detail = run("export-live", export(table, root / LIVE_DIR))

    def do_diff() -> dict[str, Any]:
        diff = diff_exports(
            root / LIVE_DIR,
            root / RESTORED_DIR,
            root / DIFF_DIR,
            overwrite=True,
            progress=progress,
        )
        summary = diff.summary
        return {
            "path": str(root / DIFF_DIR),
            "deleted": summary.deleted,
            "changed": summary.changed,
            "added": summary.added,
            "unchanged": summary.unchanged,
        }

    run("diff", do_diff)

    # The plan depends on the selection too: a different --include/--where re-plans.
    selection = {"include": list(classes), "where": where}
    previous_plan = state.stage("plan")
    if previous_plan is not None and (previous_plan.get("detail") or {}).get("selection") != (
        selection
    ):
        state.invalidate_from("plan")
    plan_path = root / PLAN_NAME

    def do_plan() -> dict[str, Any]:
        summary = write_plan(root / DIFF_DIR, plan_path, include=classes, where=where, table=table)
        return {
            "path": str(plan_path),
            "operations": summary.operations,
            "selection": selection,
        }

    plan_detail = run("plan", do_plan)

    summary = load_diff(root / DIFF_DIR).summary
    command = ["pitrdiff", "apply", str(plan_path)]
    return RecoverResult(
        table=table,
        at=at_utc,
        workdir=root,
        restored_table=restored_table,
        stages=tuple(results),
        counts={
            "deleted": summary.deleted,
            "changed": summary.changed,
            "added": summary.added,
            "unchanged": summary.unchanged,
        },
        top_signatures=tuple((s.signature, s.items) for s in summary.top_signatures),
        diff_path=root / DIFF_DIR,
        plan_path=plan_path,
        plan_operations=int(plan_detail["operations"]),
        restored_export_finished_at=restored_detail.get("finished_at"),
        live_export_started_at=live_detail.get("started_at"),
        apply_command=shlex.join(command),
    )

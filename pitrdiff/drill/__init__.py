"""Restore drills: restore, export both, diff, compare settings, and check the data is right.

AWS Backup's restore testing checks that a restore ran and how long it took;
a drill also checks that the restored **data** is right. Every option and
output path is checked first (:mod:`pitrdiff.drill.preflight`: bad input is
refused, exit 2, before the work directory is made or anything is restored);
then :func:`run_drill` reads as its list of stages:

1. ``window``: PITR is on and its earliest restorable time is at least
   ``min_window`` back;
2. ``restore``: restore into a new table (without indexes by default) and
   measure the RTO, restore request → table ACTIVE;
3. ``export-restored``, ``export-live``: export both tables (segmented scans);
4. ``diff``: restored against live;
   ``incremental`` (with ``incremental``): the restored export plus an
   incremental export's changes, as a second diff;
5. ``settings``: the settings diff (what a restore does not carry);
6. ``checks``: every difference explained by writes after T (``updated_attr``),
   the incremental export agreeing with the live export, and the
   expectations of an ``--expect`` file;
7. ``report``: JUnit XML, a JSON document and ``report.html`` with the checks;
8. ``cleanup``: the restored table is deleted — after success, a failed check,
   an error or Ctrl-C — unless ``keep``. SIGINT and SIGTERM are held while it
   is deleted (:mod:`pitrdiff.drill.guard`), and a signal landing anywhere
   after the restore (a stage, the cleanup, the reports) still deletes it and
   writes drill.json and the JUnit XML with ``"error": "interrupted"``.

A refusal (exit 2) before any table was restored — bad input, or an ``at``
outside the PITR window — writes no report: the corrected run can use the
same (empty) work directory.

Work directory::

    restored/  live/   the two exports
    diff/              the diff dataset, report.md, report.html (with the checks)
    incremental/       the incremental export's diff (with --incremental-from-s3)
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

import contextlib
import datetime as dt
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pitrdiff import pitr
from pitrdiff.aws import AwsConfig
from pitrdiff.drill import preflight
from pitrdiff.drill.checks import (
    check_expectations,
    check_incremental,
    check_updated_attr,
    load_expectations,
    parse_duration,
    validate_expectations,
)
from pitrdiff.drill.guard import held_signals
from pitrdiff.drill.model import (
    DIFF_DIR,
    INCREMENTAL_DIR,
    JUNIT_NAME,
    LIVE_DIR,
    RESTORED_DIR,
    DrillCheck,
    DrillResult,
    DrillStage,
    DrillState,
)
from pitrdiff.drill.reports import junit_xml, result_of, write_outputs
from pitrdiff.errors import (
    EXIT_BAD_INPUT,
    InputError,
    Interrupted,
    PitrdiffError,
    RefusedError,
    TableNotFoundError,
    Terminated,
)
from pitrdiff.files import make_dir
from pitrdiff.progress import SILENT, Progress

__all__ = [
    "STAGES",
    "DrillCheck",
    "DrillResult",
    "DrillStage",
    "junit_xml",
    "load_expectations",
    "parse_duration",
    "run_drill",
]


def _stage_window(d: DrillState) -> None:
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


def _already_exists(target: str) -> RefusedError:
    return RefusedError(
        f"table {target} already exists; the drill restores into a new table: "
        "choose another --target (or leave it out)"
    )


def _stage_restore(d: DrillState) -> None:
    try:
        pitr.describe_table(d.target, aws=d.aws)
    except TableNotFoundError:
        # The target is new: from the moment the request may have been sent, a
        # Ctrl-C or error cleans it up by name (only a table that is a restore).
        d.restored = d.target
    if d.restored is None:  # made since the checks before the drill: not ours to delete
        raise _already_exists(d.target)
    requested = time.monotonic()
    try:
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
    except RefusedError as exc:
        # Only an existing target is refused here (the live table as target was
        # refused before the drill): another's table, never deleted by cleanup.
        d.restored = None
        raise _already_exists(d.target) from exc
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


def _export(
    name_of: Callable[[DrillState], str | None], directory: str
) -> Callable[[DrillState], None]:
    def stage(d: DrillState) -> None:
        from pitrdiff.export.scan import export_table

        table = name_of(d)
        assert table is not None
        manifest = export_table(
            table, d.workdir / directory, segments=d.segments, aws=d.aws, progress=d.progress
        )
        d.counts[f"{directory}_items"] = manifest.items

    return stage


def _stage_diff(d: DrillState) -> None:
    from pitrdiff.diff.core import diff_exports

    diff = diff_exports(
        d.workdir / LIVE_DIR, d.workdir / RESTORED_DIR, d.workdir / DIFF_DIR, progress=d.progress
    )
    summary = diff.summary
    for name in ("deleted", "changed", "added", "expired", "unchanged"):
        d.counts[name] = int(getattr(summary, name, 0))


def _stage_settings(d: DrillState) -> None:
    from pitrdiff.settings import compare_settings

    assert d.restored is not None
    d.settings = compare_settings(d.table, d.restored, aws=d.aws)


def _stage_incremental(d: DrillState) -> None:
    """Turn the incremental export into a diff whose start state is the restored export."""
    from pitrdiff.diff.incremental import diff_incremental
    from pitrdiff.export.dataset import load_export

    assert d.incremental is not None
    diff_incremental(
        d.incremental,
        d.workdir / INCREMENTAL_DIR,
        aws=d.aws,
        key_schema=load_export(d.workdir / RESTORED_DIR).key_schema,
        table_name=d.table,
        start_export=d.workdir / RESTORED_DIR,
        progress=d.progress,
    )


def _stage_checks(d: DrillState) -> None:
    if d.updated_attr:
        d.checks.append(check_updated_attr(d))
    if d.incremental is not None:
        d.checks.append(check_incremental(d))
    d.checks.extend(check_expectations(d))


STAGES: tuple[tuple[str, Callable[[DrillState], None]], ...] = (
    ("window", _stage_window),
    ("restore", _stage_restore),
    ("export-restored", _export(lambda d: d.restored, RESTORED_DIR)),
    ("export-live", _export(lambda d: d.table, LIVE_DIR)),
    ("diff", _stage_diff),
    ("incremental", _stage_incremental),
    ("settings", _stage_settings),
    ("checks", _stage_checks),
)
# Stages that run only when asked for.
OPTIONAL_STAGES: dict[str, Callable[[DrillState], bool]] = {
    "incremental": lambda d: d.incremental is not None,
}


def _cleanup(d: DrillState, keep: bool) -> str:
    """Delete the restored table (only a table DescribeTable shows as a restore); once."""
    if d.cleaned_up is None:
        d.cleaned_up = _delete(d, keep)
    return d.cleaned_up


def _delete(d: DrillState, keep: bool) -> str:
    if d.restored is None:
        return "none"
    if keep:
        return "kept"
    try:
        pitr.cleanup(d.restored, aws=d.aws)
    except TableNotFoundError:
        d.restored = None  # the request never made it: no table was restored
        return "none"
    except PitrdiffError as exc:
        return f"failed: {exc} (delete it with `pitrdiff cleanup {d.restored}`)"
    return "deleted"


def _cleanup_sentence(d: DrillState, keep: bool) -> str:
    """Clean up; say what became of the restored table (``restored table X: deleted``)."""
    cleaned, name = _cleanup(d, keep), d.restored
    if name is None:
        return "no table was restored"
    if cleaned == "kept":
        return f"restored table {name}: kept (delete it with `pitrdiff cleanup {name}`)"
    return f"restored table {name}: {cleaned}"


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
    incremental: str | os.PathLike[str] | None = None,
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
        The restored table's name (default ``<table>-drill-<UTC now>-<random>``,
        see :func:`default_target`).
    min_window
        The PITR window must reach at least this far back (``7d``, ``6h`` …).
    with_indexes
        Restore the secondary indexes too (default: without, faster).
    segments
        Parallel scan segments for both exports.
    updated_attr
        A timestamp attribute (ISO 8601 or epoch seconds/milliseconds): every
        changed and added item's live version must be newer than T.
    incremental
        An incremental export (``s3://…/AWSDynamoDB/<export-id>`` or a local
        copy) from T to the live export's time: the restored table plus its
        changes must equal the live table, item for item.
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
        Bad times, durations, expectations, or a workdir that is not empty
        (nothing is written; see :mod:`pitrdiff.drill.preflight`).
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
        load_expectations(expect)
        if isinstance(expect, (str, os.PathLike))
        else validate_expectations(expect or {})
    )
    at_utc = pitr.parse_time(at) if at is not None else None
    now = dt.datetime.now(dt.timezone.utc)
    if target is not None and not target:
        raise InputError("--target names the restored table; it cannot be empty")
    name = pitr.check_table_name(target or default_target(table, now))
    # Everything that can be checked is checked before the restore (minutes, billed).
    preflight.check_options(segments, updated_attr)
    root = preflight.check_workdir(workdir)
    junit_path = preflight.check_junit(junit, root) if junit is not None else root / JUNIT_NAME
    source = None if incremental is None else os.fspath(incremental)
    aws = aws or AwsConfig()
    preflight.check_aws_inputs(
        table, name, expect=expectations, incremental=source, aws=aws, at=at_utc
    )
    d = DrillState(
        table=table, workdir=make_dir(root), aws=aws, progress=progress,
        at=at_utc, latest=latest, target=name, no_indexes=not with_indexes, segments=segments,
        min_window=window, updated_attr=updated_attr, expect=expectations, incremental=source,
        poll_seconds=poll_seconds,
    )  # fmt: skip
    try:
        try:
            _run_stages(d, on_stage)
        except (KeyboardInterrupt, Interrupted):
            raise
        except PitrdiffError as exc:
            if exc.exit_code == EXIT_BAD_INPUT and not _table_made(d):
                raise  # refused before any restore: nothing written, as for every bad input
            _finish(d, keep, junit_path, str(exc))
            raise
        except Exception as exc:
            # A bug, not a user error: the restored table is still deleted (it is
            # billed), the reports say so, and the error goes on as it is.
            _finish(d, keep, junit_path, f"internal error: {exc!r}")
            raise
        return _finish(d, keep, junit_path, None)
    except (KeyboardInterrupt, Interrupted) as exc:
        # Wherever it landed (a stage, the cleanup, the reports): the table is
        # deleted, then drill.json and the JUnit XML say the drill was interrupted.
        # (a wait's "the restore goes on in AWS" no longer holds: the table is deleted)
        with held_signals(deliver=False):
            _cleanup(d, keep)
            why = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            with contextlib.suppress(PitrdiffError, OSError):
                write_outputs(d, result_of(d, _cleanup(d, keep), junit_path, None), why)
        raise Interrupted(f"drill interrupted; {_cleanup_sentence(d, keep)}") from exc


def _table_made(d: DrillState) -> bool:
    """Whether the restore made a table (its request may have been refused before)."""
    if d.restored is None:
        return False
    try:
        with held_signals():
            pitr.describe_table(d.restored, aws=d.aws)
    except TableNotFoundError:
        d.restored = None  # the request was refused: no table was restored
        return False
    except PitrdiffError:
        return True  # not known: cleanup will tell
    return True


def _finish(d: DrillState, keep: bool, junit: Path, error: str | None) -> DrillResult:
    """Delete the restored table (signals held meanwhile), then write the reports."""
    with held_signals():
        cleaned = _cleanup(d, keep)
    # (a signal held during the cleanup is raised here: the drill ends as interrupted)
    return write_outputs(d, result_of(d, cleaned, junit, None), error)


def default_target(table: str, now: dt.datetime) -> str:
    """``<table>-drill-<UTC second>-<6 random hex digits>``, within DynamoDB's 255 characters.

    The random part keeps two drills started in the same second (a CI matrix,
    a retried job) from colliding on the name.
    """
    suffix = f"-drill-{now.strftime(pitr.TIMESTAMP_FORMAT)}-{secrets.token_hex(3)}"
    return table[: 255 - len(suffix)] + suffix


def _run_stages(d: DrillState, on_stage: Callable[[str], None] | None) -> None:
    """Run :data:`STAGES` in order.

    PITR off stops before the restore (there is nothing to restore). A window
    shorter than ``min_window`` is a failed check, and the drill goes on, so
    every other check still runs and the report shows them all.
    """
    for name, stage in STAGES:
        if d.stop:
            return
        if name in OPTIONAL_STAGES and not OPTIONAL_STAGES[name](d):
            continue
        if on_stage is not None:
            on_stage(name)
        started, clock = pitr.format_time(dt.datetime.now(dt.timezone.utc)), time.monotonic()
        stage(d)
        d.stages.append(DrillStage(name, str(started), round(time.monotonic() - clock, 3)))

"""Commands around the restore itself: ``window``, ``restore``, ``cleanup``, ``recover``.

:mod:`pitrdiff.pitr` is light (boto3 loads on the first AWS call);
:mod:`pitrdiff.recovery.recover` and the diff are imported inside ``recover``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pitrdiff import pitr
from pitrdiff.cli.app import Common, command
from pitrdiff.errors import InputError, RefusedError

if TYPE_CHECKING:
    from pitrdiff.output import Renderer

PANEL = "PITR and recovery"


def span(seconds: float) -> str:
    """A duration for people: ``45s``, ``4m 48s``, ``3h 05m``, ``6d 23h``."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def ago(value: dt.datetime | None, now: dt.datetime) -> str:
    """``2026-10-27T13:55:12Z (4m 48s ago)``."""
    if value is None:
        return "-"
    delta = (now - value).total_seconds()
    when = f"{span(delta)} ago" if delta >= 0 else f"in {span(delta)}"
    return f"{pitr.format_time(value)}  ({when})"


def common_args(common: Common) -> str:
    """The common options to repeat in a suggested next command."""
    parts = []
    if common.endpoint_url:
        parts.append(f"--endpoint-url {common.endpoint_url}")
    if common.region:
        parts.append(f"--region {common.region}")
    if common.profile:
        parts.append(f"--profile {common.profile}")
    return (" " + " ".join(parts)) if parts else ""


def say(renderer: Renderer, message: str) -> None:
    """Guidance with rich markup on stderr, never wrapped inside a command line."""
    if not renderer.quiet and not renderer.json_mode:
        renderer.err.print(message, soft_wrap=True)


def confirm(renderer: Renderer, question: str, yes: bool) -> bool:
    """Ask ``question`` on the terminal; ``--yes`` answers for the user.

    Raises
    ------
    RefusedError
        When nobody can answer (no terminal) and ``--yes`` was not given.
    """
    if yes:
        return True
    if not sys.stdin.isatty():
        raise RefusedError(f"{question} — no terminal to ask on: pass --yes to confirm")
    return typer.confirm(question, default=False, err=True)


def show_window(renderer: Renderer, window: pitr.PitrWindow) -> None:
    """Render a PITR window (stdout) and what it means (stderr)."""
    if renderer.json_mode:
        renderer.json(window)
        return
    now = window.checked_at
    if window.status == "ENABLED" and not window.enabled:
        renderer.print(
            renderer.key_value_table(
                f"{window.table}: point-in-time recovery", [("status", "ENABLED")]
            )
        )
        renderer.info(f"{window.describe()}; AWS reports it within a few minutes.")
        return
    if not window.enabled:
        renderer.print(
            renderer.key_value_table(
                f"{window.table}: point-in-time recovery is OFF", [("status", window.status)]
            )
        )
        say(
            renderer,
            "Nothing can be restored. Turn PITR on with "
            f"[bold]pitrdiff window {window.table} --enable[/] (changes from then on become "
            "restorable; the window grows up to 35 days).",
        )
        return
    length = window.length
    rows = [
        ("status", "ENABLED"),
        ("earliest restorable", ago(window.earliest, now)),
        ("latest restorable", ago(window.latest, now)),
        ("window length", span(length.total_seconds()) if length is not None else "-"),
    ]
    if window.recovery_period_days is not None:
        rows.append(("recovery period", f"{window.recovery_period_days} days"))
    renderer.print(renderer.key_value_table(f"{window.table}: point-in-time recovery", rows))
    renderer.info(
        "The latest restorable time trails now by a few minutes (AWS keeps it about "
        "5 minutes behind); `pitrdiff restore TABLE --latest` restores it."
    )


@command(
    "window",
    rich_help_panel=PANEL,
    examples=[
        ("Show how far back orders can be restored", "pitrdiff window orders"),
        ("Turn point-in-time recovery on (asks first)", "pitrdiff window orders --enable"),
    ],
)
def window_command(
    common: Common,
    table: Annotated[str, typer.Argument(help="The table.", metavar="TABLE")],
    enable: Annotated[
        bool, typer.Option("--enable", help="Turn point-in-time recovery on (asks first).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Show PITR status and the restorable window (earliest, latest, how long ago)."""
    renderer = common.renderer
    current = pitr.window(table, aws=common.aws)
    if enable and not current.enabled:
        question = (
            f"Turn on point-in-time recovery for {table}? (AWS bills it per GB-month of table size)"
        )
        if not confirm(renderer, question, yes):
            renderer.info("PITR left off.")
            raise typer.Exit(0)
        current = pitr.enable_pitr(table, aws=common.aws)
        renderer.info(f"Point-in-time recovery is now on for {table}.")
    elif enable:
        renderer.info(f"Point-in-time recovery is already on for {table}.")
    show_window(renderer, current)


@command(
    "restore",
    rich_help_panel=PANEL,
    examples=[
        (
            "Restore orders as it was at 14:00 UTC into a new table, and wait for it",
            "pitrdiff restore orders --at 2026-10-27T14:00:00Z",
        ),
        (
            "Restore the latest restorable time, without indexes (faster)",
            "pitrdiff restore orders --latest --no-indexes",
        ),
        (
            "Start a restore, come back later",
            "pitrdiff restore orders --at 2026-10-27T14:00:00Z --no-wait",
        ),
        ("", "pitrdiff restore --wait orders-pitr-20261027T140000Z"),
    ],
)
def restore_command(
    common: Common,
    table: Annotated[
        str | None,
        typer.Argument(help="The live table to restore from.", metavar="TABLE", show_default=False),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="Restore time, ISO 8601 with a zone (2026-10-27T14:00:00Z). Must be inside "
            "the window shown by `pitrdiff window`.",
        ),
    ] = None,
    latest: Annotated[
        bool, typer.Option("--latest", help="Restore the latest restorable time.")
    ] = False,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="NAME",
            help="New table name (default: TABLE-pitr-<UTC timestamp of the restore time>).",
        ),
    ] = None,
    no_indexes: Annotated[
        bool,
        typer.Option(
            "--no-indexes",
            help="Restore without secondary indexes: the restore is faster and cheaper, and "
            "the diff reads only the base table.",
        ),
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="Return as soon as the restore has started (resume with --wait TARGET).",
        ),
    ] = False,
    reuse: Annotated[
        bool,
        typer.Option("--reuse", help="Use the target if it exists and is a restore of TABLE."),
    ] = False,
    wait_for: Annotated[
        str | None,
        typer.Option(
            "--wait",
            metavar="TARGET",
            help="Wait for a restore already started (with --no-wait) to finish.",
        ),
    ] = None,
) -> None:
    """Restore TABLE as it was at --at (or --latest) into a NEW table, then wait for it.

    The live table is never touched. Real restores take minutes to hours; the
    wait shows the elapsed time and the table status.
    """
    renderer = common.renderer
    if wait_for is not None:
        if table is not None or at is not None or latest:
            raise InputError("--wait TARGET takes no TABLE, --at or --latest")
        with renderer.progress() as progress:
            info, waited = pitr.wait_for_table(wait_for, aws=common.aws, progress=progress)
        if renderer.json_mode:
            renderer.json({"table": info.to_dict(), "waited_s": round(waited, 3)})
            return
        renderer.print(
            renderer.key_value_table(
                f"{wait_for} is ready",
                [
                    ("status", info.status),
                    ("restore of", info.restore_source_arn or "-"),
                    ("restored time", pitr.format_time(info.restore_date_time) or "-"),
                    ("waited", span(waited)),
                ],
            )
        )
        return
    if table is None:
        raise InputError("give the TABLE to restore (or --wait TARGET)")
    with renderer.progress() as progress:
        result = pitr.restore(
            table,
            at=at,
            latest=latest,
            target=target,
            no_indexes=no_indexes,
            reuse=reuse,
            wait=not no_wait,
            aws=common.aws,
            progress=progress,
        )
    if renderer.json_mode:
        renderer.json(result)
        return
    title = f"{result.target}: {'reused restore' if result.reused else 'restore'} of {table}"
    renderer.print(
        renderer.key_value_table(
            title,
            [
                ("restored time", pitr.format_time(result.requested_at) or "-"),
                ("AWS reports", pitr.format_time(result.restore_date_time) or "-"),
                ("status", result.status + ("" if result.ready else " (not ready yet)")),
                ("indexes", ", ".join(result.indexes) or "none"),
                ("left out", ", ".join(result.dropped_indexes) or "-"),
                ("items (estimate)", "-" if result.item_count is None else result.item_count),
                ("waited", span(result.waited_s)),
            ],
        )
    )
    opts = common_args(common)
    at_text = pitr.format_time(result.requested_at) or "TIME"
    if not result.ready:
        say(
            renderer,
            "The restore goes on in AWS. Wait for it with "
            f"[bold]pitrdiff restore --wait {result.target}{opts}[/]",
        )
    say(
        renderer,
        "Next:\n"
        f"  pitrdiff recover {table} --at {at_text} --restored {result.target} "
        f"--workdir incident{opts}\n"
        "or step by step:\n"
        f"  pitrdiff export {result.target} --out incident/restored{opts}\n"
        f"  pitrdiff export {table} --out incident/live{opts}\n"
        "  pitrdiff diff incident/live incident/restored --out incident/diff\n"
        f"When done (restored tables are billed): pitrdiff cleanup {result.target}{opts}",
    )


@command(
    "cleanup",
    rich_help_panel=PANEL,
    examples=[
        (
            "Delete the restored table once the recovery is done (asks first)",
            "pitrdiff cleanup orders-pitr-20261027T140000Z",
        ),
    ],
)
def cleanup_command(
    common: Common,
    table: Annotated[
        str, typer.Argument(help="The restored table to delete.", metavar="RESTORED_TABLE")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a restored table — only if DescribeTable shows it is a restore.

    A table without a RestoreSummary (a live table) is never deleted.
    """
    renderer = common.renderer

    def ask(info: pitr.TableInfo) -> bool:
        restored = pitr.format_time(info.restore_date_time) or "an unknown time"
        question = (
            f"Delete {info.name} (a restore of {info.restore_source_arn} at {restored}, "
            f"~{info.item_count if info.item_count is not None else '?'} items)?"
        )
        return confirm(renderer, question, yes)

    result = pitr.cleanup(table, aws=common.aws, confirm=ask)
    if renderer.json_mode:
        renderer.json(result)
        return
    if result.deleted:
        renderer.print(
            f"Deleted restored table {table} (restore of {result.info.restore_source_arn})."
        )
    else:
        renderer.info(f"{table} kept.")


@command(
    "recover",
    rich_help_panel=PANEL,
    examples=[
        (
            "Restore orders as of 14:00 UTC, export both tables, diff them and write a plan",
            "pitrdiff recover orders --at 2026-10-27T14:00:00Z --workdir incident",
        ),
        (
            "Use a restore made earlier, and plan deleted and changed items of one tenant",
            "pitrdiff recover orders --at 2026-10-27T14:00:00Z --workdir incident "
            "--restored orders-pitr-20261027T140000Z --include deleted,changed "
            "--where \"attr_text(restored_item, 'tenant') = 'acme'\"",
        ),
    ],
)
def recover_command(
    common: Common,
    table: Annotated[str, typer.Argument(help="The live table.", metavar="TABLE")],
    at: Annotated[
        str,
        typer.Option(
            "--at", metavar="TIME", help="Restore time, ISO 8601 with a zone.", show_default=False
        ),
    ],
    workdir: Annotated[
        Path,
        typer.Option(
            "--workdir",
            metavar="DIR",
            help="Directory for the exports, diff, plan and the stage state (re-run resumes).",
            show_default=False,
        ),
    ],
    restored: Annotated[
        str | None,
        typer.Option(
            "--restored",
            metavar="RESTORED_TABLE",
            help="Use this existing restored table instead of restoring.",
        ),
    ] = None,
    include: Annotated[
        str,
        typer.Option(
            "--include",
            metavar="CLASSES",
            help="Classes to put in the plan: deleted,changed,added.",
        ),
    ] = "deleted",
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            metavar="SQL",
            help="SQL condition selecting rows of the diff for the plan.",
        ),
    ] = None,
    segments: Annotated[
        int | None,
        typer.Option("--segments", metavar="N", help="Parallel scan segments for both exports."),
    ] = None,
    no_indexes: Annotated[
        bool,
        typer.Option("--no-indexes", help="Restore without secondary indexes (faster)."),
    ] = False,
    exclude_keys: Annotated[
        Path | None,
        typer.Option(
            "--exclude-keys",
            metavar="FILE",
            help="Never these keys (a deny list, e.g. erasure requests): a CSV (header = key "
            "names) or JSON Lines, as plan --exclude-keys.",
        ),
    ] = None,
) -> None:
    """Restore + export both + diff + plan, in one command. Never applies.

    Prints the summary and the exact `pitrdiff apply` command to run. Re-running
    it with the same --workdir skips the stages already complete.
    """
    from rich.console import Group
    from rich.text import Text

    from pitrdiff.cli.diff import summary_renderables
    from pitrdiff.cli.settings import show_settings_document
    from pitrdiff.diff.core import load_diff
    from pitrdiff.recovery.recover import recover

    renderer = common.renderer
    classes = tuple(c.strip() for c in include.split(",") if c.strip())
    with renderer.progress() as progress:
        result = recover(
            table,
            at=at,
            workdir=workdir,
            restored=restored,
            include=classes,
            where=where,
            exclude_keys=exclude_keys,
            segments=segments,
            no_indexes=no_indexes,
            aws=common.aws,
            progress=progress,
        )
    if renderer.json_mode:
        renderer.json(result)
        return
    renderer.print(
        renderer.records_table(
            f"recover {table} at {pitr.format_time(result.at)}",
            ["stage", "status", "result"],
            [(stage.name, stage.status, stage.describe()) for stage in result.stages],
        )
    )
    parts = summary_renderables(load_diff(result.diff_path).summary)
    renderer.print(Group(*(r for part in parts for r in (Text(""), part))))
    renderer.print("")
    show_settings_document(renderer, result.settings)
    rows: list[tuple[str, Any]] = [
        ("file", result.plan_path),
        ("operations", result.plan_operations),
        ("include", ", ".join(classes)),
        ("where", where or "-"),
    ]
    if result.plan_excluded is not None:
        rows.append(("deny list (--exclude-keys)", f"removed {result.plan_excluded:,} operations"))
    renderer.print(renderer.key_value_table("Plan (nothing applied)", rows))
    for warning in plan_warnings(result.plan_path):
        renderer.warn(warning)
    say(renderer, recover_next_steps(result, common_args(common), created=restored is None))


def plan_warnings(path: Path) -> tuple[str, ...]:
    """The warnings ``plan`` prints for the plan file at ``path``, read from its header.

    The header's ``checks`` (TTL: puts the table's TTL will delete again;
    operations beyond AWS's limits) give the same lines as
    :attr:`pitrdiff.recovery.plan.PlanSummary.warnings`.
    """
    from pitrdiff.recovery.plan import PlanSummary
    from pitrdiff.recovery.planfile import load_plan

    plan = load_plan(path)
    checks = plan.header.get("checks") or {}
    ttl = checks.get("ttl") or {}
    unrestorable = checks.get("unrestorable") or {}
    summary = PlanSummary(
        path=str(plan.path),
        table=plan.table,
        operations=plan.operation_count,
        counts=plan.counts,
        available={},
        selection=dict(plan.header.get("selection") or {}),
        checksum=plan.checksum,
        ttl_attribute=ttl.get("attribute"),
        ttl_expiring=int(ttl.get("expiring_within_a_day") or 0),
        ttl_expiring_sample=tuple(ttl.get("sample") or ()),
        unrestorable=int(unrestorable.get("operations") or 0),
        unrestorable_sample=tuple(unrestorable.get("sample") or ()),
    )
    return summary.warnings


def recover_next_steps(result: Any, opts: str, *, created: bool) -> str:
    """What to do after ``recover``: apply (only when the plan holds operations), then cleanup.

    Parameters
    ----------
    result
        The :class:`~pitrdiff.recovery.recover.RecoverResult`.
    opts
        The common options to repeat in each suggested command (:func:`common_args`).
    created
        Whether ``recover`` created the restored table (no ``--restored`` given).
    """
    from pitrdiff.units import count

    if result.plan_operations:
        lines = [
            f"Nothing was written to the live table. The plan holds "
            f"{count(result.plan_operations)} operations; review it, then run:",
            f"  [bold]{result.apply_command}{opts} --dry-run[/]",
            f"  [bold]{result.apply_command}{opts}[/]",
        ]
    else:
        lines = [
            "Nothing to put back: the plan holds no operations, and nothing was written to "
            "the live table."
        ]
    whose = "the restored table recover created" if created else "the restored table"
    lines.append(
        f"When done, delete {whose} (restored tables are billed): "
        f"[bold]pitrdiff cleanup {result.restored_table}{opts}[/]"
    )
    return "\n".join(lines)

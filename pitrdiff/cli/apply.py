"""Command ``apply``: execute a plan with writes that cannot clobber."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from pitrdiff.cli.app import Common, command
from pitrdiff.errors import EXIT_DIFFERENCES, EXIT_OK, RefusedError
from pitrdiff.output import Renderer
from pitrdiff.recovery.apply import ApplyReport, apply_plan
from pitrdiff.recovery.plan import load_plan

PANEL = "Plan and apply"


@command("apply", rich_help_panel=PANEL)
def apply_command(
    common: Common,
    plan: Annotated[Path, typer.Argument(help="The plan file.")],
    table: Annotated[
        str | None,
        typer.Option("--table", help="Apply to this table instead of the plan's target."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write nothing; read items to predict outcomes.")
    ] = False,
    max_wcu: Annotated[
        float | None,
        typer.Option("--max-wcu", help="Write capacity units per second to stay under."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Parallel writers.")] = 8,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Apply a plan with conditional writes; re-run to resume after a crash.

    Exit 0 when every operation is applied or already done, 1 when conflicts or
    failures remain (listed in PLAN.conflicts.jsonl).
    """
    renderer = common.renderer
    loaded = load_plan(plan)
    target = table or loaded.table
    if not dry_run and not yes:
        counts = loaded.counts
        question = (
            f"apply {loaded.operation_count} operations to table {target!r} "
            f"({counts.get('put', 0)} puts, {counts.get('delete', 0)} deletes)?"
        )
        if not sys.stdin.isatty():
            raise RefusedError(f"{question} no terminal to ask on: pass --yes to confirm")
        if not typer.confirm(question, default=False, err=True):
            raise RefusedError("not applied: not confirmed")
    with renderer.progress() as progress:
        report = apply_plan(
            loaded,
            table=table,
            dry_run=dry_run,
            max_wcu=max_wcu,
            workers=workers,
            aws=common.aws,
            progress=progress,
        )
    show_apply_report(renderer, report)
    raise typer.Exit(EXIT_OK if report.clean else EXIT_DIFFERENCES)


def show_apply_report(renderer: Renderer, report: ApplyReport) -> None:
    """Render the outcome of an apply."""
    if renderer.json_mode:
        renderer.json(report)
        return
    verb = "would apply" if report.dry_run else "applied"
    rows = [
        ("table", report.table),
        ("operations", report.operations),
        (verb, report.applied),
        ("already done", report.already_done),
        ("conflicts (left untouched)", report.conflicts),
        ("failed", report.failed),
        ("retries", report.retries),
        ("consumed WCU", report.consumed_wcu),
    ]
    if report.from_journal:
        rows.append(("resumed: done in a previous run", report.from_journal))
    title = "Apply (dry run: nothing written)" if report.dry_run else "Apply"
    renderer.print(renderer.key_value_table(title, rows))
    if report.issues:
        shown = report.issues[:10]
        renderer.print(
            renderer.records_table(
                "Conflicts and failures",
                ["seq", "class", "outcome", "key", "reason"],
                [
                    [i["seq"], i["class"], i["outcome"], _key_text(i["key"]), i["reason"]]
                    for i in shown
                ],
            )
        )
    if report.conflicts_file:
        renderer.info(f"keys and current items of conflicts and failures: {report.conflicts_file}")


def _key_text(key: dict[str, object]) -> str:
    parts = []
    for name, typed in key.items():
        value = next(iter(typed.values())) if isinstance(typed, dict) else typed
        parts.append(f"{name}={value}")
    return ", ".join(parts)

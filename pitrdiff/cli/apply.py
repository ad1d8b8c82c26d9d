"""Command ``apply``: execute a plan with writes that cannot clobber."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pitrdiff.cli.app import Common, command
from pitrdiff.errors import EXIT_DIFFERENCES, EXIT_OK, RefusedError
from pitrdiff.output import Renderer

if TYPE_CHECKING:
    from pitrdiff.recovery.apply import ApplyReport

PANEL = "Plan and apply"


@command(
    "apply",
    rich_help_panel=PANEL,
    examples=[
        (
            "Predict what the plan would do, writing nothing",
            "pitrdiff apply incident/plan.jsonl --dry-run",
        ),
        (
            "Apply it, at most 200 write capacity units per second",
            "pitrdiff apply incident/plan.jsonl --max-wcu 200",
        ),
        (
            "Run again after a crash or Ctrl-C: it resumes from the journal",
            "pitrdiff apply incident/plan.jsonl --yes",
        ),
    ],
)
def apply_command(
    common: Common,
    plan: Annotated[Path, typer.Argument(help="The plan file.")],
    table: Annotated[
        str | None,
        typer.Option(
            "--table", metavar="NAME", help="Apply to this table instead of the plan's target."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write nothing; read items to predict outcomes.")
    ] = False,
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Changed items: repair only the attributes the diff found changed, "
            "keeping what others wrote since to the others.",
        ),
    ] = False,
    max_wcu: Annotated[
        float | None,
        typer.Option(
            "--max-wcu", metavar="WCU", help="Write units per second to stay under (at least 1)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", metavar="N", help="Parallel writers.")] = 8,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Apply a plan with writes that cannot clobber; re-run to resume after a crash.

    Exit 0 when every operation is applied, merged or already done, 1 when
    conflicts or failures remain (listed in PLAN.conflicts.jsonl), 2 for bad
    input (a --max-wcu that is not a number of at least 1, a journal from elsewhere).
    """
    # The library (pyarrow, boto3) loads only when the command runs, never for --help.
    from pitrdiff.recovery.apply import apply_plan, check_max_wcu, where_plan_applies
    from pitrdiff.recovery.plan import load_plan

    renderer = common.renderer
    check_max_wcu(max_wcu)
    loaded = load_plan(plan)
    if not dry_run and not yes:
        place = where_plan_applies(loaded, table=table, aws=common.aws)
        counts = loaded.counts
        question = (
            f"apply {loaded.operation_count} operations "
            f"({counts.get('put', 0)} puts, {counts.get('delete', 0)} deletes, "
            f"{'merge' if merge else 'strict'}) to {place.spelled_out()}?"
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
            merge=merge,
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
    place = report.place
    rows = [
        ("table", report.table),
        (
            "where",
            f"account {place.get('account') or 'unknown'}, region {place.get('region')}, "
            f"{place.get('endpoint')}",
        ),
        ("policy", report.policy),
        ("operations", report.operations),
        (verb, report.applied),
        ("merged (others' writes kept)", report.merged),
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
                "Conflicts, failures and merges",
                ["seq", "class", "outcome", "key", "reason"],
                [
                    [i["seq"], i["class"], i["outcome"], _key_text(i["key"]), i["reason"]]
                    for i in shown
                ],
            )
        )
    if report.conflicts_file:
        renderer.info(
            f"keys, reasons and current items of conflicts, failures and merges: "
            f"{report.conflicts_file}"
        )


def _key_text(key: dict[str, object]) -> str:
    parts = []
    for name, typed in key.items():
        value = next(iter(typed.values())) if isinstance(typed, dict) else typed
        parts.append(f"{name}={value}")
    return ", ".join(parts)

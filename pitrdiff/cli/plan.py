"""Commands ``plan`` (write a selective re-put plan) and ``apply`` (execute it)."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from pitrdiff.apply import ApplyReport, apply_plan
from pitrdiff.cli.app import Common, command
from pitrdiff.errors import EXIT_DIFFERENCES, EXIT_OK, RefusedError
from pitrdiff.output import Renderer
from pitrdiff.plan import PlanSummary, load_plan, write_plan

PANEL = "Plan and apply"


@command("plan", rich_help_panel=PANEL)
def plan_command(
    common: Common,
    diff_dir: Annotated[Path, typer.Argument(help="The diff dataset directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The plan file to write.")],
    include: Annotated[
        str,
        typer.Option(
            "--include",
            help="Classes to restore, comma-separated: deleted (default), changed, added.",
        ),
    ] = "deleted",
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="A boolean SQL expression over the diff rows, e.g. "
            "\"json_extract_string(restored_item, '$.tenant.S') = 'acme'\".",
        ),
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option("--keys", help="Only these keys: a CSV (header = key names) or JSON Lines."),
    ] = None,
    table: Annotated[
        str | None,
        typer.Option("--table", help="Target table (default: the diff's live table)."),
    ] = None,
) -> None:
    """Write a selective re-put plan: what to put back (and, if asked, delete)."""
    summary = write_plan(diff_dir, out, include=include, where=where, keys=keys, table=table)
    show_plan_summary(common.renderer, summary)


def show_plan_summary(renderer: Renderer, summary: PlanSummary) -> None:
    """Render what a plan will do."""
    if renderer.json_mode:
        renderer.json(summary)
        return
    counts = summary.counts
    rows = [
        ("plan", summary.path),
        ("target table", summary.table),
        ("put back deleted items (if still absent)", counts.get("deleted", "-")),
        ("restore changed items (if unchanged since the diff)", counts.get("changed", "-")),
        ("delete added items (if unchanged since the diff)", counts.get("added", "-")),
        ("operations", summary.operations),
    ]
    if summary.selection.get("where"):
        rows.append(("where", summary.selection["where"]))
    if summary.selection.get("keys_file"):
        rows.append(("keys file", f"{summary.selection['keys_file']}"))
    renderer.print(renderer.key_value_table("Plan", rows))
    available = ", ".join(f"{n} {c}" for c, n in summary.available.items())
    if available:
        renderer.info(f"the diff holds {available}")
    if summary.empty:
        renderer.info("the selection selects nothing: the plan has no operations")
    else:
        renderer.info(f"next: pitrdiff apply {summary.path} --dry-run")


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

"""Command ``plan``: write a selective re-put plan from a diff dataset."""

from pathlib import Path
from typing import Annotated

import typer

from pitrdiff.cli.app import Common, command
from pitrdiff.output import Renderer
from pitrdiff.recovery.plan import PlanSummary, write_plan

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

"""Command ``plan``: write a selective re-put plan from a diff dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pitrdiff.cli.app import Common, command
from pitrdiff.cli.s3export import S3EndpointOption

if TYPE_CHECKING:
    from pitrdiff.output import Renderer
    from pitrdiff.recovery.plan import PlanSummary

PANEL = "Plan and apply"


# The plan's options as types, so that commands that plan too (``recover``) say the same.
OutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        metavar="FILE",
        help="The plan file to write; never inside an export or diff, never over anything "
        "but a plan.",
    ),
]
IncludeOption = Annotated[
    str,
    typer.Option(
        "--include",
        metavar="CLASSES",
        help="Classes to restore, comma-separated: deleted (default), changed, added, "
        "expired (removed by TTL).",
    ),
]
WhereOption = Annotated[
    str | None,
    typer.Option(
        "--where",
        metavar="SQL",
        help="A boolean SQL expression over the diff rows, e.g. "
        "\"json_extract_string(restored_item, '$.tenant.S') = 'acme'\".",
    ),
]
KeysOption = Annotated[
    Path | None,
    typer.Option(
        "--keys", metavar="FILE", help="Only these keys: a CSV (header = key names) or JSON Lines."
    ),
]
ExcludeKeysOption = Annotated[
    Path | None,
    typer.Option(
        "--exclude-keys",
        metavar="FILE",
        help="Never these keys (a deny list, e.g. erasure requests); same formats as --keys.",
    ),
]
MemoryLimitOption = Annotated[
    str | None,
    typer.Option(
        "--memory-limit",
        metavar="SIZE",
        help="DuckDB memory limit, e.g. 500MB; beyond it DuckDB spills to a private "
        "temporary directory.",
    ),
]


@command(
    "plan",
    rich_help_panel=PANEL,
    help=(
        "Write a selective re-put plan: what to put back (and, if asked, delete).\n\n"
        "Exit codes: 0 written (possibly with no operations); 2 bad input or a refused "
        "--out; 3 I/O failure; 130 interrupted; 143 terminated."
    ),
    examples=[
        (
            "Put back the deleted items (the default)",
            "pitrdiff plan incident/diff --out incident/plan.jsonl",
        ),
        (
            "Deleted and changed items of one tenant",
            "pitrdiff plan incident/diff --out incident/plan.jsonl --include deleted,changed "
            "--where \"attr_text(restored_item, 'tenant') = 'acme'\"",
        ),
        (
            "Only the keys listed, never those of erasure requests",
            "pitrdiff plan incident/diff --out incident/plan.jsonl --keys keys.csv "
            "--exclude-keys erased.csv",
        ),
    ],
)
def plan_command(
    common: Common,
    diff_dir: Annotated[
        str,
        typer.Argument(
            help="The diff dataset directory, or s3://BUCKET/PREFIX (the plan file stays local).",
            metavar="DIFF_DIR",
        ),
    ],
    out: OutOption,
    include: IncludeOption = "deleted",
    where: WhereOption = None,
    keys: KeysOption = None,
    exclude_keys: ExcludeKeysOption = None,
    table: Annotated[
        str | None,
        typer.Option(
            "--table", metavar="TABLE", help="Target table (default: the diff's live table)."
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace a plan already at --out (refused if it has an apply journal).",
        ),
    ] = False,
    memory_limit: MemoryLimitOption = None,
    s3_endpoint_url: S3EndpointOption = None,
) -> None:
    """Write a selective re-put plan: what to put back (and, if asked, delete)."""
    from pitrdiff.export.outdir import refuse_url_path
    from pitrdiff.recovery.plan import write_plan

    refuse_url_path(out, "the plan file")  # Path folds s3:// to s3:/; the plan is never on S3

    summary = write_plan(
        diff_dir,
        out,
        include=include,
        where=where,
        keys=keys,
        exclude_keys=exclude_keys,
        table=table,
        overwrite=overwrite,
        memory_limit=memory_limit,
        s3_endpoint_url=s3_endpoint_url,
        aws=common.aws,
    )
    show_plan_summary(common.renderer, summary)


def _rows(summary: PlanSummary) -> list[tuple[str, Any]]:
    counts = summary.counts
    rows: list[tuple[str, Any]] = [
        ("plan", summary.path),
        ("target table", summary.table),
        ("put back deleted items (if still absent)", counts.get("deleted", "-")),
    ]
    if "expired" in counts:
        rows.append(("put back items TTL removed (if still absent)", counts["expired"]))
    rows += [
        ("restore changed items (if unchanged since the diff)", counts.get("changed", "-")),
        ("delete added items (if unchanged since the diff)", counts.get("added", "-")),
        ("operations", summary.operations),
    ]
    selection = summary.selection
    if selection.get("where"):
        rows.append(("where", selection["where"]))
    if selection.get("keys"):
        listed = selection["keys"]
        rows.append(("keys", f"{listed['source']} ({listed['listed']:,} listed)"))
    if selection.get("exclude_keys"):
        denied = selection["exclude_keys"]
        rows.append(
            (
                "deny list (--exclude-keys)",
                f"{denied['source']} ({denied['listed']:,} keys): "
                f"removed {denied['removed']:,} operations",
            )
        )
    return rows


def show_plan_summary(renderer: Renderer, summary: PlanSummary) -> None:
    """Render what a plan will do, and what to look at before applying it."""
    if renderer.json_mode:
        renderer.json(summary)
        return
    renderer.print(renderer.key_value_table("Plan", _rows(summary)))
    for warning in summary.warnings:
        renderer.warn(warning)
    available = ", ".join(f"{n:,} {c}" for c, n in summary.available.items())
    if available:
        renderer.info(f"the diff holds {available}")
    if summary.empty:
        renderer.info("the selection selects nothing: the plan has no operations")
    else:
        renderer.info(f"next: pitrdiff apply {summary.path} --dry-run")

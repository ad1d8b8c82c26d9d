"""Command ``report``: render a diff's ``report.html`` again (and open it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pitrdiff.cli.app import Common, command

PANEL = "Export and diff"


@command(
    "report",
    rich_help_panel=PANEL,
    help=(
        "Render a diff's report.html again: counts, signatures, attributes, partitions, a "
        "timeline, samples; self-contained (loads nothing from the network).\n\n"
        "Exit codes: 0 written; 2 not a diff; 3 I/O failure; 130 interrupted."
    ),
    examples=[
        ("Render and open in the browser", "pitrdiff report incident/diff --open"),
        ("Timeline by a chosen attribute", "pitrdiff report incident/diff --time-attr updated_at"),
    ],
)
def report_command(
    common: Common,
    diff_dir: Annotated[
        Path, typer.Argument(help="The diff dataset directory.", metavar="DIFF_DIR")
    ],
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the report in the default browser.")
    ] = False,
    time_attr: Annotated[
        str | None,
        typer.Option(
            "--time-attr",
            metavar="NAME",
            help="The timestamp attribute of the timeline (default: detected; '' for none).",
        ),
    ] = None,
) -> None:
    """Render a diff's report.html again."""
    from pitrdiff.diff.html import write_html_report

    path = write_html_report(diff_dir, time_attr=time_attr)
    renderer = common.renderer
    if renderer.json_mode:
        renderer.json({"path": str(path)})
    else:
        renderer.print(str(path))
    if open_browser:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())

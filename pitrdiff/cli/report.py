"""Command ``report``: render a diff's ``report.html`` again (and open it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pitrdiff.cli.app import Common, command
from pitrdiff.cli.s3export import S3EndpointOption
from pitrdiff.errors import InputError

if TYPE_CHECKING:
    from pitrdiff.diff.notebook import Diff

PANEL = "Export and diff"


@command(
    "report",
    rich_help_panel=PANEL,
    help=(
        "Render a diff's report.html again: counts, signatures, attributes, partitions, a "
        "timeline, samples; self-contained (loads nothing from the network).\n\n"
        "Exit codes: 0 written; 2 not a diff, or a broken one (incomplete, a class file "
        "missing, truncated or edited); 3 I/O failure; 130 interrupted."
    ),
    examples=[
        ("Render and open in the browser", "pitrdiff report incident/diff --open"),
        ("Timeline by a chosen attribute", "pitrdiff report incident/diff --time-attr updated_at"),
    ],
)
def report_command(
    common: Common,
    diff_dir: Annotated[
        str,
        typer.Argument(
            help="The diff dataset directory, or s3://BUCKET/PREFIX (report.html is uploaded "
            "beside the diff).",
            metavar="DIFF_DIR",
        ),
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
    s3_endpoint_url: S3EndpointOption = None,
) -> None:
    """Render a diff's report.html again."""
    from pitrdiff.diff.html import write_html_report
    from pitrdiff.export.remote import is_s3_url

    if is_s3_url(diff_dir):
        if open_browser:
            raise InputError("--open needs a local diff: the report of a diff on S3 is uploaded")
        from pitrdiff.diff.remote import write_html_report_s3

        shown = write_html_report_s3(
            diff_dir, time_attr=time_attr, s3_endpoint_url=s3_endpoint_url, aws=common.aws
        )
    else:
        diff = _verified(diff_dir)
        path = write_html_report(diff_dir, time_attr=time_attr)
        shown = str(path)
        if time_attr and (warning := time_attribute_warning(diff, time_attr)):
            common.renderer.warn(warning)
    renderer = common.renderer
    if renderer.json_mode:
        renderer.json({"path": shown})
    else:
        renderer.print(shown)
    if open_browser:
        import webbrowser

        page = Path(shown).resolve()
        try:
            opened = webbrowser.open(page.as_uri())
        except webbrowser.Error:
            opened = False
        if not opened:
            renderer.warn(f"no browser could be opened; the report is {page}")


def _verified(diff_dir: str | Path) -> Diff:
    """The diff at ``diff_dir``, refused when broken (exit 2, one line), as ``plan`` does.

    Complete (the manifest says so), every class file present, of its size and
    xxh3-128 checksum: a missing, empty, truncated or edited file is refused
    before anything is read or written.
    """
    from pitrdiff.diff.notebook import load_diff

    return load_diff(diff_dir, verify=True)


_TIMELINE_COLUMNS = {"deleted": "restored_item", "changed": "live_item", "added": "live_item",
                     "expired": "restored_item"}  # fmt: skip


def time_attribute_warning(diff: Diff, attribute: str) -> str | None:
    """Why ``--time-attr`` gives no timeline, or ``None`` when some affected item has it as a time.

    A diff with no differences has no timeline, whatever the attribute.
    Counted over the affected items' versions the timeline reads (the live
    version of changed and added items, the restored one of deleted and
    expired items): none holds the attribute, or none holds it as a time
    (ISO 8601 text or an epoch number).
    """
    import duckdb

    from pitrdiff.diff.html import epoch_seconds_sql
    from pitrdiff.diff.schema import literal

    path = literal('$."' + attribute.replace("\\", "\\\\").replace('"', '\\"') + '"')
    parts = [
        f"SELECT json_exists({column}, {path}) AS has, "
        f"{epoch_seconds_sql(column, attribute)} IS NOT NULL AS is_time "
        f"FROM read_parquet({literal(str(diff.file_path(name)))})"
        for name, column in _TIMELINE_COLUMNS.items()
        if getattr(diff.summary, name, 0)
    ]
    if not parts:  # no affected item: no timeline, whatever the attribute
        return f"--time-attr {attribute}: the diff has no differences; no timeline"
    con = duckdb.connect()
    try:
        row = con.execute(
            "SELECT count(*) FILTER (has), count(*) FILTER (is_time) FROM ("
            + " UNION ALL ".join(parts)
            + ")"
        ).fetchone()
    finally:
        con.close()
    holding, times = (int(row[0]), int(row[1])) if row else (0, 0)
    if not holding:
        return f"--time-attr {attribute}: no affected item has this attribute; no timeline"
    if not times:
        return (
            f"--time-attr {attribute}: {holding:,} affected items have it, none as a time "
            "(ISO 8601 text or an epoch number); no timeline"
        )
    return None

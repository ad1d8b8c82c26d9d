"""``pitrdiff diff``: diff two exports into a diff dataset and show the summary.

Exit codes: ``0`` the tables hold the same items; ``1`` differences found
(:data:`~pitrdiff.errors.EXIT_DIFFERENCES`); ``2`` bad input (not an export,
an incomplete export, different key schemas, an ``--out`` that holds something
else); ``3`` an I/O failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pitrdiff.cli import s3export as s3cli
from pitrdiff.cli.app import Common, command
from pitrdiff.errors import InputError

if TYPE_CHECKING:
    from rich.console import Group, RenderableType
    from rich.table import Table

    from pitrdiff.diff.core import Diff
    from pitrdiff.diff.report import DiffSummary
    from pitrdiff.output import Renderer

MEANING = {
    "deleted": "in restored, not in live (lost since T)",
    "changed": "in both, different content",
    "added": "in live, not in restored (created since T)",
    "expired": "in restored, not in live, its TTL had passed (removed by TTL: not lost)",
    "unchanged": "in both, same content (counted, not stored)",
}


def _table(title: str) -> Table:
    from rich.table import Table

    return Table(title=title, title_justify="left", title_style="bold", show_edge=False)


def _class_counts(s: DiffSummary, *, ttl_known: bool) -> Table:
    """The "Items per class" table (the expired row when the diff knows the TTL)."""
    from pitrdiff.units import count, human_bytes

    counts = _table("Items per class")
    counts.add_column("class")
    counts.add_column("items", justify="right")
    counts.add_column("bytes", justify="right")
    counts.add_column("meaning")
    rows: list[tuple[str, int, int | None]] = [("deleted", s.deleted, s.deleted_bytes)]
    if ttl_known:
        rows.append(("expired", s.expired, s.expired_bytes))
    rows += [
        ("changed", s.changed, s.changed_bytes),
        ("added", s.added, s.added_bytes),
        ("unchanged", s.unchanged, s.unchanged_bytes),
    ]
    for name, items, size in rows:
        counts.add_row(
            name, count(items), "?" if size is None else human_bytes(size), MEANING[name]
        )
    return counts


def summary_renderables(summary: DiffSummary) -> list[RenderableType]:
    """The summary as rich renderables, in display order (terminal output of ``diff``).

    Every name, key and value from the data goes through
    :func:`~pitrdiff.output.plain` (markup) or :func:`~pitrdiff.output.visible`
    (``Text``): its control characters are shown as escapes, never raw.
    """
    from rich.text import Text

    from pitrdiff.output import plain, visible
    from pitrdiff.units import count

    s = summary
    out: list[RenderableType] = []
    out.append(
        Text.assemble(
            ("Diff of ", "bold"),
            (visible(s.table_name), "bold"),
            visible(f"  (live {s.live_table!s}, restored {s.restored_table!s})"),
        )
    )
    if s.facts.restore_time:
        out.append(Text(f"T (the restored table's restore time): {visible(s.facts.restore_time)}"))
    ttl_known = bool(s.expired or s.facts.ttl_attribute)
    out.append(_class_counts(s, ttl_known=ttl_known))
    ttl = s.ttl_sentences()
    if ttl:
        out.append(Text("\n".join(visible(line) for line in ttl)))
    sentence = s.signature_sentence()
    if sentence:
        out.append(Text(visible(sentence)))
    if s.top_signatures:
        table = _table("Change signatures")
        table.add_column("items", justify="right")
        table.add_column("changed paths")
        for sig in s.top_signatures:
            table.add_row(count(sig.items), plain(sig.signature))
        out.append(table)
    if s.top_attributes:
        table = _table("Attributes changed most often")
        table.add_column("items", justify="right")
        table.add_column("path")
        table.add_column("change")
        for attr in s.top_attributes:
            table.add_row(count(attr.items), plain(attr.path), plain(attr.kind))
        out.append(table)
    if s.top_partitions:
        table = _table(f"Most affected {plain(s.partition_key)} values")
        table.add_column(plain(s.partition_key))
        columns = ["items", "deleted", "expired", "changed", "added"]
        if not ttl_known:  # no TTL: no expired class to show
            columns.remove("expired")
        for column in columns:
            table.add_column(column, justify="right")
        for part in s.top_partitions:
            numbers = [getattr(part, column) for column in columns]
            table.add_row(plain(part.value), *(count(n) for n in numbers))
        out.append(table)
    if s.samples:
        table = _table("Sample keys")
        table.add_column("class")
        table.add_column("keys")
        for name, keys in s.samples.items():
            table.add_row(plain(name), "\n".join(plain(key) for key in keys))
        out.append(table)
    out.append(Text(visible(s.headline()), style="bold"))
    return out


def summary_group(summary: DiffSummary) -> Group:
    """The summary as one rich renderable, blocks separated by blank lines."""
    from rich.console import Group

    return Group(*_spaced(summary_renderables(summary)))


def show_diff(renderer: Renderer, diff: Diff) -> int:
    """Render a diff (table or JSON on stdout) and return the exit code it means.

    Items an incremental export left unclassified (NEW_IMAGE view) count as
    differences too: nothing says they are the same.
    """
    from pitrdiff.diff.core import REPORT_NAME
    from pitrdiff.errors import EXIT_DIFFERENCES, EXIT_OK

    summary = diff.summary
    same = summary.same
    if same and (diff.manifest.live or {}).get("counts"):  # an incremental diff's record counts
        from pitrdiff.diff.incremental import unclassified_count

        same = not unclassified_count(diff)
    where = str(getattr(diff, "url", diff.path))  # a diff on S3: its URL, not the local copy
    report = f"{where}/{REPORT_NAME}"
    if renderer.json_mode:
        renderer.json(
            {
                "diff": where,
                "report": report if hasattr(diff, "url") else str(diff.path / REPORT_NAME),
                "same": same,
                "timings": diff.manifest.timings,
                "summary": summary.to_dict(),
            }
        )
    else:
        renderer.print(summary_group(summary))
        shown = report if hasattr(diff, "url") else diff.path / REPORT_NAME
        renderer.info(f"diff written to {where} (report: {shown})")
    return EXIT_OK if same else EXIT_DIFFERENCES


def _spaced(renderables: list[RenderableType]) -> list[RenderableType]:
    from rich.text import Text

    out: list[RenderableType] = []
    for index, item in enumerate(renderables):
        if index:
            out.append(Text(""))
        out.append(item)
    return out


@command(
    "diff",
    help=(
        "Diff the export of the live table against the export of the restored table "
        "into deleted / changed / added.\n\nExit codes: 0 same items; 1 differences "
        "found; 2 bad input; 3 I/O failure; 130 interrupted."
    ),
    required_options=["--out"],
    examples=[
        (
            "Diff the live table's export against the restored table's",
            "pitrdiff diff incident/live incident/restored --out incident/diff",
        ),
        (
            "Only the verdict, for a script (exit 0: same items, 1: differences)",
            "pitrdiff diff incident/live incident/restored --out incident/diff --quiet",
        ),
        (
            "Diff a native incremental export (its window's start against its end)",
            "pitrdiff diff --incremental s3://my-bucket/exports/AWSDynamoDB/0123-abcd "
            "--out incident/diff",
        ),
    ],
)
def diff_command(
    common: Common,
    live: Annotated[
        str | None,
        typer.Argument(
            help="Export of the live table (pitrdiff export): a directory or s3://BUCKET/PREFIX.",
            metavar="LIVE_EXPORT",
            show_default=False,
        ),
    ] = None,
    restored: Annotated[
        str | None,
        typer.Argument(
            help="Export of the restored table (state at T).",
            metavar="RESTORED_EXPORT",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Directory to write the diff dataset to, or s3://BUCKET/PREFIX (written "
            "locally, then uploaded with the manifest last).",
        ),
    ] = None,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            "--memory-limit",
            metavar="SIZE",
            help="DuckDB memory limit, e.g. 1GB; beyond it the diff spills to disk.",
        ),
    ] = None,
    temp_dir: Annotated[
        str | None,
        typer.Option(
            "--temp-dir",
            metavar="DIR",
            help="Where to spill, a local directory (default: the system temp directory).",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a diff already at --out.")
    ] = False,
    incremental: Annotated[
        str | None,
        typer.Option(
            "--incremental",
            metavar="URL",
            help="Instead of two exports: a native incremental export (s3://B/P/AWSDynamoDB/ID "
            "or a local copy); restored = the window's start, live = its end.",
            rich_help_panel=s3cli.PANEL,
        ),
    ] = None,
    s3_endpoint_url: s3cli.S3EndpointOption = None,
    key: s3cli.KeyOption = None,
    workers: s3cli.WorkersOption = None,
    start_export: s3cli.StartExportOption = None,
    engine: s3cli.EngineOption = "duckdb",
    spark_master: s3cli.SparkMasterOption = None,
    ttl_attribute: s3cli.TtlAttributeOption = None,
) -> None:
    """Diff two exports."""
    renderer = common.renderer
    if incremental is not None and (live is not None or restored is not None):
        raise InputError("--incremental replaces LIVE_EXPORT and RESTORED_EXPORT: give one")
    missing = [
        name for name, v in (("LIVE_EXPORT", live), ("RESTORED_EXPORT", restored)) if v is None
    ]
    if incremental is None and missing:
        raise InputError(
            f"missing {' and '.join(missing)}: give the export of the live table and the "
            "export of the restored table (or --incremental URL), e.g. "
            "pitrdiff diff incident/live incident/restored --out incident/diff"
        )
    if out is None:
        raise InputError("missing --out DIR: the directory to write the diff dataset to")
    if temp_dir is not None:
        from pitrdiff.export.outdir import meant_for_s3

        if meant_for_s3(temp_dir):
            raise InputError(f"--temp-dir {temp_dir} must be a local directory, not S3")
    if incremental is not None:
        from pitrdiff.diff.remote import diff_to_s3
        from pitrdiff.export.remote import is_s3_url

        def incremental_into(target: str | Path, progress: Any) -> Diff:
            return s3cli.incremental_diff(  # type: ignore[no-any-return]
                common,
                source=incremental,
                out=Path(target),
                s3_endpoint_url=s3_endpoint_url,
                key=key,
                workers=workers,
                overwrite=overwrite,
                memory_limit=memory_limit,
                start_export=start_export,
                progress=progress,
                ttl_attribute=ttl_attribute,
                engine=engine,
                spark_master=spark_master,
            )

        with renderer.progress() as progress:
            if is_s3_url(out):  # an s3:// --out: written locally, published manifest last
                diff: Diff = diff_to_s3(out, lambda local: incremental_into(local, progress),
                                  overwrite=overwrite, endpoint_url=s3_endpoint_url,
                                  aws=common.aws)  # fmt: skip
            else:
                diff = incremental_into(out, progress)
        raise typer.Exit(show_diff(renderer, diff))
    if ttl_attribute:
        raise InputError(
            "--ttl-attribute goes with --incremental; two exports carry their table's TTL "
            "setting in their manifests"
        )
    assert live is not None and restored is not None  # checked above
    from pitrdiff.diff.core import diff_exports
    from pitrdiff.spark.choose import export_items, prepare_engine

    chosen = prepare_engine(
        engine, lambda: [export_items(live), export_items(restored)], master=spark_master
    )
    with renderer.progress() as progress:
        diff = diff_exports(
            live,
            restored,
            out,
            memory_limit=memory_limit,
            temp_dir=temp_dir,
            overwrite=overwrite,
            engine=chosen,
            progress=progress,
            s3_endpoint_url=s3_endpoint_url,
            aws=common.aws,
        )
    raise typer.Exit(show_diff(renderer, diff))

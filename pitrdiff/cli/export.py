"""``pitrdiff export``: export a table to a Parquet dataset and show a summary.

The command is one library call per source (today a parallel scan,
:func:`pitrdiff.export.scan.export_table`) followed by :func:`show_export`, which
renders any export manifest, whatever its source.

Exit codes: ``0`` done; ``2`` bad input or refused (no such table, ``--out``
holds a complete export and ``--overwrite`` is not given); ``3`` an AWS or I/O
failure (checkpoints are kept: run the same command again to resume);
``130`` interrupted (resumable too).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pitrdiff.cli import s3export as s3cli
from pitrdiff.cli.app import Common, command
from pitrdiff.errors import InputError

if TYPE_CHECKING:
    from pitrdiff.export.dataset import Manifest
    from pitrdiff.output import Renderer


def export_summary(manifest: Manifest, out: Path | str) -> dict[str, Any]:
    """The figures a finished export reports (the ``--json`` document)."""
    source = manifest.source
    stats = manifest.stats
    return {
        "out": str(out),
        "table_name": manifest.table_name,
        "complete": manifest.complete,
        "source": source.get("kind"),
        "items": manifest.items,
        "bytes": manifest.bytes,
        "parts": len(manifest.files),
        "segments": source.get("segments"),
        "resumes": source.get("resumes", 0),
        "retries": stats.get("retries", 0),
        "throttles": stats.get("throttles", 0),
        "consumed_rcu": stats.get("consumed_rcu"),
        "elapsed_s": stats.get("elapsed_s"),
        "restore": manifest.table.get("restore"),
        "manifest": manifest.to_dict(),
    }


def show_export(renderer: Renderer, manifest: Manifest, out: Path | str) -> None:
    """Render a finished export: one JSON document, or a summary table."""
    from pitrdiff.units import count, human_bytes, human_duration

    summary = export_summary(manifest, out)
    if renderer.json_mode:
        renderer.json(summary)
        return
    rows: list[tuple[str, Any]] = [
        ("table", manifest.table_name),
        ("items", count(manifest.items)),
        ("size", human_bytes(manifest.bytes)),
        ("parts", count(len(manifest.files))),
    ]
    if summary["segments"] is not None:
        rows.append(("segments", summary["segments"]))
    if summary["resumes"]:
        rows.append(("resumed", f"{count(summary['resumes'])} time(s)"))
    rows.append(
        ("retries", f"{count(summary['retries'])} ({count(summary['throttles'])} throttled)")
    )
    if summary["consumed_rcu"] is not None:
        rows.append(("read capacity", f"{summary['consumed_rcu']:,} RCU"))
    if summary["elapsed_s"] is not None:
        rows.append(("time", human_duration(float(summary["elapsed_s"]))))
    restore = summary["restore"]
    if restore:
        rows.append(
            (
                "restored from",
                f"{restore.get('source_table_name')} at {restore.get('restore_date_time')}",
            )
        )
    rows.append(("dataset", str(out)))
    renderer.print(renderer.key_value_table("Export complete", rows))


@command(
    "export",
    help=(
        "Export a table to a Parquet dataset with a parallel segmented scan. Re-run the "
        "same command after an interruption to resume. With --native or --from-s3, read "
        "DynamoDB's own export to S3 instead (no scan).\n\nExit codes: 0 done; 2 bad input "
        "or refused; 3 AWS or I/O failure; 130 interrupted."
    ),
    required_options=["--out"],
    examples=[
        ("Export a table with a parallel scan", "pitrdiff export orders --out incident/live"),
        (
            "Export the restored table at no more than 500 read capacity units per second",
            "pitrdiff export orders-pitr-20261027T140000Z --out incident/restored --max-rcu 500",
        ),
        (
            "Read an existing native DynamoDB export (no scan, no read capacity)",
            "pitrdiff export orders --from-s3 s3://my-bucket/exports/AWSDynamoDB/0123-abcd "
            "--out incident/restored",
        ),
        (
            "Export to S3 (parts first, the manifest last; --s3-endpoint-url for S3-compatible "
            "stores)",
            "pitrdiff export orders --out s3://my-bucket/incident/live",
        ),
    ],
)
def export_command(
    common: Common,
    table: Annotated[
        str | None,
        typer.Argument(
            help="The table to export (name or ARN); optional with --from-s3.",
            metavar="TABLE",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Directory to write the export dataset to, or s3://BUCKET/PREFIX (written "
            "locally, then uploaded with the manifest last; an interrupted export to S3 starts "
            "over: it keeps no checkpoints).",
        ),
    ] = None,
    segments: Annotated[
        int | None,
        typer.Option(
            "--segments",
            min=1,
            metavar="N",
            help="Parallel scan segments (default: about one per GB of table, 4 to 1000).",
        ),
    ] = None,
    consistent_read: Annotated[
        bool,
        typer.Option(
            "--consistent-read",
            help="Strongly consistent reads (twice the read capacity of the default).",
        ),
    ] = False,
    max_rcu: Annotated[
        float | None,
        typer.Option(
            "--max-rcu",
            min=0.5,
            metavar="RCU",
            help="Stay under this many read capacity units per second (measured).",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a complete export already at --out.")
    ] = False,
    native: Annotated[
        bool,
        typer.Option(
            "--native",
            help="Use DynamoDB's own export to S3 at --at (no restore, no read capacity).",
            rich_help_panel=s3cli.PANEL,
        ),
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="With --native: the point in time (ISO 8601, e.g. 2026-10-27T14:00:00Z).",
            rich_help_panel=s3cli.PANEL,
        ),
    ] = None,
    s3_bucket: Annotated[
        str | None,
        typer.Option(
            "--s3-bucket",
            metavar="BUCKET",
            help="With --native: the bucket DynamoDB exports to.",
            rich_help_panel=s3cli.PANEL,
        ),
    ] = None,
    s3_prefix: Annotated[
        str | None,
        typer.Option(
            "--s3-prefix",
            metavar="PREFIX",
            help="With --native: the key prefix in the bucket.",
            rich_help_panel=s3cli.PANEL,
        ),
    ] = None,
    from_s3: Annotated[
        str | None,
        typer.Option(
            "--from-s3",
            metavar="URL",
            help="Read an existing native export: s3://B/P/AWSDynamoDB/ID or a local copy.",
            rich_help_panel=s3cli.PANEL,
        ),
    ] = None,
    s3_endpoint_url: s3cli.S3EndpointOption = None,
    key: s3cli.KeyOption = None,
    workers: s3cli.WorkersOption = None,
    ttl_attribute: s3cli.TtlAttributeOption = None,
    engine: s3cli.EngineOption = "duckdb",
    spark_master: s3cli.SparkMasterOption = None,
) -> None:
    """Export a table."""
    from pitrdiff.export.remote import export_to_s3, is_s3_url
    from pitrdiff.export.scan import export_table

    renderer = common.renderer
    if table is None and not from_s3:
        raise InputError(
            "missing TABLE: give the table to export (or --from-s3 URL), "
            "e.g. pitrdiff export orders --out incident/live"
        )
    if out is None:
        raise InputError("missing --out DIR: the directory to write the export dataset to")
    if not (native or from_s3) and (ttl_attribute or engine != "duckdb" or spark_master):
        raise InputError(
            "--ttl-attribute, --engine and --spark-master go with --native or --from-s3; "
            "a scan export reads the table's TTL setting itself"
        )

    def write(target: Path, replace: bool) -> Manifest:
        with renderer.progress() as progress:
            if native or from_s3:
                return s3cli.s3_export(
                    common,
                    table=table,
                    out=target,
                    native=native,
                    from_s3=from_s3,
                    at=at,
                    s3_bucket=s3_bucket,
                    s3_prefix=s3_prefix,
                    s3_endpoint_url=s3_endpoint_url,
                    key=key,
                    workers=workers,
                    overwrite=replace,
                    progress=progress,
                    ttl_attribute=ttl_attribute,
                    engine=engine,
                    spark_master=spark_master,
                )
            assert table is not None  # checked above
            return export_table(
                table,
                target,
                segments=segments,
                consistent_read=consistent_read,
                max_rcu=max_rcu,
                overwrite=replace,
                aws=common.aws,
                progress=progress,
            )

    if is_s3_url(out):
        manifest = export_to_s3(
            out,
            lambda local: write(local, False),
            overwrite=overwrite,
            endpoint_url=s3_endpoint_url,
            aws=common.aws,
            table=None if native or from_s3 else table,
        )
        show_export(renderer, manifest, out)
        return
    manifest = write(Path(out), overwrite)
    show_export(renderer, manifest, Path(out))

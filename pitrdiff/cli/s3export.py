"""The native-S3-export side of ``pitrdiff export`` and ``pitrdiff diff``.

``pitrdiff export --native`` / ``--from-s3`` and ``pitrdiff diff --incremental``
are options of those commands (``cli/export.py``, ``cli/diff.py``); the work
they do is here, one library call each (:mod:`pitrdiff.export.native`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pitrdiff.cli.app import Common
from pitrdiff.errors import InputError

if TYPE_CHECKING:
    from pitrdiff.export.dataset import Manifest

# The library (pyarrow, DuckDB) is imported inside the functions: the options
# above are imported by `pitrdiff export` / `pitrdiff diff` even for --help.
from pitrdiff.spark.choose import AUTO_SPARK_MIN_ITEMS

PANEL = "Native S3 exports"

S3EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint-url",
        metavar="URL",
        help="S3-compatible endpoint for s3:// exports and datasets "
        "(AWS_ENDPOINT_URL_S3 works too).",
        rich_help_panel=PANEL,
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        metavar="SPEC",
        help="The table's key, PK[:TYPE][,SK[:TYPE]] (e.g. pk:S,sk:N); default: DescribeTable "
        "of the exported table (the export's manifests do not record it).",
        rich_help_panel=PANEL,
    ),
]
StartExportOption = Annotated[
    str | None,  # not a Path: it folds s3://B/P into s3:/B/P
    typer.Option(
        "--start-export",
        metavar="DIR|s3://B/P",
        help="With --incremental: an export of the table at the window's start; the start "
        "state comes from it (needed for NEW_IMAGE exports).",
        rich_help_panel=PANEL,
    ),
]
TtlAttributeOption = Annotated[
    str | None,
    typer.Option(
        "--ttl-attribute",
        metavar="NAME",
        help="The table's TTL attribute, recorded in the export's manifest (default: the "
        "table's setting, DescribeTimeToLive, when the table is described; unknown with --key). "
        "With --incremental: removals after an item's TTL had passed are classified expired.",
        rich_help_panel=PANEL,
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        metavar="N",
        help="Export data files read at once (default: one per CPU core).",
        rich_help_panel=PANEL,
    ),
]


EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        metavar="ENGINE",
        help="duckdb (one machine, the default), spark (Apache Spark: Glue, EMR, local[N]) "
        f"or auto (spark only for inputs of {AUTO_SPARK_MIN_ITEMS:,} items or more, when "
        "pyspark is installed).",
    ),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        metavar="URL",
        help="With --engine spark: where Spark runs when no session is active: local[N], "
        "yarn, spark://HOST:PORT (default local[*]).",
    ),
]


def s3_export(
    common: Common,
    *,
    table: str | None,
    out: Path,
    native: bool,
    from_s3: str | None,
    at: str | None,
    s3_bucket: str | None,
    s3_prefix: str | None,
    s3_endpoint_url: str | None,
    key: str | None,
    workers: int | None,
    overwrite: bool,
    progress: Any,
    ttl_attribute: str | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> Manifest:
    """Run ``export --native`` or ``export --from-s3``; return the dataset's manifest."""
    from pitrdiff.export.native import export_native, ingest_export

    if native and from_s3:
        raise InputError("--native starts a new export, --from-s3 reads one: give only one")
    if from_s3:
        if at or s3_bucket or s3_prefix:
            raise InputError("--at, --s3-bucket and --s3-prefix go with --native, not --from-s3")
        if _on_spark(common, from_s3, s3_endpoint_url, engine, spark_master):
            from pitrdiff.export.native_spark import ingest_export_spark

            if workers:
                raise InputError(
                    "--workers is for one machine; with --engine spark, Spark "
                    "runs one task per data file"
                )
            return ingest_export_spark(
                from_s3,
                out,
                aws=common.aws,
                s3_endpoint_url=s3_endpoint_url,
                key_schema=key,
                table_name=table,
                ttl_attribute=ttl_attribute,
                overwrite=overwrite,
                progress=progress,
            )
        return ingest_export(
            from_s3,
            out,
            aws=common.aws,
            s3_endpoint_url=s3_endpoint_url,
            key_schema=key,
            table_name=table,
            ttl_attribute=ttl_attribute,
            workers=workers,
            overwrite=overwrite,
            progress=progress,
        )
    if not table:
        raise InputError("--native needs the TABLE to export")
    if not at or not s3_bucket:
        raise InputError("--native needs --at TIME and --s3-bucket BUCKET")
    if key:
        raise InputError("--key goes with --from-s3; --native learns the key from the table")
    if engine != "duckdb" or spark_master:
        raise InputError(
            "--engine and --spark-master go with --from-s3: run export --native, then "
            "export --from-s3 URL --engine spark"
        )
    return export_native(
        table,
        at=at,
        s3_bucket=s3_bucket,
        s3_prefix=s3_prefix,
        out=out,
        aws=common.aws,
        s3_endpoint_url=s3_endpoint_url,
        ttl_attribute=ttl_attribute,
        workers=workers,
        overwrite=overwrite,
        progress=progress,
    )


def _on_spark(
    common: Common, source: str, s3_endpoint_url: str | None, engine: str, master: str | None
) -> bool:
    """Whether ``--from-s3`` runs on Spark (``auto``: by the export's item count)."""
    from pitrdiff.export.native import read_summary
    from pitrdiff.spark.choose import prepare_engine

    def items() -> list[int]:
        summary = read_summary(source, aws=common.aws, s3_endpoint_url=s3_endpoint_url)
        return [summary.item_count]

    return prepare_engine(engine, items, master=master) == "spark"


def incremental_diff(
    common: Common,
    *,
    source: str,
    out: Path,
    s3_endpoint_url: str | None,
    key: str | None,
    workers: int | None,
    overwrite: bool,
    memory_limit: str | None,
    start_export: str | None,
    progress: Any,
    ttl_attribute: str | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> Any:
    """Run ``diff --incremental``; return the :class:`~pitrdiff.diff.Diff` written.

    ``--engine auto`` runs on Spark when the export's records (``itemCount``)
    and the ``--start-export``'s items reach ``AUTO_SPARK_MIN_ITEMS`` together.
    """
    from pitrdiff.diff.incremental import check_engine, diff_incremental
    from pitrdiff.export.native import read_summary
    from pitrdiff.spark.choose import export_items, prepare_engine

    def items() -> list[int]:
        summary = read_summary(source, aws=common.aws, s3_endpoint_url=s3_endpoint_url)
        return [summary.item_count, export_items(start_export) if start_export else 0]

    check_engine(engine, workers, spark_master)  # before a Spark session starts
    chosen = prepare_engine(engine, items, master=spark_master)
    return diff_incremental(
        source,
        out,
        aws=common.aws,
        s3_endpoint_url=s3_endpoint_url,
        key_schema=key,
        ttl_attribute=ttl_attribute,
        workers=workers,
        overwrite=overwrite,
        memory_limit=memory_limit,
        start_export=start_export,
        engine=chosen,
        master=spark_master if chosen == "spark" else None,
        progress=progress,
    )

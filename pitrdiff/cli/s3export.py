"""The native-S3-export side of ``pitrdiff export`` and ``pitrdiff diff``.

``pitrdiff export --native`` / ``--from-s3`` and ``pitrdiff diff --incremental``
are options of those commands (``cli/export.py``, ``cli/diff.py``); the work
they do is here, one library call each (:mod:`pitrdiff.export.native`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pitrdiff.cli.app import Common
from pitrdiff.diff.incremental import diff_incremental
from pitrdiff.errors import InputError
from pitrdiff.export.dataset import Manifest
from pitrdiff.export.native import export_native, ingest_export

PANEL = "Native S3 exports"

S3EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint-url",
        help="S3-compatible endpoint for reading exports (AWS_ENDPOINT_URL_S3 works too).",
        rich_help_panel=PANEL,
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="The table's key, PK[:TYPE][,SK[:TYPE]] (e.g. pk:S,sk:N); default: DescribeTable "
        "of the exported table (the export's manifests do not record it).",
        rich_help_panel=PANEL,
    ),
]
StartExportOption = Annotated[
    Path | None,
    typer.Option(
        "--start-export",
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
        help="Export data files read at once (default: one per CPU core).",
        rich_help_panel=PANEL,
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
) -> Manifest:
    """Run ``export --native`` or ``export --from-s3``; return the dataset's manifest."""
    if native and from_s3:
        raise InputError("--native starts a new export, --from-s3 reads one: give only one")
    if from_s3:
        if at or s3_bucket or s3_prefix:
            raise InputError("--at, --s3-bucket and --s3-prefix go with --native, not --from-s3")
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
    start_export: Path | None,
    progress: Any,
    ttl_attribute: str | None = None,
) -> Any:
    """Run ``diff --incremental``; return the :class:`~pitrdiff.diff.Diff` written."""
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
        progress=progress,
    )

"""``diff_exports``: two export datasets to a diff dataset, through a chosen engine.

The orchestration, as a list of named stages: check ``out``; open and verify
both exports; merge their key schemas; classify with the engine
(:mod:`pitrdiff.diff.engine`); write the dataset with the shared writer
(:mod:`pitrdiff.diff.writer`).
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitrdiff.diff.engine import EngineOptions, make_engine
from pitrdiff.diff.manifest import prepare_out
from pitrdiff.diff.schema import merge_key_schemas
from pitrdiff.diff.sql import DEFAULT_THREADS, check_memory_limit
from pitrdiff.diff.ttl import parse_time, ttl_rule
from pitrdiff.diff.writer import write_diff_dataset
from pitrdiff.errors import ExportError
from pitrdiff.export.dataset import Export, load_export
from pitrdiff.export.remote import is_s3_url
from pitrdiff.files import private_temp_dir
from pitrdiff.progress import SILENT, Progress

if TYPE_CHECKING:
    from pitrdiff.aws import AwsConfig
    from pitrdiff.diff.notebook import Diff

LOG = logging.getLogger(__name__)


def _warn_if_unrelated(live: Export, restored: Export) -> None:
    """Warn (not refuse) when the inputs do not look like a table and its restore."""
    live_name = live.table_name
    restored_name = restored.table_name
    restore = restored.manifest.table.get("restore") or {}
    source_name = restore.get("source_table_name")
    if source_name:
        if source_name != live_name:
            LOG.warning(
                "the restored table %r was restored from %r, not from the live table %r",
                restored_name,
                source_name,
                live_name,
            )
    elif live_name.lower() not in restored_name.lower() and restored_name != live_name:
        LOG.warning(
            "table names do not look related: live %r, restored %r (is the order "
            "LIVE_EXPORT RESTORED_EXPORT?)",
            live_name,
            restored_name,
        )
    restore_time = parse_time(restore.get("restore_date_time"))
    source = live.manifest.source
    live_time = parse_time(source.get("started_at") or live.manifest.created_at)
    if restore_time and live_time and live_time < restore_time:
        LOG.warning(
            "the live export of %r was taken at %s, before the restore time %s of %r "
            "(are the exports swapped or stale?)",
            live_name,
            live_time.isoformat(),
            restore_time.isoformat(),
            restored_name,
        )
    live_restore = live.manifest.table.get("restore") or {}
    if live_restore and not restore:
        LOG.warning(
            "the live export %r is of a restored table and the restored export %r is not "
            "(is the order LIVE_EXPORT RESTORED_EXPORT?)",
            live_name,
            restored_name,
        )


def _open_input(
    path: str | os.PathLike[str], role: str, *, spark: bool = False, **s3: Any
) -> Export:
    try:
        if spark and is_s3_url(path):
            # on Spark the executors check and read the parts on S3: no copy on the driver
            from pitrdiff.spark.s3 import load_s3_export

            export: Export = load_s3_export(str(path), endpoint_url=s3.get("s3_endpoint_url"))
        else:
            export = load_export(path, **s3)
    except ExportError as exc:
        raise type(exc)(f"{role} export: {exc}", path=exc.path) from exc
    return export


def _verify_both(live: Export, restored: Export) -> None:
    """Check both exports' parts against their checksums, in parallel (xxhash drops the GIL)."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="pitrdiff-verify") as pool:
        futures = [pool.submit(export.verify) for export in (live, restored)]
        for future in futures:
            future.result()


def diff_exports(
    live: str | os.PathLike[str] | Export,
    restored: str | os.PathLike[str] | Export,
    out: str | os.PathLike[str],
    *,
    memory_limit: str | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
    threads: int = DEFAULT_THREADS,
    overwrite: bool = False,
    engine: str = "duckdb",
    ttl_attribute: str | None = None,
    progress: Progress = SILENT,
    s3_endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
) -> Diff:
    """Diff two exports (live and restored) into a diff dataset at ``out``.

    Parameters
    ----------
    live
        The export of the live table (a path, ``s3://bucket/prefix``, or an
        opened :class:`~pitrdiff.export.dataset.Export`).
    restored
        The export of the restored table (the state at T).
    out
        The diff directory to write, or ``s3://bucket/prefix``: the diff is
        written into a private local directory, then uploaded with its
        manifest last (:mod:`pitrdiff.diff.remote`); the diff returned is read
        from that local copy, removed when it is.
    memory_limit
        The engine's memory limit (``"1GB"``); DuckDB spills beyond it. A
        negative or zero size is refused (``InputError``).
    temp_dir
        Where the engine spills (a private temporary directory is made inside it).
    threads
        Worker threads.
    overwrite
        Replace a diff already at ``out``.
    engine
        The diff engine by name: ``duckdb`` (default) or ``spark``
        (:data:`pitrdiff.diff.engine.ENGINES`).
    ttl_attribute
        The table's TTL attribute, when the exports do not record it (the live
        export's recorded setting is used by default, else the restored one's).
        Deleted items whose restored version had expired by the live export's
        time are classified ``expired`` (:mod:`pitrdiff.diff.ttl`).
    progress
        Reports the phases.
    s3_endpoint_url
        An S3-compatible endpoint for ``s3://`` inputs and ``out``
        (``AWS_ENDPOINT_URL_S3`` works too).
    aws
        Profile and region for S3.

    Returns
    -------
    Diff
        The diff written; ``diff.summary.same`` says whether the tables hold the same items.

    Raises
    ------
    ExportError
        When an input is not an export or a part does not match its checksum.
    IncompleteExportError
        When an input export is not complete.
    SchemaMismatchError
        When the key schemas differ.
    RefusedError
        When ``out`` holds something else, or a diff and ``overwrite`` is false.
    InputError
        For an unknown or unavailable engine.
    """
    started = time.perf_counter()
    memory_limit = check_memory_limit(memory_limit)
    if is_s3_url(out):
        from pitrdiff.diff.remote import diff_to_s3

        def write(local: Path) -> Diff:
            return diff_exports(
                live, restored, local, memory_limit=memory_limit, temp_dir=temp_dir,
                threads=threads, engine=engine, ttl_attribute=ttl_attribute, progress=progress,
                s3_endpoint_url=s3_endpoint_url, aws=aws,
            )  # fmt: skip

        return diff_to_s3(
            str(out), write, overwrite=overwrite, endpoint_url=s3_endpoint_url, aws=aws
        )
    prepare_out(out, overwrite=overwrite, check_only=True)
    s3 = {"s3_endpoint_url": s3_endpoint_url, "aws": aws, "spark": engine == "spark"}
    live_export, restored_export = _open_inputs(live, restored, progress, **s3)
    key_schema = merge_key_schemas(live_export.key_schema, restored_export.key_schema)
    ttl = ttl_rule(live_export.manifest, restored_export.manifest, ttl_attribute)
    _warn_if_unrelated(live_export, restored_export)
    verified = time.perf_counter()

    with private_temp_dir("diff", temp_dir) as spill:
        options = EngineOptions(memory_limit=memory_limit, temp_dir=spill, threads=threads)
        classified = make_engine(engine, options).classify(
            live_export, restored_export, key_schema, progress=progress
        )
        try:
            return write_diff_dataset(
                out,
                key_schema=key_schema,
                table_name=live_export.table_name,
                deleted=classified.deleted,
                changed=classified.changed,
                added=classified.added,
                unchanged_count=classified.unchanged_count,
                unchanged_bytes=classified.unchanged_bytes,
                inputs={"live": _input(live_export), "restored": _input(restored_export)},
                timings={
                    "verify_s": round(verified - started, 3),
                    **classified.timings,
                },
                overwrite=overwrite,
                memory_limit=memory_limit,
                temp_dir=spill,
                progress=progress,
                ttl=ttl,
            )
        finally:
            classified.close()


def _open_inputs(
    live: str | os.PathLike[str] | Export,
    restored: str | os.PathLike[str] | Export,
    progress: Progress,
    **s3: Any,
) -> tuple[Export, Export]:
    progress.start("verifying the exports", total=None)
    live_export = live if isinstance(live, Export) else _open_input(live, "live", **s3)
    restored_export = (
        restored if isinstance(restored, Export) else _open_input(restored, "restored", **s3)
    )
    _verify_both(live_export, restored_export)
    progress.finish()
    return live_export, restored_export


def _input(export: Export) -> dict[str, Any]:
    """What the diff's manifest records of one input."""
    # an export on S3 (staged, or read by Spark's executors) is recorded by its URL
    return {"path": str(getattr(export, "url", export.path)), **export.manifest.identity()}

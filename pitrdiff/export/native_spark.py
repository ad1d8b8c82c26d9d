"""Native full exports ingested on Apache Spark: one Spark task per data file.

The same work as :func:`pitrdiff.export.native.ingest_export`, spread over a
Spark cluster instead of one machine's cores: each data file is one Spark
task running pitrdiff's own file reader
(:func:`pitrdiff.export.native.stream.process_file`), which streams the gzip
lines, checks the file's MD5 and item count against ``manifest-files.json``,
canonicalises every item with pitrdiff's codec and writes the file's Parquet
parts. The driver reads the manifests, writes the dataset's manifest
(incomplete first, complete last) and lists the parts the tasks report.

Why not ``spark.read.json``: on DynamoDB JSON it loses data (attributes whose
names differ only in letter case collide; empty maps are dropped), and gzip
files cannot be split anyway: one task per file is the natural unit.

The tasks write the parts into ``out`` themselves, so ``out`` is either a
directory every executor and the driver see (any directory in local mode, a
shared mount on a cluster), or ``s3://bucket/prefix``: then each task writes
its parts in a private directory and uploads them, and the driver writes the
manifest (incomplete first, complete last), as on disk.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pitrdiff import errors
from pitrdiff.aws import AwsConfig
from pitrdiff.errors import ExportError, InputError, PitrdiffError
from pitrdiff.export.dataset import (
    DATA_DIR,
    DEFAULT_PART_BYTES,
    KeySchema,
    Manifest,
    prepare_directory,
    remove_unlisted_parts,
    utc_now,
    write_manifest,
)
from pitrdiff.export.native.ingest import FullSink
from pitrdiff.export.native.location import ExportLocation, Reader
from pitrdiff.export.native.manifest import FULL_EXPORT, summary_of
from pitrdiff.export.native.stream import FileOutcome, FileTask, process_file
from pitrdiff.export.native.table import (
    peek_key_types,
    resolve_key_schema,
    resolve_ttl,
)
from pitrdiff.progress import SILENT, Progress
from pitrdiff.spark.session import get_session, spark_errors

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Failure = tuple[str, str, str | None]
"""A task's failure as it travels back to the driver: class name, message, path."""


TaskResult = tuple[int, FileOutcome | None, Failure | None]


def run_task(task: FileTask) -> TaskResult:
    """Executor side: process one data file; pitrdiff's refusals come back as values.

    A refusal (MD5 or item count mismatch, a corrupt line) is returned rather
    than raised, so the driver can raise the very same error in one line
    instead of Spark's Python traceback; anything else fails the task (and is
    retried by Spark, as a lost executor would be).
    """
    try:
        return task.index, process_file(task), None
    except PitrdiffError as exc:
        return task.index, None, (type(exc).__name__, str(exc), getattr(exc, "path", None))


def _run_task_to_s3(task: FileTask, url: str, endpoint_url: str | None) -> TaskResult:
    """Executor side: process one file into a private directory, upload its parts to ``url``."""
    from pitrdiff.spark.s3 import upload_part

    with tempfile.TemporaryDirectory(prefix="pitrdiff-parts-") as work:
        (Path(work) / DATA_DIR).mkdir()
        index, outcome, failure = run_task(replace(task, out=work))
        for part in outcome.parts if outcome else ():
            upload_part(Path(work) / part.path, url, part.path, endpoint_url)
        return index, outcome, failure


class _Destination:
    """Where the dataset goes: a directory every node sees, or ``s3://bucket/prefix``."""

    def __init__(self, out: str | os.PathLike[str], endpoint_url: str | None) -> None:
        self.url = os.fspath(out) if os.fspath(out).startswith("s3://") else None
        self.root = None if self.url else Path(out)
        self.endpoint_url = endpoint_url
        self.manifest_etag = "absent"  # what the next manifest PUT expects to replace

    def prepare(self, overwrite: bool) -> str:
        """Refuse or clear what is there (as on disk); the directory tasks write to."""
        if self.url is None:
            assert self.root is not None
            return str(prepare_directory(self.root, overwrite=overwrite))
        from pitrdiff.spark.s3 import prepare_export_out

        prepare_export_out(self.url, overwrite=overwrite, endpoint_url=self.endpoint_url)
        return ""

    def runner(self) -> Callable[[FileTask], TaskResult]:
        if self.url is None:
            return run_task
        return functools.partial(_run_task_to_s3, url=self.url, endpoint_url=self.endpoint_url)

    def write_manifest(self, manifest: Manifest) -> None:
        if self.url is None:
            assert self.root is not None
            write_manifest(self.root, manifest)
            return
        from pitrdiff.spark.s3 import put_manifest

        self.manifest_etag = put_manifest(
            self.url, manifest, endpoint_url=self.endpoint_url, only_if=self.manifest_etag
        )

    def remove_unlisted(self, keep: Sequence[str]) -> None:
        if self.url is None:
            assert self.root is not None
            remove_unlisted_parts(self.root, keep)
            return
        from pitrdiff.spark.s3 import remove_unlisted

        remove_unlisted(self.url, keep, endpoint_url=self.endpoint_url)

    @contextlib.contextmanager
    def no_parts_on_failure(self) -> Iterator[None]:
        """On any failure (an interrupt included) remove the parts written so far."""
        try:
            yield
        except BaseException:
            with contextlib.suppress(OSError, PitrdiffError):
                self.remove_unlisted([])
            raise


def raise_failure(failure: Failure) -> None:
    """Raise on the driver the error a task returned (same class and message)."""
    name, message, path = failure
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, ExportError):
        raise kind(message, path=path)
    if isinstance(kind, type) and issubclass(kind, PitrdiffError):
        with contextlib.suppress(TypeError):
            raise kind(message)
    raise ExportError(message, path=path)


def run_files_on_spark(
    spark: SparkSession,
    tasks: Sequence[FileTask],
    *,
    label: str,
    total_items: int,
    progress: Progress = SILENT,
    runner: Callable[[FileTask], TaskResult] | None = None,
) -> list[FileOutcome]:
    """Process every data file as one Spark task; the outcomes in task order.

    Parameters
    ----------
    spark
        The session to run on.
    tasks
        One per data file (see :class:`~pitrdiff.export.native.stream.FileTask`).
    label
        The progress task's name (also the Spark job group's description).
    total_items
        Items in all files (the progress total).
    progress
        Advanced by each file's lines once the job is done.
    runner
        What each task runs (default: process the file into ``task.out``).

    Raises
    ------
    ExportError
        The first failing file's refusal, by position in ``manifest-files.json``.
    StorageError
        When Spark itself fails.
    """
    if not tasks:
        return []
    context = spark.sparkContext
    group = f"pitrdiff-{uuid.uuid4().hex[:12]}"
    progress.start(label, total=total_items)
    try:
        context.setJobGroup(group, label, interruptOnCancel=True)
        try:
            with spark_errors():
                results = (
                    context.parallelize(list(tasks), numSlices=len(tasks))
                    .map(runner or run_task)
                    .collect()
                )
        except BaseException:
            context.cancelJobGroup(group)  # an interrupt stops the executors too
            raise
        finally:
            context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        results.sort(key=lambda r: r[0])
        for _, _, failure in results:
            if failure is not None:
                raise_failure(failure)
        outcomes = [outcome for _, outcome, _ in results if outcome is not None]
        for outcome in outcomes:
            progress.advance(outcome.lines, files=1)
        return outcomes
    finally:
        progress.finish()


def ingest_export_spark(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    s3_endpoint_url: str | None = None,
    key_schema: KeySchema | Sequence[Mapping[str, str]] | str | None = None,
    table_name: str | None = None,
    ttl_attribute: str | None = None,
    overwrite: bool = False,
    part_bytes: int | None = None,
    master: str | None = None,
    progress: Progress = SILENT,
) -> Manifest:
    """Read a native full export into an export dataset, one Spark task per data file.

    The dataset is the one :func:`pitrdiff.export.native.ingest_export` writes
    (same parts, same rows, same checksums); the parameters are its own, but
    ``workers`` and ``executor`` are Spark's business here.

    Parameters
    ----------
    source
        ``s3://bucket/prefix/AWSDynamoDB/<export-id>`` or a local directory.
    out
        The export dataset: a directory every executor sees (see the module
        docstring), or ``s3://bucket/prefix`` (each task uploads its parts;
        the manifest is written last; ``s3_endpoint_url`` serves it too).
    aws, s3_endpoint_url, key_schema, table_name, ttl_attribute, overwrite, part_bytes
        As for :func:`~pitrdiff.export.native.ingest_export`. Executors read
        S3 with their own credentials (the instance role on Glue or EMR).
    master
        Where to start a Spark session when none is active (``local[N]``, ``yarn``).
    progress
        Receives the items of each data file.

    Returns
    -------
    Manifest
        The manifest written (``source.kind`` ``"s3-export"``, ``complete``).

    Raises
    ------
    ExportError
        A manifest missing or malformed; a data file missing, corrupt, or
        disagreeing with ``manifest-files.json`` (MD5, item count); an invalid
        item. The dataset is left incomplete and without parts.
    InputError
        An incremental or ION export, a key schema that cannot be learned, or
        pyspark not installed.
    RefusedError
        When ``out`` holds a complete export and ``overwrite`` is false.
    """
    started = utc_now()
    clock = time.monotonic()
    spark = get_session(master)
    reader = Reader(ExportLocation.parse(source), aws or AwsConfig(), s3_endpoint_url)
    summary = summary_of(reader)
    if summary.export_type != FULL_EXPORT:
        raise InputError(
            f"{summary.location.url} is an incremental export (a change log, not a table "
            "state): use `pitrdiff diff --incremental` / diff_incremental()"
        )
    schema, facts = resolve_key_schema(summary, key_schema, aws)
    facts["ttl"] = resolve_ttl(facts, ttl_attribute)
    schema = peek_key_types(reader, summary, schema)
    destination = _Destination(out, s3_endpoint_url)
    task_out = destination.prepare(overwrite)
    source_doc = {"kind": "s3-export", **summary.to_dict(), "started_at": started}
    base = Manifest(
        table_name=table_name or summary.table_name or summary.location.export_id,
        key_schema=schema,
        source=source_doc,
        table=facts,
    )
    destination.write_manifest(base)
    with destination.no_parts_on_failure():
        tasks = [
            FileTask(
                index,
                reader,
                data_file,
                task_out,
                schema,
                part_bytes or DEFAULT_PART_BYTES,
                FullSink,
            )
            for index, data_file in enumerate(summary.files)
        ]
        outcomes = run_files_on_spark(
            spark,
            tasks,
            label=f"ingesting {summary.location.export_id} on Spark",
            total_items=summary.item_count,
            progress=progress,
            runner=destination.runner(),
        )
        parts = tuple(p for o in outcomes for p in o.parts)
        destination.remove_unlisted([p.path for p in parts])  # left by retried tasks
        items = sum(o.items for o in outcomes)
        if items != summary.item_count:
            raise ExportError(f"{summary.location.url}: read {items} items, expected more")
    manifest = replace(
        base,
        source={**source_doc, "finished_at": utc_now()},
        complete=True,
        files=parts,
        items=items,
        bytes=sum(o.bytes for o in outcomes),
        stats={
            "elapsed_s": round(time.monotonic() - clock, 3),
            "data_files": len(outcomes),
            "engine": "spark",
            "spark_master": spark.sparkContext.master,
        },
    )
    destination.write_manifest(manifest)
    return manifest

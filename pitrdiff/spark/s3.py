"""Export datasets on S3 for the Spark job (AWS Glue, EMR): read by the executors.

A Glue job's workers share no filesystem, so the job reads its input exports
from S3 and writes its datasets to S3, with the same rules as on disk. What is
generic (a prefix and its client, the manifest read first and refused unless
complete, each file checked against the manifest, the refusals of an
``--out`` prefix, publishing with the manifest last) is
:mod:`pitrdiff.export.remote`'s, which every command uses; this module adds
only what runs on the executors:

- every part of an input export is checked against the manifest (size and
  xxh3-128) by the executors, one task per part, before anything is read;
- the parts are read by Python tasks (boto3 and pyarrow, one task per part):
  no Hadoop S3 connector is needed, and the same code runs on Glue, EMR and
  in local mode against any S3-compatible endpoint;
- a native ingestion's tasks upload their parts themselves; the driver
  writes the manifest (incomplete first, complete last).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pitrdiff.errors import ExportError
from pitrdiff.export.dataset import HASH_COLUMN, MANIFEST_NAME, Export, Manifest
from pitrdiff.export.outdir import DATA_DIR
from pitrdiff.export.remote import (
    S3Prefix,
    changed_meanwhile,
    check_out,
    checked_read,
    open_manifest,
)
from pitrdiff.export.s3prefix import ConditionFailed
from pitrdiff.spark.arrow import spark_schema
from pitrdiff.spark.session import spark_errors

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class S3Export(Export):
    """An export dataset on S3, opened for reading by the Spark engine.

    ``path`` keeps the URL's text for messages; :attr:`url` is the URL itself.
    """

    def __init__(self, url: str, manifest: Manifest, endpoint_url: str | None) -> None:
        super().__init__(Path(url), manifest)
        self.url = url.rstrip("/")
        self.endpoint_url = endpoint_url

    @property
    def parquet_files(self) -> list[str]:
        """The parts' URLs, in manifest order."""
        return [f"{self.url}/{f.path}" for f in self.manifest.files]

    def verify(self) -> None:
        """Check every part against the manifest, on the executors (see :meth:`verify_on`)."""
        from pitrdiff.spark.session import get_session

        with self._lock:
            if not self._verified:
                self.verify_on(get_session())
                self._verified = True

    def verify_on(self, spark: SparkSession) -> None:
        """Check every part's size and xxh3-128 on the executors, one task per part.

        Raises
        ------
        ExportError
            Naming the first part (in manifest order) missing or not matching.
        """
        entries = [(f.path, f.bytes, f.xxh3_128) for f in self.manifest.files]
        if not entries:
            return
        check = functools.partial(_check_part, url=self.url, endpoint_url=self.endpoint_url)
        with spark_errors():
            problems = spark.sparkContext.parallelize(entries, len(entries)).map(check).collect()
        for problem in problems:
            if problem:
                raise ExportError(f"export {self.url}: {problem}", path=self.url)

    def frame(self, spark: SparkSession) -> DataFrame:
        """The parts' rows as a DataFrame (``_hash`` as ``decimal(20,0)``, as Spark reads it)."""
        schema = self.key_schema.arrow_schema()
        read = functools.partial(_read_parts, endpoint_url=self.endpoint_url)
        urls = spark.createDataFrame([(u,) for u in self.parquet_files], "url string")
        return urls.repartition(max(1, len(self.parquet_files))).mapInArrow(
            read, spark_schema(schema)
        )


def _check_part(entry: tuple[str, int, str], url: str, endpoint_url: str | None) -> str | None:
    """Executor side: a part's problem, or ``None`` when it matches the manifest."""
    relative, size, checksum = entry
    try:
        return checked_read(
            S3Prefix.parse(url, endpoint_url=endpoint_url), relative, size, checksum
        )
    except Exception as exc:
        return f"part {relative} cannot be read ({type(exc).__name__}: {exc})"


def _read_parts(batches: Iterator[pa.RecordBatch], endpoint_url: str | None) -> Iterator[Any]:
    """Executor side: the rows of each part URL in ``batches`` (uint64 → decimal(20,0))."""
    client = None
    for batch in batches:
        for url in batch.column(0).to_pylist():
            part = S3Prefix.parse(url, endpoint_url=endpoint_url)
            client = client or part.client()
            data = client.get_object(Bucket=part.bucket, Key=part.prefix)["Body"].read()
            table = pq.read_table(pa.BufferReader(data))
            index = table.schema.get_field_index(HASH_COLUMN)
            table = table.set_column(
                index, HASH_COLUMN, table.column(index).cast(pa.decimal128(20, 0))
            )
            yield from table.to_batches()


def load_s3_export(url: str, *, endpoint_url: str | None = None) -> S3Export:
    """Open the export dataset at ``s3://bucket/prefix`` (its manifest; parts are read later).

    Raises
    ------
    ExportError
        When there is no readable export manifest there.
    IncompleteExportError
        When the manifest does not say ``complete``, or disagrees with ``data/``.
    """
    where = S3Prefix.parse(url, endpoint_url=endpoint_url)
    _, doc = open_manifest(where, "export")
    return S3Export(where.url, Manifest.from_dict(doc), endpoint_url)


def prepare_export_out(url: str, *, overwrite: bool, endpoint_url: str | None = None) -> None:
    """Make ``s3://…`` ready for a new export dataset, as ``prepare_directory`` does on disk.

    Raises
    ------
    RefusedError
        When the prefix lies inside another dataset, holds something other
        than an export, objects pitrdiff did not write, or a complete export
        and ``overwrite`` is false (:func:`pitrdiff.export.remote.check_out`).
    """
    where = S3Prefix.parse(url, endpoint_url=endpoint_url)
    old = check_out(where, "export", overwrite=overwrite)
    # the manifest first: from then on the prefix holds an incomplete export
    where.delete(sorted(old, key=lambda k: k != MANIFEST_NAME))


def put_manifest(
    url: str, manifest: Manifest, *, endpoint_url: str | None = None, only_if: str = "absent"
) -> str:
    """Write an export dataset's ``manifest.json`` at ``s3://…`` (one PUT: atomic); its ETag.

    Conditional: the first PUT only if there is no manifest
    (:func:`prepare_export_out` removed the old one; ``If-None-Match: *``),
    each later one only if the manifest is still the one this run wrote
    (``only_if`` = the ETag the previous PUT returned; ``If-Match``). So of
    two runs ingesting into one prefix the later is refused instead of
    silently replacing the other (parts the two wrote over each other are
    then refused on read by their checksums, never read as data).

    Raises
    ------
    RefusedError
        When another run wrote the prefix's manifest since this one began.
    """
    body = orjson.dumps(manifest.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
    where = S3Prefix.parse(url, endpoint_url=endpoint_url)
    try:
        etag = where.put(MANIFEST_NAME, body, only_if=only_if)
    except ConditionFailed as exc:
        raise changed_meanwhile(where, "export", "ingested") from exc
    return etag or where.etag(MANIFEST_NAME) or "absent"


def upload_part(local: Path, url: str, relative: str, endpoint_url: str | None) -> None:
    """Upload one part written at ``local`` to ``url/relative`` (executor side)."""
    S3Prefix.parse(url, endpoint_url=endpoint_url).upload(local, relative)


def remove_unlisted(url: str, keep: Sequence[str], *, endpoint_url: str | None = None) -> None:
    """Delete the parts under ``url/data/`` not named in ``keep`` (relative paths)."""
    where = S3Prefix.parse(url, endpoint_url=endpoint_url)
    wanted = set(keep)
    where.delete(sorted(k for k in where.listing(f"{DATA_DIR}/") if k not in wanted))


__all__ = [
    "S3Export",
    "load_s3_export",
    "prepare_export_out",
    "put_manifest",
    "remove_unlisted",
    "upload_part",
]

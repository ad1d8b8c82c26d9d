"""Export and diff datasets on S3 for the Spark job (AWS Glue, EMR).

A Glue job's workers share no filesystem, so the job reads its input exports
from S3 and writes its diff dataset to S3, with the same rules as on disk:

- an input export's ``manifest.json`` must say ``complete``; every part is
  checked against the manifest (size and xxh3-128) by the executors, one
  task per part, before anything is read;
- the parts are read by Python tasks (boto3 and pyarrow, one task per part):
  no Hadoop S3 connector is needed, and the same code runs on Glue, EMR and
  in local mode against any S3-compatible endpoint;
- the diff dataset is written on the driver, then uploaded: class files and
  reports first, ``manifest.json`` last (a reader sees a complete dataset or
  none); a prefix that holds anything but a diff is refused, a complete diff
  unless ``overwrite``.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from pitrdiff.aws import AwsConfig, s3_client, translate_errors
from pitrdiff.errors import AwsError, ExportError, IncompleteExportError, RefusedError
from pitrdiff.export.dataset import HASH_COLUMN, MANIFEST_NAME, Export, Manifest
from pitrdiff.spark.arrow import spark_schema
from pitrdiff.spark.session import spark_errors

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pyspark.sql import DataFrame, SparkSession

_CHUNK = 8 * 1024 * 1024


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → ``(bucket, prefix)`` (no trailing slash)."""
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not url.startswith("s3://") or not bucket:
        raise ExportError(f"{url!r} is not an S3 URL (s3://BUCKET/PREFIX)")
    return bucket, prefix.strip("/")


def _client(endpoint_url: str | None) -> S3Client:
    return s3_client(AwsConfig(), endpoint_url=endpoint_url)


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
    bucket, prefix = split_url(url)
    digest, seen = xxhash.xxh3_128(), 0
    try:
        body = _client(endpoint_url).get_object(Bucket=bucket, Key=f"{prefix}/{relative}")["Body"]
        for chunk in body.iter_chunks(_CHUNK):
            digest.update(chunk)
            seen += len(chunk)
    except Exception as exc:
        return f"part {relative} cannot be read ({type(exc).__name__}: {exc})"
    if seen != size:
        return f"part {relative} is {seen} bytes, the manifest says {size} (truncated or replaced)"
    if digest.hexdigest() != checksum:
        return f"part {relative} does not match its checksum in the manifest (corrupt or edited)"
    return None


def _read_parts(batches: Iterator[pa.RecordBatch], endpoint_url: str | None) -> Iterator[Any]:
    """Executor side: the rows of each part URL in ``batches`` (uint64 → decimal(20,0))."""
    client = _client(endpoint_url)
    for batch in batches:
        for url in batch.column(0).to_pylist():
            bucket, key = split_url(url)
            data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
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
        When there is no readable manifest there.
    IncompleteExportError
        When the manifest does not say ``complete``.
    """
    bucket, prefix = split_url(url)
    try:
        with translate_errors(action=f"reading {url}/{MANIFEST_NAME}"):
            raw = _client(endpoint_url).get_object(Bucket=bucket, Key=f"{prefix}/{MANIFEST_NAME}")
            data = raw["Body"].read()
    except AwsError as exc:
        raise ExportError(f"{url} is not an export: no readable {MANIFEST_NAME} ({exc})") from exc
    try:
        manifest = Manifest.from_dict(orjson.loads(data))
    except orjson.JSONDecodeError as exc:
        raise ExportError(f"{url}/{MANIFEST_NAME} is not valid JSON", path=url) from exc
    if not manifest.complete:
        raise IncompleteExportError(
            f"export {url} is not complete (interrupted?); re-run the export", path=url
        )
    return S3Export(url, manifest, endpoint_url)


def check_out(url: str, *, overwrite: bool, endpoint_url: str | None = None) -> None:
    """Refuse an output prefix that holds anything but a diff (a complete one unless ``overwrite``).

    Raises
    ------
    RefusedError
        As above.
    """
    bucket, prefix = split_url(url)
    client = _client(endpoint_url)
    with translate_errors(action=f"listing {url}"):
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", MaxKeys=1000)
    keys = [o["Key"] for o in listed.get("Contents", [])]
    if not keys:
        return
    manifest_key = f"{prefix}/{MANIFEST_NAME}"
    if manifest_key not in keys:
        raise RefusedError(f"{url} is not empty and is not a diff; choose another --out")
    with translate_errors(action=f"reading {url}/{MANIFEST_NAME}"):
        doc = orjson.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    if doc.get("format") != "pitrdiff-diff":
        raise RefusedError(f"{url} is not empty and is not a diff; choose another --out")
    if doc.get("complete") and not overwrite:
        raise RefusedError(
            f"{url} already holds a diff of {doc.get('table_name')!r}; pass --overwrite true"
        )


def upload_diff(local: Path, url: str, *, endpoint_url: str | None = None) -> list[str]:
    """Upload a diff dataset written at ``local``: every file first, ``manifest.json`` last.

    The manifest's input paths are the inputs' URLs already (the caller's
    exports were :class:`S3Export`); nothing else is changed. Returns the keys written.
    """
    bucket, prefix = split_url(url)
    client = _client(endpoint_url)
    files = sorted(p for p in local.rglob("*") if p.is_file() and p != local / MANIFEST_NAME)
    written = []
    for path in [*files, local / MANIFEST_NAME]:
        key = f"{prefix}/{path.relative_to(local).as_posix()}"
        with translate_errors(action=f"writing s3://{bucket}/{key}"):
            client.upload_file(str(path), bucket, key)
        written.append(key)
    return written


def fix_input_urls(local: Path, inputs: Sequence[S3Export]) -> None:
    """Record the inputs' URLs (not a mangled local form) in the diff's ``manifest.json``."""
    from pitrdiff.files import write_json

    doc = orjson.loads((local / MANIFEST_NAME).read_bytes())
    for side, export in zip(("live", "restored"), inputs, strict=True):
        doc[side]["path"] = export.url
    write_json(local / MANIFEST_NAME, doc)


def private_dir() -> str:
    """An owner-only working directory for the diff before its upload."""
    return tempfile.mkdtemp(prefix="pitrdiff-s3-diff-")


# --------------------------------------------------------------------------- export datasets out


def _keys(client: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def prepare_export_out(url: str, *, overwrite: bool, endpoint_url: str | None = None) -> None:
    """Make ``s3://…`` ready for a new export dataset, as ``prepare_directory`` does on disk.

    Raises
    ------
    RefusedError
        When the prefix holds something other than an export, or a complete
        export and ``overwrite`` is false.
    """
    bucket, prefix = split_url(url)
    client = _client(endpoint_url)
    with translate_errors(action=f"listing {url}"):
        keys = _keys(client, bucket, f"{prefix}/")
        if not keys:
            return
        manifest_key = f"{prefix}/{MANIFEST_NAME}"
        if manifest_key not in keys:
            raise RefusedError(f"{url} is not empty and is not an export; choose another --out")
        doc = orjson.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
        if doc.get("format") != "pitrdiff-export":
            raise RefusedError(f"{url} is not empty and is not an export; choose another --out")
        if doc.get("complete") and not overwrite:
            raise RefusedError(
                f"{url} already holds a complete export of {doc.get('table_name')!r}; "
                "pass --overwrite true to replace it"
            )
        for key in keys:
            client.delete_object(Bucket=bucket, Key=key)


def put_manifest(url: str, manifest: Manifest, *, endpoint_url: str | None = None) -> None:
    """Write an export dataset's ``manifest.json`` at ``s3://…`` (one PUT: atomic)."""
    bucket, prefix = split_url(url)
    body = orjson.dumps(manifest.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
    with translate_errors(action=f"writing {url}/{MANIFEST_NAME}"):
        _client(endpoint_url).put_object(Bucket=bucket, Key=f"{prefix}/{MANIFEST_NAME}", Body=body)


def upload_part(local: Path, url: str, relative: str, endpoint_url: str | None) -> None:
    """Upload one part written at ``local`` to ``url/relative`` (executor side)."""
    bucket, prefix = split_url(url)
    _client(endpoint_url).upload_file(str(local), bucket, f"{prefix}/{relative}")


def remove_unlisted(url: str, keep: Sequence[str], *, endpoint_url: str | None = None) -> None:
    """Delete the parts under ``url/data/`` not named in ``keep`` (relative paths)."""
    bucket, prefix = split_url(url)
    client = _client(endpoint_url)
    wanted = {f"{prefix}/{k}" for k in keep}
    with translate_errors(action=f"cleaning {url}/data"):
        for key in _keys(client, bucket, f"{prefix}/data/"):
            if key not in wanted:
                client.delete_object(Bucket=bucket, Key=key)


__all__ = [
    "S3Export",
    "check_out",
    "fix_input_urls",
    "load_s3_export",
    "prepare_export_out",
    "private_dir",
    "put_manifest",
    "remove_unlisted",
    "split_url",
    "upload_diff",
    "upload_part",
]

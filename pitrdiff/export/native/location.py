"""Where a native export lives (an S3 prefix or a local directory) and how its files are read.

DynamoDB writes a full export's data files into the export's own folder
(``AWSDynamoDB/<export-id>/data/``) and an incremental export's into a folder
shared by the exports of that prefix (``AWSDynamoDB/data/``); the manifest
``manifest-files.json`` names each by its original S3 key (``dataFileS3Key``).
Keys are resolved against the folder holding the manifests, so an export
copied elsewhere (another bucket or prefix, a local directory, a folder copied
on its own and renamed) still finds its files.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pitrdiff import aws as aws_module
from pitrdiff.aws import AwsConfig, translate_errors
from pitrdiff.errors import AwsError, ExportError, InputError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MARKER = "AWSDynamoDB"
SUMMARY_NAME = "manifest-summary.json"
FILES_NAME = "manifest-files.json"
DATA_DIR = "data"
CHUNK = 1024 * 1024

LAYOUT_HINT = (
    f"DynamoDB's layout: {MARKER}/<export-id>/{DATA_DIR}/ beside the manifests for a full "
    f"export, {MARKER}/{DATA_DIR}/ beside the {MARKER}/<export-id>/ folder for an "
    "incremental one"
)


def _posix(path: str) -> PurePosixPath:
    return PurePosixPath(path.replace(os.sep, "/"))


@dataclass(frozen=True)
class ExportLocation:
    """Where a native export lives: an S3 prefix or a local directory.

    Attributes
    ----------
    bucket
        The S3 bucket, or ``None`` for a local directory.
    root
        The export directory, the one holding ``manifest-summary.json``: S3 key
        prefix ``.../AWSDynamoDB/<export-id>`` (no trailing slash), or a local path.
    """

    bucket: str | None
    root: str

    @classmethod
    def parse(cls, source: str | os.PathLike[str]) -> ExportLocation:
        """Parse ``s3://bucket/prefix/AWSDynamoDB/<id>`` or a local directory path.

        A trailing ``/manifest-summary.json`` is accepted and dropped.

        Raises
        ------
        InputError
            When an ``s3://`` URL has no bucket or no export path.
        """
        text = os.fspath(source)
        if text.startswith("s3://"):
            bucket, _, key = text[5:].partition("/")
            key = key.strip("/")
            if key.endswith(SUMMARY_NAME):
                key = key[: -len(SUMMARY_NAME)].rstrip("/")
            if not bucket or not key:
                raise InputError(
                    f"{text!r} is not an export location: expected "
                    "s3://BUCKET/[PREFIX/]AWSDynamoDB/EXPORT_ID"
                )
            return cls(bucket, key)
        path = Path(text)
        if path.name == SUMMARY_NAME:
            path = path.parent
        return cls(None, str(path))

    @property
    def url(self) -> str:
        """The location as a URL (``s3://...``) or a path."""
        return f"s3://{self.bucket}/{self.root}" if self.bucket else self.root

    @property
    def export_id(self) -> str:
        """The export's folder name (normally its id: the last component of its ARN)."""
        return _posix(self.root).name

    def manifest_ref(self, name: str) -> str:
        """The key or path of a file in the export directory."""
        return f"{self.root}/{name}" if self.bucket else str(Path(self.root) / name)

    def data_ref(self, data_key: str) -> str:
        """The key or path of a data file listed as ``dataFileS3Key``.

        ``.../AWSDynamoDB/<export-id>/data/F`` (a full export's own folder) is
        read as ``data/F`` beside the manifests, whatever the folder is called
        now; ``.../AWSDynamoDB/data/F`` (an incremental export's shared
        folder) as ``data/F`` beside the export folder; a key without
        ``AWSDynamoDB/`` is relative to the export directory.

        Raises
        ------
        ExportError
            When the key tries to leave the export's directory (``..``).
        """
        return self.data_refs(data_key)[0]

    def data_refs(self, data_key: str) -> tuple[str, ...]:
        """Where a data file may be, most likely first (see :meth:`data_ref`).

        An incremental export's key has a second candidate: ``data/F`` inside
        the export folder, for a folder copied on its own with its data files.

        Raises
        ------
        ExportError
            When the key tries to leave the export's directory (``..``).
        """
        marker = f"{MARKER}/"
        at = data_key.rfind(marker)
        tail = data_key[at + len(marker) :] if at >= 0 else data_key
        parts = PurePosixPath(tail).parts
        if not parts or any(p in ("..", ".") for p in parts) or tail.startswith("/"):
            raise ExportError(f"data file key {data_key!r} is not a path inside the export")
        root = _posix(self.root)
        if at < 0:
            candidates = [root.joinpath(*parts)]
        elif parts[0] != DATA_DIR and len(parts) > 1:
            candidates = [root.joinpath(*parts[1:])]  # <export-id>/data/F: this folder
        else:
            candidates = [root.parent.joinpath(*parts), root.joinpath(*parts)]
        return tuple(str(c) if self.bucket else str(Path(str(c))) for c in candidates)

    def describe_ref(self, ref: str) -> str:
        """A ref as the user would write it (``s3://bucket/key`` or a path)."""
        return f"s3://{self.bucket}/{ref}" if self.bucket else ref


_S3_CLIENTS: dict[tuple[AwsConfig, str | None], S3Client] = {}
_S3_LOCK = threading.Lock()


def _s3(aws: AwsConfig, endpoint_url: str | None) -> S3Client:
    # One client per process and configuration; botocore clients are thread-safe.
    with _S3_LOCK:
        client = _S3_CLIENTS.get((aws, endpoint_url))
        if client is None:
            client = aws_module.s3_client(aws, max_pool_connections=32, endpoint_url=endpoint_url)
            _S3_CLIENTS[(aws, endpoint_url)] = client
        return client


@dataclass(frozen=True)
class Reader:
    """Reads files of one export location (picklable: workers rebuild clients).

    Attributes
    ----------
    location
        The export.
    aws
        Profile and region for S3.
    s3_endpoint_url
        An S3-compatible endpoint, or ``None`` (``AWS_ENDPOINT_URL_S3`` works too).
    """

    location: ExportLocation
    aws: AwsConfig
    s3_endpoint_url: str | None

    def chunks(self, ref: str) -> Iterator[bytes]:
        """Stream a file's bytes in chunks of at most 1 MiB.

        Raises
        ------
        ExportError
            When the file or the bucket is missing.
        AwsError
            When S3 fails otherwise.
        """
        where = self.location.describe_ref(ref)
        if self.location.bucket is None:
            try:
                handle = open(ref, "rb")  # noqa: SIM115 - closed below, generator
            except FileNotFoundError as exc:
                raise ExportError(f"{where} is missing", path=where) from exc
            except OSError as exc:
                raise ExportError(f"cannot read {where}: {exc.strerror}", path=where) from exc
            with handle:
                while chunk := handle.read(CHUNK):
                    yield chunk
            return
        client = _s3(self.aws, self.s3_endpoint_url)
        try:
            with translate_errors(action=f"reading {where}"):
                response = client.get_object(Bucket=self.location.bucket, Key=ref)
                body = response["Body"]
                yield from body.iter_chunks(CHUNK)
        except AwsError as exc:
            if exc.code in ("NoSuchKey", "404", "NotFound"):
                raise ExportError(f"{where} is missing", path=where) from exc
            if exc.code == "NoSuchBucket":
                raise ExportError(f"bucket {self.location.bucket!r} does not exist") from exc
            raise

    def read(self, ref: str) -> bytes:
        """Read a whole (small) file."""
        return b"".join(self.chunks(ref))

    def exists(self, ref: str) -> bool:
        """Whether a file exists (used for the optional ``.checksum`` files)."""
        if self.location.bucket is None:
            return Path(ref).is_file()
        client = _s3(self.aws, self.s3_endpoint_url)
        try:
            with translate_errors(action=f"reading {self.location.describe_ref(ref)}"):
                client.head_object(Bucket=self.location.bucket, Key=ref)
        except AwsError as exc:
            if exc.code in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True

    def data_file(self, data_key: str) -> str:
        """The ref of a listed data file: where it is, or where DynamoDB's layout puts it.

        In S3 the layout is DynamoDB's own (no look-ups); in a local directory
        the candidates of :meth:`ExportLocation.data_refs` are tried in turn.

        Raises
        ------
        ExportError
            When a local data file is in none of the places the layout allows:
            the message names the path expected and the layout.
        """
        refs = self.location.data_refs(data_key)
        if self.location.bucket is not None:
            return refs[0]
        for ref in refs:
            if Path(ref).is_file():
                return ref
        raise ExportError(
            f"{refs[0]} is missing ({data_key!r} in {FILES_NAME}; {LAYOUT_HINT})", path=refs[0]
        )

"""An ``s3://bucket/prefix`` URL, parsed strictly, and the S3 calls a dataset there needs.

:func:`is_s3_url` decides which path a dataset argument is routed to: anything
that starts with ``s3:`` (any case, then ``/`` or nothing) is meant for S3 and
goes to :meth:`S3Prefix.parse`, which accepts only ``s3://BUCKET/PREFIX``
without empty, ``.`` or ``..`` segments — never a local directory named ``s3:``.
Conditional writes (``If-None-Match``/``If-Match`` on PutObject, AWS S3 User
Guide, "Conditional writes") let :mod:`pitrdiff.export.remote` claim a prefix.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pitrdiff.aws import AwsConfig, client_error_code, s3_client, translate_errors
from pitrdiff.errors import AwsError, CredentialsError, InputError
from pitrdiff.export.outdir import meant_for_s3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

SCHEME = "s3://"
ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_CLIENTS: dict[tuple[AwsConfig, str | None], S3Client] = {}
_CLIENTS_LOCK = threading.Lock()


def is_s3_url(value: object) -> bool:
    """Whether ``value`` is meant for S3: a str or path starting ``s3:`` (any case), then ``/``.

    (Or nothing after ``s3:``; :func:`pitrdiff.export.outdir.meant_for_s3`.)
    Such a value is parsed (and refused unless well-formed) by
    :meth:`S3Prefix.parse`, never used as a local path: ``s3:/bkt/x``,
    ``S3://bkt/x`` and ``Path("s3://bkt/x")`` (a ``Path`` folds ``//``) would
    otherwise make a local directory named ``s3:``.
    """
    return meant_for_s3(value)


class ConditionFailed(AwsError):
    """A conditional PUT was refused: the object is not what the writer last saw."""


@dataclass(frozen=True)
class S3Prefix:
    """A dataset's place on S3: ``s3://bucket/prefix``, and how to reach it.

    Attributes
    ----------
    url
        The URL as the user wrote it, without a trailing slash (for messages).
    bucket, prefix
        Its parts; ``prefix`` has no leading or trailing slash and is not empty.
    endpoint_url
        An S3-compatible endpoint, or ``None`` for AWS.
    aws
        Profile and region.
    """

    url: str
    bucket: str
    prefix: str
    endpoint_url: str | None
    aws: AwsConfig

    @classmethod
    def parse(
        cls,
        url: str | os.PathLike[str],
        *,
        endpoint_url: str | None = None,
        aws: AwsConfig | None = None,
    ) -> S3Prefix:
        """Parse ``s3://bucket/prefix``; the endpoint defaults to ``AWS_ENDPOINT_URL_S3``.

        Raises
        ------
        InputError
            When ``url`` is not ``s3://BUCKET/PREFIX``: another scheme spelling
            (``S3://``, ``s3:/``), no bucket, no prefix (a dataset never takes a
            whole bucket), or an empty, ``.`` or ``..`` segment (S3 keeps them
            literally in keys, and some stores and SDKs fold them).
        """
        text = os.fspath(url)
        if not text.startswith(SCHEME):
            folded = text.startswith("s3:/") or isinstance(url, Path)
            hint = " (in Python a Path folds '//': pass the URL as a str)" if folded else ""
            raise InputError(
                f"{text!r} is not a dataset URL: expected s3://BUCKET/PREFIX "
                f"(lower-case s3, two slashes){hint}"
            )
        bucket, _, prefix = text[len(SCHEME) :].partition("/")
        prefix = prefix.rstrip("/")
        segments = prefix.split("/")
        if not bucket or not prefix:
            raise InputError(f"{text!r} is not a dataset URL: expected s3://BUCKET/PREFIX")
        bad = next((seg for seg in segments if seg in ("", ".", "..")), None)
        if bad is not None:
            what = "an empty segment (//)" if not bad else f"a {bad!r} segment"
            raise InputError(
                f"{text!r} is not a dataset URL: expected s3://BUCKET/PREFIX without empty, "
                f"'.' or '..' segments (S3 keeps them in keys literally), not {what}"
            )
        endpoint = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
        return cls(f"{SCHEME}{bucket}/{prefix}", bucket, prefix, endpoint, aws or AwsConfig())

    def key(self, relative: str) -> str:
        """The object key of a file of the dataset (``data/part-000000.parquet``)."""
        return f"{self.prefix}/{relative}"

    def client(self) -> S3Client:
        """One S3 client per process and configuration (botocore clients are thread-safe)."""
        with _CLIENTS_LOCK:
            client = _CLIENTS.get((self.aws, self.endpoint_url))
            if client is None:
                client = s3_client(
                    self.aws, max_pool_connections=32, endpoint_url=self.endpoint_url
                )
                _CLIENTS[(self.aws, self.endpoint_url)] = client
            return client

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Translate S3 errors of the block into one-line pitrdiff errors (see the module)."""
        try:
            with translate_errors(action=action):
                yield
        except AwsError as exc:
            code = getattr(exc, "code", None) or client_error_code(exc.__cause__ or exc)
            if code == "NoSuchBucket":
                raise InputError(f"bucket {self.bucket!r} does not exist ({self.url})") from exc
            if code in ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId"):
                raise CredentialsError(f"access denied while {action}: {code}") from exc
            raise

    def listing(self, under: str = "") -> dict[str, int]:
        """Every object below the prefix (or below ``under`` in it): relative key → size."""
        start = f"{self.prefix}/{under}"
        found: dict[str, int] = {}
        with self.errors(f"listing {self.url}/{under}"):
            pages = (
                self.client()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.bucket, Prefix=start)
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    found[obj["Key"][len(self.prefix) + 1 :]] = int(obj.get("Size", 0))
        return found

    def read(self, relative: str) -> bytes | None:
        """A small object's bytes (a manifest), or ``None`` when there is none."""
        client = self.client()
        try:
            with self.errors(f"reading {self.url}/{relative}"):
                body = client.get_object(Bucket=self.bucket, Key=self.key(relative))["Body"]
                return body.read()
        except AwsError as exc:
            if getattr(exc, "code", None) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def etag(self, relative: str) -> str | None:
        """The ETag of an object now (HeadObject), or ``None`` when there is none."""
        try:
            with self.errors(f"reading {self.url}/{relative}"):
                head = self.client().head_object(Bucket=self.bucket, Key=self.key(relative))
                return str(head["ETag"])
        except AwsError as exc:
            if getattr(exc, "code", None) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def put(self, relative: str, data: bytes, *, only_if: str | None = None) -> str | None:
        """Write one object (one PUT: it appears whole or not at all); return its ETag.

        Parameters
        ----------
        only_if
            A condition S3 checks atomically with the write: ``"absent"``
            (``If-None-Match: *``: no object there) or an ETag (``If-Match``:
            the object there is that one). A store that does not implement
            conditional writes (``NotImplemented``) gets a plain PUT instead.

        Returns
        -------
        str or None
            The new object's ETag (``None`` if the store sent none).

        Raises
        ------
        ConditionFailed
            When the condition does not hold (HTTP 412, or 409 for a
            concurrent conditional write): nothing was written.
        """
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(relative), "Body": data}
        if only_if == "absent":
            args["IfNoneMatch"] = "*"
        elif only_if is not None:
            args["IfMatch"] = only_if
        try:
            with self.errors(f"writing {self.url}/{relative}"):
                return self.client().put_object(**args).get("ETag")
        except AwsError as exc:
            code = getattr(exc, "code", None)
            if only_if is not None and code in _PRECONDITION_CODES:
                raise ConditionFailed(f"{self.url}/{relative} changed") from exc
            if only_if is not None and code == "NotImplemented":
                return self.put(relative, data)
            raise

    def upload(self, local: Path, relative: str) -> None:
        """Upload a local file (multipart past boto3's threshold; the object appears at the end)."""
        with self.errors(f"writing {self.url}/{relative}"):
            self.client().upload_file(str(local), self.bucket, self.key(relative))

    def delete(self, relatives: list[str]) -> None:
        """Delete objects, 1,000 per request (S3's DeleteObjects limit)."""
        client = self.client()
        for start in range(0, len(relatives), 1000):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": self.key(r)} for r in relatives[start : start + 1000]
            ]
            with self.errors(f"deleting in {self.url}"):
                reply = client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if reply.get("Errors"):
                first = reply["Errors"][0]
                raise AwsError(
                    f"cannot delete {first.get('Key')} in {self.url}: {first.get('Code')}",
                    code=str(first.get("Code")),
                )


__all__ = ["ENDPOINT_ENV", "SCHEME", "ConditionFailed", "S3Prefix", "is_s3_url"]

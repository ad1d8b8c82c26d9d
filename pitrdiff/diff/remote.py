"""Diff datasets on S3: open one from a verified local copy, publish one written locally.

The moves themselves are :mod:`pitrdiff.export.remote`'s (manifest first and
complete, every class file checked against its size and xxh3-128 as it
streams; on the way out the prefix refused as ``--out`` is on disk, the
manifest written last). This module adds what only a diff knows: which files
a diff consists of, and the :class:`~pitrdiff.diff.notebook.Diff` returned.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pitrdiff.diff.manifest import HTML_REPORT_NAME, REPORT_NAME, DiffManifest, _diff_file
from pitrdiff.diff.notebook import Diff, load_diff
from pitrdiff.export.remote import LocalCopy, publishing, stage

if TYPE_CHECKING:
    from pitrdiff.aws import AwsConfig

REPORTS = (REPORT_NAME, HTML_REPORT_NAME)


class StagedDiff(Diff):
    """A diff dataset on S3, read from its verified local copy.

    Attributes
    ----------
    url
        ``s3://bucket/prefix``.
    path
        The local copy (exists while this object does).
    s3_endpoint_url, aws
        Where S3 is: input exports recorded by URL are read from there too
        (the ``live`` / ``restored`` views of :meth:`connect`).
    """

    def __init__(
        self,
        copy: LocalCopy,
        manifest: DiffManifest,
        *,
        endpoint_url: str | None = None,
        aws: AwsConfig | None = None,
    ) -> None:
        super().__init__(copy.path, manifest)
        self.url = copy.url
        self.s3_endpoint_url = endpoint_url
        self.aws = aws
        copy.bind(self)

    def __repr__(self) -> str:
        return super().__repr__().replace(f" at {self.path}>", f" at {self.url}>")


def open_s3_diff(
    url: str,
    *,
    only: tuple[str, ...] | None = None,
    endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
) -> StagedDiff:
    """Open the diff dataset at ``s3://…`` (class files verified while copied; reports too).

    Parameters
    ----------
    url
        ``s3://bucket/prefix``.
    only
        Copy only these class files (paths, e.g. ``deleted.parquet``) and no
        report: what a plan reads.
    endpoint_url, aws
        Where S3 is (``AWS_ENDPOINT_URL_S3`` works too).

    Raises
    ------
    DiffError
        Not a complete diff there; a class file missing, truncated or corrupt.
    InputError, CredentialsError, AwsError
        A bad URL, a missing bucket, no permission, S3 failing.
    """
    extra = () if only is not None else REPORTS
    copy = stage(url, "diff", extra=extra, only=only, endpoint_url=endpoint_url, aws=aws)
    try:
        manifest = load_diff(copy.path, verify=False).manifest
        return StagedDiff(copy, manifest, endpoint_url=endpoint_url, aws=aws)
    except BaseException:
        copy.close()
        raise


def diff_to_s3(
    url: str,
    write: Callable[[Path], Diff],
    *,
    overwrite: bool,
    endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
) -> StagedDiff:
    """Write a diff with ``write(local_dir)``, then publish it to ``url``.

    ``url`` is checked first (refused as ``--out`` is on disk); the diff is
    written into a private local directory, uploaded with ``manifest.json``
    last, and returned read from that local copy.

    Raises
    ------
    RefusedError
        When ``url`` holds anything but a diff, a complete one without
        ``overwrite``, or objects pitrdiff did not write.
    """
    with publishing(
        url, "diff", overwrite=overwrite, owned=_diff_file, endpoint_url=endpoint_url, aws=aws
    ) as copy:
        written = write(copy.path)
    return StagedDiff(copy, written.manifest, endpoint_url=endpoint_url, aws=aws)


def write_html_report_s3(
    url: str,
    *,
    time_attr: str | None = None,
    s3_endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
) -> str:
    """Render ``report.html`` of the diff at ``s3://…`` again and upload it beside the diff.

    The diff is read from a verified local copy
    (:func:`pitrdiff.diff.html.write_html_report` renders it there); the page
    replaces the prefix's ``report.html`` in one PUT. Returns its URL.

    Raises
    ------
    DiffError
        When there is no complete, intact diff at ``url``.
    """
    from pitrdiff.diff.html import write_html_report
    from pitrdiff.export.remote import S3Prefix

    diff = open_s3_diff(url, endpoint_url=s3_endpoint_url, aws=aws)
    path = write_html_report(diff.path, time_attr=time_attr)
    where = S3Prefix.parse(url, endpoint_url=s3_endpoint_url, aws=aws)
    where.upload(path, HTML_REPORT_NAME)
    return f"{where.url}/{HTML_REPORT_NAME}"


__all__ = ["StagedDiff", "diff_to_s3", "open_s3_diff", "write_html_report_s3"]

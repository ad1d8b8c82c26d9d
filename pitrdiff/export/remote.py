"""Export and diff datasets on S3 (``s3://bucket/prefix``), with the rules they follow on disk.

Every command and library call that reads or writes a dataset accepts an
``s3://`` URL; this module is the one place that moves a dataset between S3
and a private local copy, so the readers and writers stay the on-disk ones.

Reading (:func:`stage`): ``manifest.json`` is read first and must be complete
(else the same refusal as on disk); a complete export's manifest must agree
with the ``data/`` listing (no unlisted part, rows adding up); each file the
manifest lists is downloaded into a private temporary directory
(:func:`pitrdiff.files.private_temp_dir`) and its size and xxh3-128 are
checked against the manifest while it streams, before anything reads it. The
copy is removed when the object using it is collected, on
:meth:`LocalCopy.close`, and on any exit (Ctrl-C and SIGTERM included).

Writing (:func:`publishing`): the prefix is checked first, as ``--out`` is
on disk (not inside another dataset; a prefix holding anything but a
dataset of that kind is refused; a complete one unless ``overwrite``; keys
pitrdiff did not write are never deleted). The dataset is written locally,
then published: the new manifest marked incomplete first (a reader of the
prefix sees an incomplete dataset from then on, and a re-run may replace
it), every other file next, ``manifest.json`` (complete) last; only then are
the files of the older dataset that the new one does not have deleted. Each
manifest PUT is conditional on the manifest being the one the check saw
(``If-None-Match: *`` / ``If-Match``), and its ETag is compared before each
too: of two runs publishing to one prefix, the later is refused (:func:`publish`).

Errors: a bad URL is :class:`~pitrdiff.errors.InputError`; a missing bucket
too (exit 2); a missing object is the dataset's own refusal; no permission is
:class:`~pitrdiff.errors.CredentialsError` (exit 3), as for every AWS call
(:func:`pitrdiff.aws.translate_errors`). Credentials are never logged.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import xxhash

from pitrdiff.aws import AwsConfig
from pitrdiff.errors import (
    AwsError,
    DiffError,
    ExportError,
    IncompleteExportError,
    InputError,
    RefusedError,
)
from pitrdiff.export.dataset import Export
from pitrdiff.export.outdir import (
    DATA_DIR,
    MANIFEST_NAME,
    NATIVE_MANIFEST_NAME,
    PLAN_FORMAT,
    STATE_DIR,
    export_files,
)
from pitrdiff.export.s3prefix import ENDPOINT_ENV, SCHEME, ConditionFailed, S3Prefix, is_s3_url
from pitrdiff.files import make_dir, private_temp_dir, storage_error

if TYPE_CHECKING:
    from pitrdiff.export.dataset import Manifest

LOG = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024
_WORKERS = 8
_SHOWN = 3


# --------------------------------------------------------------------------- kinds of dataset


@dataclass(frozen=True)
class _Kind:
    """What tells one kind of dataset's manifest apart, and its refusals' words."""

    name: str  # "export", "diff"
    format: str
    error: type[InputError]
    incomplete: str  # the refusal of an incomplete dataset ({url})


EXPORT = _Kind(
    "export",
    "pitrdiff-export",
    ExportError,
    "export {url} is not complete (interrupted?); re-run the export to finish it",
)
DIFF = _Kind(
    "diff",
    "pitrdiff-diff",
    DiffError,
    "diff {url} is not complete (interrupted?); re-run `pitrdiff diff`",
)
KINDS = {kind.name: kind for kind in (EXPORT, DIFF)}


def _a(noun: str) -> str:
    """``an export``, ``a diff``."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _raise(kind: _Kind, message: str, url: str, cls: type[InputError] | None = None) -> None:
    error = cls or kind.error
    if issubclass(error, ExportError):
        raise error(message, path=url)
    raise error(message)


def _manifest(where: S3Prefix, kind: _Kind, raw: bytes) -> dict[str, Any]:
    """The parsed manifest of a dataset of ``kind`` (refusing another kind)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        _raise(kind, f"{where.url}/{MANIFEST_NAME} is not valid JSON", where.url)
        raise AssertionError  # unreachable: _raise raises
    fmt = doc.get("format")
    if fmt != kind.format:
        other = str(fmt).removeprefix("pitrdiff-") if isinstance(fmt, str) else "unknown"
        _raise(kind, f"{where.url} is {_a(other)} dataset, not {_a(kind.name)}", where.url)
    return doc


def _entries(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The files a manifest lists (an export's list, a diff's mapping by class)."""
    files = doc.get("files") or []
    listed = list(files.values()) if isinstance(files, dict) else list(files)
    return [dict(entry) for entry in listed if isinstance(entry, dict)]


# --------------------------------------------------------------------------- local copies


class LocalCopy:
    """A private local directory standing for a dataset on S3.

    Removed by :meth:`close`, when this object is collected, when an object it
    was :meth:`bind`-ed to is collected, and at the latest when the process
    exits (Ctrl-C and SIGTERM included: the CLI sweeps its temporary directories).

    Attributes
    ----------
    url
        The dataset's URL.
    path
        The local dataset directory (inside the private directory).
    """

    def __init__(self, url: str, kind: str) -> None:
        self.url = url
        stack = contextlib.ExitStack()
        self.root = stack.enter_context(private_temp_dir(f"s3-{kind}"))
        self.path = self.root / "dataset"
        self._close = weakref.finalize(self, stack.close)

    def bind(self, owner: object) -> None:
        """Keep this copy while ``owner`` (an Export, a Diff) lives; remove it after."""
        weakref.finalize(owner, self.close)

    def close(self) -> None:
        """Remove the local copy now (idempotent)."""
        self._close()


def stage(
    url: str,
    kind: str,
    *,
    extra: tuple[str, ...] = (),
    only: tuple[str, ...] | None = None,
    endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
) -> LocalCopy:
    """Copy the dataset at ``url`` into a private local directory, verifying every file.

    Parameters
    ----------
    url
        ``s3://bucket/prefix`` of an export or diff dataset.
    kind
        ``export`` or ``diff``.
    extra
        Files not listed in the manifest to copy when present (a diff's reports).
    only
        Copy only the listed files with these paths (a plan reads some classes).
    endpoint_url, aws
        Where S3 is (see :meth:`S3Prefix.parse`).

    Returns
    -------
    LocalCopy
        ``copy.path`` holds ``manifest.json`` (the same bytes) and the files.

    Raises
    ------
    ExportError, DiffError
        No readable manifest there, a dataset of another kind, a file missing,
        truncated or not matching its checksum (naming the URL and the file).
    IncompleteExportError
        An incomplete export, or one whose manifest disagrees with ``data/``.
    InputError, CredentialsError, AwsError
        A bad URL, a missing bucket, no permission, S3 failing.
    """
    spec = KINDS[kind]
    where = S3Prefix.parse(url, endpoint_url=endpoint_url, aws=aws)
    raw, doc = open_manifest(where, kind)
    entries = _entries(doc)
    if only is not None:
        entries = [e for e in entries if e.get("path") in only]
    present = where.listing() if extra else {}
    copy = LocalCopy(where.url, kind)
    try:
        make_dir(copy.path)
        jobs: list[tuple[str, int | None, str | None]] = [
            (str(e["path"]), int(e["bytes"]), str(e["xxh3_128"])) for e in entries
        ]
        jobs += [(name, None, None) for name in extra if name in present]
        with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="pitrdiff-s3") as pool:
            for future in [pool.submit(_download, where, spec, copy.path, *job) for job in jobs]:
                future.result()
        (copy.path / MANIFEST_NAME).write_bytes(raw)
    except BaseException:
        copy.close()
        raise
    return copy


def open_manifest(where: S3Prefix, kind: str) -> tuple[bytes, dict[str, Any]]:
    """Read and check a dataset's ``manifest.json`` on S3 before any of its files.

    Returns
    -------
    tuple of (bytes, dict)
        The manifest's bytes and its document.

    Raises
    ------
    ExportError, DiffError
        No readable manifest, or a dataset of another kind; a diff not complete.
    IncompleteExportError
        An export not complete, or whose manifest disagrees with ``data/``
        (rows not adding up, parts it does not list).
    """
    spec = KINDS[kind]
    raw = where.read(MANIFEST_NAME)
    if raw is None:
        _raise(spec, f"{where.url} is not {_a(kind)}: it has no {MANIFEST_NAME}", where.url)
        raise AssertionError  # unreachable: _raise raises
    doc = _manifest(where, spec, raw)
    if doc.get("complete") is not True:
        incomplete = IncompleteExportError if spec is EXPORT else None
        _raise(spec, spec.incomplete.format(url=where.url), where.url, incomplete)
    if spec is EXPORT:
        _check_export_listing(where, doc, _entries(doc))
    return raw, doc


def stage_export(
    url: str, *, endpoint_url: str | None = None, aws: AwsConfig | None = None
) -> Export:
    """Open the export dataset at ``s3://…`` from a verified local copy (see :func:`stage`).

    The export's :attr:`~StagedExport.url` names it; its parts are read from
    the copy, removed once the export is collected.
    """
    from pitrdiff.export.dataset import read_manifest

    copy = stage(url, "export", endpoint_url=endpoint_url, aws=aws)
    try:
        return StagedExport(copy, read_manifest(copy.path))
    except BaseException:
        copy.close()
        raise


class StagedExport(Export):
    """An export dataset on S3, read from its verified local copy.

    Attributes
    ----------
    url
        ``s3://bucket/prefix`` (what a diff's manifest records as the input's path).
    path
        The local copy (exists while this object does).
    """

    def __init__(self, copy: LocalCopy, manifest: Manifest) -> None:
        super().__init__(copy.path, manifest)
        self.url = copy.url
        self._verified = True  # every part was checked while it was copied
        copy.bind(self)

    def __repr__(self) -> str:
        return super().__repr__().replace(f" at {self.path}>", f" at {self.url}>")


def _check_export_listing(
    where: S3Prefix, doc: Mapping[str, Any], entries: list[dict[str, Any]]
) -> None:
    """A complete export's manifest agrees with itself and ``data/`` (as on disk)."""
    rows = sum(int(e.get("rows", 0)) for e in entries)
    items = int(doc.get("items", 0))
    if rows != items:
        raise IncompleteExportError(
            f"export {where.url}: the manifest says {items:,} items but its parts hold "
            f"{rows:,} rows (edited or damaged manifest); re-run the export",
            path=where.url,
        )
    listed = {e.get("path") for e in entries}
    unlisted = sorted(
        k for k in where.listing(f"{DATA_DIR}/") if k.endswith(".parquet") and k not in listed
    )
    if unlisted:
        raise IncompleteExportError(
            f"export {where.url}: {DATA_DIR}/ holds {len(unlisted):,} part(s) the manifest does "
            f"not list, e.g. {unlisted[0]} (edited manifest, or parts copied in); "
            "re-run the export",
            path=where.url,
        )


def _download(
    where: S3Prefix, kind: _Kind, root: Path, relative: str, size: int | None, checksum: str | None
) -> None:
    """Stream one file into ``root``, checking its size and xxh3-128 (when listed)."""
    if relative.startswith("/") or ".." in relative.split("/"):
        _raise(
            kind, f"{kind.name} {where.url}: the manifest lists a bad path {relative!r}", where.url
        )
    target = root / relative
    make_dir(target.parent)
    what = "part " if kind is EXPORT else ""
    try:
        with open(target, "wb") as handle:
            problem = checked_read(where, relative, size, checksum, sink=handle.write, what=what)
    except OSError as exc:
        raise storage_error(exc, target, "write") from exc
    if problem:
        _raise(kind, f"{kind.name} {where.url}: {problem}", where.url)


def checked_read(
    where: S3Prefix,
    relative: str,
    size: int | None,
    checksum: str | None,
    *,
    sink: Callable[[bytes], object] | None = None,
    what: str = "part ",
) -> str | None:
    """Stream one object of a dataset, checking it against its manifest entry.

    Parameters
    ----------
    where, relative
        The dataset and the file (``data/part-000000.parquet``).
    size, checksum
        The manifest's bytes and xxh3-128 (``None``: not checked).
    sink
        Called with each chunk (at most 8 MiB), e.g. a local file's ``write``.
    what
        The file's kind in the sentence returned (``part ``, or ``""``).

    Returns
    -------
    str or None
        What is wrong, as a sentence naming the file (missing, truncated or
        replaced, corrupt or edited), or ``None`` when it matches.

    Raises
    ------
    InputError, CredentialsError, AwsError
        A missing bucket, no permission, S3 failing.
    """
    digest, seen = xxhash.xxh3_128(), 0
    client = where.client()
    try:
        with where.errors(f"reading {where.url}/{relative}"):
            body = client.get_object(Bucket=where.bucket, Key=where.key(relative))["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                digest.update(chunk)
                seen += len(chunk)
                if sink is not None:
                    sink(chunk)
    except AwsError as exc:
        if getattr(exc, "code", None) in ("NoSuchKey", "404", "NotFound"):
            return f"{what}{relative} is missing"
        raise
    if size is not None and seen != size:
        return f"{what}{relative} is {seen} bytes, the manifest says {size} (truncated or replaced)"
    if checksum is not None and digest.hexdigest() != checksum:
        return f"{what}{relative} does not match its checksum in the manifest (corrupt or edited)"
    return None


# --------------------------------------------------------------------------- publishing


def refuse_inside_dataset(where: S3Prefix, what: str) -> None:
    """Refuse to write ``what`` (``an export``, ``a diff``) below another dataset's prefix.

    Each prefix up the URL is looked at for a pitrdiff ``manifest.json`` or a
    native export's ``manifest-summary.json`` (as
    :func:`pitrdiff.export.outdir.refuse_inside_dataset` does up a path).

    Raises
    ------
    RefusedError
        When one is found (exit 2, one line).
    """
    parts = where.prefix.split("/")
    for depth in range(len(parts) - 1, 0, -1):
        above = S3Prefix(
            f"{SCHEME}{where.bucket}/{'/'.join(parts[:depth])}",
            where.bucket,
            "/".join(parts[:depth]),
            where.endpoint_url,
            where.aws,
        )
        kind = None
        if above.read(NATIVE_MANIFEST_NAME) is not None:
            kind = "native DynamoDB export"
        else:
            raw = above.read(MANIFEST_NAME) or b""
            with contextlib.suppress(orjson.JSONDecodeError):
                doc = orjson.loads(raw) if raw else {}
                fmt = str(doc.get("format", "")) if isinstance(doc, dict) else ""
                if fmt.startswith("pitrdiff-") and fmt != PLAN_FORMAT:
                    kind = fmt.removeprefix("pitrdiff-")
        if kind is not None:
            raise RefusedError(
                f"refusing to write {what} inside the {kind} dataset {above.url}: "
                "choose an --out outside it"
            )


class Found(set[str]):
    """What :func:`check_out` found at a prefix: the keys there (a set of relative keys).

    Attributes
    ----------
    etag
        The ETag of its ``manifest.json`` when checked (``None``: there was none);
        publishing writes only if the manifest is still that one.
    doc
        That manifest's document (``None``: none, or not a dataset of the kind).
    """

    def __init__(
        self,
        keys: set[str] | None = None,
        etag: str | None = None,
        doc: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(keys or ())
        self.etag = etag
        self.doc = doc


def check_out(
    where: S3Prefix,
    kind: str,
    *,
    overwrite: bool,
    owned: Callable[[str], bool] | None = None,
    table: str | None = None,
) -> Found:
    """Refuse an ``--out`` prefix as :func:`prepare_directory` / ``prepare_out`` do on disk.

    Parameters
    ----------
    where
        The prefix.
    kind
        ``export`` or ``diff``.
    overwrite
        Whether a complete dataset there may be replaced.
    owned
        Which files (relative keys) a dataset of this kind consists of (an
        export's: from its manifest, :func:`pitrdiff.export.outdir.export_files`).
    table
        The table a scan export is of: an unfinished scan export of another
        table there is refused, as on disk (``None``: checked at publish).

    Returns
    -------
    Found
        The keys (relative) of the dataset there now, which publishing the new
        one may delete once its manifest is written, and its manifest's ETag.

    Raises
    ------
    RefusedError
        Inside another dataset; not empty and not a dataset of ``kind``; a
        complete one and not ``overwrite``; an unfinished scan export of
        another table; keys pitrdiff did not write beside it.
    """
    spec = KINDS[kind]
    refuse_inside_dataset(where, _a(kind))
    keys = where.listing()
    if not keys:
        return Found()
    if MANIFEST_NAME not in keys:
        raise RefusedError(f"{where.url} is not empty and is not {_a(kind)}; choose another --out")
    etag = where.etag(MANIFEST_NAME)
    try:
        doc = _manifest(where, spec, where.read(MANIFEST_NAME) or b"")
    except InputError as exc:
        raise RefusedError(
            f"{where.url} is not empty and is not a usable {kind} ({exc}); choose another --out"
        ) from exc
    if doc.get("complete") is True and not overwrite:
        what = "a complete export" if spec is EXPORT else "a diff"
        raise RefusedError(
            f"{where.url} already holds {what} of {doc.get('table_name')!r}; "
            "pass --overwrite to replace it"
        )
    if spec is EXPORT and table is not None:
        refuse_unfinished_other(where, doc, {"table_name": table, "source": {"kind": "scan"}})
    if (
        doc.get("complete") is not True
        and spec is EXPORT
        and any(k.startswith(f"{STATE_DIR}/") for k in keys)
    ):
        LOG.warning(
            "%s holds an interrupted export: it is replaced, not resumed (an export to S3 "
            "keeps no checkpoints; export to a directory to resume)",
            where.url,
        )
    judge = owned or export_files(_file_entries(doc))
    foreign = sorted(k for k in keys if not judge(k))
    if foreign:
        shown = ", ".join(foreign[:_SHOWN]) + (" …" if len(foreign) > _SHOWN else "")
        raise RefusedError(
            f"{where.url} holds {len(foreign):,} object(s) pitrdiff did not write ({shown}); "
            f"--overwrite replaces only the {kind} itself and never deletes them: move them "
            "away or choose another --out"
        )
    return Found(set(keys), etag, doc)


def refuse_unfinished_other(
    where: S3Prefix, old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> None:
    """Refuse a scan export over an unfinished scan export of another table (the disk rule).

    On disk such an export would be resumed, so one of another table is refused
    (:func:`pitrdiff.export.scan.export_table`) even with ``--overwrite``; the
    same here, with the same words.

    Raises
    ------
    RefusedError
        When ``old`` is an incomplete scan export and ``new`` a scan export of
        another table.
    """
    if not old or old.get("complete") is True:
        return
    old_source, new_source = old.get("source"), new.get("source")
    scans = all(isinstance(x, dict) and x.get("kind") == "scan" for x in (old_source, new_source))
    old_table, new_table = old.get("table_name"), _table_name(str(new.get("table_name")))
    if scans and old_table != new_table:
        raise RefusedError(
            f"{where.url} holds an unfinished export of {old_table!r}, not {new_table!r}; "
            "finish it or choose another --out"
        )


def _table_name(table: str) -> str:
    """A table's name from its name or ARN (``arn:aws:dynamodb:…:table/NAME``)."""
    return table.rsplit("/", 1)[-1] if table.startswith("arn:") else table


def _file_entries(doc: Mapping[str, Any]) -> list[Any]:
    from pitrdiff.export.dataset import FileEntry

    return [
        FileEntry(str(e.get("path")), int(e.get("rows", 0)), int(e.get("bytes", 0)), "")
        for e in _entries(doc)
    ]


def changed_meanwhile(where: S3Prefix, kind: str, stage_: str) -> RefusedError:
    """The refusal of a publish whose prefix another writer changed (names what is there now)."""
    raw = where.read(MANIFEST_NAME)
    now = ""
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
        doc = orjson.loads(raw) if raw else None
        if isinstance(doc, dict):
            state = "a complete" if doc.get("complete") is True else "an unfinished"
            what = str(doc.get("format", "")).removeprefix("pitrdiff-") or "dataset"
            now = f" (it now holds {state} {what} of {doc.get('table_name')!r})"
    return RefusedError(
        f"{where.url} was written by another run while this {kind} was being {stage_}{now}; "
        f"this {kind} was not published: run it again (with --overwrite to replace that one)"
    )


def publish(local: Path, where: S3Prefix, old: set[str], *, kind: str = "export") -> list[str]:
    """Upload the complete dataset written at ``local`` to ``where``; return the keys written.

    The new manifest goes first marked incomplete, then every other file
    (scan checkpoints under ``state/`` stay behind), then ``manifest.json``
    as written; then the ``old`` keys the new dataset has not are deleted.

    When ``old`` is a :class:`Found` (what :func:`check_out` saw), each
    manifest PUT is conditional, so that of two runs publishing to one prefix
    the later is refused instead of silently replacing the other: the
    incomplete manifest only if the manifest is still the one seen then
    (``If-None-Match: *`` when there was none, else ``If-Match``), the final
    one only if it is still this run's incomplete one; and before each, the
    manifest's ETag is compared too (for stores that ignore the conditions).

    Raises
    ------
    RefusedError
        When another writer changed the prefix's manifest since the check
        (nothing of this run is then marked complete).
    AwsError, CredentialsError
        S3 failing; the prefix then holds an incomplete dataset, which a re-run replaces.
    """
    manifest_path = local / MANIFEST_NAME
    try:
        raw = manifest_path.read_bytes()
        files = sorted(
            p.relative_to(local).as_posix()
            for p in local.rglob("*")
            if p.is_file() and p != manifest_path
        )
    except OSError as exc:
        raise storage_error(exc, local, "read") from exc
    files = [f for f in files if not f.startswith(f"{STATE_DIR}/")]
    doc = orjson.loads(raw)
    checked = isinstance(old, Found)
    seen = (old.etag or "absent") if isinstance(old, Found) else None
    if checked and (where.etag(MANIFEST_NAME) or "absent") != seen:
        raise changed_meanwhile(where, kind, "written")
    incomplete = orjson.dumps({**doc, "complete": False}, option=orjson.OPT_INDENT_2)
    try:
        ours = where.put(MANIFEST_NAME, incomplete, only_if=seen)
    except ConditionFailed as exc:
        raise changed_meanwhile(where, kind, "written") from exc
    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="pitrdiff-s3") as pool:
        for future in [pool.submit(where.upload, local / f, f) for f in files]:
            future.result()
    if checked and ours is not None and where.etag(MANIFEST_NAME) != ours:
        raise changed_meanwhile(where, kind, "uploaded")
    try:
        where.put(MANIFEST_NAME, raw, only_if=ours if checked else None)
    except ConditionFailed as exc:
        raise changed_meanwhile(where, kind, "uploaded") from exc
    written = [*files, MANIFEST_NAME]
    stale = sorted(old - set(written))
    if stale:
        where.delete(stale)
    return written


@contextlib.contextmanager
def publishing(
    url: str,
    kind: str,
    *,
    overwrite: bool,
    owned: Callable[[str], bool] | None = None,
    endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
    table: str | None = None,
) -> Iterator[LocalCopy]:
    """Write a dataset locally, then publish it to ``url`` (see :func:`publish`).

    The prefix is checked first (:func:`check_out`: nothing slow or paid runs
    before a refusal). The block writes the dataset at ``copy.path`` (a
    directory that does not exist yet, in a private temporary directory); when
    it ends without an exception the dataset is published. The copy stays until
    it is closed or collected (bind it to the object returned, e.g. a Diff), and
    is removed at once when the block fails or is interrupted.

    Raises
    ------
    RefusedError, InputError, CredentialsError, AwsError
        See :func:`check_out` and :func:`publish`.
    """
    where = S3Prefix.parse(url, endpoint_url=endpoint_url, aws=aws)
    old = check_out(where, kind, overwrite=overwrite, owned=owned, table=table)
    copy = LocalCopy(where.url, kind)
    try:
        yield copy
        if kind == "export":
            try:
                new = orjson.loads((copy.path / MANIFEST_NAME).read_bytes())
            except OSError as exc:
                raise storage_error(exc, copy.path, "read") from exc
            refuse_unfinished_other(where, old.doc, new)
        publish(copy.path, where, old, kind=kind)
    except BaseException:
        copy.close()
        raise


def export_to_s3(
    url: str,
    write: Callable[[Path], Manifest],
    *,
    overwrite: bool,
    endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
    table: str | None = None,
) -> Manifest:
    """Write an export with ``write(local_dir)``, then publish it to ``url``; return its manifest.

    ``url`` is refused first as ``--out`` is on disk (:func:`check_out`; give
    ``table`` for a scan export, so that an unfinished scan export of another
    table there is refused before the scan, not only at publish); the
    export is written into a private local directory (removed afterwards,
    and on any failure or interrupt) and uploaded with its manifest last. An
    interrupted export is not resumed: a re-run starts over.
    """
    with publishing(
        url, "export", overwrite=overwrite, endpoint_url=endpoint_url, aws=aws, table=table
    ) as copy:
        manifest = write(copy.path)
    copy.close()
    return manifest


__all__ = [
    "ENDPOINT_ENV",
    "SCHEME",
    "Found",
    "LocalCopy",
    "S3Prefix",
    "StagedExport",
    "changed_meanwhile",
    "check_out",
    "checked_read",
    "export_to_s3",
    "is_s3_url",
    "open_manifest",
    "publish",
    "publishing",
    "refuse_inside_dataset",
    "refuse_unfinished_other",
    "stage",
    "stage_export",
]

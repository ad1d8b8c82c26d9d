"""Where a dataset may be written, and what ``--overwrite`` may remove.

One place for the rules every ``--out`` follows (``export``, ``diff``, ``plan``):

- never inside another dataset: a directory up the path holding a pitrdiff
  ``manifest.json`` (an export or a diff), or a native DynamoDB export's
  ``manifest-summary.json``. Writing there could replace or bury a file of the
  only copy of a dataset, and a later ``--overwrite`` of that dataset would
  meet files it did not write (:func:`dataset_above`, :func:`refuse_inside_dataset`);
- ``--overwrite`` removes only the files pitrdiff wrote, and refuses when the
  directory holds anything else (:func:`foreign_entries`, :func:`remove_owned`;
  an export's files: :func:`export_files`);
- a complete export's manifest agrees with its ``data/`` (:func:`check_parts`);
- a path whose first component is ``s3:`` (any case: ``s3:/bkt/x``,
  ``S3://bkt/x``, or ``s3://…`` folded by ``Path``) is a malformed S3 URL,
  never a local directory to create (:func:`meant_for_s3`, :func:`refuse_url_path`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from pitrdiff.errors import IncompleteExportError, InputError, RefusedError
from pitrdiff.files import TEMP_MARK, storage_error

if TYPE_CHECKING:
    from pitrdiff.export.dataset import FileEntry, Manifest

MANIFEST_NAME = "manifest.json"
DATA_DIR = "data"
STATE_DIR = "state"
EXPORT_DIRS = (DATA_DIR, STATE_DIR)
"""The directories an export writes (parts; scan checkpoints)."""
NATIVE_MANIFEST_NAME = "manifest-summary.json"
PLAN_FORMAT = "pitrdiff-plan"
_SHOWN = 3
_MEANT_FOR_S3 = re.compile(r"[sS]3:(?:/|$)")


def meant_for_s3(value: object) -> bool:
    """Whether ``value`` (a str or path) starts with ``s3:`` (any case), then ``/`` or nothing.

    Such a value is meant for S3: a dataset argument goes to
    :meth:`pitrdiff.export.s3prefix.S3Prefix.parse` (which accepts only
    ``s3://BUCKET/PREFIX``); a local-only path is refused (:func:`refuse_url_path`).
    """
    if not isinstance(value, (str, os.PathLike)):
        return False
    text = os.fspath(value)
    return isinstance(text, str) and _MEANT_FOR_S3.match(text) is not None


def refuse_url_path(target: object, what: str) -> None:
    """Refuse ``target`` as a local path when it is meant for S3 (:func:`meant_for_s3`).

    Parameters
    ----------
    target
        The path given.
    what
        What is written there, as a sentence's subject (``the plan file``).

    Raises
    ------
    InputError
        ``'s3:/bkt/x' looks like an S3 URL, and the plan file is local: give a
        local path`` (exit 2); nothing is created.
    """
    if meant_for_s3(target):
        shown = str(target)  # a str, or a path meant_for_s3 found to be one
        raise InputError(f"{shown!r} looks like an S3 URL, and {what} is local: give a local path")


def dataset_above(target: str | os.PathLike[str]) -> tuple[Path, str] | None:
    """The nearest directory up ``target``'s path (not ``target``) holding a dataset.

    A pitrdiff export or diff (``manifest.json`` of format ``pitrdiff-…``, or
    a damaged one that still names it), or a copy of a native DynamoDB export
    (``manifest-summary.json``).

    Returns
    -------
    tuple of (Path, str) or None
        The directory and what it holds (``export``, ``diff``, ``native
        DynamoDB export``); ``None`` when no directory above holds a dataset.

    Raises
    ------
    InputError
        When ``target`` is meant for S3 (:func:`refuse_url_path`): every local
        output path (``--out``, a drill's ``--workdir``) passes here.
    """
    refuse_url_path(target, "what is written there")
    for directory in Path(os.path.abspath(target)).parents:
        kind = dataset_kind(directory)
        if kind is not None:
            return directory, kind
    return None


def dataset_kind(directory: Path) -> str | None:
    """What dataset ``directory`` itself holds (``export``, ``diff`` …), else ``None``."""
    if (directory / NATIVE_MANIFEST_NAME).is_file():
        return "native DynamoDB export"
    manifest = directory / MANIFEST_NAME
    try:
        raw = manifest.read_bytes() if manifest.is_file() else b""
    except OSError:
        return None
    if not raw:
        return None
    try:
        doc = orjson.loads(raw)
        fmt = str(doc.get("format", "")) if isinstance(doc, dict) else ""
    except orjson.JSONDecodeError:
        # a damaged manifest still marks a dataset
        fmt = "pitrdiff-dataset" if b'"pitrdiff-' in raw[:4096] else ""
    if fmt.startswith("pitrdiff-") and fmt != PLAN_FORMAT:
        return fmt.removeprefix("pitrdiff-")
    return None


def refuse_inside_dataset(target: str | os.PathLike[str], what: str) -> None:
    """Refuse to write ``what`` (``an export``, ``a diff``, ``a plan``) inside a dataset.

    Raises
    ------
    RefusedError
        When :func:`dataset_above` finds one (exit 2, one line).
    InputError
        When ``target`` is meant for S3 (:func:`refuse_url_path`).
    """
    refuse_url_path(target, what)
    found = dataset_above(target)
    if found is not None:
        directory, kind = found
        raise RefusedError(
            f"refusing to write {what} inside the {kind} dataset {directory}: "
            "choose an --out outside it"
        )


def is_temp(name: str) -> bool:
    """Whether ``name`` is a temporary file pitrdiff (or DuckDB for it) writes."""
    return TEMP_MARK in name or (
        name.startswith(".") and ".parquet." in name and name.endswith(".tmp")
    )


def foreign_entries(root: Path, owned: Callable[[str], bool], dirs: tuple[str, ...]) -> list[str]:
    """Entries under ``root`` pitrdiff did not write, as relative paths (sorted).

    Parameters
    ----------
    root
        The dataset directory.
    owned
        Whether a file (relative POSIX path, e.g. ``data/part-000000.parquet``)
        is one pitrdiff writes there.
    dirs
        Sub-directories pitrdiff writes (``data``, ``state``); their files are
        judged by ``owned``; any other directory is foreign as a whole.

    Raises
    ------
    StorageError
        When ``root`` cannot be listed.
    """
    foreign: list[str] = []
    try:
        for entry in root.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                if entry.name not in dirs:
                    foreign.append(entry.name + "/")
                    continue
                for child in entry.iterdir():
                    relative = f"{entry.name}/{child.name}"
                    if child.is_symlink() or not child.is_file() or not owned(relative):
                        foreign.append(relative + ("/" if child.is_dir() else ""))
            elif entry.is_symlink() or not owned(entry.name):
                foreign.append(entry.name)
    except OSError as exc:
        raise storage_error(exc, root, "read") from exc
    return sorted(foreign)


def refuse_foreign(root: Path, foreign: list[str], kind: str) -> None:
    """Refuse ``--overwrite`` of ``root`` when it holds ``foreign`` entries (one line).

    Raises
    ------
    RefusedError
        When ``foreign`` is not empty; it names a few of them.
    """
    if foreign:
        shown = ", ".join(foreign[:_SHOWN]) + (" …" if len(foreign) > _SHOWN else "")
        raise RefusedError(
            f"{root} holds {len(foreign):,} file(s) pitrdiff did not write ({shown}); "
            f"--overwrite replaces only the {kind} itself and never deletes them: move them "
            "away or choose another --out"
        )


def remove_owned(root: Path, owned: Callable[[str], bool], dirs: tuple[str, ...]) -> None:
    """Remove what pitrdiff wrote under ``root`` (after :func:`foreign_entries` found nothing else).

    Files ``owned`` says are pitrdiff's are unlinked, then the ``dirs`` if
    empty; anything else is left where it is.

    Raises
    ------
    StorageError
        When a file cannot be removed.
    """
    try:
        for entry in list(root.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                if entry.name not in dirs:
                    continue
                for child in list(entry.iterdir()):
                    if (
                        child.is_file()
                        and not child.is_symlink()
                        and owned(f"{entry.name}/{child.name}")
                    ):
                        child.unlink()
                if not any(entry.iterdir()):
                    entry.rmdir()
            elif not entry.is_symlink() and owned(entry.name):
                entry.unlink()
    except OSError as exc:
        raise storage_error(exc, root, "remove") from exc


_PART_NAME = re.compile(r"[A-Za-z0-9_.-]+-\d{6}\.parquet")
_STATE_NAME = re.compile(r"seg-\d{6}\.json")


def export_files(listed_parts: Iterable[FileEntry]) -> Callable[[str], bool]:
    """Which files of an export directory pitrdiff wrote (relative POSIX paths).

    The manifest, the parts it lists and parts named as pitrdiff names them
    (an interrupted export's, not listed yet), scan checkpoints, temporary files.
    """
    listed = {entry.path for entry in listed_parts}

    def owned(relative: str) -> bool:
        folder, _, name = relative.rpartition("/")
        if is_temp(name):
            return True
        if folder == DATA_DIR:
            return relative in listed or _PART_NAME.fullmatch(name) is not None
        if folder == STATE_DIR:
            return _STATE_NAME.fullmatch(name) is not None
        return relative == MANIFEST_NAME

    return owned


def check_parts(root: Path, manifest: Manifest) -> None:
    """Check a complete manifest against itself and ``data/``, without reading any part.

    ``items`` must equal the sum of the listed parts' rows, and ``data/`` must
    hold no ``*.parquet`` part the manifest does not list: a manifest that has
    lost an entry (edited, or copied from another export) would otherwise make
    its items look deleted or added. Sizes and checksums are
    :meth:`pitrdiff.export.dataset.Export.verify`'s (it reads every byte).

    Raises
    ------
    IncompleteExportError
        When either check fails (the message names the counts or the part).
    """
    rows = sum(entry.rows for entry in manifest.files)
    if rows != manifest.items:
        raise IncompleteExportError(
            f"export {root}: the manifest says {manifest.items:,} items but its parts hold "
            f"{rows:,} rows (edited or damaged manifest); re-run the export",
            path=str(root),
        )
    listed = {entry.path for entry in manifest.files}
    data = root / DATA_DIR
    try:
        found = sorted(p.name for p in data.glob("*.parquet")) if data.is_dir() else []
    except OSError as exc:
        raise storage_error(exc, data, "read") from exc
    unlisted = [name for name in found if f"{DATA_DIR}/{name}" not in listed]
    if unlisted:
        raise IncompleteExportError(
            f"export {root}: {DATA_DIR}/ holds {len(unlisted):,} part(s) the manifest does not "
            f"list, e.g. {DATA_DIR}/{unlisted[0]} (edited manifest, or parts copied in); "
            "re-run the export",
            path=str(root),
        )

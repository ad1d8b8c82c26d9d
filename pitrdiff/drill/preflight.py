"""What a drill checks before it restores anything: every option, every output path.

A restore takes minutes and is billed; an option found wrong after it wastes
both. :func:`check_outputs` and :func:`check_aws_inputs` refuse bad input
(exit 2, one line) before the work directory is made and before any table
is created:

- ``--workdir``: a new or empty directory, in a directory this process can
  write in;
- ``--workdir`` and ``--junit``: not inside an export or diff dataset;
- ``--junit``: a file (not a directory, device or FIFO, nor a path ending
  in ``/``), neither the work directory nor one of the drill's own files,
  new or a JUnit XML a drill wrote (any other file is never overwritten), in
  a directory this process can write in (missing directories are made when
  the report is written);
- ``--segments``, ``--updated-attr``: in DynamoDB's range, not empty;
- the live table exists, ``--target`` is neither it nor an existing table;
- ``keys_must_exist`` entries name each key attribute of the live table once,
  with values of its type;
- ``--incremental-from-s3``: an incremental export (its manifests read and
  cross-checked, every data file present) of the live table, with old and
  new images, whose window ends after it starts and (with ``--at``) starts
  at T.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pitrdiff import pitr
from pitrdiff.aws import AwsConfig
from pitrdiff.drill.checks import key_json
from pitrdiff.drill.model import DIFF_DIR, INCREMENTAL_DIR, JSON_NAME, LIVE_DIR, RESTORED_DIR
from pitrdiff.errors import InputError, RefusedError, TableNotFoundError
from pitrdiff.files import storage_error

# --------------------------------------------------------------------------- local


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor or ".")


def _check_can_write_in(path: Path, option: str) -> None:
    """Refuse ``path`` (a directory, existing or to be made) when nothing can be written there.

    Tried, not guessed from permission bits (which ``root`` ignores): an
    anonymous temporary file (``O_TMPFILE``; no name appears where the file
    system supports it) is opened and closed in the closest existing directory.
    """
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise InputError(f"{option} {path}: {existing} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise InputError(f"{option} {path}: {storage_error(exc, existing, 'write in')}") from exc


def check_workdir(workdir: str | os.PathLike[str]) -> Path:
    """The work directory: new, or an empty directory, where this process can write.

    Raises
    ------
    RefusedError
        When it exists and is not an empty directory.
    InputError
        When nothing can be written there.
    """
    root = Path(workdir)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise RefusedError(f"{root} is not an empty directory; choose a new --workdir")
    _refuse_inside_dataset(root, "--workdir")
    _check_can_write_in(root, "--workdir")
    return root


def _refuse_inside_dataset(path: Path, option: str) -> None:
    """Refuse a path inside an export or diff dataset (its files could be replaced)."""
    from pitrdiff.export.outdir import dataset_above

    found = dataset_above(path)
    if found is not None:
        directory, kind = found
        raise RefusedError(
            f"{option} {path} is inside the {kind} dataset {directory}; "
            "the drill never writes into a dataset: choose a path outside it"
        )


def _is_drill_junit(path: Path) -> bool:
    """Whether ``path`` holds a JUnit XML file a drill wrote (it may be replaced)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>') and (
        b'<testsuite name="pitrdiff drill ' in head
    )


def check_junit(junit: str | os.PathLike[str], workdir: Path) -> Path:
    """The JUnit file: a file path outside the drill's own files, in a writable place.

    Raises
    ------
    InputError
        When it is a directory (or ends in ``/``) or another non-regular
        file, the work directory or one of the files or directories the drill
        writes in it, or in a place nothing can be written.
    RefusedError
        When it lies inside an export or diff dataset, or is an existing
        file that is not a drill's JUnit XML.
    """
    path = Path(junit)
    if path.is_dir() or os.fspath(junit).endswith(("/", os.sep)):
        raise InputError(f"--junit {path} is a directory; name a file (e.g. {path / 'junit.xml'})")
    if path.exists() and not path.is_file():
        raise InputError(f"--junit {path} is not a regular file; name a file")
    resolved, root = path.resolve(), workdir.resolve()
    if resolved == root:
        raise InputError(
            f"--junit {path} is the --workdir; name a file (e.g. {path / 'junit.xml'})"
        )
    _refuse_inside_dataset(path, "--junit")
    if path.is_file() and not _is_drill_junit(path):
        raise RefusedError(
            f"--junit {path} exists and is not a drill's JUnit XML; choose another file "
            "(pitrdiff never overwrites a file it did not write)"
        )
    own = [root / JSON_NAME, *(root / d for d in (RESTORED_DIR, LIVE_DIR, DIFF_DIR,
                                                  INCREMENTAL_DIR))]  # fmt: skip
    if any(resolved == p or p in resolved.parents for p in own):
        raise InputError(
            f"--junit {path} is where the drill writes its own files "
            f"({JSON_NAME}, {RESTORED_DIR}/, {LIVE_DIR}/, {DIFF_DIR}/, {INCREMENTAL_DIR}/); "
            "choose another file"
        )
    _check_can_write_in(path.parent, "--junit")
    return path


def check_options(segments: int | None, updated_attr: str | None) -> None:
    """``--segments`` in DynamoDB's range; ``--updated-attr`` a non-empty name.

    Raises
    ------
    InputError
        When one is not.
    """
    from pitrdiff.export.scan import MAX_SEGMENTS

    if segments is not None and not 1 <= segments <= MAX_SEGMENTS:
        raise InputError(f"--segments must be between 1 and {MAX_SEGMENTS}, not {segments}")
    if updated_attr is not None and not updated_attr:
        raise InputError("--updated-attr names an attribute; it cannot be empty")


# --------------------------------------------------------------------------- AWS


def _live_table(table: str, aws: AwsConfig) -> tuple[str, Any]:
    """The live table's ARN and key schema (``DescribeTable``)."""
    from pitrdiff import aws as aws_module
    from pitrdiff.aws import translate_errors
    from pitrdiff.export.keys import KeySchema

    client = aws_module.dynamodb_client(aws)
    with translate_errors(table=table, action="describing the table"):
        description: Any = client.describe_table(TableName=table)["Table"]
    schema = KeySchema.from_boto(description["KeySchema"], description.get("AttributeDefinitions"))
    return str(description.get("TableArn") or ""), schema


def _check_target(table: str, target: str, aws: AwsConfig) -> None:
    if target == table:
        raise RefusedError("--target must be a new table, not the live table")
    try:
        pitr.describe_table(target, aws=aws)
    except TableNotFoundError:
        return
    raise RefusedError(
        f"table {target} already exists; the drill restores into a new table: "
        "choose another --target (or leave it out)"
    )


def _incremental_table(source: str, at: dt.datetime | None, aws: AwsConfig) -> str:
    """The table an incremental export is of, after checking it can serve the drill.

    Its manifests are read and cross-checked; it must be an incremental export
    (``INCREMENTAL_EXPORT``) with ``NEW_AND_OLD_IMAGES`` (``NEW_IMAGE`` cannot
    tell added from changed), a window that ends after it starts and, with
    ``at``, starts at T (within a second: ``ExportFromTime`` is counted in
    seconds, API reference *IncrementalExportSpecification*), and every data
    file its ``manifest-files.json`` lists present.
    """
    from pitrdiff.export.native.location import ExportLocation, Reader
    from pitrdiff.export.native.manifest import (
        INCREMENTAL_EXPORT,
        NEW_AND_OLD_IMAGES,
        summary_of,
    )

    reader = Reader(ExportLocation.parse(source), aws, None)
    summary = summary_of(reader)
    option = f"--incremental-from-s3 {source}"
    if summary.export_type != INCREMENTAL_EXPORT:
        raise InputError(
            f"{option} is a {summary.export_type}, not an incremental "
            "export (ExportTableToPointInTime with ExportType INCREMENTAL_EXPORT)"
        )
    if (summary.output_view or NEW_AND_OLD_IMAGES) != NEW_AND_OLD_IMAGES:
        raise InputError(
            f"{option} has view type {summary.output_view}: the drill needs "
            f"{NEW_AND_OLD_IMAGES} (without old images added cannot be told from changed)"
        )
    start, end = (_export_time(summary, name) for name in ("exportFromTime", "exportToTime"))
    if end <= start:
        raise InputError(
            f"{option}: its window ends ({pitr.format_time(end)}) before it starts "
            f"({pitr.format_time(start)})"
        )
    if at is not None and abs((start - at).total_seconds()) >= 1:
        raise InputError(
            f"{option} starts at {pitr.format_time(start)}, not at the drill's restore time "
            f"{pitr.format_time(at)}: export the window from T (ExportFromTime = --at)"
        )
    for data in summary.files:
        ref = reader.data_file(data.key)  # a local file missing: ExportError names it
        if reader.location.bucket is not None and not reader.exists(ref):
            raise InputError(f"{option}: data file {reader.location.describe_ref(ref)} is missing")
    return (summary.table_arn or "").rpartition("table/")[2]


def _export_time(summary: Any, name: str) -> dt.datetime:
    """``exportFromTime`` / ``exportToTime`` of an incremental export's summary."""
    value = summary.export_from_time if name == "exportFromTime" else summary.export_to_time
    try:
        return pitr.parse_time(str(value))
    except InputError as exc:
        raise InputError(
            f"--incremental-from-s3 {summary.location.url}: {name} is "
            f"{'missing' if value is None else repr(value)}, not a time"
        ) from exc


def check_aws_inputs(
    table: str,
    target: str,
    *,
    expect: Mapping[str, Any],
    incremental: str | None,
    aws: AwsConfig,
    at: dt.datetime | None = None,
) -> None:
    """The checks that ask AWS (or read the incremental export): before any restore.

    Raises
    ------
    TableNotFoundError
        When the live table does not exist.
    RefusedError
        When ``target`` is the live table or an existing table.
    InputError
        A ``keys_must_exist`` entry that is not a key of the live table;
        an incremental export that is not one, or of another table, or not
        ``NEW_AND_OLD_IMAGES``, or whose window is inverted or (with ``at``)
        does not start at T, or an S3 data file it lists is missing.
    ExportError
        An incremental export whose manifests are missing or disagree, or a
        local data file it lists is missing.
    """
    exported = None if incremental is None else _incremental_table(incremental, at, aws)
    arn, schema = _live_table(table, aws)
    if exported and arn and exported != arn.rpartition("table/")[2]:
        raise InputError(
            f"--incremental-from-s3 {incremental} is an export of table {exported}, not of {table}"
        )
    _check_target(table, target, aws)
    keys: Sequence[Mapping[str, Any]] = expect.get("keys_must_exist") or ()
    for key in keys:
        key_json(key, schema)

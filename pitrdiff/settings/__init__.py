"""The settings diff: what a restore does not carry, and what promoting it would need.

A point-in-time restore brings back the data, the secondary indexes, the
provisioned capacity and the encryption settings. It does not bring back auto
scaling policies, IAM policies, CloudWatch metrics and alarms, tags, stream
settings, TTL settings or point-in-time recovery settings (DynamoDB API
Reference, ``RestoreTableToPointInTime``; developer guide, "Restore a table in
DynamoDB"), nor deletion protection, the resource policy or contributor
insights. :func:`compare_settings` reads both tables (read-only) and lists
every difference; :func:`write_script` writes the AWS CLI commands that would
bring the restored table in line, for a user who promotes it instead of
re-putting items.

Layout: :mod:`.read` asks the API (or an export manifest); :mod:`.compare`
compares and builds the commands.
"""

from __future__ import annotations

import os
from pathlib import Path

from pitrdiff.aws import AwsConfig
from pitrdiff.errors import InputError, RefusedError
from pitrdiff.files import write_bytes
from pitrdiff.settings.compare import (
    NOT_COMPARED,
    SettingDifference,
    SettingsDiff,
    compare,
    describe_value,
    render_script,
)
from pitrdiff.settings.read import (
    SETTINGS,
    SettingsClients,
    TableSettings,
    read_manifest_settings,
    read_table_settings,
)

__all__ = [
    "NOT_COMPARED",
    "SETTINGS",
    "SettingDifference",
    "SettingsClients",
    "SettingsDiff",
    "TableSettings",
    "compare",
    "compare_settings",
    "describe_value",
    "read_manifest_settings",
    "read_side",
    "read_table_settings",
    "render_script",
    "write_script",
]


def _is_manifest(source: str | os.PathLike[str]) -> bool:
    path = Path(source)
    return (path.is_dir() and (path / "manifest.json").is_file()) or (
        path.suffix == ".json" and path.is_file()
    )


def read_side(
    source: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
    clients: SettingsClients | None = None,
) -> TableSettings:
    """Read one side: a table name, or an export directory / manifest file on disk."""
    if _is_manifest(source):
        return read_manifest_settings(source)
    return read_table_settings(str(source), aws=aws, clients=clients)


def compare_settings(
    live: str | os.PathLike[str],
    restored: str | os.PathLike[str],
    *,
    aws: AwsConfig | None = None,
) -> SettingsDiff:
    """Compare the settings of the live table and the restored one; change nothing.

    Parameters
    ----------
    live
        The live table's name (or an export directory whose manifest recorded
        its settings).
    restored
        The restored table's name, or an export directory / ``manifest.json``
        (then only what the manifest recorded, TTL at least, is compared and
        no commands are produced).
    aws
        Where to talk to AWS.

    Returns
    -------
    SettingsDiff
        Every difference with what a promotion would need and the commands.

    Raises
    ------
    TableNotFoundError
        When a table does not exist.
    ExportError
        When a path is not an export manifest.
    """
    aws = aws or AwsConfig()
    clients = SettingsClients(aws)  # made once, for both tables
    return compare(
        read_side(live, clients=clients), read_side(restored, clients=clients), region=aws.region
    )


def write_script(diff: SettingsDiff, path: str | os.PathLike[str]) -> Path:
    """Write :func:`render_script` of ``diff`` to ``path`` atomically (owner-only).

    Raises
    ------
    InputError
        When the restored side is an export manifest (there is no table to change),
        or the file's directory does not exist.
    RefusedError
        When ``path`` exists: the script never replaces a file.
    StorageError
        When the file cannot be written.
    """
    if diff.restored.source != "table":
        raise InputError("--script needs a restored table, not an export manifest")
    target = Path(path)
    if target.exists() or target.is_symlink():
        raise RefusedError(f"{target} already exists: give --script a new file name")
    if not target.parent.is_dir():
        raise InputError(f"{target.parent} is not a directory: --script needs an existing one")
    write_bytes(target, render_script(diff).encode("utf-8"))
    return target

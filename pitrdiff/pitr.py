"""The PITR control plane: the restorable window, restores into a new table, cleanup.

A point-in-time restore always creates a **new** table; nothing here ever
writes to the live table. :func:`restore` validates the restore time before
calling AWS (zone required, inside the window, not in the future), picks a
target name that cannot collide by accident, and waits for the new table with
progress (real restores can take hours). :func:`cleanup` deletes a table only
when ``DescribeTable`` proves it is a restore (``RestoreSummary``).

AWS semantics coded for: ``LatestRestorableDateTime`` trails the current time
by about five minutes and moves forward; ``RestoreSummary.RestoreDateTime`` is
the point in time restored. moto's server (used by the tests and the demo)
differs: its window is frozen at the instant PITR was enabled, and a restore
copies the table as it is *now* whatever time is asked for.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pitrdiff import aws as aws_mod
from pitrdiff.aws import AwsConfig, translate_errors
from pitrdiff.errors import (
    InputError,
    Interrupted,
    PitrError,
    RefusedError,
    TableNotFoundError,
)
from pitrdiff.progress import SILENT, Progress

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

UTC = dt.timezone.utc
TABLE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
DEFAULT_POLL_SECONDS = 10.0
# How far AWS's latest restorable time usually trails the current time.
TYPICAL_LATEST_LAG = dt.timedelta(minutes=5)


# --------------------------------------------------------------------------- times


def parse_time(text: str | dt.datetime) -> dt.datetime:
    """Parse an ISO 8601 time with a zone into an aware UTC datetime.

    Parameters
    ----------
    text
        ``2026-10-27T14:00:00Z``, ``2026-10-27T16:00:00+02:00`` … or an aware datetime.

    Raises
    ------
    InputError
        When the text is not ISO 8601 or has no zone (a naive time is ambiguous).
    """
    if isinstance(text, dt.datetime):
        value = text
        shown = value.isoformat()
    else:
        shown = text.strip()
        candidate = shown[:-1] + "+00:00" if shown[-1:] in ("Z", "z") else shown
        try:
            value = dt.datetime.fromisoformat(candidate)
        except ValueError as exc:
            raise InputError(
                f"{shown!r} is not an ISO 8601 time (example: 2026-10-27T14:00:00Z)"
            ) from exc
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(
            f"time {shown!r} has no zone; add one so it is not ambiguous "
            f"(e.g. {value.replace(tzinfo=None).isoformat()}Z for UTC)"
        )
    return value.astimezone(UTC)


TIMESPECS = ("seconds", "milliseconds", "microseconds")


def format_time(value: dt.datetime | None, timespec: str | None = None) -> str | None:
    """An aware datetime as ISO 8601 UTC with a ``Z``.

    Parameters
    ----------
    value
        The time; ``None`` gives ``None``.
    timespec
        ``seconds``, ``milliseconds`` or ``microseconds`` (see
        :func:`distinct_timespec`); default: seconds when whole, else milliseconds.
    """
    if value is None:
        return None
    utc = value.astimezone(UTC)
    spec = timespec or ("seconds" if utc.microsecond == 0 else "milliseconds")
    return utc.isoformat(timespec=spec).replace("+00:00", "Z")


def distinct_timespec(*values: dt.datetime | None) -> str:
    """The precision at which different times also look different, at least the default one.

    A restore time 0.4 ms past the window's end must not be refused with
    three times that read the same: ``…00.123Z`` is outside ``… … 00.123Z``.
    """
    present = [v for v in values if v is not None]
    least = "milliseconds" if any(v.microsecond for v in present) else "seconds"
    for spec in TIMESPECS[TIMESPECS.index(least) :]:
        if len({format_time(v, spec) for v in present}) == len(set(present)):
            return spec
    return "microseconds"


def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_time(str(value))


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


# --------------------------------------------------------------------------- window


@dataclass(frozen=True)
class PitrWindow:
    """A table's point-in-time recovery status and restorable window.

    Attributes
    ----------
    table
        The table name.
    status
        ``ENABLED`` or ``DISABLED`` (``PointInTimeRecoveryStatus``).
    earliest
        The earliest restorable time (UTC), ``None`` when PITR is off.
    latest
        The latest restorable time (UTC); on AWS it trails now by a few minutes.
    recovery_period_days
        How many days back PITR keeps (35 unless configured), when reported.
    checked_at
        When the window was read (UTC).
    """

    table: str
    status: str
    earliest: dt.datetime | None
    latest: dt.datetime | None
    recovery_period_days: int | None
    checked_at: dt.datetime

    @property
    def enabled(self) -> bool:
        """Whether PITR is on (and a window exists)."""
        return self.status == "ENABLED" and self.earliest is not None and self.latest is not None

    @property
    def length(self) -> dt.timedelta | None:
        """``latest - earliest``, or ``None`` when PITR is off."""
        if self.earliest is None or self.latest is None:
            return None
        return self.latest - self.earliest

    @property
    def latest_lag(self) -> dt.timedelta | None:
        """How far the latest restorable time trails the time the window was read."""
        return None if self.latest is None else self.checked_at - self.latest

    def contains(self, at: dt.datetime) -> bool:
        """Whether ``at`` is restorable (inside ``[earliest, latest]``)."""
        return (
            self.enabled
            and self.earliest is not None
            and self.latest is not None
            and self.earliest <= at <= self.latest
        )

    def describe(self, timespec: str | None = None) -> str:
        """``2026-10-20T14:00:00Z … 2026-10-27T13:55:00Z`` or ``PITR is off``."""
        if self.status == "ENABLED" and not self.enabled:
            return f"point-in-time recovery was just turned on for {self.table}; no window yet"
        if not self.enabled:
            return f"point-in-time recovery is off for {self.table}"
        return f"{format_time(self.earliest, timespec)} … {format_time(self.latest, timespec)}"

    def to_dict(self) -> dict[str, Any]:
        """The window as plain JSON values."""
        length = self.length
        lag = self.latest_lag
        return {
            "table": self.table,
            "status": self.status,
            "enabled": self.enabled,
            "earliest_restorable_time": format_time(self.earliest),
            "latest_restorable_time": format_time(self.latest),
            "length_s": None if length is None else length.total_seconds(),
            "latest_lag_s": None if lag is None else lag.total_seconds(),
            "recovery_period_days": self.recovery_period_days,
            "checked_at": format_time(self.checked_at),
        }


def _client(aws: AwsConfig) -> DynamoDBClient:
    return aws_mod.dynamodb_client(aws)


def _window_from(table: str, response: Mapping[str, Any], checked_at: dt.datetime) -> PitrWindow:
    description = response.get("ContinuousBackupsDescription", {})
    pitr = description.get("PointInTimeRecoveryDescription", {})
    days = pitr.get("RecoveryPeriodInDays")
    return PitrWindow(
        table=table,
        status=str(pitr.get("PointInTimeRecoveryStatus", "DISABLED")),
        earliest=_utc(pitr.get("EarliestRestorableDateTime")),
        latest=_utc(pitr.get("LatestRestorableDateTime")),
        recovery_period_days=int(days) if days is not None else None,
        checked_at=checked_at,
    )


def window(table: str, *, aws: AwsConfig | None = None) -> PitrWindow:
    """Read a table's PITR status and restorable window.

    Parameters
    ----------
    table
        The table name.
    aws
        Where to talk to AWS.

    Raises
    ------
    TableNotFoundError
        When the table does not exist.
    """
    client = _client(aws or AwsConfig())
    return _describe_window(client, table)


def _describe_window(client: DynamoDBClient, table: str) -> PitrWindow:
    with translate_errors(table=table, action="reading the PITR window"):
        response = client.describe_continuous_backups(TableName=table)
    return _window_from(table, response, _now())


def enable_pitr(
    table: str, *, aws: AwsConfig | None = None, recovery_period_days: int | None = None
) -> PitrWindow:
    """Turn point-in-time recovery on for a table and return the new window.

    Only changes made from now on become restorable: PITR cannot reach back
    before the moment it was enabled.

    Parameters
    ----------
    table
        The table name.
    aws
        Where to talk to AWS.
    recovery_period_days
        Days to keep (1–35); ``None`` keeps AWS's default (35).
    """
    client = _client(aws or AwsConfig())
    spec: dict[str, Any] = {"PointInTimeRecoveryEnabled": True}
    if recovery_period_days is not None:
        if not 1 <= recovery_period_days <= 35:
            raise InputError("the recovery period is 1 to 35 days")
        spec["RecoveryPeriodInDays"] = recovery_period_days
    with translate_errors(table=table, action="enabling PITR"):
        client.update_continuous_backups(
            TableName=table,
            PointInTimeRecoverySpecification=spec,  # type: ignore[arg-type]
        )
    return _describe_window(client, table)


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableInfo:
    """What pitrdiff needs from ``DescribeTable``.

    Attributes
    ----------
    name, arn, status
        The table's name, ARN and ``TableStatus``.
    item_count
        AWS's estimate (updated about every six hours).
    indexes
        Names of the global and local secondary indexes.
    restore_source_arn
        ``RestoreSummary.SourceTableArn`` (or the backup ARN); ``None`` when the
        table is not a restore.
    restore_date_time
        ``RestoreSummary.RestoreDateTime``: the point in time restored.
    restore_in_progress
        ``RestoreSummary.RestoreInProgress``.
    deletion_protection
        Whether deletion protection is on.
    """

    name: str
    arn: str
    status: str
    item_count: int | None
    indexes: tuple[str, ...]
    restore_source_arn: str | None
    restore_date_time: dt.datetime | None
    restore_in_progress: bool
    deletion_protection: bool

    @property
    def is_restore(self) -> bool:
        """Whether ``DescribeTable`` shows a ``RestoreSummary``."""
        return self.restore_source_arn is not None

    @property
    def ready(self) -> bool:
        """ACTIVE and no restore still running."""
        return self.status == "ACTIVE" and not self.restore_in_progress

    def to_dict(self) -> dict[str, Any]:
        """The facts as plain JSON values."""
        return {
            "name": self.name,
            "arn": self.arn,
            "status": self.status,
            "item_count": self.item_count,
            "indexes": list(self.indexes),
            "is_restore": self.is_restore,
            "restore_source_arn": self.restore_source_arn,
            "restore_date_time": format_time(self.restore_date_time),
            "restore_in_progress": self.restore_in_progress,
            "deletion_protection": self.deletion_protection,
        }


def _table_info(description: Mapping[str, Any]) -> TableInfo:
    summary = description.get("RestoreSummary")
    indexes = tuple(
        str(index["IndexName"])
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
        for index in description.get(kind) or ()
    )
    count = description.get("ItemCount")
    return TableInfo(
        name=str(description["TableName"]),
        arn=str(description.get("TableArn", "")),
        status=str(description.get("TableStatus", "UNKNOWN")),
        item_count=int(count) if count is not None else None,
        indexes=indexes,
        restore_source_arn=(
            str(summary.get("SourceTableArn") or summary.get("SourceBackupArn") or "?")
            if summary
            else None
        ),
        restore_date_time=_utc(summary.get("RestoreDateTime")) if summary else None,
        restore_in_progress=bool(summary.get("RestoreInProgress")) if summary else False,
        deletion_protection=bool(description.get("DeletionProtectionEnabled")),
    )


def describe_table(table: str, *, aws: AwsConfig | None = None) -> TableInfo:
    """Describe a table (status, indexes, whether and from what it was restored).

    Raises
    ------
    TableNotFoundError
        When the table does not exist.
    """
    return _describe(_client(aws or AwsConfig()), table)


def _describe(client: DynamoDBClient, table: str) -> TableInfo:
    with translate_errors(table=table, action="describing the table"):
        response = client.describe_table(TableName=table)
    return _table_info(response["Table"])


def _exists(client: DynamoDBClient, table: str) -> TableInfo | None:
    try:
        return _describe(client, table)
    except TableNotFoundError:
        return None


def default_target(table: str, at: dt.datetime) -> str:
    """``<table>-pitr-<UTC timestamp>``, shortened to DynamoDB's 255-character limit."""
    suffix = f"-pitr-{at.astimezone(UTC).strftime(TIMESTAMP_FORMAT)}"
    return table[: 255 - len(suffix)] + suffix


def check_table_name(name: str) -> str:
    """Return ``name`` if DynamoDB accepts it as a table name.

    Raises
    ------
    InputError
        When it is not 3–255 characters of ``A-Z a-z 0-9 _ . -``.
    """
    if not TABLE_NAME_RE.match(name):
        raise InputError(
            f"{name!r} is not a valid table name (3-255 characters: letters, digits, _ . -)"
        )
    return name


def validate_restore_time(at: dt.datetime, pitr_window: PitrWindow, *, now: dt.datetime) -> None:
    """Refuse a restore time that AWS would refuse, with the window in the message.

    Raises
    ------
    PitrError
        When PITR is off, or ``at`` is in the future or outside the window.
    """
    spec = distinct_timespec(at, pitr_window.earliest, pitr_window.latest, now)
    shown = format_time(at, spec)
    if pitr_window.status == "ENABLED" and not pitr_window.enabled:
        raise PitrError(f"{pitr_window.describe()}: try again in a few minutes")
    if not pitr_window.enabled:
        raise PitrError(
            f"point-in-time recovery is off for {pitr_window.table}: nothing to restore; "
            f"turn it on with `pitrdiff window {pitr_window.table} --enable` "
            "(only changes from then on become restorable)"
        )
    if at > now:
        raise PitrError(f"restore time {shown} is in the future (now is {format_time(now, spec)})")
    if not pitr_window.contains(at):
        hint = ""
        if pitr_window.latest is not None and at > pitr_window.latest:
            hint = "; the latest restorable time trails now by a few minutes: wait, or use --latest"
        raise PitrError(
            f"restore time {shown} is outside the restorable window of "
            f"{pitr_window.table}: {pitr_window.describe(spec)}{hint}"
        )


# --------------------------------------------------------------------------- restore


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did.

    Attributes
    ----------
    source, target
        The live table and the restored (new) table.
    requested_at
        The restore time asked for (UTC); with ``latest`` the window's latest time.
    latest
        Whether the latest restorable time was asked for.
    restore_date_time
        The time ``DescribeTable`` reports as restored, when known.
    status
        The target's ``TableStatus`` when the call returned.
    ready
        Whether the target is ACTIVE with no restore in progress.
    indexes
        Secondary indexes restored with the table.
    dropped_indexes
        Secondary indexes left out (``no_indexes``).
    reused
        Whether an existing restore was reused instead of starting one.
    waited_s
        Seconds spent waiting for the target.
    item_count
        The target's item count estimate, when known.
    window
        The source's PITR window when the restore was requested (``None`` when reused).
    """

    source: str
    target: str
    requested_at: dt.datetime | None
    latest: bool
    restore_date_time: dt.datetime | None
    status: str
    ready: bool
    indexes: tuple[str, ...]
    dropped_indexes: tuple[str, ...]
    reused: bool
    waited_s: float
    item_count: int | None
    window: PitrWindow | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values."""
        return {
            "source": self.source,
            "target": self.target,
            "requested_at": format_time(self.requested_at),
            "latest": self.latest,
            "restore_date_time": format_time(self.restore_date_time),
            "status": self.status,
            "ready": self.ready,
            "indexes": list(self.indexes),
            "dropped_indexes": list(self.dropped_indexes),
            "reused": self.reused,
            "waited_s": round(self.waited_s, 3),
            "item_count": self.item_count,
            "window": None if self.window is None else self.window.to_dict(),
        }


def restore_request(
    source: str,
    target: str,
    *,
    at: dt.datetime | None,
    no_indexes: bool,
) -> dict[str, Any]:
    """The ``RestoreTableToPointInTime`` parameters for a restore.

    ``no_indexes`` passes empty index overrides: the restore skips building
    secondary indexes, which makes it faster and cheaper, and the diff reads
    the base table only.
    """
    request: dict[str, Any] = {"SourceTableName": source, "TargetTableName": target}
    if at is None:
        request["UseLatestRestorableTime"] = True
    else:
        request["RestoreDateTime"] = at
    if no_indexes:
        request["GlobalSecondaryIndexOverride"] = []
        request["LocalSecondaryIndexOverride"] = []
    return request


def restore(
    table: str,
    *,
    at: dt.datetime | str | None = None,
    latest: bool = False,
    target: str | None = None,
    no_indexes: bool = False,
    reuse: bool = False,
    wait: bool = True,
    aws: AwsConfig | None = None,
    progress: Progress = SILENT,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    timeout_s: float | None = None,
) -> RestoreResult:
    """Restore ``table`` as it was at ``at`` into a new table.

    Parameters
    ----------
    table
        The live (source) table.
    at
        The restore time: an aware datetime or ISO 8601 text with a zone.
    latest
        Restore the latest restorable time instead of ``at``.
    target
        The new table's name; default ``<table>-pitr-<UTC timestamp of at>``.
    no_indexes
        Restore without secondary indexes (faster; the diff does not need them).
    reuse
        Use ``target`` if it already exists and is a restore of ``table``.
    wait
        Wait until the new table is ACTIVE (with progress); otherwise return at once.
    aws
        Where to talk to AWS.
    progress
        Reports the wait (elapsed time and table status).
    poll_seconds
        Seconds between ``DescribeTable`` calls while waiting.
    timeout_s
        Give up waiting after this long (the restore goes on in AWS).

    Returns
    -------
    RestoreResult

    Raises
    ------
    InputError
        ``at`` is naive or not ISO 8601; both or neither of ``at`` and ``latest``.
    PitrError
        PITR is off, or ``at`` is in the future or outside the window.
    RefusedError
        ``target`` exists (without ``reuse``, or it is not a restore of ``table``).
    TableNotFoundError
        ``table`` does not exist.
    """
    # Everything checkable without AWS first.
    if (at is None) == (not latest):
        raise InputError("give exactly one of a restore time (--at) or --latest")
    at_utc = parse_time(at) if at is not None else None
    if target is not None:
        check_table_name(target)
    client = _client(aws or AwsConfig())
    source = _describe(client, table)
    if target is not None and target == table:
        raise RefusedError("the target must be a new table, not the live table")

    def reuse_existing(name: str) -> RestoreResult | None:
        # an existing target is refused, or with --reuse checked and waited for
        existing = _exists(client, name)
        if existing is None:
            return None
        return _reuse(
            client,
            source,
            existing,
            at_utc,
            latest,
            reuse,
            wait,
            progress,
            poll_seconds,
            timeout_s,
        )

    if target is not None and (result := reuse_existing(target)) is not None:
        return result

    pitr_window = _describe_window(client, table)
    now = _now()
    if at_utc is not None:
        validate_restore_time(at_utc, pitr_window, now=now)
    elif not pitr_window.enabled:
        validate_restore_time(now, pitr_window, now=now)  # raises: PITR is off
    restore_at = at_utc if at_utc is not None else pitr_window.latest
    assert restore_at is not None  # the window is enabled here
    name = target or default_target(table, restore_at)
    check_table_name(name)
    if target is None and (result := reuse_existing(name)) is not None:
        return result

    request = restore_request(table, name, at=at_utc, no_indexes=no_indexes)
    with translate_errors(table=table, action="starting the restore"):
        try:
            client.restore_table_to_point_in_time(**request)
        except Exception as exc:
            code = aws_mod.client_error_code(exc)
            if code == "TableAlreadyExistsException":
                raise RefusedError(
                    f"table {name} already exists; pass --reuse or choose another --target"
                ) from exc
            if code in ("InvalidRestoreTimeException", "PointInTimeRecoveryUnavailableException"):
                raise PitrError(f"AWS refused the restore of {table}: {exc}") from exc
            raise
    log.debug("restore of %s into %s started", table, name)
    info, waited = (
        wait_for_table(
            name, client=client, progress=progress, poll_seconds=poll_seconds, timeout_s=timeout_s
        )
        if wait
        else (_describe(client, name), 0.0)
    )
    return RestoreResult(
        source=table,
        target=name,
        requested_at=restore_at,
        latest=latest,
        restore_date_time=info.restore_date_time,
        status=info.status,
        ready=info.ready,
        indexes=info.indexes if not no_indexes else (),
        dropped_indexes=source.indexes if no_indexes else (),
        reused=False,
        waited_s=waited,
        item_count=info.item_count,
        window=pitr_window,
    )


def _reuse(
    client: DynamoDBClient,
    source: TableInfo,
    existing: TableInfo,
    at: dt.datetime | None,
    latest: bool,
    reuse: bool,
    wait: bool,
    progress: Progress,
    poll_seconds: float,
    timeout_s: float | None,
) -> RestoreResult:
    if not reuse:
        raise RefusedError(
            f"table {existing.name} already exists; pass --reuse to use it "
            f"(it must be a restore of {source.name}) or choose another --target"
        )
    if not existing.is_restore:
        raise RefusedError(
            f"table {existing.name} is not a restored table (no RestoreSummary); not reusing it"
        )
    if existing.restore_source_arn != source.arn:
        raise RefusedError(
            f"table {existing.name} is a restore of {existing.restore_source_arn}, "
            f"not of {source.name} ({source.arn}); not reusing it"
        )
    if (
        at is not None
        and existing.restore_date_time is not None
        and existing.restore_date_time != at
    ):
        log.warning(
            "reusing %s: it reports restore time %s, not %s",
            existing.name,
            format_time(existing.restore_date_time),
            format_time(at),
        )
    info, waited = (
        wait_for_table(
            existing.name,
            client=client,
            progress=progress,
            poll_seconds=poll_seconds,
            timeout_s=timeout_s,
        )
        if wait
        else (existing, 0.0)
    )
    return RestoreResult(
        source=source.name,
        target=existing.name,
        requested_at=at,
        latest=latest,
        restore_date_time=info.restore_date_time,
        status=info.status,
        ready=info.ready,
        indexes=info.indexes,
        dropped_indexes=tuple(i for i in source.indexes if i not in info.indexes),
        reused=True,
        waited_s=waited,
        item_count=info.item_count,
        window=None,
    )


def wait_for_table(
    target: str,
    *,
    aws: AwsConfig | None = None,
    client: DynamoDBClient | None = None,
    progress: Progress = SILENT,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[TableInfo, float]:
    """Wait until ``target`` is ACTIVE with no restore in progress.

    Parameters
    ----------
    target
        The table to wait for (typically a restore just started).
    aws
        Where to talk to AWS (ignored when ``client`` is given).
    client
        A DynamoDB client to reuse.
    progress
        Shows the table status beside the elapsed time.
    poll_seconds
        Seconds between ``DescribeTable`` calls.
    timeout_s
        Give up after this many seconds; the restore continues in AWS.
    sleep
        The sleep function (tests pass a fast one).

    Returns
    -------
    tuple[TableInfo, float]
        The table's description once ready, and the seconds waited.

    Raises
    ------
    TableNotFoundError
        When the table does not exist (or disappeared while waiting).
    PitrError
        When the wait times out.
    Interrupted
        On Ctrl-C; the restore goes on in AWS and the message says how to resume.
    """
    client = client or _client(aws or AwsConfig())
    started = time.monotonic()
    progress.start(f"waiting for {target}", total=None, unit="s")
    try:
        while True:
            info = _describe(client, target)
            elapsed = time.monotonic() - started
            state = info.status + (", restore in progress" if info.restore_in_progress else "")
            progress.status(state)
            if info.ready:
                return info, elapsed
            if timeout_s is not None and elapsed >= timeout_s:
                raise PitrError(
                    f"{target} is still {state} after {elapsed:.0f}s; the restore goes on in "
                    f"AWS: resume with `pitrdiff restore --wait {target}`"
                )
            sleep(poll_seconds)
    except KeyboardInterrupt as exc:
        raise Interrupted(
            f"stopped waiting for {target}; the restore goes on in AWS: "
            f"resume with `pitrdiff restore --wait {target}`"
        ) from exc
    finally:
        progress.finish()


# --------------------------------------------------------------------------- cleanup


@dataclass(frozen=True)
class CleanupResult:
    """What :func:`cleanup` did.

    Attributes
    ----------
    table
        The restored table.
    deleted
        Whether it was deleted (``False`` when the confirmation said no).
    info
        Its description before deletion.
    """

    table: str
    deleted: bool
    info: TableInfo

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values."""
        return {"table": self.table, "deleted": self.deleted, "info": self.info.to_dict()}


def cleanup(
    table: str,
    *,
    aws: AwsConfig | None = None,
    confirm: Callable[[TableInfo], bool] | None = None,
) -> CleanupResult:
    """Delete a restored table, and only a restored table.

    Parameters
    ----------
    table
        The restored table to delete.
    aws
        Where to talk to AWS.
    confirm
        Called with the table's description before deleting; ``False`` keeps it.

    Raises
    ------
    RefusedError
        When ``DescribeTable`` shows no ``RestoreSummary`` (a live table is
        never deleted), or deletion protection is on.
    TableNotFoundError
        When the table does not exist.
    """
    client = _client(aws or AwsConfig())
    info = _describe(client, table)
    if not info.is_restore:
        raise RefusedError(
            f"{table} is not a restored table (DescribeTable shows no RestoreSummary); "
            "pitrdiff only deletes tables it can prove are restores"
        )
    if info.deletion_protection:
        raise RefusedError(f"{table} has deletion protection on; turn it off first if you mean it")
    if confirm is not None and not confirm(info):
        return CleanupResult(table=table, deleted=False, info=info)
    with translate_errors(table=table, action="deleting the restored table"):
        client.delete_table(TableName=table)
    return CleanupResult(table=table, deleted=True, info=info)

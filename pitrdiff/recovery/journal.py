"""The apply journal, and the place it binds: account, region, endpoint, table.

Progress of an apply is journaled to ``<plan>.journal``: append-only JSON
lines, fsynced in small batches. Its first line binds it to the plan (its
checksum) and to the place it writes to (:class:`Place`): the account (STS
``GetCallerIdentity`` on AWS; on a local server, the account its table ARN
names, so no STS request goes through it), the region, the endpoint and the
table's ARN and identity (``DescribeTable``'s ``TableId``, else its
``CreationDateTime``: a table dropped and re-created under the same name is
another table). Endpoints are compared normalised (scheme and host in lower
case, no trailing slash). A re-run resumes only at the same
place; a journal written elsewhere is refused in one line naming both places,
and nothing is skipped because of it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from pitrdiff.aws import AwsConfig, RetryCounter, count_retries, session
from pitrdiff.errors import RefusedError
from pitrdiff.files import FILE_MODE, storage_error

_JOURNAL_BATCH = 64
_JOURNAL_SECONDS = 0.5


@dataclass(frozen=True)
class Place:
    """Where an apply writes.

    Attributes
    ----------
    table
        The table's name.
    table_arn
        Its ARN from ``DescribeTable`` (``None`` when the server gives none).
    region
        The client's region.
    endpoint
        The endpoint the client talks to.
    account
        The account of the credentials (STS ``GetCallerIdentity``), ``None``
        when the endpoint does not answer STS (dynalite).
    table_identity
        ``DescribeTable``'s ``TableId`` (else ``created <CreationDateTime>``):
        tells a re-created table of the same name from the one the journal
        wrote to; ``None`` when the server gives neither (or an older journal).
    """

    table: str
    table_arn: str | None
    region: str
    endpoint: str
    account: str | None
    table_identity: str | None = None

    def describe(self) -> str:
        """One short line: the table's ARN (it names region and account) and the endpoint."""
        if self.table_arn:
            where = f"{self.table_arn} at {self.endpoint}"
            if self.account and f":{self.account}:" not in self.table_arn:
                where += f" (account {self.account})"
            return where
        account = f", account {self.account}" if self.account else ""
        return f"table {self.table} (region {self.region}{account}) at {self.endpoint}"

    def spelled_out(self) -> str:
        """Each part named: ``table T in account A, region R, at E`` (for a question)."""
        return (
            f"table {self.table} in account {self.account or 'unknown'}, "
            f"region {self.region}, at {self.endpoint}"
        )

    def matches(self, other: Place) -> bool:
        """Tell whether two places are the same (an unknown account matches by the ARN)."""
        here = (self.table, self.region, normalise_endpoint(self.endpoint))
        if here != (other.table, other.region, normalise_endpoint(other.endpoint)):
            return False
        mine, theirs = self.table_identity, other.table_identity
        if mine and theirs and mine != theirs:
            return False
        if self.table_arn and other.table_arn and self.table_arn != other.table_arn:
            return False
        return not (self.account and other.account and self.account != other.account)

    def to_dict(self) -> dict[str, Any]:
        """The place as plain data (as the journal records it)."""
        return {
            "table": self.table,
            "table_arn": self.table_arn,
            "region": self.region,
            "endpoint": self.endpoint,
            "account": self.account,
            "table_identity": self.table_identity,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Place:
        """Inverse of :meth:`to_dict`."""
        return cls(
            table=str(doc.get("table")),
            table_arn=doc.get("table_arn"),
            region=str(doc.get("region")),
            endpoint=str(doc.get("endpoint")),
            account=doc.get("account"),
            table_identity=doc.get("table_identity"),
        )


def normalise_endpoint(endpoint: str) -> str:
    """``endpoint`` with scheme and host in lower case and no trailing slash.

    ``localhost`` and ``127.0.0.1`` stay distinct (no name is resolved).
    """
    parts = urlsplit(endpoint.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def table_identity(described: Mapping[str, Any]) -> str | None:
    """The identity of a table across re-creation: ``TableId``, else its creation time."""
    table_id = described.get("TableId")
    if table_id:
        return str(table_id)
    created = described.get("CreationDateTime")
    if isinstance(created, datetime):
        return f"created {created.astimezone(timezone.utc).isoformat()}"
    return f"created {created}" if created is not None else None


def _arn_account(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def resolve_place(
    client: Any,
    aws: AwsConfig,
    table: str,
    described: Mapping[str, Any],
    counter: RetryCounter | None = None,
) -> Place:
    """The :class:`Place` of ``table`` as ``client`` reaches it.

    Parameters
    ----------
    client
        The DynamoDB client the apply writes with.
    aws
        Its configuration (for STS).
    table
        The table's name.
    described
        The table's ``DescribeTable`` result (``["Table"]``).
    counter
        Counts the retries of the STS request.
    """
    endpoint = str(client.meta.endpoint_url)
    arn = described.get("TableArn")
    # on a local server, the account its table ARN names: no STS request through it
    local = ".amazonaws.com" not in endpoint
    account = _arn_account(arn) if local else caller_account(aws, counter)
    return Place(
        table=table,
        table_arn=arn,
        region=str(client.meta.region_name),
        endpoint=normalise_endpoint(endpoint),
        account=account or _arn_account(arn),
        table_identity=table_identity(described),
    )


def caller_account(aws: AwsConfig, counter: RetryCounter | None = None) -> str | None:
    """The account of the credentials: STS ``GetCallerIdentity`` at AWS's endpoint.

    Its retries are added to ``counter``; any failure gives ``None`` (the
    table's ARN still names the account).
    """
    import botocore.config

    try:
        client = session(aws).client(
            "sts",
            region_name=aws.region or None,
            config=botocore.config.Config(
                retries={"total_max_attempts": 4, "mode": "standard"},
                connect_timeout=5,
                read_timeout=10,
            ),
        )
        retried = count_retries(client)
        account = client.get_caller_identity().get("Account")
    except Exception:  # any answer but an account: the table's ARN names it
        return None
    if counter is not None:
        counter.retries += retried.retries
        counter.throttles += retried.throttles
    return str(account) if account else None


class Journal:
    """Append-only journal of outcomes; flushed and fsynced in small batches.

    Raises
    ------
    RefusedError
        When another apply of the same plan holds the journal.
    """

    def __init__(self, path: Path, checksum: str, place: Place) -> None:
        self.path = path
        new = not path.exists()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise storage_error(exc, path, "write journal") from exc
        try:
            # One apply per plan at a time; the lock dies with its process (kill -9 too).
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise RefusedError(
                f"another apply of this plan is running (journal {path} is locked)"
            ) from exc
        self._handle: IO[bytes] = os.fdopen(fd, "ab")
        self._pending = 0
        self._last = time.monotonic()
        if new or path.stat().st_size == 0:
            self._write(
                {
                    "kind": "journal",
                    "plan_xxh3_128": checksum,
                    "table": place.table,
                    "place": place.to_dict(),
                }
            )
            self.sync()
        else:
            self._terminate_torn_line()

    def _terminate_torn_line(self) -> None:
        # A crash mid-write can leave a partial last line; start on a fresh one.
        with open(self.path, "rb") as reader:
            reader.seek(-1, os.SEEK_END)
            if reader.read(1) != b"\n":
                self._handle.write(b"\n")

    def _write(self, document: Mapping[str, Any]) -> None:
        try:
            self._handle.write(orjson.dumps(document) + b"\n")
        except OSError as exc:
            raise storage_error(exc, self.path, "write journal") from exc

    def record(self, seq: int, outcome: str) -> None:
        """Journal one operation's outcome (durable within about half a second)."""
        self._write({"seq": seq, "outcome": outcome})
        self._pending += 1
        now = time.monotonic()
        if self._pending >= _JOURNAL_BATCH or now - self._last >= _JOURNAL_SECONDS:
            self.sync()

    def sync(self) -> None:
        """Flush and fsync what was recorded."""
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise storage_error(exc, self.path, "write journal") from exc
        self._pending = 0
        self._last = time.monotonic()

    def close(self) -> None:
        """Sync and close."""
        try:
            self.sync()
        finally:
            self._handle.close()


def _check_header(path: Path, doc: Mapping[str, Any], checksum: str, place: Place) -> None:
    if doc.get("plan_xxh3_128") != checksum:
        raise RefusedError(f"journal {path} belongs to another plan; move it away to start over")
    recorded = doc.get("place")
    if not isinstance(recorded, Mapping):
        raise RefusedError(
            f"journal {path} records an apply to table {doc.get('table')!r} without saying "
            f"where (an older pitrdiff); this apply is to {place.describe()}: "
            "move the journal away to apply here"
        )
    there = Place.from_dict(recorded)
    if not there.matches(place):
        this, that = there.describe(), place.describe()
        if this == that:  # the same name and address: the table was re-created
            this += f" (table {there.table_identity})"
            that += f" (table {place.table_identity}, re-created since)"
        raise RefusedError(
            f"journal {path} records an apply to {this}; this apply is to "
            f"{that}: move the journal away to apply the plan here"
        )


def read_journal(path: Path, checksum: str, place: Place) -> dict[int, str]:
    """Return ``{seq: outcome}`` recorded in the journal (empty when there is none).

    Parameters
    ----------
    path
        The journal (``<plan>.journal``).
    checksum
        The plan's checksum.
    place
        Where this apply writes.

    Raises
    ------
    RefusedError
        When the journal belongs to another plan or was written at another place
        (the message names both places).
    """
    outcomes: dict[int, str] = {}
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return outcomes
    except OSError as exc:
        raise storage_error(exc, path, "read journal") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn line from a crash: that outcome was not durable
            if not isinstance(doc, dict):
                continue
            if number == 1 and doc.get("kind") == "journal":
                _check_header(path, doc, checksum, place)
                continue
            seq, outcome = doc.get("seq"), doc.get("outcome")
            if isinstance(seq, int) and isinstance(outcome, str):
                outcomes[seq] = outcome
    return outcomes


__all__ = ["Journal", "Place", "caller_account", "read_journal", "resolve_place"]

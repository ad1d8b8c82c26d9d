"""Executing a plan: conditional writes, journal, resume, rate limit.

Each operation is one conditional write through the low-level client:

- ``put`` of a **deleted** item: ``attribute_not_exists`` on the partition key
  (put only if the item is still absent);
- ``put`` of a **changed** item and ``delete`` of an **added** item: only if
  the live item still matches the observed one. The condition pins every
  observed attribute: scalars and sets by ``=``; maps and lists by their type,
  their ``size()`` and, recursively, every element (DynamoDB-protocol servers
  differ on ``=`` over whole documents, element-wise comparison is portable
  and exact).

No condition can say "and no other attribute": an attribute *added* to the
item since the diff is invisible to it. Every write therefore asks for the
replaced item (``ReturnValues=ALL_OLD``, free of charge) and compares it with
the observed item; if they differ, the write is undone at once (the previous
item is put back, on condition that the item is still exactly what we wrote)
and the operation is a conflict. The residual race is the short window between
the write and its undo, documented in the README.

A failed condition is classified by reading the current item: if it is
already the target state (the restored item for a put, absent for a delete)
the operation counts as **already done**; otherwise it is a **conflict** and
the item is left untouched. Conflicts and failures are written, with their key
and current item, to ``<plan>.conflicts.jsonl``.

Progress is journaled to ``<plan>.journal`` (append-only JSON lines, fsynced
in small batches). Re-running resumes: operations journaled as applied or
already done are skipped; an operation done but not yet journaled when the
process died is classified as already done by its own condition.

Test hook: the environment variable ``PITRDIFF_APPLY_DELAY_S`` makes each
operation sleep that many seconds first (used by the crash-and-resume test).
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import botocore.exceptions
import orjson

from pitrdiff import codec
from pitrdiff.aws import (
    AwsConfig,
    count_retries,
    dynamodb_client,
    error_from_client_error,
    translate_errors,
)
from pitrdiff.errors import (
    CredentialsError,
    InputError,
    Interrupted,
    PitrdiffError,
    PlanError,
    RefusedError,
    SchemaMismatchError,
    TableNotFoundError,
)
from pitrdiff.export.dataset import KeySchema
from pitrdiff.files import FILE_MODE, atomic_writer, storage_error
from pitrdiff.progress import SILENT, Progress
from pitrdiff.recovery.plan import Operation, Plan, load_plan

log = logging.getLogger(__name__)

MAX_EXPRESSION_BYTES = 4096  # DynamoDB's limit on one expression string
_JOURNAL_BATCH = 64
_JOURNAL_SECONDS = 0.5
_DELAY_ENV = "PITRDIFF_APPLY_DELAY_S"

APPLIED = "applied"
ALREADY_DONE = "already_done"
CONFLICT = "conflict"
FAILED = "failed"
_DONE = frozenset({APPLIED, ALREADY_DONE})


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ApplyReport:
    """What :func:`apply_plan` did (or, in a dry run, would do).

    Attributes
    ----------
    plan
        The plan file.
    table
        The table written to.
    dry_run
        True when nothing was written: the counts are predictions from reads.
    operations
        Operations in the plan.
    applied
        Operations written now (predicted: would be written).
    already_done
        Operations whose item already was in the target state, including
        ``from_journal`` operations a previous run had done.
    from_journal
        Operations skipped because the journal records them as done.
    conflicts
        Operations left untouched because the item changed since the diff.
    failed
        Operations that could not be written (reason in the conflicts file).
    retries
        Requests retried (throttling, 5xx, dropped connections).
    throttles
        Of those, retries after throttling.
    consumed_wcu
        Write capacity consumed, as the service reported it.
    elapsed_s
        Wall time.
    journal
        The journal file (``None`` in a dry run).
    conflicts_file
        The file listing conflicts and failures with keys and current items
        (``None`` when there are none, and in a dry run).
    by_class
        Outcome counts per diff class.
    issues
        The first conflicts and failures (key, class, outcome, reason).
    """

    plan: str
    table: str
    dry_run: bool
    operations: int
    applied: int
    already_done: int
    from_journal: int
    conflicts: int
    failed: int
    retries: int
    throttles: int
    consumed_wcu: float
    elapsed_s: float
    journal: str | None
    conflicts_file: str | None
    by_class: dict[str, dict[str, int]] = field(default_factory=dict)
    issues: tuple[dict[str, Any], ...] = ()

    @property
    def clean(self) -> bool:
        """True when every operation is applied or already done."""
        return self.conflicts == 0 and self.failed == 0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        return {
            "plan": self.plan,
            "table": self.table,
            "dry_run": self.dry_run,
            "operations": self.operations,
            "applied": self.applied,
            "already_done": self.already_done,
            "from_journal": self.from_journal,
            "conflicts": self.conflicts,
            "failed": self.failed,
            "retries": self.retries,
            "throttles": self.throttles,
            "consumed_wcu": self.consumed_wcu,
            "elapsed_s": self.elapsed_s,
            "journal": self.journal,
            "conflicts_file": self.conflicts_file,
            "by_class": {k: dict(v) for k, v in self.by_class.items()},
            "issues": [dict(i) for i in self.issues],
            "clean": self.clean,
        }


@dataclass(frozen=True)
class _Outcome:
    seq: int
    item_class: str
    outcome: str
    key: dict[str, Any]
    reason: str | None = None
    current: dict[str, Any] | None = None
    consumed: float = 0.0


# --------------------------------------------------------------------------- conditions


class _Expression:
    """Collects placeholders for names and values of one request."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._name_of: dict[str, str] = {}
        self._value_of: dict[str, str] = {}

    def name(self, attribute: str) -> str:
        placeholder = self._name_of.get(attribute)
        if placeholder is None:
            placeholder = f"#n{len(self._name_of)}"
            self._name_of[attribute] = placeholder
            self.names[placeholder] = attribute
        return placeholder

    def value(self, typed: Mapping[str, Any]) -> str:
        text = codec.dumps(typed)
        placeholder = self._value_of.get(text)
        if placeholder is None:
            placeholder = f":v{len(self._value_of)}"
            self._value_of[text] = placeholder
            self.values[placeholder] = codec.to_botocore({"v": typed})["v"]
        return placeholder


def _match_value(
    expression: _Expression, path: str, typed: Mapping[str, Any], parts: list[str]
) -> None:
    ((tag, value),) = typed.items()
    if tag in (codec.M, codec.L):
        parts.append(f"attribute_type({path}, {expression.value({codec.S: tag})})")
        parts.append(f"size({path}) = {expression.value({codec.N: str(len(value))})}")
        if tag == codec.M:
            for name, inner in value.items():
                _match_value(expression, f"{path}.{expression.name(name)}", inner, parts)
        else:
            for index, inner in enumerate(value):
                _match_value(expression, f"{path}[{index}]", inner, parts)
    else:
        parts.append(f"{path} = {expression.value(typed)}")


def match_condition(observed: Mapping[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Build the condition "the item still has every observed attribute value".

    Parameters
    ----------
    observed
        The item as the diff observed it (wire form).

    Returns
    -------
    tuple
        ``(ConditionExpression, ExpressionAttributeNames, ExpressionAttributeValues)``
        with every name and value behind a placeholder.
    """
    expression = _Expression()
    parts: list[str] = []
    for name, typed in observed.items():
        _match_value(expression, expression.name(name), typed, parts)
    return " AND ".join(parts), expression.names, expression.values


def absent_condition(key: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The condition "no item with this key exists" (on the partition key)."""
    partition = next(iter(key))
    return "attribute_not_exists(#k0)", {"#k0": partition}


# --------------------------------------------------------------------------- journal


class _Journal:
    """Append-only journal of outcomes; flushed and fsynced in small batches."""

    def __init__(self, path: Path, plan: Plan, table: str) -> None:
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
            self._write({"kind": "journal", "plan_xxh3_128": plan.checksum, "table": table})
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
        self._write({"seq": seq, "outcome": outcome})
        self._pending += 1
        now = time.monotonic()
        if self._pending >= _JOURNAL_BATCH or now - self._last >= _JOURNAL_SECONDS:
            self.sync()

    def sync(self) -> None:
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise storage_error(exc, self.path, "write journal") from exc
        self._pending = 0
        self._last = time.monotonic()

    def close(self) -> None:
        try:
            self.sync()
        finally:
            self._handle.close()


def read_journal(path: Path, plan: Plan, table: str) -> dict[int, str]:
    """Return ``{seq: outcome}`` recorded in the journal of ``plan`` (empty if none).

    Raises
    ------
    PlanError
        When the journal belongs to another plan or was written for another table.
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
                if doc.get("plan_xxh3_128") != plan.checksum:
                    raise PlanError(
                        f"journal {path} belongs to another plan; move it away to start over"
                    )
                if doc.get("table") != table:
                    raise PlanError(
                        f"journal {path} records an apply to table {doc.get('table')!r}, "
                        f"not {table!r}; move it away to start over"
                    )
                continue
            seq, outcome = doc.get("seq"), doc.get("outcome")
            if isinstance(seq, int) and isinstance(outcome, str):
                outcomes[seq] = outcome
    return outcomes


# --------------------------------------------------------------------------- rate limit


class _TokenBucket:
    """Write-capacity budget per second, charged with the consumed capacity."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, units: float) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= units
            wait_s = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait_s > 0:
            time.sleep(wait_s)

    def charge(self, units: float) -> None:
        if units:
            with self._lock:
                self._tokens -= units


# --------------------------------------------------------------------------- one operation


class _Executor:
    """Runs single operations against one table (thread-safe)."""

    def __init__(self, client: Any, table: str, dry_run: bool, bucket: _TokenBucket | None) -> None:
        self.client = client
        self.table = table
        self.dry_run = dry_run
        self.bucket = bucket
        delay = os.environ.get(_DELAY_ENV)
        self.delay = float(delay) if delay else 0.0

    def run(self, op: Operation) -> _Outcome:
        if self.delay:
            time.sleep(self.delay)
        if self.dry_run:
            return self._predict(op)
        if op.op == "put" and (op.line_bytes == 0 or op.line_bytes > codec.MAX_ITEM_SIZE):
            assert op.item is not None
            size = codec.item_size(op.item)
            if size > codec.MAX_ITEM_SIZE:
                return self._outcome(
                    op, FAILED, f"item is {size} bytes, over DynamoDB's 400 KB item limit"
                )
        try:
            request = self._request(op)
        except _TooLarge as exc:
            return self._outcome(op, FAILED, str(exc))
        if self.bucket is not None:
            self.bucket.take(1.0)
        try:
            if op.op == "put":
                response = self.client.put_item(**request)
            else:
                response = self.client.delete_item(**request)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                returned: Any = exc.response.get("Item")
                return self._classify(op, returned)
            return self._failure(op, exc)
        consumed = float((response.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0)
        if self.bucket is not None:
            self.bucket.charge(consumed - 1.0)
        previous = response.get("Attributes")
        if not _same(previous, op.expected):
            return self._undo(op, previous, consumed)
        return self._outcome(op, APPLIED, consumed=consumed)

    # requests -------------------------------------------------------------------
    def _request(self, op: Operation) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "ReturnValues": "ALL_OLD",
            "ReturnConsumedCapacity": "TOTAL",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if op.expected is None:
            condition, names = absent_condition(op.key)
            values: dict[str, Any] = {}
        else:
            condition, names, values = match_condition(op.expected)
            if len(condition.encode("utf-8")) > MAX_EXPRESSION_BYTES:
                raise _TooLarge(
                    f"the observed item has too many attributes to check in one "
                    f"{MAX_EXPRESSION_BYTES}-byte condition; not written"
                )
        request["ConditionExpression"] = condition
        request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        if op.op == "put":
            assert op.item is not None
            request["Item"] = codec.to_botocore(op.item)
        else:
            request["Key"] = codec.to_botocore(op.key)
        return request

    def _current(self, op: Operation) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.table, Key=codec.to_botocore(op.key), ConsistentRead=True
        )
        item = response.get("Item")
        return dict(item) if item else None

    # outcomes -------------------------------------------------------------------
    def _classify(self, op: Operation, returned: dict[str, Any] | None) -> _Outcome:
        # Servers that do not return the item on a failed condition: read it.
        if returned:
            current: dict[str, Any] | None = returned
        else:
            try:
                current = self._current(op)
            except botocore.exceptions.ClientError as exc:
                return self._failure(op, exc)
        target = op.item if op.op == "put" else None
        if _same(current, target):
            return self._outcome(op, ALREADY_DONE)
        reason = (
            "an item with this key was written since the diff; left untouched"
            if op.expected is None
            else "the item changed since the diff; left untouched"
        )
        return self._outcome(op, CONFLICT, reason, current=current)

    def _predict(self, op: Operation) -> _Outcome:
        with translate_errors(table=self.table, action="reading the current item"):
            current = self._current(op)
        if _same(current, op.item if op.op == "put" else None):
            return self._outcome(op, ALREADY_DONE)
        if _same(current, op.expected):
            return self._outcome(op, APPLIED)
        return self._outcome(
            op, CONFLICT, "the item changed since the diff; would be left untouched", current
        )

    def _undo(self, op: Operation, previous: dict[str, Any] | None, consumed: float) -> _Outcome:
        """Put back what the write replaced, if nobody wrote since; report a conflict."""
        assert op.op == "put" or op.expected is not None
        written = op.item if op.op == "put" else None
        request: dict[str, Any] = {"TableName": self.table}
        if written is None:
            condition, names = absent_condition(op.key)
            values: dict[str, Any] = {}
        else:
            condition, names, values = match_condition(written)
        request.update(ConditionExpression=condition, ExpressionAttributeNames=names)
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            if previous is None:
                request["Key"] = codec.to_botocore(op.key)
                self.client.delete_item(**request)
            else:
                request["Item"] = previous
                self.client.put_item(**request)
        except botocore.exceptions.ClientError as exc:
            reason = exc.response.get("Error", {}).get("Code", "error")
            return self._outcome(
                op,
                FAILED,
                "the item had changed since the diff and was overwritten; the undo failed "
                f"({reason}): its previous version is in 'current'",
                current=previous,
                consumed=consumed,
            )
        return self._outcome(
            op,
            CONFLICT,
            "the item had changed since the diff (an attribute not observed); the write was undone",
            current=previous,
            consumed=consumed,
        )

    def _failure(self, op: Operation, exc: botocore.exceptions.ClientError) -> _Outcome:
        error = error_from_client_error(exc, table=self.table, where=f" writing op {op.seq}")
        if isinstance(error, (CredentialsError, TableNotFoundError)):
            raise error from exc  # nothing else can succeed either
        # e.g. a ValidationException (this item cannot be written as planned) or
        # a throttle / 5xx that outlasted every retry: report it, go on.
        return self._outcome(op, FAILED, str(error))

    def _outcome(
        self,
        op: Operation,
        outcome: str,
        reason: str | None = None,
        current: dict[str, Any] | None = None,
        consumed: float = 0.0,
    ) -> _Outcome:
        return _Outcome(op.seq, op.item_class, outcome, op.key, reason, current, consumed)


class _TooLarge(Exception):
    pass


def _same(current: Mapping[str, Any] | None, target: Mapping[str, Any] | None) -> bool:
    if current is None or target is None:
        return current is None and target is None
    return codec.canonical_json(current) == codec.canonical_json(target)


def _jsonable(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # botocore returns binary as bytes; the report stores canonical wire form
    return codec.loads(codec.canonical_json(item)) if item is not None else None


# --------------------------------------------------------------------------- apply


def _check_table(client: Any, table: str, schema: KeySchema) -> None:
    with translate_errors(table=table, action="describing the table"):
        described = client.describe_table(TableName=table)["Table"]
    live = KeySchema.from_boto(described["KeySchema"], described.get("AttributeDefinitions"))
    if not live.same_keys(schema):
        raise SchemaMismatchError(
            f"table {table!r} has key {live.describe()}, the plan's is {schema.describe()}"
        )


def _pending(plan: Plan, done: Mapping[int, str]) -> Iterator[Operation]:
    for op in plan.operations():
        if done.get(op.seq) not in _DONE:
            yield op


def apply_plan(
    plan: Plan | str | os.PathLike[str],
    *,
    table: str | None = None,
    dry_run: bool = False,
    max_wcu: float | None = None,
    workers: int = 8,
    aws: AwsConfig = AwsConfig(),  # noqa: B008 - frozen, shared safely
    progress: Progress = SILENT,
) -> ApplyReport:
    """Apply a plan to a table with conditional writes; resume from its journal.

    Parameters
    ----------
    plan
        A plan file, or a :class:`~pitrdiff.recovery.plan.Plan` from
        :func:`~pitrdiff.recovery.plan.load_plan`.
    table
        Write to this table instead of the plan's target (its key schema must match).
    dry_run
        Write nothing (not even the journal); read each item to predict the outcome.
    max_wcu
        Write capacity units per second to stay under (from ``ConsumedCapacity``).
    workers
        Parallel writer threads.
    aws
        Where and as whom to talk to AWS.
    progress
        Receives one advance per operation.

    Returns
    -------
    ApplyReport
        Counts of applied, already done, conflicts and failures; ``report.clean``
        tells whether anything is left.

    Raises
    ------
    PlanError
        When the plan is truncated or edited, or its journal belongs elsewhere.
    TableNotFoundError
        When the table does not exist.
    SchemaMismatchError
        When the table's key schema differs from the plan's.
    AwsError
        When the service fails in a way retries do not cure (credentials, endpoint).
    """
    started = time.monotonic()
    if workers < 1:
        raise InputError("workers must be at least 1")
    if max_wcu is not None and max_wcu <= 0:
        raise InputError("--max-wcu must be a positive number")
    loaded = plan if isinstance(plan, Plan) else load_plan(plan)
    target = table or loaded.table
    if table is not None and table != loaded.table:
        log.warning("applying plan for table %r to table %r, as asked", loaded.table, table)
    client = dynamodb_client(aws, max_pool_connections=workers + 2)
    counter = count_retries(client)
    _check_table(client, target, loaded.key_schema)

    journal_path = Path(f"{loaded.path}.journal")
    conflicts_path = Path(f"{loaded.path}.conflicts.jsonl")
    done = read_journal(journal_path, loaded, target)
    from_journal = sum(1 for outcome in done.values() if outcome in _DONE)
    journal = None if dry_run else _Journal(journal_path, loaded, target)
    bucket = _TokenBucket(max_wcu) if max_wcu else None
    executor = _Executor(client, target, dry_run, bucket)

    totals = {APPLIED: 0, ALREADY_DONE: from_journal, CONFLICT: 0, FAILED: 0}
    by_class: dict[str, dict[str, int]] = {}
    issues: list[_Outcome] = []
    consumed = 0.0
    progress.start("dry run" if dry_run else "applying", total=loaded.operation_count, unit="ops")
    if from_journal:
        progress.advance(from_journal)

    def settle(result: _Outcome) -> None:
        nonlocal consumed
        totals[result.outcome] += 1
        counts = by_class.setdefault(result.item_class, {})
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        consumed += result.consumed
        if result.outcome in (CONFLICT, FAILED):
            issues.append(result)
        if journal is not None:
            journal.record(result.seq, result.outcome)
        progress.advance(1)

    # Workers hand finished futures back through a queue: waiting on one queue
    # costs the same whatever the number in flight (wait() on a set does not).
    window = workers * 4
    finished: queue.SimpleQueue[Future[_Outcome]] = queue.SimpleQueue()
    in_flight = 0
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pitrdiff-apply")
    try:
        for op in _pending(loaded, done):
            while in_flight >= window:
                settle(finished.get().result())
                in_flight -= 1
            pool.submit(executor.run, op).add_done_callback(finished.put)
            in_flight += 1
        while in_flight:
            settle(finished.get().result())
            in_flight -= 1
    except KeyboardInterrupt as exc:
        raise Interrupted("apply interrupted; re-run it to resume from the journal") from exc
    except PitrdiffError:
        raise
    except botocore.exceptions.BotoCoreError as exc:
        with translate_errors(table=target, action="applying the plan"):
            raise exc
        raise  # pragma: no cover - translate_errors always raises
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        # Outcomes of operations that finished before the failure stay journaled.
        while not finished.empty():
            future = finished.get()
            if not future.cancelled() and future.exception() is None:
                settle(future.result())
        if journal is not None:
            journal.close()
        progress.finish()

    conflicts_file: str | None = None
    if not dry_run:
        if issues:
            _write_issues(conflicts_path, issues)
            conflicts_file = str(conflicts_path)
        elif conflicts_path.exists():
            conflicts_path.unlink()  # a previous run's conflicts are all resolved now
    issues.sort(key=lambda result: result.seq)
    return ApplyReport(
        plan=str(loaded.path),
        table=target,
        dry_run=dry_run,
        operations=loaded.operation_count,
        applied=totals[APPLIED],
        already_done=totals[ALREADY_DONE],
        from_journal=from_journal,
        conflicts=totals[CONFLICT],
        failed=totals[FAILED],
        retries=counter.retries,
        throttles=counter.throttles,
        consumed_wcu=round(consumed, 3),
        elapsed_s=round(time.monotonic() - started, 3),
        journal=None if dry_run else str(journal_path),
        conflicts_file=conflicts_file,
        by_class=by_class,
        issues=tuple(
            {
                "seq": r.seq,
                "class": r.item_class,
                "outcome": r.outcome,
                "key": r.key,
                "reason": r.reason,
            }
            for r in issues[:100]
        ),
    )


def _write_issues(path: Path, issues: list[_Outcome]) -> None:
    with atomic_writer(path, "wb") as handle:
        for result in sorted(issues, key=lambda r: r.seq):
            document = {
                "seq": result.seq,
                "class": result.item_class,
                "outcome": result.outcome,
                "key": result.key,
                "reason": result.reason,
                "current": _jsonable(result.current),
            }
            handle.write(orjson.dumps(document) + b"\n")


__all__ = ["ApplyReport", "apply_plan", "match_condition"]

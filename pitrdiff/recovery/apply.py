"""Executing a plan: writes that cannot clobber, a journal bound to one place, resume.

Each operation becomes the requests :mod:`pitrdiff.recovery.conditions`
describes (per class: deleted, expired, changed, added), run by
:class:`~pitrdiff.recovery.executor.Executor`, which says what became of it:
applied, merged, already done, conflict or failed, with why. No request can
replace a value pitrdiff has not observed:

- a deleted item is put only while its key is absent;
- a changed item is updated attribute by attribute (``UpdateItem``), never
  replaced: attributes others wrote since the diff survive. Strict (the
  default): only while every observed attribute still has its observed value,
  in one request. ``merge``: only the attributes the diff found changed, each
  while it still has its observed value;
- an added item is deleted only while every observed attribute still has its
  observed value; if attributes appeared just before the delete (the returned
  item says so), it is put back at once, only while the key is absent.

Before anything is written, the table is described: its key schema must match
the plan's, and every write is checked against AWS's limits and the table's
index key types; what cannot be written is reported ``failed`` with the reason
(no request is made). The dry run makes the same checks and reads each item to
predict its condition's outcome.

Progress is journaled to ``<plan>.journal``, bound to the plan and to the place
(account, region, endpoint, table ARN; :mod:`pitrdiff.recovery.journal`).
Re-running resumes there: operations journaled as applied, merged or already
done are skipped; one done but not yet journaled is found done by its own
condition. Conflicts, failures and merges stream to
``<plan>.conflicts.jsonl`` with their key, reason and current item, so memory
stays flat however many there are.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import botocore.exceptions
import orjson

from pitrdiff.aws import (
    AwsConfig,
    RetryCounter,
    count_retries,
    dynamodb_client,
    translate_errors,
)
from pitrdiff.errors import InputError, Interrupted, PitrdiffError, SchemaMismatchError
from pitrdiff.export.dataset import KeySchema
from pitrdiff.files import atomic_writer
from pitrdiff.progress import SILENT, Progress
from pitrdiff.recovery.conditions import IndexKeys
from pitrdiff.recovery.executor import (
    ALREADY_DONE,
    APPLIED,
    CONFLICT,
    DONE,
    FAILED,
    MERGED,
    Executor,
    Outcome,
    TokenBucket,
)
from pitrdiff.recovery.journal import Journal, Place, read_journal, resolve_place
from pitrdiff.recovery.plan import Operation, Plan, load_plan

log = logging.getLogger(__name__)

_ISSUES_KEPT = 100


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
    policy
        ``strict`` or ``merge`` (for changed items).
    place
        Where the apply wrote: table, table ARN, region, endpoint, account.
    operations
        Operations in the plan.
    applied
        Operations whose item is now in its restored state (predicted: would be).
    merged
        Changed items restored with attributes others wrote since kept.
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
        The file listing conflicts, failures and merges with keys, reasons and
        current items (``None`` when there are none, and in a dry run).
    by_class
        Outcome counts per diff class.
    issues
        The first conflicts, failures and merges (key, class, outcome, reason, kept).
    """

    plan: str
    table: str
    dry_run: bool
    policy: str
    place: dict[str, Any]
    operations: int
    applied: int
    merged: int
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
        """True when every operation is applied, merged or already done."""
        return self.conflicts == 0 and self.failed == 0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        return {
            "plan": self.plan,
            "table": self.table,
            "dry_run": self.dry_run,
            "policy": self.policy,
            "place": dict(self.place),
            "operations": self.operations,
            "applied": self.applied,
            "merged": self.merged,
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


# --------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class Target:
    """The table an apply writes to, as described before anything is written.

    Attributes
    ----------
    place
        Account, region, endpoint, table and its ARN.
    indexes
        Key attributes of its secondary indexes.
    """

    place: Place
    indexes: IndexKeys


def describe_target(
    client: Any,
    aws: AwsConfig,
    table: str,
    key_schema: KeySchema | None = None,
    counter: RetryCounter | None = None,
) -> Target:
    """Describe the table an apply writes to, checking its key against the plan's.

    Raises
    ------
    TableNotFoundError
        When the table does not exist.
    SchemaMismatchError
        When its key schema differs from ``key_schema``.
    """
    with translate_errors(table=table, action="describing the table"):
        described = client.describe_table(TableName=table)["Table"]
    if key_schema is not None:
        live = KeySchema.from_boto(described["KeySchema"], described.get("AttributeDefinitions"))
        if not live.same_keys(key_schema):
            raise SchemaMismatchError(
                f"table {table!r} has key {live.describe()}, the plan's is {key_schema.describe()}"
            )
    return Target(
        resolve_place(client, aws, table, described), IndexKeys.from_description(described)
    )


def where_plan_applies(
    plan: Plan | str | os.PathLike[str],
    *,
    table: str | None = None,
    aws: AwsConfig = AwsConfig(),  # noqa: B008 - frozen, shared safely
) -> Place:
    """Say where :func:`apply_plan` would write (for a confirmation prompt).

    Raises
    ------
    PlanError, TableNotFoundError, SchemaMismatchError
        As :func:`apply_plan` would.
    """
    loaded = plan if isinstance(plan, Plan) else load_plan(plan)
    client = dynamodb_client(aws)
    return describe_target(client, aws, table or loaded.table, loaded.key_schema).place


# --------------------------------------------------------------------------- tallying


class _Tally:
    """Counts outcomes, journals them, streams the notable ones to the conflicts file.

    On a resume, the records a previous run left in the conflicts file for
    operations the journal holds as done (``carried``: merges) are copied into
    the new file, so it still lists them; records of operations run again
    (conflicts, failures) are replaced by their new outcome.
    """

    def __init__(
        self,
        journal: Journal | None,
        conflicts_path: Path | None,
        progress: Progress,
        carried: frozenset[int] = frozenset(),
    ) -> None:
        self.totals = {APPLIED: 0, MERGED: 0, ALREADY_DONE: 0, CONFLICT: 0, FAILED: 0}
        self.by_class: dict[str, dict[str, int]] = {}
        self.issues: list[Outcome] = []
        self.consumed = 0.0
        self.journal = journal
        self.progress = progress
        self._conflicts_path = conflicts_path
        self._carried = carried
        self._stack = contextlib.ExitStack()
        self._handle: IO[bytes] | None = None
        self._lines = 0

    def settle(self, result: Outcome) -> None:
        self.totals[result.outcome] += 1
        counts = self.by_class.setdefault(result.item_class, {})
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        self.consumed += result.consumed
        if result.outcome in (CONFLICT, FAILED, MERGED):
            if len(self.issues) < _ISSUES_KEPT:
                self.issues.append(result)
            self._stream(result)
        if self.journal is not None:
            self.journal.record(result.seq, result.outcome)
        self.progress.advance(1)

    def _open(self, path: Path) -> IO[bytes]:
        if self._handle is None:
            self._handle = self._stack.enter_context(atomic_writer(path, "wb"))
            if self._carried and path.exists():
                with open(path, "rb") as previous:
                    for line in previous:
                        try:
                            seq = orjson.loads(line).get("seq")
                        except orjson.JSONDecodeError:
                            continue  # a torn last line of a killed run
                        if seq in self._carried:
                            self._handle.write(line.rstrip(b"\n") + b"\n")
                            self._lines += 1
        return self._handle

    def _stream(self, result: Outcome) -> None:
        if self._conflicts_path is None:
            return
        self._open(self._conflicts_path).write(orjson.dumps(result.to_dict()) + b"\n")
        self._lines += 1

    def finish(self, ok: bool) -> str | None:
        """Close the conflicts file (kept only when complete and not empty)."""
        path = self._conflicts_path
        if ok and path is not None and self._handle is None and self._carried:
            self._open(path)
        if ok:
            self._stack.close()
        else:
            self._stack.__exit__(Interrupted, Interrupted("apply stopped"), None)
        if path is None or not ok:
            return None
        if self._lines:
            return str(path)
        if path.exists():
            path.unlink()  # a previous run's conflicts are all resolved now
        return None


def _pending(plan: Plan, done: Mapping[int, str]) -> Iterator[Operation]:
    for op in plan.operations():
        if done.get(op.seq) not in DONE:
            yield op


def _run(executor: Executor, operations: Iterator[Operation], tally: _Tally, workers: int) -> None:
    """Run operations on a pool, settling outcomes in this thread as they finish."""
    # Workers hand finished futures back through a queue: waiting on one queue
    # costs the same whatever the number in flight (wait() on a set does not).
    window = workers * 4
    finished: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()
    in_flight = 0
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pitrdiff-apply")
    try:
        for op in operations:
            while in_flight >= window:
                tally.settle(finished.get().result())
                in_flight -= 1
            pool.submit(executor.run, op).add_done_callback(finished.put)
            in_flight += 1
        while in_flight:
            tally.settle(finished.get().result())
            in_flight -= 1
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        # Outcomes of operations that finished before a failure stay journaled.
        while not finished.empty():
            future = finished.get()
            if not future.cancelled() and future.exception() is None:
                tally.settle(future.result())


MIN_WCU = 1.0
"""The smallest ``--max-wcu``: one write a second (each write costs at least 1 WCU)."""


def check_max_wcu(max_wcu: float | None) -> None:
    """Refuse a ``--max-wcu`` that is not a finite number of at least :data:`MIN_WCU`.

    Raises
    ------
    InputError
        For ``nan``, ``inf``, values <= 0 and values below 1 (a write would
        wait longer than a second, 1e-9 about 30 years).
    """
    if max_wcu is None:
        return
    if not (math.isfinite(max_wcu) and max_wcu > 0):
        raise InputError(f"--max-wcu must be a positive number of units per second, not {max_wcu}")
    if max_wcu < MIN_WCU:
        raise InputError(
            f"--max-wcu must be at least {MIN_WCU:g} unit per second (one write a second), "
            f"not {max_wcu:g}"
        )


def _check_arguments(workers: int, max_wcu: float | None) -> None:
    if workers < 1:
        raise InputError("workers must be at least 1")
    check_max_wcu(max_wcu)


# --------------------------------------------------------------------------- apply


def apply_plan(
    plan: Plan | str | os.PathLike[str],
    *,
    table: str | None = None,
    dry_run: bool = False,
    merge: bool = False,
    max_wcu: float | None = None,
    workers: int = 8,
    aws: AwsConfig = AwsConfig(),  # noqa: B008 - frozen, shared safely
    progress: Progress = SILENT,
) -> ApplyReport:
    """Apply a plan to a table with writes that cannot clobber; resume from its journal.

    Parameters
    ----------
    plan
        A plan file, or a :class:`~pitrdiff.recovery.plan.Plan` from
        :func:`~pitrdiff.recovery.plan.load_plan`.
    table
        Write to this table instead of the plan's target (its key schema must match).
    dry_run
        Write nothing (not even the journal); check every write against AWS's
        limits and the table's index keys, and read each item to predict its outcome.
    merge
        For changed items, repair only the attributes the diff found changed,
        keeping what others wrote since to the others (strict otherwise: any
        observed attribute changed since makes the item a conflict).
    max_wcu
        Write capacity units per second to stay under (from ``ConsumedCapacity``);
        a finite number above 0.
    workers
        Parallel writer threads.
    aws
        Where and as whom to talk to AWS.
    progress
        Receives one advance per operation.

    Returns
    -------
    ApplyReport
        Counts per outcome; ``report.clean`` tells whether anything is left.

    Raises
    ------
    InputError
        When ``workers`` or ``max_wcu`` is out of range.
    PlanError
        When the plan is truncated or edited.
    RefusedError
        When its journal belongs to another plan or another place (both named).
    TableNotFoundError, SchemaMismatchError
        When the table does not exist or its key schema differs from the plan's.
    AwsError
        When the service fails in a way retries do not cure (credentials, endpoint).
    """
    started = time.monotonic()
    _check_arguments(workers, max_wcu)
    loaded = plan if isinstance(plan, Plan) else load_plan(plan)
    name = table or loaded.table
    if table is not None and table != loaded.table:
        log.warning("applying plan for table %r to table %r, as asked", loaded.table, table)
    client = dynamodb_client(aws, max_pool_connections=workers + 2)
    counter = count_retries(client)
    target = describe_target(client, aws, name, loaded.key_schema, counter)

    journal_path = Path(f"{loaded.path}.journal")
    done = read_journal(journal_path, loaded.checksum, target.place)
    from_journal = sum(1 for outcome in done.values() if outcome in DONE)
    journal = None if dry_run else Journal(journal_path, loaded.checksum, target.place)
    conflicts_path = None if dry_run else Path(f"{loaded.path}.conflicts.jsonl")
    carried = frozenset(seq for seq, outcome in done.items() if outcome in DONE)
    tally = _Tally(journal, conflicts_path, progress, carried)
    tally.totals[ALREADY_DONE] = from_journal
    executor = Executor(
        client,
        name,
        loaded.key_schema,
        merge=merge,
        dry_run=dry_run,
        bucket=TokenBucket(max_wcu) if max_wcu else None,
        indexes=target.indexes,
    )
    progress.start("dry run" if dry_run else "applying", total=loaded.operation_count, unit="ops")
    if from_journal:
        progress.advance(from_journal)
    _execute(executor, _pending(loaded, done), tally, workers, journal, progress)
    return _report(loaded, name, dry_run, merge, target, tally, counter, from_journal, started)


def _execute(
    executor: Executor,
    operations: Iterator[Operation],
    tally: _Tally,
    workers: int,
    journal: Journal | None,
    progress: Progress,
) -> None:
    """Run the operations; whatever happens, close the conflicts file and the journal."""
    ok = False
    try:
        _run(executor, operations, tally, workers)
        ok = True
    except KeyboardInterrupt as exc:
        raise Interrupted("apply interrupted; re-run it to resume from the journal") from exc
    except PitrdiffError:
        raise
    except botocore.exceptions.BotoCoreError as exc:
        with translate_errors(table=executor.table, action="applying the plan"):
            raise exc
        raise  # pragma: no cover - translate_errors always raises
    finally:
        tally.finish(ok)
        if journal is not None:
            journal.close()
        progress.finish()


def _report(
    loaded: Plan,
    name: str,
    dry_run: bool,
    merge: bool,
    target: Target,
    tally: _Tally,
    counter: Any,
    from_journal: int,
    started: float,
) -> ApplyReport:
    totals = tally.totals
    issues = sorted(tally.issues, key=lambda result: result.seq)
    conflicts_path = Path(f"{loaded.path}.conflicts.jsonl")
    return ApplyReport(
        plan=str(loaded.path),
        table=name,
        dry_run=dry_run,
        policy="merge" if merge else "strict",
        place=target.place.to_dict(),
        operations=loaded.operation_count,
        applied=totals[APPLIED],
        merged=totals[MERGED],
        already_done=totals[ALREADY_DONE],
        from_journal=from_journal,
        conflicts=totals[CONFLICT],
        failed=totals[FAILED],
        retries=counter.retries,
        throttles=counter.throttles,
        consumed_wcu=round(tally.consumed, 3),
        elapsed_s=round(time.monotonic() - started, 3),
        journal=None if dry_run else str(Path(f"{loaded.path}.journal")),
        conflicts_file=str(conflicts_path) if (not dry_run and conflicts_path.exists()) else None,
        by_class=tally.by_class,
        issues=tuple(
            {
                "seq": r.seq,
                "class": r.item_class,
                "outcome": r.outcome,
                "key": r.key,
                "reason": r.reason,
                "kept": list(r.kept),
            }
            for r in issues
        ),
    )


__all__ = [
    "MIN_WCU",
    "ApplyReport",
    "Target",
    "apply_plan",
    "check_max_wcu",
    "describe_target",
    "where_plan_applies",
]

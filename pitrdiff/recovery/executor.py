"""Running one operation of a plan: its requests, and what came of them.

The requests come from :mod:`pitrdiff.recovery.conditions`. Each operation
ends in one outcome, with why:

- ``applied``: the item is now in its restored state;
- ``merged``: the restored values are written and attributes that others wrote
  since the diff were kept (they are named);
- ``already_done``: the item already was in its restored state;
- ``conflict``: the item changed since the diff; it is left as others wrote it;
- ``failed``: no request was made, or the service refused it (reason given).

A failed condition is classified from the item the service returns with the
failure (``ReturnValuesOnConditionCheckFailure``) or, where a server returns
none, from a consistent read. A server that evaluates ``=`` on a whole map or
list as false (dynalite) is recognised the first time the item turns out to be
exactly as expected; from then on maps and lists are compared element by
element, within AWS's limits (else the operation fails, saying so).

Test hook: the environment variable ``PITRDIFF_APPLY_DELAY_S`` makes each
operation sleep that many seconds first (used by the crash-and-resume tests).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from pitrdiff import codec
from pitrdiff.aws import error_from_client_error
from pitrdiff.errors import CredentialsError, TableNotFoundError
from pitrdiff.export.dataset import KeySchema
from pitrdiff.recovery.conditions import (
    ADDED,
    CHANGED,
    IndexKeys,
    Unrestorable,
    Write,
    changed_attributes,
    plan_writes,
    size_problem,
)
from pitrdiff.recovery.plan import Operation

APPLIED = "applied"
MERGED = "merged"
ALREADY_DONE = "already_done"
CONFLICT = "conflict"
FAILED = "failed"
OUTCOMES = (APPLIED, MERGED, ALREADY_DONE, CONFLICT, FAILED)
DONE = frozenset({APPLIED, MERGED, ALREADY_DONE})
_DELAY_ENV = "PITRDIFF_APPLY_DELAY_S"
_CHECK_FAILED = "ConditionalCheckFailedException"


@dataclass(frozen=True)
class Outcome:
    """What became of one operation.

    Attributes
    ----------
    seq, item_class, key
        The operation.
    outcome
        One of :data:`OUTCOMES`.
    reason
        Why (``None`` for a plain ``applied`` or ``already_done``).
    current
        The item as it is now, when the outcome leaves it other than restored.
    consumed
        Write capacity consumed.
    kept
        Attributes others wrote since the diff that were kept (``merged``).
    """

    seq: int
    item_class: str
    outcome: str
    key: dict[str, Any]
    reason: str | None = None
    current: dict[str, Any] | None = None
    consumed: float = 0.0
    kept: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The outcome as a conflicts-file line (current item in canonical wire form)."""
        current = self.current
        return {
            "seq": self.seq,
            "class": self.item_class,
            "outcome": self.outcome,
            "key": self.key,
            "reason": self.reason,
            "kept": list(self.kept),
            "current": codec.loads(codec.canonical_json(current)) if current is not None else None,
        }


class TokenBucket:
    """Write-capacity budget per second, charged with the consumed capacity."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, units: float) -> None:
        """Take ``units`` now, waiting when the budget is spent."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= units
            wait_s = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait_s > 0:
            time.sleep(wait_s)

    def charge(self, units: float) -> None:
        """Charge what a request consumed beyond what was taken for it."""
        if units:
            with self._lock:
                self._tokens -= units


class _Refused(Exception):
    """A request's condition failed; ``current`` is the item the service returned."""

    def __init__(self, current: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.current = current


def _value(typed: Mapping[str, Any] | None) -> str | None:
    return None if typed is None else codec.canonical_value_json(typed)


def _same(current: Mapping[str, Any] | None, target: Mapping[str, Any] | None) -> bool:
    if current is None or target is None:
        return current is None and target is None
    return codec.canonical_json(current) == codec.canonical_json(target)


def _differing(
    current: Mapping[str, Any], target: Mapping[str, Any], names: Sequence[str]
) -> list[str]:
    return [n for n in names if _value(current.get(n)) != _value(target.get(n))]


def _names(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class Executor:
    """Runs single operations against one table (thread-safe)."""

    def __init__(
        self,
        client: Any,
        table: str,
        key_schema: KeySchema,
        *,
        merge: bool = False,
        dry_run: bool = False,
        bucket: TokenBucket | None = None,
        indexes: IndexKeys | None = None,
    ) -> None:
        self.client = client
        self.table = table
        self.key_schema = key_schema
        self.merge = merge
        self.dry_run = dry_run
        self.bucket = bucket
        self.indexes = indexes or IndexKeys()
        self.documents = True  # False once the server fails '=' on maps and lists
        delay = os.environ.get(_DELAY_ENV)
        self.delay = float(delay) if delay else 0.0

    # ------------------------------------------------------------------ entry
    def run(self, op: Operation) -> Outcome:
        """Write (or, in a dry run, predict) one operation."""
        if self.delay:
            time.sleep(self.delay)
        try:
            writes = self._writes(op, self.documents)
        except Unrestorable as exc:
            return self._outcome(op, FAILED, f"not written: {exc}")
        try:
            if self.dry_run:
                return self._predict(op)
            if op.item_class == ADDED:
                return self._delete(op, writes[0])
            if op.expected is None:
                return self._put(op, writes[0])
            if not writes:  # no attribute differs: nothing to write
                return self._outcome(op, ALREADY_DONE)
            return self._update(op, writes, 0, 0.0, None)
        except botocore.exceptions.ClientError as exc:
            return self._failure(op, exc)

    def _writes(self, op: Operation, documents: bool) -> list[Write]:
        writes = plan_writes(
            op.item_class,
            self.key_schema,
            op.expected,
            op.item,
            merge=self.merge,
            documents=documents,
            text_length=op.line_bytes,
        )
        if op.item is not None:
            if op.expected is None:
                values: Mapping[str, Any] = op.item
            else:
                values = {n: op.item[n] for w in writes for n in w.attributes if n in op.item}
            problem = self.indexes.problem(values)
            if problem:
                raise Unrestorable(f"DynamoDB would refuse it: {problem}")
        return writes

    # ------------------------------------------------------------------ requests
    def _send(self, write: Write) -> tuple[dict[str, Any], float]:
        request = write.to_request(self.table)
        request["ReturnConsumedCapacity"] = "TOTAL"
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if self.bucket is not None:
            self.bucket.take(1.0)
        call = {
            "put": self.client.put_item,
            "update": self.client.update_item,
            "delete": self.client.delete_item,
        }[write.action]
        try:
            response = call(**request)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CHECK_FAILED:
                returned: Any = exc.response.get("Item")
                raise _Refused(dict(returned) if returned else None) from exc
            raise
        consumed = float((response.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0)
        if self.bucket is not None:
            self.bucket.charge(consumed - 1.0)
        return response, consumed

    def _current(self, op: Operation, returned: dict[str, Any] | None = None) -> Any:
        if returned:
            return returned
        response = self.client.get_item(
            TableName=self.table, Key=codec.to_botocore(op.key), ConsistentRead=True
        )
        item = response.get("Item")
        return dict(item) if item else None

    # ------------------------------------------------------------------ deleted
    def _put(self, op: Operation, write: Write) -> Outcome:
        try:
            _, consumed = self._send(write)
        except _Refused as refused:
            current = self._current(op, refused.current)
            if _same(current, op.item):
                return self._outcome(op, ALREADY_DONE)
            return self._outcome(
                op,
                CONFLICT,
                "an item with this key was written since the diff; left untouched",
                current,
            )
        return self._outcome(op, APPLIED, consumed=consumed)

    # ------------------------------------------------------------------ added
    def _delete(self, op: Operation, write: Write) -> Outcome:
        assert op.expected is not None
        current = self._current(op)
        if current is None:
            return self._outcome(op, ALREADY_DONE)
        if not _same(current, op.expected):
            names = sorted(set(current) | set(op.expected))
            return self._changed_since(op, current, _differing(current, op.expected, names))
        write.params["ReturnValues"] = "ALL_OLD"
        try:
            response, consumed = self._send(write)
        except _Refused as refused:
            current = self._current(op, refused.current)
            if current is None:
                return self._outcome(op, ALREADY_DONE)
            if write.documents and _same(current, op.expected):
                self.documents = False
                try:
                    return self._delete(op, self._writes(op, False)[0])
                except Unrestorable as exc:
                    return self._outcome(op, FAILED, self._no_documents(exc), current)
            names = sorted(set(current) | set(op.expected))
            return self._changed_since(op, current, _differing(current, op.expected, names))
        old = response.get("Attributes") or None
        if _same(old, op.expected):
            return self._outcome(op, APPLIED, consumed=consumed)
        return self._deleted_unseen(op, old, consumed)

    def _deleted_unseen(
        self, op: Operation, old: dict[str, Any] | None, consumed: float
    ) -> Outcome:
        """The residual case: attributes appeared between the read and the delete.

        No condition can require "no attribute but these", so a write adding an
        attribute in that instant is deleted with the item. It is not put back:
        a put-back could undo a delete acknowledged to someone else in between.
        The deleted version is reported (``current``) as a conflict.
        """
        assert op.expected is not None
        wire = codec.loads(codec.canonical_json(old)) if old else {}
        added = sorted(n for n in wire if n not in op.expected)
        return self._outcome(
            op,
            CONFLICT,
            f"attributes {_names(added)} were written between pitrdiff's read and its delete "
            "and were deleted with the item; it was not put back (that could undo a later "
            "delete): the deleted version is in 'current'",
            old,
            consumed,
        )

    # ------------------------------------------------------------------ changed
    def _checked(self, op: Operation, writes: Sequence[Write]) -> list[str]:
        """The attributes whose observed state the condition(s) check."""
        assert op.expected is not None and op.item is not None
        if self.merge:
            return [n for w in writes for n in w.attributes]
        names = set(op.expected) | set(op.item)
        return sorted(names - set(self.key_schema.names))

    def _kept(self, op: Operation, old: Mapping[str, Any], written: Sequence[str]) -> list[str]:
        """Attributes others wrote since the diff, which the update left as they are."""
        assert op.expected is not None
        skip = set(written) | set(self.key_schema.names)
        if not self.merge:  # the strict condition held: every observed attribute is as observed
            return sorted(n for n in old if n not in op.expected and n not in skip)
        names = sorted((set(old) | set(op.expected)) - skip)
        return _differing(old, op.expected, names)

    def _update(
        self,
        op: Operation,
        writes: Sequence[Write],
        start: int,
        consumed: float,
        old: Mapping[str, Any] | None,
    ) -> Outcome:
        written: list[str] = [n for w in writes[:start] for n in w.attributes]
        for index in range(start, len(writes)):
            try:
                response, used = self._send(writes[index])
            except _Refused as refused:
                return self._update_refused(op, writes, index, refused.current, consumed, old)
            consumed += used
            if old is None:
                old = response.get("Attributes") or {}
            written.extend(writes[index].attributes)
        if self.merge:
            return self._merged_outcome(op, old or {}, consumed, True)
        kept = self._kept(op, old or {}, written)
        if kept:
            return self._outcome(
                op,
                MERGED,
                f"restored {_names(written)}; kept what others wrote since the diff to "
                f"{_names(kept)}",
                consumed=consumed,
                kept=tuple(kept),
            )
        return self._outcome(op, APPLIED, consumed=consumed)

    def _update_refused(
        self,
        op: Operation,
        writes: Sequence[Write],
        index: int,
        returned: dict[str, Any] | None,
        consumed: float,
        old: Mapping[str, Any] | None,
    ) -> Outcome:
        assert op.expected is not None and op.item is not None
        current = self._current(op, returned)
        if current is None:
            return self._outcome(
                op, CONFLICT, "the item was deleted since the diff; left untouched", None, consumed
            )
        if self.merge:
            return self._merge_refused(op, writes, index, current, consumed, old)
        checked = self._checked(op, writes)
        if not _differing(current, op.item, checked):
            return self._outcome(op, ALREADY_DONE)
        differing = _differing(current, op.expected, checked)
        if writes[index].documents and not differing:
            self.documents = False
            try:
                rest = self._rebuild(op, writes)
            except Unrestorable as exc:
                return self._outcome(op, FAILED, self._no_documents(exc), current, consumed)
            return self._update(op, rest, 0, consumed, old)
        return self._changed_since(op, current, differing)

    def _merge_state(
        self, op: Operation, current: Mapping[str, Any]
    ) -> tuple[list[str], list[str], list[str]]:
        """The changed attributes as ``(restored, pending, others)`` in ``current``.

        ``restored`` already hold their restored value (written by this or an
        earlier run, or by anyone); ``pending`` still hold their observed value;
        ``others`` hold neither: someone wrote them since the diff.
        """
        assert op.expected is not None and op.item is not None
        restored, pending, others = [], [], []
        for name in changed_attributes(self.key_schema, op.expected, op.item):
            now = _value(current.get(name))
            if now == _value(op.item.get(name)):
                restored.append(name)
            elif now == _value(op.expected.get(name)):
                pending.append(name)
            else:
                others.append(name)
        return restored, pending, others

    def _merge_refused(
        self,
        op: Operation,
        writes: Sequence[Write],
        index: int,
        current: dict[str, Any],
        consumed: float,
        old: Mapping[str, Any] | None,
        rounds: int = 0,
        left: tuple[str, ...] = (),
    ) -> Outcome:
        """A merge request was refused: judge each request's attributes on their own.

        A request whose attributes all hold their restored values counts as done
        (a retried request whose first answer was lost, a run killed between
        requests, a re-run); one whose attributes all still hold their observed
        values is sent again; one with an attribute someone changed since is left
        whole, as one request would have been (its attributes are named).
        """
        assert op.expected is not None and op.item is not None
        restored, pending, others = self._merge_state(op, current)
        held, changed = set(restored), set(others)
        todo: list[str] = []
        for write in writes:
            names = write.attributes
            if any(n in changed for n in names):
                left = (*left, *names)
            else:
                todo.extend(n for n in names if n not in held)
        refused = set(writes[index].attributes)
        if writes[index].documents and refused and refused <= set(pending):
            self.documents = False  # the server failed '=' on a whole document
        wrote = index > 0 or consumed > 0
        if todo and rounds < 3:
            try:
                rest = self._rebuild(op, [], todo)
            except Unrestorable as exc:
                return self._outcome(op, FAILED, self._no_documents(exc), current, consumed)
            for number, write in enumerate(rest):
                write.params.pop("ReturnValues", None)
                try:
                    _, used = self._send(write)
                except _Refused as refusal:
                    now = self._current(op, refusal.current)
                    if now is None:
                        return self._outcome(
                            op, CONFLICT, "the item was deleted since the diff", None, consumed
                        )
                    return self._merge_refused(
                        op, rest[number:], 0, now, consumed, old, rounds + 1, left
                    )
                consumed += used
                wrote = True
            todo = []
        unfinished = sorted({*left, *todo})
        if not unfinished:
            return self._merged_outcome(op, old or current, consumed, wrote)
        now = self._current(op) if wrote else current
        done, _, by_others = self._merge_state(op, now or {})
        if not done:
            return self._changed_since(op, now, by_others)
        with_them = [n for n in unfinished if n not in by_others]
        also = (
            f", and {_names(with_them)} ({len(with_them)}), in the same request, were not written"
            if with_them
            else ""
        )
        return self._outcome(
            op,
            CONFLICT,
            f"partly repaired: {_names(done)} ({len(done)}) hold the restored values; "
            f"{_names(by_others)} ({len(by_others)}) changed since the diff and were left "
            f"as others wrote them{also}",
            now,
            consumed,
        )

    def _merged_outcome(
        self, op: Operation, old: Mapping[str, Any], consumed: float, wrote: bool
    ) -> Outcome:
        assert op.expected is not None and op.item is not None
        changed = changed_attributes(self.key_schema, op.expected, op.item)
        kept = self._kept(op, old, changed)
        if kept:
            return self._outcome(
                op,
                MERGED,
                f"restored {_names(changed)}; kept what others wrote since the diff to "
                f"{_names(kept)}",
                consumed=consumed,
                kept=tuple(kept),
            )
        return self._outcome(op, APPLIED if wrote else ALREADY_DONE, consumed=consumed)

    def _rebuild(
        self, op: Operation, remaining: Sequence[Write], names: Sequence[str] = ()
    ) -> list[Write]:
        """The writes again, of ``names`` (else ``remaining``'s attributes).

        Built with the server's way of comparing maps and lists (:attr:`documents`).
        """
        assert op.expected is not None and op.item is not None
        if not self.merge:
            return self._writes(op, self.documents)
        wanted = set(names) or {n for w in remaining for n in w.attributes}
        keep = set(self.key_schema.names) | wanted
        live = {n: v for n, v in op.expected.items() if n in keep}
        restored = {n: v for n, v in op.item.items() if n in keep}
        return plan_writes(
            CHANGED, self.key_schema, live, restored, merge=True, documents=self.documents
        )

    # ------------------------------------------------------------------ dry run
    def _predict(self, op: Operation) -> Outcome:
        current = self._current(op)  # a refusal of this item is reported by run()
        if op.item_class == ADDED:
            if current is None:
                return self._outcome(op, ALREADY_DONE)
            if _same(current, op.expected):
                return self._outcome(op, APPLIED)
        elif op.expected is None:
            if current is None:
                return self._outcome(op, APPLIED)
            if _same(current, op.item):
                return self._outcome(op, ALREADY_DONE)
            return self._outcome(
                op, CONFLICT, "an item with this key was written since the diff", current
            )
        else:
            return self._predict_update(op, current)
        names = sorted(set(current) | set(op.expected or {}))
        return self._changed_since(op, current, _differing(current, op.expected or {}, names))

    def _predict_update(self, op: Operation, current: dict[str, Any] | None) -> Outcome:
        assert op.expected is not None and op.item is not None
        if current is None:
            return self._outcome(op, CONFLICT, "the item was deleted since the diff", None)
        if self.merge:
            restored, pending, others = self._merge_state(op, current)
            if others:
                if not restored and not pending:
                    return self._changed_since(op, current, others)
                return self._outcome(
                    op,
                    CONFLICT,
                    f"would be partly repaired: {_names(others)} ({len(others)}) changed "
                    "since the diff and would be left as others wrote them",
                    current,
                )
            if not pending:
                return self._outcome(op, ALREADY_DONE)
            written = pending
        else:
            checked = sorted((set(op.expected) | set(op.item)) - set(self.key_schema.names))
            if not _differing(current, op.item, checked):
                return self._outcome(op, ALREADY_DONE)
            differing = _differing(current, op.expected, checked)
            if differing:
                return self._changed_since(op, current, differing)
            written = changed_attributes(self.key_schema, op.expected, op.item)
        result = {n: v for n, v in current.items() if n not in written}
        result.update({n: op.item[n] for n in written if n in op.item})
        problem = size_problem(codec.loads(codec.canonical_json(result)))
        if problem:
            return self._outcome(
                op,
                FAILED,
                f"DynamoDB would refuse the update: with what others wrote since, {problem}",
                current,
            )
        kept = self._kept(op, current, changed_attributes(self.key_schema, op.expected, op.item))
        if kept:
            return self._outcome(
                op,
                MERGED,
                f"would keep what others wrote since to {_names(kept)}",
                kept=tuple(kept),
            )
        return self._outcome(op, APPLIED)

    # ------------------------------------------------------------------ outcomes
    def _changed_since(
        self, op: Operation, current: dict[str, Any] | None, differing: Sequence[str]
    ) -> Outcome:
        what = f" ({_names(differing)})" if differing else ""
        verb = "would be" if self.dry_run else "was"
        hint = ""
        if not self.merge and op.item_class == CHANGED and differing:
            assert op.expected is not None and op.item is not None
            repaired = set(changed_attributes(self.key_schema, op.expected, op.item))
            if repaired.isdisjoint(differing):  # others changed only what the diff did not
                hint = "; --merge would repair it, keeping their writes"
        return self._outcome(
            op,
            CONFLICT,
            f"the item changed since the diff{what}; it {verb} left as others wrote it{hint}",
            current,
        )

    def _no_documents(self, exc: Unrestorable) -> str:
        return (
            "this server does not compare maps and lists with '=' (AWS does), and comparing "
            f"them element by element does not fit AWS's limits: {exc}"
        )

    def _failure(self, op: Operation, exc: botocore.exceptions.ClientError) -> Outcome:
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
        kept: tuple[str, ...] = (),
    ) -> Outcome:
        return Outcome(op.seq, op.item_class, outcome, op.key, reason, current, consumed, kept)


__all__ = [
    "ALREADY_DONE",
    "APPLIED",
    "CONFLICT",
    "DONE",
    "FAILED",
    "MERGED",
    "OUTCOMES",
    "Executor",
    "Outcome",
    "TokenBucket",
]

"""The requests that put an item back, and AWS's limits on them.

Each class of operation gets writes that cannot replace a value pitrdiff has
not observed (DynamoDB API reference, "Condition expressions"; developer guide,
"Constraints" → "Expression parameters"):

- **deleted** (and **expired**): ``PutItem`` of the restored item on condition
  ``attribute_not_exists(<partition key>)``: only while the item is absent.
- **changed**, strict (the default): one ``UpdateItem`` that sets (``SET``) the
  restored value of each top-level attribute that differs and removes
  (``REMOVE``) the attributes the restored item lacks, on condition that *every* attribute of
  the observed live item still has its observed value (``#a = :v``; DynamoDB's
  ``=`` compares whole values of every type, lists and maps included) and that
  every attribute only the restored item has is still absent. Attributes
  written since by others and unknown to the diff are not named by the update,
  so they survive it.
- **changed**, ``merge``: only the attributes the diff found changed are
  named, each conditioned on its observed value (or absence); the rest of the
  item is left as others wrote it. When the changed attributes do not fit one
  request, they are written in several, each conditioned on its own attributes.
- **added**: ``DeleteItem`` on condition that every observed attribute still
  has its observed value.

AWS's limits (developer guide, "Constraints"): an expression string is at most
4 KB (4,096 bytes as sent), holds at most 300 operators or functions; the
substitution variables of one request total at most 2 MB; an item is at most
400 KB; partition key values at most 2,048 bytes, sort key values 1,024 bytes.
Values here come from items of at most 400 KB each, so the 2 MB total is never
the binding limit; the expression strings are. Operators are counted the way
the service counts them, generously: every comparator, ``AND``, function and
every ``=`` of a ``SET`` action.

dynalite (a local test server) evaluates ``=`` on a whole map or list as false;
:func:`elementwise_condition` builds the portable, exact equivalent (type, size
and each element) used as a fallback when the server answers that way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from pitrdiff import codec
from pitrdiff.export.dataset import KeySchema

MAX_EXPRESSION_BYTES = 4096
MAX_OPERATORS = 300
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_ITEM_BYTES = codec.MAX_ITEM_SIZE

DELETED = "deleted"
EXPIRED = "expired"
CHANGED = "changed"
ADDED = "added"
_ABSENT_CLASSES = frozenset({DELETED, EXPIRED})

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


class Unrestorable(Exception):
    """No safe request fits AWS's limits; ``str(exc)`` is the one-line reason."""


def _token(number: int) -> str:
    if number < 36:
        return _DIGITS[number]
    out = ""
    while number:
        number, digit = divmod(number, 36)
        out = _DIGITS[digit] + out
    return out


class Expressions:
    """Placeholders for the names and values of one request.

    Every name and value is behind a placeholder (``#0``, ``:0``, ...), so a
    user's attribute may be called anything, reserved words included; only
    placeholders that an expression uses are kept (AWS refuses unused ones).
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._name_of: dict[str, str] = {}

    def name(self, attribute: str) -> str:
        """The placeholder of an attribute name."""
        placeholder = self._name_of.get(attribute)
        if placeholder is None:
            placeholder = "#" + _token(len(self._name_of))
            self._name_of[attribute] = placeholder
            self.names[placeholder] = attribute
        return placeholder

    def value(self, typed: Mapping[str, Any]) -> str:
        """The placeholder of a value (wire form); values are not shared."""
        placeholder = ":" + _token(len(self.values))
        self.values[placeholder] = typed
        return placeholder


@dataclass
class Write:
    """One request: ``PutItem``, ``UpdateItem`` or ``DeleteItem``.

    Attributes
    ----------
    action
        ``put``, ``update`` or ``delete``.
    params
        The request's parameters except ``TableName``; items and values in
        wire form (binary as base64 text; see :meth:`to_request`).
    attributes
        The top-level attributes the request sets or removes.
    condition_operators, update_operators
        Operators counted in each expression (see the module's notes).
    documents
        Whether maps and lists are compared whole with ``=`` (else element by element).
    """

    action: str
    params: dict[str, Any]
    attributes: tuple[str, ...] = ()
    condition_operators: int = 0
    update_operators: int = 0
    documents: bool = True

    def to_request(self, table: str) -> dict[str, Any]:
        """The boto3 keyword arguments of this write for ``table`` (binary as bytes)."""
        request = dict(self.params)
        request["TableName"] = table
        for field_name in ("Item", "Key", "ExpressionAttributeValues"):
            if field_name in request:
                request[field_name] = codec.to_botocore(request[field_name])
        return request

    def problem(self) -> str | None:
        """Why AWS would refuse this request's expressions, or ``None``."""
        for field_name, operators in (
            ("ConditionExpression", self.condition_operators),
            ("UpdateExpression", self.update_operators),
        ):
            text = self.params.get(field_name)
            if text is None:
                continue
            size = len(text.encode("utf-8"))
            if size > MAX_EXPRESSION_BYTES:
                return f"its {field_name} would be {size} bytes, over AWS's 4 KB limit"
            if operators > MAX_OPERATORS:
                return f"its {field_name} would hold {operators} operators, over AWS's 300"
        return None


@dataclass
class _Condition:
    parts: list[str] = field(default_factory=list)
    operators: int = 0

    def add(self, text: str, operators: int) -> None:
        self.parts.append(text)
        self.operators += operators + (1 if len(self.parts) > 1 else 0)  # the AND

    def text(self) -> str:
        return " AND ".join(self.parts)


def _match(
    expressions: Expressions,
    condition: _Condition,
    attribute: str,
    typed: Mapping[str, Any] | None,
    documents: bool,
) -> None:
    """Require ``attribute`` to hold ``typed`` exactly (absent when ``None``)."""
    path = expressions.name(attribute)
    if typed is None:
        condition.add(f"attribute_not_exists({path})", 1)
    elif documents or not (codec.M in typed or codec.L in typed):
        condition.add(f"{path} = {expressions.value(typed)}", 1)
    else:
        elementwise_condition(expressions, condition, path, typed)


def elementwise_condition(
    expressions: Expressions, condition: _Condition, path: str, typed: Mapping[str, Any]
) -> None:
    """Require the document at ``path`` to equal ``typed``: size and each element.

    A path to an element resolves only inside a map (``a.name``) or a list
    (``a[0]``), so the elements imply the type; an empty document is checked
    with ``attribute_type``. Exact and portable (servers that evaluate ``=`` on
    whole documents as false evaluate this right), but it grows with the
    document: used only as a fallback, within the limits.
    """
    ((tag, value),) = typed.items()
    if tag not in (codec.M, codec.L):
        condition.add(f"{path} = {expressions.value(typed)}", 1)
        return
    if not value:  # an element's path resolves only inside a map (name) or a list (index)
        condition.add(f"attribute_type({path}, {expressions.value({codec.S: tag})})", 1)
    condition.add(f"size({path}) = {expressions.value({codec.N: str(len(value))})}", 2)
    if tag == codec.M:
        for name, inner in value.items():
            elementwise_condition(expressions, condition, f"{path}.{expressions.name(name)}", inner)
    else:
        for index, inner in enumerate(value):
            elementwise_condition(expressions, condition, f"{path}[{index}]", inner)


def _non_key(item: Mapping[str, Any], key_names: Sequence[str]) -> dict[str, Any]:
    return {name: typed for name, typed in item.items() if name not in key_names}


def _finish(
    action: str,
    params: dict[str, Any],
    expressions: Expressions,
    condition: _Condition,
    attributes: Iterable[str] = (),
    update: tuple[str, int] | None = None,
) -> Write:
    params["ConditionExpression"] = condition.text()
    params["ExpressionAttributeNames"] = expressions.names
    if expressions.values:
        params["ExpressionAttributeValues"] = expressions.values
    update_operators = 0
    if update is not None:
        params["UpdateExpression"], update_operators = update
    return Write(action, params, tuple(attributes), condition.operators, update_operators)


# --------------------------------------------------------------------------- per class


def put_absent(key_schema: KeySchema, restored: Mapping[str, Any]) -> Write:
    """``PutItem`` of a deleted (or expired) item while its key is absent."""
    expressions = Expressions()
    condition = _Condition()
    condition.add(f"attribute_not_exists({expressions.name(key_schema.partition_key)})", 1)
    return _finish("put", {"Item": dict(restored)}, expressions, condition, restored)


def delete_observed(
    key_schema: KeySchema, live: Mapping[str, Any], *, documents: bool = True
) -> Write:
    """``DeleteItem`` of an added item while every observed attribute is as observed."""
    key_names = key_schema.names
    expressions = Expressions()
    condition = _Condition()
    observed = _non_key(live, key_names)
    for name, typed in observed.items():
        _match(expressions, condition, name, typed, documents)
    if not observed:
        condition.add(f"attribute_exists({expressions.name(key_schema.partition_key)})", 1)
    key = {name: live[name] for name in key_names}
    return _finish("delete", {"Key": key}, expressions, condition, observed)


def _update_text(
    expressions: Expressions, restored: Mapping[str, Any], names: Iterable[str]
) -> tuple[str, int]:
    sets: list[str] = []
    removes: list[str] = []
    for name in names:
        typed = restored.get(name)
        if typed is None:
            removes.append(expressions.name(name))
        else:
            sets.append(f"{expressions.name(name)} = {expressions.value(typed)}")
    clauses = []
    if sets:
        clauses.append("SET " + ", ".join(sets))
    if removes:
        clauses.append("REMOVE " + ", ".join(removes))
    return " ".join(clauses), len(sets)


def changed_attributes(
    key_schema: KeySchema, live: Mapping[str, Any], restored: Mapping[str, Any]
) -> list[str]:
    """Top-level attributes whose restored value differs from the observed live one.

    Values are compared by their canonical JSON (the plan holds canonical items).
    """
    key_names = key_schema.names
    changed = []
    for name in sorted(set(live) | set(restored)):
        if name in key_names:
            continue
        old, new = live.get(name), restored.get(name)
        if old is None or new is None or _canonical(old) != _canonical(new):
            changed.append(name)
    return changed


def _canonical(typed: Mapping[str, Any]) -> bytes:
    return orjson.dumps(typed, option=orjson.OPT_SORT_KEYS)


def update_strict(
    key_schema: KeySchema,
    live: Mapping[str, Any],
    restored: Mapping[str, Any],
    *,
    documents: bool = True,
) -> Write:
    """The one ``UpdateItem`` of the strict policy for a changed item.

    Raises
    ------
    Unrestorable
        When its expressions exceed AWS's limits.
    """
    key_names = key_schema.names
    changed = changed_attributes(key_schema, live, restored)
    expressions = Expressions()
    condition = _Condition()
    observed = _non_key(live, key_names)
    for name, typed in observed.items():
        _match(expressions, condition, name, typed, documents)
    for name in _non_key(restored, key_names):
        if name not in observed:
            _match(expressions, condition, name, None, documents)
    if not condition.parts:
        condition.add(f"attribute_exists({expressions.name(key_schema.partition_key)})", 1)
    update = _update_text(expressions, restored, changed)
    key = {name: live[name] for name in key_names}
    params: dict[str, Any] = {"Key": key, "ReturnValues": "ALL_OLD"}
    write = _finish("update", params, expressions, condition, changed, update)
    problem = write.problem()
    if problem is not None:
        checked = len(observed) + len(set(restored) - set(live))
        raise Unrestorable(
            f"strict needs one request checking {checked} attributes and {problem}; "
            "re-run apply with --merge to repair only the changed attributes"
        )
    return write


def _merge_write(
    key_schema: KeySchema,
    live: Mapping[str, Any],
    restored: Mapping[str, Any],
    names: Sequence[str],
    documents: bool,
    exists_check: bool = True,
) -> Write:
    expressions = Expressions()
    condition = _Condition()
    for name in names:
        _match(expressions, condition, name, live.get(name), documents)
    if exists_check and all(name not in live for name in names):
        condition.add(f"attribute_exists({expressions.name(key_schema.partition_key)})", 1)
    update = _update_text(expressions, restored, names)
    key = {name: live[name] for name in key_schema.names}
    params: dict[str, Any] = {"Key": key}
    return _finish("update", params, expressions, condition, names, update)


def updates_merge(
    key_schema: KeySchema,
    live: Mapping[str, Any],
    restored: Mapping[str, Any],
    *,
    documents: bool = True,
) -> list[Write]:
    """The updates of the merge policy: the changed attributes, in as few requests as fit.

    Each request is conditioned on its own attributes only, so each is safe
    alone; the first returns the item as it was (``ALL_OLD``), to report what
    others wrote since.

    Raises
    ------
    Unrestorable
        When one attribute alone does not fit a request (a document compared
        element by element, on a server that needs that).
    """
    changed = changed_attributes(key_schema, live, restored)
    # Greedy chunks by each attribute's own cost, then verified: a chunk over a
    # limit (placeholders grow with the count) is split in two until it fits.
    chunks: list[list[str]] = []
    chunk: list[str] = []
    reserve = 64  # the existence check, placeholders growing to three characters
    condition_bytes = update_bytes = reserve
    operators = reserve // 16
    for name in changed:
        single = _merge_write(key_schema, live, restored, [name], documents, exists_check=False)
        problem = single.problem()
        if problem is not None:
            raise Unrestorable(f"attribute {name!r} cannot be checked in one request: {problem}")
        text = single.params["ConditionExpression"]
        c = len(text) + 5 + 2 * (text.count("#") + text.count(":"))
        text = single.params.get("UpdateExpression", "")
        u = len(text) + 2 + 2 * (text.count("#") + text.count(":"))
        o = single.condition_operators + 1
        if chunk and (
            condition_bytes + c > MAX_EXPRESSION_BYTES
            or update_bytes + u > MAX_EXPRESSION_BYTES
            or operators + o > MAX_OPERATORS
        ):
            chunks.append(chunk)
            chunk, condition_bytes, update_bytes, operators = [], reserve, reserve, reserve // 16
        chunk.append(name)
        condition_bytes, update_bytes, operators = (
            condition_bytes + c,
            update_bytes + u,
            operators + o,
        )
    if chunk:
        chunks.append(chunk)
    writes: list[Write] = []
    while chunks:
        names = chunks.pop(0)
        write = _merge_write(key_schema, live, restored, names, documents)
        if write.problem() is not None and len(names) > 1:
            half = len(names) // 2
            chunks[:0] = [names[:half], names[half:]]
            continue
        writes.append(write)
    if writes:
        writes[0].params["ReturnValues"] = "ALL_OLD"
    return writes


# --------------------------------------------------------------------------- checks


def key_problem(key_schema: KeySchema, item: Mapping[str, Any]) -> str | None:
    """Why AWS would refuse this item's key values (size, emptiness), or ``None``."""
    for attribute in key_schema.attributes:
        typed = item.get(attribute.name)
        if not isinstance(typed, Mapping) or len(typed) != 1:
            return f"it has no key attribute {attribute.name!r}"
        if codec.N in typed:
            continue
        raw = codec.key_column_value(typed)
        size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8"))
        limit = MAX_PARTITION_KEY_BYTES if attribute.key_type == "HASH" else MAX_SORT_KEY_BYTES
        if size == 0:
            return f"its key attribute {attribute.name!r} is empty"
        if size > limit:
            return f"its key attribute {attribute.name!r} is {size} bytes, over AWS's {limit}"
    return None


def size_problem(item: Mapping[str, Any], text_length: int = 0) -> str | None:
    """Why the item is over DynamoDB's 400 KB, or ``None``.

    ``text_length`` (its JSON text's length, when known) is an upper bound of
    its size: below the limit, nothing needs computing.
    """
    if text_length and text_length <= MAX_ITEM_BYTES:
        return None
    size = codec.item_size(item)
    if size > MAX_ITEM_BYTES:
        return f"the item is {size:,} bytes, over DynamoDB's 400 KB item limit"
    return None


def plan_writes(
    item_class: str,
    key_schema: KeySchema,
    live: Mapping[str, Any] | None,
    restored: Mapping[str, Any] | None,
    *,
    merge: bool = False,
    documents: bool = True,
    text_length: int = 0,
) -> list[Write]:
    """The requests that restore one item, in order.

    Parameters
    ----------
    item_class
        ``deleted``, ``expired``, ``changed`` or ``added``.
    key_schema
        The table's key.
    live, restored
        The observed live item and the restored item (wire form), ``None`` where
        the class has none.
    merge
        The merge policy for changed items (strict otherwise).
    documents
        ``False`` on servers that cannot compare whole maps and lists with ``=``.
    text_length
        Length of a JSON text holding the restored item (its plan line), when
        known: an upper bound of its size that spares computing it.

    Raises
    ------
    Unrestorable
        When no safe request fits AWS's limits (reason in the message).
    """
    writes = _plan_writes(item_class, key_schema, live, restored, merge, documents, text_length)
    for write in writes:
        write.documents = documents
    return writes


def _plan_writes(
    item_class: str,
    key_schema: KeySchema,
    live: Mapping[str, Any] | None,
    restored: Mapping[str, Any] | None,
    merge: bool,
    documents: bool,
    text_length: int,
) -> list[Write]:
    if item_class in _ABSENT_CLASSES:
        assert restored is not None
        problem = size_problem(restored, text_length) or key_problem(key_schema, restored)
        if problem:
            raise Unrestorable(f"{problem}; DynamoDB would refuse the put")
        return [put_absent(key_schema, restored)]
    if item_class == ADDED:
        assert live is not None
        write = delete_observed(key_schema, live, documents=documents)
        problem = write.problem()
        if problem:
            raise Unrestorable(
                f"deleting it safely needs one condition on every attribute and {problem}; "
                "check it and delete it by hand, or leave it out of the plan"
            )
        return [write]
    if item_class == CHANGED:
        assert live is not None and restored is not None
        problem = size_problem(restored, text_length)
        if problem:
            raise Unrestorable(f"{problem}; DynamoDB would refuse the update")
        if merge:
            return updates_merge(key_schema, live, restored, documents=documents)
        if not changed_attributes(key_schema, live, restored):
            return []
        return [update_strict(key_schema, live, restored, documents=documents)]
    raise ValueError(f"unknown item class {item_class!r}")


def unrestorable_reason(
    item_class: str,
    key_schema: KeySchema,
    live: str | None,
    restored: str | None,
    *,
    merge: bool = False,
) -> str | None:
    """Say, before anything is written, why no single safe request can do an operation.

    Parameters
    ----------
    item_class
        ``deleted``, ``changed``, ``added`` or ``expired`` (as deleted).
    key_schema
        The table's key.
    live, restored
        Canonical DynamoDB-JSON strings of the live and restored versions, as in
        the diff dataset (``None`` where the class has none).
    merge
        Judge the ``--merge`` policy for changed items (strict otherwise).

    Returns
    -------
    str or None
        ``None`` when a safe request fits AWS's limits (developer guide,
        "Constraints": 4 KB expressions, 300 operators, 400 KB items, key
        sizes); else a one-line reason that says what the user can do.
        Index key types are not judged here (they need the table's
        description): ``apply --dry-run`` judges them.
    """
    try:
        if item_class in _ABSENT_CLASSES:
            if restored is None:
                return None
            if len(restored) <= MAX_ITEM_BYTES:  # JSON text is never shorter than the size
                return None
        live_item = codec.loads(live) if live is not None else None
        restored_item = codec.loads(restored) if restored is not None else None
        plan_writes(item_class, key_schema, live_item, restored_item, merge=merge)
    except Unrestorable as exc:
        return str(exc)
    return None


__all__ = [
    "ADDED",
    "CHANGED",
    "DELETED",
    "EXPIRED",
    "MAX_EXPRESSION_BYTES",
    "MAX_OPERATORS",
    "Expressions",
    "IndexKeys",
    "Unrestorable",
    "Write",
    "changed_attributes",
    "delete_observed",
    "elementwise_condition",
    "key_problem",
    "plan_writes",
    "put_absent",
    "size_problem",
    "unrestorable_reason",
    "update_strict",
    "updates_merge",
]


# --------------------------------------------------------------------------- index keys


@dataclass(frozen=True)
class IndexKeys:
    """The key attributes of a table's secondary indexes, with their types.

    Attributes
    ----------
    keys
        ``{attribute: ((index name, type), ...)}`` for every GSI and LSI key
        attribute (``DescribeTable``'s ``KeySchema`` of each index and its
        ``AttributeDefinitions``).
    """

    keys: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> IndexKeys:
        """Build from ``DescribeTable``'s ``Table``."""
        types = {
            d["AttributeName"]: d["AttributeType"]
            for d in described.get("AttributeDefinitions") or ()
        }
        keys: dict[str, list[tuple[str, str]]] = {}
        indexes = [
            *(described.get("GlobalSecondaryIndexes") or ()),
            *(described.get("LocalSecondaryIndexes") or ()),
        ]
        for index in indexes:
            for entry in index.get("KeySchema") or ():
                name = entry["AttributeName"]
                if name in types:
                    keys.setdefault(name, []).append((index["IndexName"], types[name]))
        return cls({name: tuple(sorted(found)) for name, found in keys.items()})

    def problem(self, values: Mapping[str, Any]) -> str | None:
        """Why DynamoDB would refuse writing these top-level values, or ``None``.

        An index key attribute must have its index's type and must not be an
        empty string or binary (developer guide, "Constraints" and "Working
        with secondary indexes"; the service answers ``ValidationException``).
        """
        if not self.keys:
            return None
        for name, indexes in self.keys.items():
            typed = values.get(name)
            if typed is None:
                continue
            ((tag, value),) = typed.items()
            index, expected = indexes[0]
            if tag != expected:
                return (
                    f"attribute {name!r} is a key of index {index} of type {expected}, "
                    f"the item's value is of type {tag}"
                )
            if tag in (codec.S, codec.B) and value in ("", b""):
                kind = "string" if tag == codec.S else "binary"
                return (
                    f"attribute {name!r} is a key of index {index} and its value is an empty {kind}"
                )
        return None

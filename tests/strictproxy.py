"""A layer as strict as AWS in front of moto and dynalite.

moto and dynalite accept requests that DynamoDB refuses. :class:`StrictProxy`
is a :class:`~tests.faultproxy.FaultProxy` whose validator refuses, before
forwarding, what AWS refuses, with AWS's error shape (HTTP 400,
``com.amazonaws.dynamodb.v20120810#ValidationException``) and AWS's message
texts (as captured from the service by public conformance suites; the limits
from the developer guide's "Constraints" page):

- an expression string (condition, update, key condition, filter, projection)
  over 4 KB: ``Invalid ConditionExpression: Expression size has exceeded the
  maximum allowed size; expression size: 4097``;
- more than 300 operators or functions in one expression: ``Invalid
  UpdateExpression: The expression contains too many operators; operator
  count: 301`` (counted generously: comparators, ``AND``/``OR``/``NOT``,
  ``BETWEEN``, ``IN``, functions, ``+``/``-`` and each ``SET``'s ``=``);
- placeholders defined but unused: ``Value provided in ExpressionAttributeNames
  unused in expressions: keys: {#x}``;
- a value nested deeper than 32 levels (the top-level value is level 1), in an
  item or an expression value: ``Nesting Levels have exceeded supported limits:
  Attributes in the item have nested levels beyond supported limit``;
- an item over 400 KB (``Item size has exceeded the maximum allowed size``),
  or an update that would make one (``Item size to update has exceeded the
  maximum allowed size``; judged from the item read from the server and the
  update's top-level ``SET``/``REMOVE`` actions);
- a secondary-index key attribute (every GSI and LSI of ``DescribeTable``,
  read from the server) of the wrong type (``Type mismatch for Index Key ...``)
  or empty (``A value specified for a secondary index key is not supported.
  ...``; the update form ``The update expression attempted to update a
  secondary index key to a value that is not supported. ...``);
- key values over 2,048 bytes (partition) or 1,024 bytes (sort).

Usage::

    with StrictProxy(server.endpoint, delay_s=0.005) as proxy:
        apply_plan(plan, aws=server.aws.with_endpoint(proxy.url))
        assert proxy.counts["refused"] == 0

``refusals`` lists the messages sent. Table descriptions are cached per table;
they are forgotten when a ``CreateTable``, ``UpdateTable`` or ``DeleteTable``
passes through the proxy, or on :meth:`StrictProxy.forget_tables`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Any

import boto3
import botocore.exceptions

from pitrdiff import codec
from pitrdiff.errors import CodecError
from tests.faultproxy import FaultProxy

VALIDATION = "com.amazonaws.dynamodb.v20120810#ValidationException"
MAX_EXPRESSION_BYTES = 4096
MAX_OPERATORS = 300
MAX_NESTING = 32
MAX_ITEM_BYTES = 400 * 1024
MAX_HASH_KEY_BYTES = 2048
MAX_RANGE_KEY_BYTES = 1024
EXPRESSIONS = (
    "ConditionExpression",
    "UpdateExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
)
NESTING_MESSAGE = (
    "Nesting Levels have exceeded supported limits: "
    "Attributes in the item have nested levels beyond supported limit"
)
_TOKEN = re.compile(
    r"(?P<placeholder>[#:][A-Za-z0-9_]+)"
    r"|(?P<function>[A-Za-z_][A-Za-z0-9_]*)\s*\("
    r"|(?P<comparator><>|<=|>=|=|<|>)"
    r"|(?P<arithmetic>[+\-])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
)
_WORD_OPERATORS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)
_SET_ACTION = re.compile(
    r"^\s*(#[A-Za-z0-9_]+)\s*=\s*(?:(:[A-Za-z0-9_]+)|if_not_exists\(\s*\1\s*,\s*(:[A-Za-z0-9_]+)\s*\))\s*$"
)
_REMOVE_ACTION = re.compile(r"^\s*(#[A-Za-z0-9_]+)\s*$")


class Refusal(Exception):
    """A request AWS would refuse; ``str(exc)`` is AWS's message."""


def count_operators(expression: str) -> int:
    """Operators and functions in an expression, counted generously (see the module)."""
    count = 0
    for match in _TOKEN.finditer(expression):
        kind = match.lastgroup
        word = match.group("word")
        count += kind in ("function", "comparator", "arithmetic") or (
            word is not None and word.upper() in _WORD_OPERATORS
        )
    return count


def check_expressions(request: Mapping[str, Any]) -> None:
    """Refuse expressions over 4 KB or 300 operators, and unused placeholders."""
    used: set[str] = set()
    for field in EXPRESSIONS:
        text = request.get(field)
        if not isinstance(text, str):
            continue
        size = len(text.encode("utf-8"))
        if size > MAX_EXPRESSION_BYTES:
            raise Refusal(
                f"Invalid {field}: Expression size has exceeded the maximum allowed size; "
                f"expression size: {size}"
            )
        operators = count_operators(text)
        if operators > MAX_OPERATORS:
            raise Refusal(
                f"Invalid {field}: The expression contains too many operators; "
                f"operator count: {operators}"
            )
        used.update(m.group("placeholder") for m in _TOKEN.finditer(text) if m.group("placeholder"))
    for field in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        unused = sorted(set(request.get(field) or {}) - used)
        if unused:
            raise Refusal(
                f"Value provided in {field} unused in expressions: keys: {{{', '.join(unused)}}}"
            )


def check_nesting(values: Mapping[str, Any]) -> None:
    """Refuse values nested deeper than 32 levels (a top-level value is level 1)."""

    def walk(typed: Any, level: int) -> None:
        if level > MAX_NESTING:
            raise Refusal(NESTING_MESSAGE)
        if isinstance(typed, Mapping):
            if "M" in typed and isinstance(typed["M"], Mapping):
                for inner in typed["M"].values():
                    walk(inner, level + 1)
            elif "L" in typed and isinstance(typed["L"], list):
                for inner in typed["L"]:
                    walk(inner, level + 1)

    for typed in values.values():
        walk(typed, 1)


def item_size(item: Mapping[str, Any]) -> int | None:
    """AWS's size of a wire-form item, or ``None`` when the codec refuses it."""
    try:
        return codec.item_size(item)
    except CodecError:
        return None


class _Table:
    """What the layer needs of a table: key attributes and index keys with types."""

    def __init__(self, described: Mapping[str, Any]) -> None:
        types = {d["AttributeName"]: d["AttributeType"] for d in described["AttributeDefinitions"]}
        self.hash_key = next(
            k["AttributeName"] for k in described["KeySchema"] if k["KeyType"] == "HASH"
        )
        ranges = [k["AttributeName"] for k in described["KeySchema"] if k["KeyType"] == "RANGE"]
        self.range_key = ranges[0] if ranges else None
        self.index_keys: dict[str, list[tuple[str, str]]] = {}
        for index in [
            *(described.get("GlobalSecondaryIndexes") or ()),
            *(described.get("LocalSecondaryIndexes") or ()),
        ]:
            for entry in index["KeySchema"]:
                name = entry["AttributeName"]
                self.index_keys.setdefault(name, []).append((index["IndexName"], types[name]))
        for found in self.index_keys.values():
            found.sort()

    def check_keys(self, item: Mapping[str, Any]) -> None:
        for name, limit, message in (
            (
                self.hash_key,
                MAX_HASH_KEY_BYTES,
                "Size of hashkey has exceeded the maximum size limit of2048 bytes",
            ),
            (
                self.range_key,
                MAX_RANGE_KEY_BYTES,
                "Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
            ),
        ):
            typed = item.get(name) if name else None
            if not isinstance(typed, Mapping) or "N" in typed:
                continue
            ((tag, value),) = typed.items()
            size = len(codec.key_column_value(typed)) if tag == "B" else len(str(value).encode())
            if size > limit:
                raise Refusal(f"One or more parameter values were invalid: {message}")

    def check_index_values(self, values: Mapping[str, Any], update: bool) -> None:
        for name, indexes in self.index_keys.items():
            typed = values.get(name)
            if not isinstance(typed, Mapping):
                continue
            ((tag, value),) = typed.items()
            index, expected = indexes[0]
            if tag != expected:
                raise Refusal(
                    "One or more parameter values were invalid: Type mismatch for Index Key "
                    f"{name} Expected: {expected} Actual: {tag} IndexName: {index}"
                )
            if tag in ("S", "B") and value == "":
                kind = "string" if tag == "S" else "binary"
                if update:
                    raise Refusal(
                        "One or more parameter values are not valid. The update expression "
                        "attempted to update a secondary index key to a value that is not "
                        "supported. The AttributeValue for a key attribute cannot contain an "
                        f"empty {kind} value."
                    )
                raise Refusal(
                    "One or more parameter values are not valid. A value specified for a "
                    "secondary index key is not supported. The AttributeValue for a key "
                    f"attribute cannot contain an empty {kind} value. IndexName: {index}, "
                    f"IndexKey: {name}"
                )


def simple_update(request: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
    """The top-level ``SET name = value`` and ``REMOVE name`` of an update, else ``None``."""
    text = request.get("UpdateExpression")
    if not isinstance(text, str):
        return None
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    sets: dict[str, Any] = {}
    removes: list[str] = []
    parts = _CLAUSE.split(text)
    if parts[0].strip():
        return None
    for keyword, body in zip(parts[1::2], parts[2::2], strict=True):
        for action in body.split(","):
            if keyword.upper() == "SET":
                match = _SET_ACTION.match(action)
                if match is None or match.group(1) not in names:
                    return None
                sets[names[match.group(1)]] = values.get(match.group(2) or match.group(3))
            elif keyword.upper() == "REMOVE":
                match = _REMOVE_ACTION.match(action)
                if match is None or match.group(1) not in names:
                    return None
                removes.append(names[match.group(1)])
            else:
                return None
    return sets, removes


class StrictLayer:
    """The validator: refuses what AWS refuses (see the module)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._tables: dict[str, _Table] = {}
        self._lock = threading.Lock()
        self._client: Any = None
        self.refusals: list[str] = []

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = boto3.client(
                    "dynamodb", endpoint_url=self.upstream, region_name="us-east-1"
                )
            return self._client

    def forget_tables(self) -> None:
        with self._lock:
            self._tables.clear()

    def table(self, name: str) -> _Table | None:
        with self._lock:
            found = self._tables.get(name)
        if found is not None:
            return found
        try:
            described = self.client().describe_table(TableName=name)["Table"]
        except Exception:
            return None
        found = _Table(described)
        with self._lock:
            self._tables[name] = found
        return found

    def __call__(self, operation: str | None, body: bytes) -> tuple[int, str, str] | None:
        if operation in ("CreateTable", "UpdateTable", "DeleteTable"):
            self.forget_tables()
            return None
        if operation not in ("PutItem", "UpdateItem", "DeleteItem", "GetItem", "BatchWriteItem"):
            return None
        try:
            request = json.loads(body)
            self.check(operation, request)
        except Refusal as refusal:
            with self._lock:
                self.refusals.append(str(refusal))
            return 400, VALIDATION, str(refusal)
        except ValueError:
            return None
        return None

    def check(self, operation: str, request: Mapping[str, Any]) -> None:
        """Raise :class:`Refusal` when AWS would refuse ``request``."""
        check_expressions(request)
        check_nesting(request.get("ExpressionAttributeValues") or {})
        if operation == "BatchWriteItem":
            for name, writes in (request.get("RequestItems") or {}).items():
                for write in writes:
                    item = (write.get("PutRequest") or {}).get("Item")
                    if item is not None:
                        self.check_put(name, item)
            return
        table = self.table(str(request.get("TableName")))
        if operation == "PutItem":
            self.check_put(str(request.get("TableName")), request.get("Item") or {})
        elif table is not None:
            table.check_keys(request.get("Key") or {})
        if operation == "UpdateItem" and table is not None:
            self.check_update(table, request)

    def check_put(self, table_name: str, item: Mapping[str, Any]) -> None:
        check_nesting(item)
        size = item_size(item)
        if size is not None and size > MAX_ITEM_BYTES:
            raise Refusal("Item size has exceeded the maximum allowed size")
        table = self.table(table_name)
        if table is not None:
            table.check_keys(item)
            table.check_index_values(item, update=False)

    def check_update(self, table: _Table, request: Mapping[str, Any]) -> None:
        update = simple_update(request)
        if update is None:
            return
        sets, removes = update
        table.check_index_values(sets, update=True)
        try:
            current = self.client().get_item(
                TableName=request["TableName"], Key=request["Key"], ConsistentRead=True
            ).get("Item") or dict(request["Key"])
        except botocore.exceptions.ClientError:
            # The server refuses the key itself (dynalite: "Size of hashkey has
            # exceeded..."): it will refuse the update the same way; let it answer.
            return
        after = {**_wire(current), **sets}
        for name in removes:
            after.pop(name, None)
        size = item_size(after)
        if size is not None and size > MAX_ITEM_BYTES:
            raise Refusal("Item size to update has exceeded the maximum allowed size")


def _wire(item: Mapping[str, Any]) -> dict[str, Any]:
    return codec.loads(codec.canonical_json(item))


class StrictProxy(FaultProxy):
    """A :class:`FaultProxy` with the :class:`StrictLayer`; ``delay_s`` adds latency.

    Parameters
    ----------
    upstream
        The real server.
    delay_s
        Seconds each request waits before it is forwarded (0: none).
    after_response
        As :class:`FaultProxy`'s.
    faults
        Other :class:`FaultProxy` parameters (rates, seed).
    """

    def __init__(
        self,
        upstream: str,
        *,
        delay_s: float = 0.0,
        after_response: Any = None,
        **faults: Any,
    ) -> None:
        self.layer = StrictLayer(upstream)
        if delay_s:
            faults.setdefault("slow_rate", 1.0)
            faults.setdefault("slow_seconds", delay_s)
        super().__init__(upstream, validate=self.layer, after_response=after_response, **faults)

    @property
    def refusals(self) -> list[str]:
        """The messages of the requests refused so far."""
        return list(self.layer.refusals)

    def forget_tables(self) -> None:
        """Read table descriptions again (after a table changed behind the proxy)."""
        self.layer.forget_tables()

"""Building, writing, loading and verifying re-put plans.

A plan turns a diff dataset into the writes that put back what was lost:

- **deleted** (in restored, not in live): put the restored item, expecting the
  item to be absent;
- **changed** (only when included): put the restored item, expecting the live
  item exactly as the diff observed it;
- **added** (only when included, never by default): delete the item, expecting
  it exactly as observed.

The plan file is JSON Lines (``docs/FORMAT.md`` section 4): a header, one
operation per line, and a trailer with the operation count and the xxh3-128
checksum of every byte before it. It is written atomically, owner-only.

Selection
---------
``include`` names the classes; ``where`` is a boolean DuckDB SQL expression over
the diff rows; ``keys`` a file of keys to keep. The expression is evaluated
over one view, ``rows``, with these columns (NULL where a class has no value):

============== ======================================================
column         meaning
============== ======================================================
``class``      ``deleted``, ``changed`` or ``added``
``_key``       canonical key (DynamoDB JSON text)
key columns    one per key attribute (``S``/``N`` as text, ``B`` as blob)
``live_item``  the live item as canonical DynamoDB JSON (changed, added)
``restored_item`` the restored item (deleted, changed)
``live_hash``, ``restored_hash``  content hashes (uint64)
``live_size``, ``restored_size``  item sizes in bytes
``changes``    attribute-level changes (changed only): list of struct
               ``path``, ``kind``, ``old``, ``new``
``signature``  change signature (changed only)
============== ======================================================

Attribute values are reached by JSON path into either version, e.g.
``json_extract_string(restored_item, '$.tenant.S') = 'acme'``, or with the
macros :meth:`pitrdiff.diff.Diff.sql` documents (``attr``, ``attr_type``,
``attr_text``, ``attr_num``), e.g.
``attr_text(restored_item, 'updated_at') >= '2026-10-20'``.

The expression is parsed as an expression (never a statement), and it runs
with DuckDB's external access switched off and the configuration locked, so it
cannot read or write files or reach the network.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import xxhash

from pitrdiff import __version__, codec
from pitrdiff.errors import CodecError, DiffError, InputError, PlanError
from pitrdiff.export.dataset import KeySchema, file_checksum, utc_now
from pitrdiff.files import atomic_writer, storage_error

PLAN_FORMAT = "pitrdiff-plan"
PLAN_FORMAT_VERSION = 1
DIFF_FORMAT = "pitrdiff-diff"
CLASSES = ("deleted", "changed", "added")
DEFAULT_INCLUDE = ("deleted",)
_OPERATION_OF_CLASS = {"deleted": "put", "changed": "put", "added": "delete"}
_BATCH_ROWS = 2048
_ALL_COLUMNS = (
    "SELECT NULL::VARCHAR AS class, NULL::VARCHAR AS _key, NULL::VARCHAR AS live_item, "
    "NULL::VARCHAR AS restored_item, NULL::UBIGINT AS live_hash, NULL::UBIGINT AS restored_hash, "
    "NULL::INTEGER AS live_size, NULL::INTEGER AS restored_size, "
    "NULL::STRUCT(path VARCHAR, kind VARCHAR, old VARCHAR, new VARCHAR)[] AS changes, "
    "NULL::VARCHAR AS signature WHERE false"
)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Operation:
    """One write of a plan.

    Attributes
    ----------
    seq
        Position in the plan, from 0.
    op
        ``put`` or ``delete``.
    item_class
        The diff class it comes from: ``deleted``, ``changed`` or ``added``.
    key
        The key attributes (canonical wire form).
    item
        The item to put (``None`` for a delete).
    expected
        The item as the diff observed it in the live table; ``None``: must be absent.
    line_bytes
        Length of the operation's plan line: an upper bound of the item's size
        (JSON text is never shorter than DynamoDB's size of the same item).
    """

    seq: int
    op: str
    item_class: str
    key: dict[str, Any]
    item: dict[str, Any] | None
    expected: dict[str, Any] | None
    line_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The operation as its plan line has it."""
        out: dict[str, Any] = {
            "kind": "op",
            "seq": self.seq,
            "op": self.op,
            "class": self.item_class,
            "key": self.key,
        }
        if self.op == "put":
            out["item"] = self.item
        out["expected"] = self.expected
        return out


@dataclass(frozen=True)
class PlanSummary:
    """What :func:`write_plan` wrote.

    Attributes
    ----------
    path
        The plan file.
    table
        The target table.
    operations
        Operations in the plan.
    counts
        Operations per class (``deleted``, ``changed``, ``added``) and per kind
        (``put``, ``delete``).
    available
        Rows per class in the diff, before the selection.
    selection
        The selection as recorded in the header.
    checksum
        xxh3-128 of the plan's bytes before the trailer.
    """

    path: str
    table: str
    operations: int
    counts: dict[str, int]
    available: dict[str, int]
    selection: dict[str, Any]
    checksum: str

    @property
    def empty(self) -> bool:
        """True when the selection selected nothing."""
        return self.operations == 0

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data."""
        return {
            "path": self.path,
            "table": self.table,
            "operations": self.operations,
            "counts": dict(self.counts),
            "available": dict(self.available),
            "selection": dict(self.selection),
            "checksum": self.checksum,
        }


@dataclass(frozen=True)
class Plan:
    """A verified plan file (see :func:`load_plan`).

    Operations are read from the file again on each :meth:`operations` call,
    so memory stays bounded whatever the plan's size.
    """

    path: Path
    header: dict[str, Any]
    operation_count: int
    checksum: str
    key_schema: KeySchema = field(repr=False)

    @property
    def table(self) -> str:
        """The table the plan targets."""
        return str(self.header["table"])

    @property
    def counts(self) -> dict[str, int]:
        """Operations per class and kind, from the header."""
        return dict(self.header.get("counts") or {})

    def operations(self) -> Iterator[Operation]:
        """Yield the plan's operations in order, re-checking the bytes as they are read.

        Raises
        ------
        PlanError
            When the file changed since it was loaded.
        """
        digest = xxhash.xxh3_128()
        seq = 0
        try:
            with open(self.path, "rb") as handle:
                header_line = handle.readline()
                digest.update(header_line)
                for number, line in enumerate(handle, start=2):
                    if number == self.operation_count + 2:
                        break
                    digest.update(line)
                    yield _parse_operation(line, number, seq)
                    seq += 1
        except OSError as exc:
            raise storage_error(exc, self.path, "read plan") from exc
        if seq != self.operation_count or digest.hexdigest() != self.checksum:
            raise PlanError(f"plan {self.path} changed while it was being read", line=None)

    def to_dict(self) -> dict[str, Any]:
        """The plan's identity and header."""
        return {
            "path": str(self.path),
            "table": self.table,
            "operations": self.operation_count,
            "checksum": self.checksum,
            "header": self.header,
        }


# --------------------------------------------------------------------------- loading


def _parse_operation(line: bytes, number: int, seq: int) -> Operation:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise PlanError(f"plan line {number} is not valid JSON", line=number) from exc
    if not isinstance(doc, dict) or doc.get("kind") != "op":
        raise PlanError(f"plan line {number} is not an operation", line=number)
    if doc.get("seq") != seq:
        raise PlanError(
            f"plan line {number}: operation seq {doc.get('seq')!r}, expected {seq}", line=number
        )
    op, item_class = doc.get("op"), doc.get("class")
    if item_class not in _OPERATION_OF_CLASS or _OPERATION_OF_CLASS[item_class] != op:
        raise PlanError(
            f"plan line {number}: invalid operation {op!r} for class {item_class!r}", line=number
        )
    key, item, expected = doc.get("key"), doc.get("item"), doc.get("expected")
    if not isinstance(key, dict) or not key:
        raise PlanError(f"plan line {number}: operation has no key", line=number)
    if op == "put" and not isinstance(item, dict):
        raise PlanError(f"plan line {number}: put without an item", line=number)
    if expected is not None and not isinstance(expected, dict):
        raise PlanError(f"plan line {number}: invalid expected item", line=number)
    if (item_class == "deleted") != (expected is None):
        raise PlanError(f"plan line {number}: expected state does not fit its class", line=number)
    return Operation(
        seq=seq,
        op=str(op),
        item_class=str(item_class),
        key=key,
        item=item if op == "put" else None,
        expected=expected,
        line_bytes=len(line),
    )


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """Read and verify a plan file.

    Every line is checked: the header, each operation (in sequence), and the
    trailer's operation count and xxh3-128 checksum over every byte before it.

    Parameters
    ----------
    path
        The plan file written by :func:`write_plan`.

    Returns
    -------
    Plan
        The verified plan; iterate :meth:`Plan.operations` to read its operations.

    Raises
    ------
    PlanError
        When the plan is truncated, edited or not a plan; the message names the line.
    StorageError
        When the file cannot be read.
    """
    plan_path = Path(path)
    digest = xxhash.xxh3_128()
    header: dict[str, Any] | None = None
    trailer: dict[str, Any] | None = None
    count = 0
    number = 0
    try:
        with open(plan_path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if trailer is not None:
                    raise PlanError(
                        f"plan line {number}: text after the trailer (edited?)", line=number
                    )
                if not line.endswith(b"\n"):
                    raise PlanError(
                        f"plan line {number} is incomplete: the plan is truncated", line=number
                    )
                if number == 1:
                    header = _parse_header(line, plan_path)
                    digest.update(line)
                    continue
                if line.startswith(b'{"kind":"trailer"'):
                    try:
                        parsed = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        raise PlanError(
                            f"plan line {number}: the trailer is not valid JSON", line=number
                        ) from exc
                    trailer = parsed if isinstance(parsed, dict) else {}
                    continue
                _parse_operation(line, number, count)
                digest.update(line)
                count += 1
    except FileNotFoundError as exc:
        raise PlanError(f"no plan at {plan_path}") from exc
    except IsADirectoryError as exc:
        raise PlanError(f"{plan_path} is a directory, not a plan") from exc
    except OSError as exc:
        raise storage_error(exc, plan_path, "read plan") from exc
    if header is None:
        raise PlanError(f"{plan_path} is empty, not a plan", line=1)
    if trailer is None:
        raise PlanError(
            f"plan {plan_path} has no trailer after line {number}: it is truncated", line=number
        )
    if trailer.get("operations") != count:
        raise PlanError(
            f"plan line {number}: trailer says {trailer.get('operations')!r} operations, "
            f"the plan has {count} (edited or truncated)",
            line=number,
        )
    checksum = digest.hexdigest()
    if trailer.get("xxh3_128") != checksum:
        raise PlanError(
            f"plan line {number}: checksum mismatch: the plan was edited after it was written",
            line=number,
        )
    try:
        schema = KeySchema.from_list(header["key_schema"])
    except (KeyError, TypeError, InputError) as exc:
        raise PlanError("plan line 1: the header's key schema is invalid", line=1) from exc
    return Plan(
        path=plan_path,
        header=header,
        operation_count=count,
        checksum=checksum,
        key_schema=schema,
    )


def _parse_header(line: bytes, path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise PlanError(f"{path} is not a plan: line 1 is not JSON", line=1) from exc
    if not isinstance(doc, dict) or doc.get("kind") != "header" or doc.get("format") != PLAN_FORMAT:
        raise PlanError(f"{path} is not a pitrdiff plan (line 1 is not its header)", line=1)
    if doc.get("format_version") != PLAN_FORMAT_VERSION:
        raise PlanError(
            f"plan format version {doc.get('format_version')!r} is not supported "
            f"(this pitrdiff reads {PLAN_FORMAT_VERSION})",
            line=1,
        )
    if not isinstance(doc.get("table"), str) or not isinstance(doc.get("key_schema"), list):
        raise PlanError("plan line 1: the header names no table or key schema", line=1)
    return doc


# --------------------------------------------------------------------------- the diff


@dataclass(frozen=True)
class _DiffInput:
    root: Path
    manifest: dict[str, Any]
    manifest_checksum: str
    key_schema: KeySchema
    table: str
    files: dict[str, Path]


def _open_diff(diff: Any) -> _DiffInput:
    root = Path(getattr(diff, "path", diff))
    manifest_path = root / "manifest.json"
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError as exc:
        raise DiffError(f"{root} is not a diff dataset: it has no manifest.json") from exc
    except NotADirectoryError as exc:
        raise DiffError(f"{root} is not a diff dataset directory") from exc
    except OSError as exc:
        raise storage_error(exc, manifest_path, "read") from exc
    try:
        manifest = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DiffError(f"{manifest_path} is not valid JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != DIFF_FORMAT:
        raise DiffError(f"{root} is not a diff dataset (manifest format is not {DIFF_FORMAT})")
    if manifest.get("complete") is not True:
        raise DiffError(f"diff {root} is incomplete: re-run pitrdiff diff")
    try:
        schema = KeySchema.from_list(manifest["key_schema"])
        table = str(manifest["table_name"])
    except (KeyError, TypeError, InputError) as exc:
        raise DiffError(f"{manifest_path} has no valid key schema or table name") from exc
    files: dict[str, Path] = {}
    listed = manifest.get("files") or {}
    for item_class in CLASSES:
        entry = listed.get(item_class) if isinstance(listed, dict) else None
        relative = (entry or {}).get("path") or f"{item_class}.parquet"
        path = root / relative
        if not path.is_file():
            raise DiffError(f"diff {root} has no {relative}")
        expected = (entry or {}).get("xxh3_128")
        if expected and file_checksum(path) != expected:
            raise DiffError(f"diff file {path} does not match its manifest checksum (corrupt?)")
        files[item_class] = path
    return _DiffInput(
        root=root,
        manifest=manifest,
        manifest_checksum=xxhash.xxh3_128_hexdigest(raw),
        key_schema=schema,
        table=table,
        files=files,
    )


# --------------------------------------------------------------------------- keys files


def read_keys_file(path: str | os.PathLike[str], key_schema: KeySchema) -> Iterator[str]:
    """Yield the canonical keys listed in a keys file.

    Parameters
    ----------
    path
        A CSV file whose header row names the key attributes, or a JSON Lines
        file with one key per line, either plain values (``{"pk": "a", "sk": 1}``)
        or DynamoDB JSON (``{"pk": {"S": "a"}, "sk": {"N": "1"}}``). Binary key
        values are base64 text.
    key_schema
        The diff's key schema: names and types of the key attributes.

    Raises
    ------
    InputError
        When the file is neither, or a key lacks an attribute or has a bad value.
    """
    source = Path(path)
    try:
        handle = open(source, encoding="utf-8", newline="")  # noqa: SIM115 - with below
    except OSError as exc:
        raise storage_error(exc, source, "read keys file") from exc
    with handle:
        first = handle.readline()
        handle.seek(0)
        if first.lstrip().startswith("{"):
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line, parse_float=Decimal)
                except ValueError as exc:
                    raise InputError(f"keys file {source} line {number} is not JSON") from exc
                if not isinstance(doc, dict):
                    raise InputError(f"keys file {source} line {number} is not a JSON object")
                yield _key_from_values(doc, key_schema, f"keys file {source} line {number}")
        else:
            reader = csv.DictReader(handle)
            missing = [n for n in key_schema.names if n not in (reader.fieldnames or [])]
            if missing:
                raise InputError(
                    f"keys file {source}: the CSV header must name the key attributes "
                    f"{', '.join(key_schema.names)} (missing {', '.join(missing)})"
                )
            for number, row in enumerate(reader, start=2):
                yield _key_from_values(row, key_schema, f"keys file {source} line {number}")


def _key_from_values(doc: Mapping[str, Any], key_schema: KeySchema, where: str) -> str:
    key: dict[str, Any] = {}
    for attribute in key_schema.attributes:
        if attribute.name not in doc:
            raise InputError(f"{where}: no key attribute {attribute.name!r}")
        value = doc[attribute.name]
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in codec.KEY_TYPES:
            typed: dict[str, Any] = dict(value)
        else:
            tag = attribute.attribute_type or "S"
            if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
                raise InputError(f"{where}: {attribute.name!r} is not a key value")
            typed = {tag: str(value)}
        if attribute.attribute_type and next(iter(typed)) != attribute.attribute_type:
            raise InputError(
                f"{where}: {attribute.name!r} must be of type {attribute.attribute_type}"
            )
        key[attribute.name] = typed
    try:
        return codec.canonical_key(key, key_schema.names)
    except CodecError as exc:
        raise InputError(f"{where}: {exc}") from exc


# --------------------------------------------------------------------------- writing


def _parse_include(include: Iterable[str] | str) -> tuple[str, ...]:
    names = include.split(",") if isinstance(include, str) else list(include)
    chosen: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name not in CLASSES:
            raise InputError(f"unknown class {name!r} to include: choose from {', '.join(CLASSES)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise InputError(f"include at least one class: {', '.join(CLASSES)}")
    return tuple(c for c in CLASSES if c in chosen)


def check_where(where: str) -> str:
    """Refuse what cannot be a single SQL expression (before DuckDB parses it).

    Raises
    ------
    InputError
        When ``where`` is empty or contains ``;``.
    """
    text = where.strip()
    if not text:
        raise InputError("--where is empty: give a boolean SQL expression")
    if ";" in text:
        raise InputError("--where must be one SQL expression, not statements: ';' is not allowed")
    return text


def _connect(
    diff: _DiffInput, include: Sequence[str], keys: Iterable[str] | None, spill: str
) -> Any:
    """A DuckDB connection with the ``rows`` view, then locked against external access.

    ``spill`` is an owner-only directory for DuckDB's temporary files (its
    default, ``./.tmp``, would leave table data readable by others).
    """
    import pyarrow as pa
    import pyarrow.dataset as pads

    from pitrdiff.diff.core import connect

    # No progress bar, and the attr() / attr_text() ... macros as in Diff.sql.
    con = connect(temp_dir=spill, threads=2)
    parts = []
    for item_class in include:
        name = f"_diff_{item_class}"
        # Arrow datasets are scanned lazily (bounded memory) and stay readable
        # after external access is switched off.
        con.register(name, pads.dataset(str(diff.files[item_class]), format="parquet"))
        parts.append(f"SELECT '{item_class}' AS class, * FROM {name}")
    # Every column exists for every class (NULL where a class has no value), so
    # one expression works whatever the classes included.
    parts.insert(0, _ALL_COLUMNS)
    con.execute("CREATE VIEW rows AS " + " UNION ALL BY NAME ".join(parts))
    if keys is not None:
        con.execute("CREATE TABLE _keys (_key VARCHAR)")
        batch: list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) >= 10_000:
                _insert_keys(con, pa, batch)
                batch = []
        _insert_keys(con, pa, batch)
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _insert_keys(con: Any, pa: Any, batch: list[str]) -> None:
    if batch:
        chunk = pa.table({"_key": pa.array(batch, pa.string())})
        con.register("_keys_chunk", chunk)
        con.execute("INSERT INTO _keys SELECT _key FROM _keys_chunk")
        con.unregister("_keys_chunk")


def _selected(con: Any, where: str | None, with_keys: bool) -> Any:
    import duckdb

    relation = con.table("rows")
    if where is not None:
        try:
            relation = relation.filter(where)
            relation.limit(0).fetchall()  # bind now: a bad column is an input error
        except duckdb.PermissionException as exc:
            raise InputError(
                "--where cannot read files or reach the network: " + _first_line(str(exc))
            ) from exc
        except duckdb.Error as exc:
            raise InputError(f"invalid --where expression: {_first_line(str(exc))}") from exc
    if with_keys:
        relation = relation.filter("_key IN (SELECT _key FROM _keys)")
    return relation


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def write_plan(
    diff: Any,
    out: str | os.PathLike[str],
    *,
    include: Iterable[str] | str = DEFAULT_INCLUDE,
    where: str | None = None,
    keys: str | os.PathLike[str] | None = None,
    table: str | None = None,
) -> PlanSummary:
    """Write a selective re-put plan from a diff dataset.

    Parameters
    ----------
    diff
        The diff dataset directory, or an object with a ``path`` attribute naming it.
    out
        The plan file to write (atomically, owner-only).
    include
        Classes to restore: ``deleted`` (default), ``changed``, ``added``; a
        sequence or a comma-separated string.
    where
        A boolean DuckDB SQL expression over the diff rows (see the module
        docstring for the columns), e.g.
        ``json_extract_string(restored_item, '$.tenant.S') = 'acme'``.
    keys
        A CSV or JSON Lines file of keys; only those keys are planned.
    table
        The target table; the diff's table by default.

    Returns
    -------
    PlanSummary
        What was written. A selection that selects nothing writes a plan with
        no operations (``summary.empty``).

    Raises
    ------
    DiffError
        When ``diff`` is not a complete diff dataset.
    InputError
        For an unknown class, an invalid ``where`` expression or keys file.
    StorageError
        When the plan cannot be written.
    """
    import duckdb

    classes = _parse_include(include)
    expression = check_where(where) if where is not None else None
    source = _open_diff(diff)
    target = table or source.table
    keys_iter = read_keys_file(keys, source.key_schema) if keys is not None else None
    spill = tempfile.mkdtemp(prefix="pitrdiff-plan-")
    try:
        con = _connect(source, classes, keys_iter, spill)
    except duckdb.Error as exc:
        shutil.rmtree(spill, ignore_errors=True)
        raise DiffError(f"cannot read diff {source.root}: {_first_line(str(exc))}") from exc
    except BaseException:
        shutil.rmtree(spill, ignore_errors=True)
        raise
    try:
        relation = _selected(con, expression, keys is not None)
        counted = dict(relation.aggregate("class, count(*)", "class").fetchall())
        counts = {c: int(counted.get(c, 0)) for c in classes}
        keys_listed = (
            int(con.execute("SELECT count(*) FROM _keys").fetchall()[0][0]) if keys else None
        )
        available = {c: int(v) for c, v in (source.manifest.get("counts") or {}).items()}
        selection: dict[str, Any] = {"include": list(classes), "where": expression}
        if keys is not None:
            selection["keys_file"] = str(keys)
            selection["keys_listed"] = keys_listed
        total = sum(counts.values())
        op_counts = {
            **counts,
            "put": counts.get("deleted", 0) + counts.get("changed", 0),
            "delete": counts.get("added", 0),
        }
        header = {
            "kind": "header",
            "format": PLAN_FORMAT,
            "format_version": PLAN_FORMAT_VERSION,
            "tool_version": __version__,
            "created_at": utc_now(),
            "table": target,
            "key_schema": source.key_schema.to_list(),
            "diff": {
                "path": str(source.root.resolve()),
                "table_name": source.table,
                "created_at": source.manifest.get("created_at"),
                "manifest_xxh3_128": source.manifest_checksum,
                "live": source.manifest.get("live"),
                "restored": source.manifest.get("restored"),
                "counts": source.manifest.get("counts"),
            },
            "selection": selection,
            "counts": {"operations": total, **op_counts},
        }
        ordered = relation.project("class, _key, live_item, restored_item").order(
            "CASE class WHEN 'deleted' THEN 0 WHEN 'changed' THEN 1 ELSE 2 END, _key"
        )
        digest = xxhash.xxh3_128()
        written = 0
        with atomic_writer(out, "wb") as handle:
            line = orjson.dumps(header, default=str) + b"\n"
            digest.update(line)
            handle.write(line)
            # DuckDB 2 renamed fetch_arrow_reader to to_arrow_reader
            to_reader = getattr(ordered, "to_arrow_reader", None) or ordered.fetch_arrow_reader
            reader = to_reader(_BATCH_ROWS)
            for batch in reader:
                columns = batch.to_pydict()
                for item_class, key, live, restored in zip(
                    columns["class"],
                    columns["_key"],
                    columns["live_item"],
                    columns["restored_item"],
                    strict=True,
                ):
                    line = _op_line(written, item_class, key, live, restored)
                    digest.update(line)
                    handle.write(line)
                    written += 1
            if written != total:
                raise DiffError(f"diff {source.root} changed while the plan was written")
            checksum = digest.hexdigest()
            trailer = {"kind": "trailer", "operations": written, "xxh3_128": checksum}
            handle.write(orjson.dumps(trailer) + b"\n")
    except duckdb.PermissionException as exc:
        # Only --where can ask for files (the diff is read through Arrow datasets);
        # some table functions are refused when they run, not when bound.
        raise InputError(
            "--where cannot read files or reach the network: " + _first_line(str(exc))
        ) from exc
    except duckdb.Error as exc:
        raise DiffError(f"cannot read diff {source.root}: {_first_line(str(exc))}") from exc
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return PlanSummary(
        path=str(out),
        table=target,
        operations=written,
        counts=op_counts,
        available=available,
        selection=selection,
        checksum=checksum,
    )


def _op_line(seq: int, item_class: str, key: str, live: str | None, restored: str | None) -> bytes:
    # The diff stores canonical JSON text; embed it as is (no re-encoding).
    if item_class == "deleted":
        body = f'"op":"put","class":"deleted","key":{key},"item":{restored},"expected":null'
    elif item_class == "changed":
        body = f'"op":"put","class":"changed","key":{key},"item":{restored},"expected":{live}'
    else:
        body = f'"op":"delete","class":"added","key":{key},"expected":{live}'
    return f'{{"kind":"op","seq":{seq},{body}}}\n'.encode()

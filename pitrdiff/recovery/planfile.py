"""The plan file: its operations, reading and verifying it, and where and how it is written.

The format (``docs/FORMAT.md`` section 4) is JSON Lines: a header, one
operation per line, and a trailer with the operation count and the xxh3-128
checksum of every byte before it. :func:`load_plan` verifies all of it.

A plan file is written in two steps so that its header (which holds the
counts) comes first although the counts are known only at the end: the
operations go to a hidden body file beside ``--out``, then header, body and
trailer are copied into the plan, atomically (:func:`pitrdiff.files.atomic_writer`).

``--out`` is refused (exit 2, :class:`~pitrdiff.errors.RefusedError`) when:

- it lies inside an export or a diff dataset (a directory holding a pitrdiff
  ``manifest.json``, or a native export's ``manifest-summary.json``, anywhere
  up the path): writing there could replace the only copy of a dataset's file;
- it exists and is not a plan pitrdiff wrote (its first line is not a plan
  header), or it is a directory;
- it holds a plan and ``overwrite`` is false;
- it holds a plan that has an apply journal (``PLAN.journal``) or conflicts
  file (``PLAN.conflicts.jsonl``) beside it, even with ``overwrite``: they
  record what an apply of the old plan wrote (or is writing now), and a new
  plan under the same name would be refused by that journal. Move the three
  files away together, or choose another ``--out``.

The body and the plan being assembled are temporary files beside ``--out``
(``.NAME.pitrdiff-tmp-HOST-PID-RANDOM``, :func:`pitrdiff.files.temp_path`);
DuckDB spills into a private ``pitrdiff-plan-…`` directory
(:func:`pitrdiff.files.private_temp_dir`). All are removed when the plan is
written, fails or is interrupted (Ctrl-C, SIGTERM); what a killed run
(``kill -9``) left is removed by the next plan to the same ``--out``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import xxhash

from pitrdiff.errors import InputError, PlanError, RefusedError
from pitrdiff.export.dataset import KeySchema
from pitrdiff.export.outdir import dataset_kind, refuse_inside_dataset
from pitrdiff.files import atomic_writer, storage_error, temp_path

PLAN_FORMAT = "pitrdiff-plan"
PLAN_FORMAT_VERSION = 1
CLASSES = ("deleted", "expired", "changed", "added")
"""Classes a plan can include, in the order its operations are written."""
OPERATION_OF_CLASS = {"deleted": "put", "expired": "put", "changed": "put", "added": "delete"}
ABSENT_CLASSES = ("deleted", "expired")
"""Classes put on condition that the item is absent (``expected: null``)."""
_HEADER_LIMIT = 1 << 20
_COPY_CHUNK = 1 << 20


def journal_path(plan: Path) -> Path:
    """The apply journal of a plan (``PLAN.journal``)."""
    return Path(f"{plan}.journal")


def conflicts_path(plan: Path) -> Path:
    """The conflicts file of a plan (``PLAN.conflicts.jsonl``)."""
    return Path(f"{plan}.conflicts.jsonl")


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
        The diff class it comes from: ``deleted``, ``expired``, ``changed`` or ``added``.
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
    if item_class not in OPERATION_OF_CLASS or OPERATION_OF_CLASS[item_class] != op:
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
    if (item_class in ABSENT_CLASSES) != (expected is None):
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
        The plan file written by :func:`pitrdiff.recovery.plan.write_plan`.

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
    try:
        with open(plan_path, "rb") as handle:
            header, trailer, count, number, checksum = _read_lines(handle, plan_path)
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
        path=plan_path, header=header, operation_count=count, checksum=checksum, key_schema=schema
    )


def _read_lines(
    handle: IO[bytes], path: Path
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int, int, str]:
    """Check every line: ``(header, trailer, operations, last line number, checksum)``."""
    digest = xxhash.xxh3_128()
    header: dict[str, Any] | None = None
    trailer: dict[str, Any] | None = None
    count = number = 0
    for number, line in enumerate(handle, start=1):
        if trailer is not None:
            raise PlanError(f"plan line {number}: text after the trailer (edited?)", line=number)
        if not line.endswith(b"\n"):
            raise PlanError(f"plan line {number} is incomplete: the plan is truncated", line=number)
        if number == 1:
            header = _parse_header(line, path)
            digest.update(line)
        elif line.startswith(b'{"kind":"trailer"'):
            try:
                parsed = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise PlanError(
                    f"plan line {number}: the trailer is not valid JSON", line=number
                ) from exc
            trailer = parsed if isinstance(parsed, dict) else {}
        else:
            _parse_operation(line, number, count)
            digest.update(line)
            count += 1
    return header, trailer, count, number, digest.hexdigest()


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


# --------------------------------------------------------------------------- --out checks


def check_out(out: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Refuse an ``--out`` that could overwrite anything but a plan (see the module docstring).

    Returns
    -------
    Path
        ``out`` as a path.

    Raises
    ------
    RefusedError
        As the module docstring lists.
    """
    target = Path(out)
    refuse_inside_dataset(target, "a plan")
    if target.is_dir():
        kind = dataset_kind(target)
        if kind is not None:  # its plan.jsonl would be refused as inside it
            beside = target if target.name else Path(os.path.abspath(target))
            example = beside.with_name(beside.name + ".plan.jsonl") if beside.name else None
            raise RefusedError(
                f"{target} is the {kind} dataset, a directory: give --out a file name "
                "outside it" + (f", e.g. {example}" if example else "")
            )
        raise RefusedError(
            f"{target} is a directory: give --out a file name, e.g. {target / 'plan.jsonl'}"
        )
    if not target.exists() and not target.is_symlink():
        return target
    if not _is_plan(target):
        raise RefusedError(
            f"{target} exists and is not a pitrdiff plan; choose another --out "
            "(pitrdiff never overwrites a file it did not write)"
        )
    if not overwrite:
        raise RefusedError(f"{target} already holds a plan; pass --overwrite to replace it")
    left = [p for p in (journal_path(target), conflicts_path(target)) if p.exists()]
    if left:
        raise RefusedError(
            f"{target} was applied: {' and '.join(str(p) for p in left)} record what its "
            "apply wrote; move them away with the plan, or choose another --out"
        )
    return target


def _is_plan(path: Path) -> bool:
    """Whether the file's first line is the header of a pitrdiff plan."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(_HEADER_LIMIT)
    except OSError:
        return False
    try:
        doc = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(doc, dict) and doc.get("kind") == "header" and doc.get("format") == PLAN_FORMAT
    )


# --------------------------------------------------------------------------- temp files


@contextlib.contextmanager
def body_file(out: Path) -> Iterator[tuple[Path, IO[bytes]]]:
    """A hidden, owner-only temporary file beside ``out`` for the operations.

    Named and swept as :func:`pitrdiff.files.temp_path` names them (a killed
    run's are removed by the next plan to the same ``out``); removed on any
    exit, Ctrl-C and SIGTERM included.
    """
    path = temp_path(out)
    try:
        with open(path, "wb", buffering=_COPY_CHUNK) as handle:
            yield path, handle
    except OSError as exc:
        raise storage_error(exc, out, "write") from exc
    finally:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- assembly


def assemble(out: Path, header: dict[str, Any], body: Path, operations: int) -> str:
    """Write header, the body's bytes and the trailer to ``out`` atomically.

    Returns
    -------
    str
        The trailer's checksum: xxh3-128 (hex) of every byte before the trailer.
    """
    digest = xxhash.xxh3_128()
    with atomic_writer(out, "wb") as handle:
        line = orjson.dumps(header, default=str) + b"\n"
        digest.update(line)
        handle.write(line)
        try:
            with open(body, "rb") as source:
                while chunk := source.read(_COPY_CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
        except OSError as exc:
            raise storage_error(exc, body, "read") from exc
        checksum = digest.hexdigest()
        trailer = {"kind": "trailer", "operations": operations, "xxh3_128": checksum}
        handle.write(orjson.dumps(trailer) + b"\n")
    return checksum

"""The export dataset: Parquet parts plus a manifest, its writer and its reader.

Layout of an export directory (see ``docs/FORMAT.md``)::

    manifest.json          format version, table, key schema, source, files, complete
    data/*.parquet         one row per item
    state/                 scan checkpoints while an export is under way

Every part has the columns ``_key`` (canonical key JSON, the join key), ``_item``
(canonical item JSON), ``_hash`` (uint64 xxh3-64 of ``_item``), ``_size``
(item size in bytes) and ``key``, a struct of the key attribute values whose
fields are named exactly as the key attributes (``S``/``N`` as text, ``B`` as
binary). pitrdiff's own column names are fixed, so a key attribute may have
any name DynamoDB allows (``_key``, ``class``, ``KEY`` …). Parts become
visible only when complete and are listed in the manifest with their row
counts and xxh3-128 checksums.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from pitrdiff import __version__
from pitrdiff.codec import Columns, Item, Record, encode_record
from pitrdiff.errors import (
    CodecError,
    ExportError,
    IncompleteExportError,
    InputError,
    RefusedError,
)
from pitrdiff.export.frames import decoded_frame, key_column_value
from pitrdiff.export.keys import (
    COLUMNS,
    HASH_COLUMN,
    ITEM_COLUMN,
    KEY_COLUMN,
    KEY_STRUCT_COLUMN,
    RESERVED_COLUMNS,
    SIZE_COLUMN,
    KeyAttribute,
    KeySchema,
)
from pitrdiff.export.outdir import (
    DATA_DIR,
    EXPORT_DIRS,
    STATE_DIR,
    check_parts,
    export_files,
    foreign_entries,
    refuse_foreign,
    refuse_inside_dataset,
    remove_owned,
)
from pitrdiff.files import make_dir, storage_error, write_bytes, write_json

if TYPE_CHECKING:
    import pandas as pd

    from pitrdiff.aws import AwsConfig

FORMAT_VERSION = 2
"""Version 2: key attribute values in the ``key`` struct column (version 1 had
one top-level column per key attribute, which could collide with ours)."""
MANIFEST_NAME = "manifest.json"
DEFAULT_PART_BYTES = 64 * 1024 * 1024
ROW_GROUP_BYTES = 4 * 1024 * 1024
_READ_CHUNK = 8 * 1024 * 1024


def utc_now() -> str:
    """The current UTC time in ISO 8601 with a ``Z``, to the millisecond."""
    return (
        dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


# --------------------------------------------------------------------------- manifest


def check_format(
    doc: Mapping[str, Any],
    name: str,
    version: int,
    what: str,
    error: Callable[[str], Exception],
) -> None:
    """Refuse a manifest of another format, or of a version this pitrdiff does not read.

    ``what`` is the dataset (``export``, ``diff``) and the command that re-makes
    it; an older version is told to run it again, a newer one to upgrade.
    """
    if doc.get("format") != name:
        raise error(f"manifest.json is not a pitrdiff {what} manifest")
    found = doc.get("format_version")
    if isinstance(found, int) and found < version:
        raise error(
            f"this {what} has format version {found}, written by an older pitrdiff (this one "
            f"reads {version}); re-run `pitrdiff {what}` to {what} again"
        )
    if found != version:
        raise error(
            f"{what} format version {found!r} is not supported (this pitrdiff reads "
            f"{version}); it was written by a newer pitrdiff"
        )


@dataclass(frozen=True)
class FileEntry:
    """One Parquet part listed in a manifest (``path`` is relative to the dataset)."""

    path: str
    rows: int
    bytes: int
    xxh3_128: str

    def to_dict(self) -> dict[str, Any]:
        """Manifest form."""
        return asdict(self)


@dataclass(frozen=True)
class Manifest:
    """The manifest of an export dataset.

    Attributes
    ----------
    table_name
        The table exported.
    key_schema
        Its primary key.
    source
        Where the items came from: ``{"kind": "scan" | "s3-export" | "items", ...}``
        with kind-specific fields (times, segments, export ARN).
    complete
        ``True`` only once every part is written and listed.
    files
        The parts, with row counts and checksums.
    items, bytes
        Item count and total item size (AWS rules) over all parts.
    table
        What ``DescribeTable`` said: ARN, indexes, estimated counts, and
        ``restore`` (source table and restore time) when the table is a PITR restore.
    stats
        Run statistics: elapsed seconds, retries, throttles, consumed capacity.
    ttl
        The table's Time to Live setting as ``DescribeTimeToLive`` reported it
        when exported: ``{"attribute": NAME, "status": "ENABLED" | "ENABLING" |
        "DISABLING" | "DISABLED"}``; ``attribute`` is ``None`` when TTL was
        never set. ``None`` when not known (not asked, or not answerable).
    """

    table_name: str
    key_schema: KeySchema
    source: dict[str, Any]
    complete: bool = False
    files: tuple[FileEntry, ...] = ()
    items: int = 0
    bytes: int = 0
    table: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)
    format_version: int = FORMAT_VERSION
    tool_version: str = __version__
    ttl: dict[str, Any] | None = None

    @property
    def ttl_attribute(self) -> str | None:
        """The TTL attribute when TTL is (being) enabled, else ``None``."""
        ttl = self.ttl or {}
        if ttl.get("status") in ("ENABLED", "ENABLING") and ttl.get("attribute"):
            return str(ttl["attribute"])
        return None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document written as ``manifest.json``."""
        return {
            "format": "pitrdiff-export",
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "table_name": self.table_name,
            "key_schema": self.key_schema.to_list(),
            "table": self.table,
            "source": self.source,
            "complete": self.complete,
            "items": self.items,
            "bytes": self.bytes,
            "files": [f.to_dict() for f in self.files],
            "stats": self.stats,
            "ttl": self.ttl,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Manifest:
        """Parse a ``manifest.json`` document.

        Raises
        ------
        ExportError
            When the document is not an export manifest this version can read.
        """
        check_format(doc, "pitrdiff-export", FORMAT_VERSION, "export", ExportError)
        try:
            return cls(
                table_name=str(doc["table_name"]),
                key_schema=KeySchema.from_list(doc["key_schema"]),
                source=dict(doc.get("source") or {}),
                complete=bool(doc.get("complete")),
                files=tuple(
                    FileEntry(str(f["path"]), int(f["rows"]), int(f["bytes"]), str(f["xxh3_128"]))
                    for f in doc.get("files") or ()
                ),
                items=int(doc.get("items", 0)),
                bytes=int(doc.get("bytes", 0)),
                table=dict(doc.get("table") or {}),
                stats=dict(doc.get("stats") or {}),
                ttl=dict(doc["ttl"]) if isinstance(doc.get("ttl"), Mapping) else None,
                created_at=str(doc.get("created_at", "")),
                format_version=int(doc["format_version"]),
                tool_version=str(doc.get("tool_version", "")),
            )
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise ExportError(f"manifest.json is malformed: {exc}") from exc

    def identity(self) -> dict[str, Any]:
        """What a diff records about this input: table, source, counts, creation time."""
        return {
            "table_name": self.table_name,
            "created_at": self.created_at,
            "source": self.source,
            "items": self.items,
            "bytes": self.bytes,
            "restore": self.table.get("restore"),
            "ttl": self.ttl,
        }


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read the manifest of the export dataset at ``path``.

    Raises
    ------
    ExportError
        When ``path`` is not an export dataset.
    """
    root = Path(path)
    manifest_path = root / MANIFEST_NAME
    if not root.is_dir():
        raise ExportError(f"{root} is not a directory (expected an export dataset)", path=str(root))
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError as exc:
        raise ExportError(
            f"{root} is not an export: it has no {MANIFEST_NAME}", path=str(root)
        ) from exc
    except OSError as exc:
        raise storage_error(exc, manifest_path, "read") from exc
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ExportError(f"{manifest_path} is not valid JSON", path=str(root)) from exc
    if not isinstance(doc, dict):
        raise ExportError(f"{manifest_path} is not a manifest", path=str(root))
    return Manifest.from_dict(doc)


def write_manifest(path: str | os.PathLike[str], manifest: Manifest) -> None:
    """Write ``manifest.json`` into the dataset at ``path`` atomically."""
    write_json(Path(path) / MANIFEST_NAME, manifest.to_dict())


# --------------------------------------------------------------------------- writing


def file_checksum(path: str | os.PathLike[str]) -> str:
    """xxh3-128 of a file's bytes, as hex."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class PartBuffer:
    """Collects records and flushes them as one Parquet part at a size threshold.

    Not thread-safe: give each writing thread its own buffer (a distinct ``prefix``).

    Parameters
    ----------
    root
        The dataset directory.
    key_schema
        The table's key (decides the key columns).
    prefix
        Part file name prefix, unique per buffer (e.g. ``seg-0003``).
    part_bytes
        Flush once the buffered canonical items reach this many bytes.
    first_sequence
        Number of the first part this buffer writes (to continue after a resume).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        key_schema: KeySchema,
        prefix: str,
        *,
        part_bytes: int = DEFAULT_PART_BYTES,
        first_sequence: int = 0,
    ) -> None:
        self.root = Path(root)
        self.key_schema = key_schema
        self.prefix = prefix
        self.part_bytes = part_bytes
        self.sequence = first_sequence
        self._schema = key_schema.arrow_schema()
        self._statistics = [KEY_COLUMN] + [
            f"{KEY_STRUCT_COLUMN}.{f.name}" for f in key_schema.key_struct_type()
        ]
        self._clear()

    def _clear(self) -> None:
        self._keys: list[str] = []
        self._items: list[str] = []
        self._hashes: list[int] = []
        self._sizes: list[int] = []
        self._key_values: tuple[list[str | bytes], ...] = tuple(
            [] for _ in self.key_schema.attributes
        )
        self.buffered_bytes = 0
        self.buffered_items = 0

    def add(self, record: Record) -> None:
        """Buffer one encoded item.

        Key attribute types are checked against the declared ones when the
        part is flushed (:meth:`flush` raises ``CodecError``).
        """
        self._keys.append(record.key)
        self._items.append(record.item)
        self._hashes.append(record.hash)
        self._sizes.append(record.size)
        for column, value in zip(self._key_values, record.key_values, strict=True):
            column.append(value)
        self.buffered_bytes += len(record.item)
        self.buffered_items += 1

    def add_page(self, records: Sequence[Record]) -> int:
        """Buffer a page of encoded items at once; return their item sizes' sum (bytes).

        The same as :meth:`add` for each record, with one list comprehension per
        column instead of a method call per item (0.5-1 µs less per item).
        """
        items = [r.item for r in records]
        sizes = [r.size for r in records]
        self._keys += [r.key for r in records]
        self._items += items
        self._hashes += [r.hash for r in records]
        self._sizes += sizes
        for index, column in enumerate(self._key_values):
            column += [r.key_values[index] for r in records]
        self.buffered_bytes += sum(map(len, items))
        self.buffered_items += len(items)
        return sum(sizes)

    @property
    def columns(self) -> Columns:
        """The column lists, for the C encoders to append to (then :meth:`took`).

        :func:`~pitrdiff.codec.encode_lines` and :func:`~pitrdiff.codec.encode_items`.
        """
        return (self._keys, self._items, self._hashes, self._sizes, self._key_values)

    def took(self, count: int, characters: int) -> None:
        """Count ``count`` records (``characters`` of item JSON) appended to :attr:`columns`."""
        self.buffered_items += count
        self.buffered_bytes += characters

    @property
    def full(self) -> bool:
        """Whether the buffer has reached its flush threshold."""
        return self.buffered_bytes >= self.part_bytes

    @property
    def room(self) -> int:
        """Characters of item JSON the buffer takes before it is full."""
        return self.part_bytes - self.buffered_bytes

    def flush(self) -> FileEntry | None:
        """Write the buffered rows as one part (atomically); ``None`` when empty."""
        if not self.buffered_items:
            return None
        keys = pa.array(self._keys, pa.string())
        self.key_schema.check_key_column(keys)
        struct = self.key_schema.key_struct_type()
        try:
            key = pa.StructArray.from_arrays(
                [
                    pa.array(values, f.type)
                    for f, values in zip(struct, self._key_values, strict=True)
                ],
                fields=list(struct),
            )
            table = pa.Table.from_arrays(
                [
                    keys,
                    pa.array(self._items, pa.string()),
                    pa.array(self._hashes, pa.uint64()),
                    pa.array(self._sizes, pa.int32()),
                    key,
                ],
                schema=self._schema,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise CodecError(
                "key attribute values do not match the table's key types "
                f"({self.key_schema.describe()}): {exc}"
            ) from exc
        sink = pa.BufferOutputStream()
        # Row groups of about ROW_GROUP_BYTES of items: a reader (DuckDB, Spark)
        # decompresses a whole column chunk at a time, so their size bounds its memory.
        rows_per_group = max(
            1, (self.buffered_items * ROW_GROUP_BYTES) // max(1, self.buffered_bytes)
        )
        # Dictionary encoding is off (keys, items and hashes are all distinct, so
        # Parquet writers try a dictionary, find it too large and fall back, which
        # costs CPU and bytes) and statistics are kept for the key columns only
        # (readers prune on them; min/max of items and hashes are useless):
        # bench_export_stages.py measured 0.1-0.2 µs less per item and 3-8% smaller parts.
        pq.write_table(
            table,
            sink,
            compression="zstd",
            row_group_size=min(128 * 1024, rows_per_group),
            use_dictionary=False,
            write_statistics=self._statistics,
        )
        data = memoryview(sink.getvalue())  # Arrow's buffer as it is: no copy
        relative = f"{DATA_DIR}/{self.prefix}-{self.sequence:06d}.parquet"
        write_bytes(self.root / relative, data)
        entry = FileEntry(relative, self.buffered_items, len(data), xxhash.xxh3_128_hexdigest(data))
        self.sequence += 1
        self._clear()
        return entry


def prepare_directory(
    out: str | os.PathLike[str], *, overwrite: bool, check_only: bool = False
) -> Path:
    """Make ``out`` ready for a fresh export.

    Refused (:class:`RefusedError`, nothing touched): ``out`` inside another
    export or diff dataset (:func:`pitrdiff.export.outdir.refuse_inside_dataset`);
    a complete export there unless ``overwrite``; an existing directory that is
    not an export and not empty; an export directory that also holds files
    pitrdiff did not write (anything but ``manifest.json``, its parts under
    ``data/``, scan checkpoints under ``state/`` and pitrdiff's temporary
    files): ``--overwrite`` removes only what pitrdiff wrote, never the rest.
    With ``check_only`` nothing is touched: the refusals are checked (before a
    slow or paid step) and that is all.

    Raises
    ------
    RefusedError
        As above.
    """
    root = Path(out)
    refuse_inside_dataset(root, "an export")
    if root.exists() and not root.is_dir():
        raise RefusedError(f"{root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not _empty_skeleton(root):
        if not (root / MANIFEST_NAME).exists():
            raise RefusedError(f"{root} is not empty and is not an export; choose another --out")
        try:
            existing = read_manifest(root)
        except ExportError as exc:
            if not (overwrite and _older_export(root)):
                raise RefusedError(
                    f"{root} holds an unreadable export ({exc}); remove it first"
                ) from exc
            existing = None  # an export of an older format: replaced as asked
        if existing is not None and existing.complete and not overwrite:
            raise RefusedError(
                f"{root} already holds a complete export of {existing.table_name!r}; "
                "pass --overwrite to replace it"
            )
        owned = export_files(existing.files if existing is not None else ())
        refuse_foreign(root, foreign_entries(root, owned, EXPORT_DIRS), "export")
        if check_only:
            return root
        remove_owned(root, owned, EXPORT_DIRS)
    if check_only:
        return root
    make_dir(root)
    make_dir(root / DATA_DIR)
    return root


def _older_export(root: Path) -> bool:
    """Whether ``root`` holds an export manifest of an older format version."""
    try:
        doc = orjson.loads((root / MANIFEST_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    version = doc.get("format_version") if isinstance(doc, dict) else None
    return (
        isinstance(doc, dict)
        and doc.get("format") == "pitrdiff-export"
        and isinstance(version, int)
        and version < FORMAT_VERSION
    )


def _empty_skeleton(root: Path) -> bool:
    """Whether ``root`` holds only empty ``data``/``state`` directories.

    That is what an export that failed before its first manifest (a full disk)
    leaves behind; it must not block running the same command again.
    """
    for child in root.iterdir():
        if child.name not in (DATA_DIR, STATE_DIR) or not child.is_dir() or any(child.iterdir()):
            return False
    return True


def _infer_key_types(key_schema: KeySchema, item: Item) -> KeySchema:
    attributes = []
    for a in key_schema.attributes:
        tag = None
        typed = item.get(a.name)
        if isinstance(typed, Mapping) and len(typed) == 1:
            tag = next(iter(typed))
        attributes.append(replace(a, attribute_type=a.attribute_type or tag))
    return KeySchema(tuple(attributes))


def write_export(
    items: Iterable[Mapping[str, Any]],
    out: str | os.PathLike[str],
    *,
    table_name: str,
    key_schema: Sequence[Mapping[str, str]] | KeySchema,
    attribute_definitions: Sequence[Mapping[str, str]] | None = None,
    source: Mapping[str, Any] | None = None,
    table: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    part_bytes: int = DEFAULT_PART_BYTES,
    ttl: Mapping[str, Any] | None = None,
) -> Manifest:
    """Build an export dataset from any iterable of low-level DynamoDB-JSON items.

    This is what native-export ingestion, tests and benchmarks use; a scan
    export produces the same layout.

    Parameters
    ----------
    items
        Items in low-level DynamoDB JSON (binary as base64 text or bytes).
    out
        The dataset directory to create.
    table_name
        The table the items belong to.
    key_schema
        boto3's ``KeySchema`` form, e.g. ``[{"AttributeName": "pk", "KeyType": "HASH"}]``.
    attribute_definitions
        boto3's ``AttributeDefinitions`` for the key attributes; inferred from
        the first item when omitted.
    source
        What the manifest records as the source; ``{"kind": "items"}`` by default.
    table
        Extra table facts for the manifest (ARN, indexes, ``restore``).
    overwrite
        Replace a complete export already at ``out``.
    part_bytes
        Flush a Parquet part at this many bytes of canonical items.
    ttl
        The table's TTL setting to record (:attr:`Manifest.ttl`), e.g.
        ``{"attribute": "expires", "status": "ENABLED"}``.

    Returns
    -------
    Manifest
        The manifest written, with ``complete=True``.

    Raises
    ------
    CodecError
        When an item is not valid DynamoDB data, lacks a key attribute, or
        has a key attribute of another type than declared (or than the first
        item's, when not declared); nothing is marked complete.
    RefusedError
        When ``out`` holds a complete export and ``overwrite`` is false.
    """
    schema = (
        key_schema
        if isinstance(key_schema, KeySchema)
        else KeySchema.from_boto(key_schema, attribute_definitions)
    )
    started = utc_now()
    root = prepare_directory(out, overwrite=overwrite)
    base = Manifest(
        table_name=table_name,
        key_schema=schema,
        source={"kind": "items", **(source or {}), "started_at": started},
        table=dict(table or {}),
        ttl=dict(ttl) if ttl is not None else None,
    )
    write_manifest(root, base)
    buffer: PartBuffer | None = None
    files: list[FileEntry] = []
    count = 0
    total_size = 0
    for position, item in enumerate(items):
        if buffer is None:
            schema = _infer_key_types(schema, dict(item))
            buffer = PartBuffer(root, schema, "part", part_bytes=part_bytes)
        try:
            record = encode_record(item, schema.names)
        except CodecError as exc:
            raise CodecError(f"item {position}: {exc}") from exc
        buffer.add(record)
        count += 1
        total_size += record.size
        if buffer.full:
            entry = buffer.flush()
            if entry:
                files.append(entry)
    if buffer is not None:
        entry = buffer.flush()
        if entry:
            files.append(entry)
    manifest = replace(
        base,
        key_schema=schema,
        source={**base.source, "finished_at": utc_now()},
        complete=True,
        files=tuple(files),
        items=count,
        bytes=total_size,
    )
    write_manifest(root, manifest)
    return manifest


# --------------------------------------------------------------------------- reading


class Export:
    """An export dataset on disk, opened for reading.

    Use :func:`load_export` to open one.

    Attributes
    ----------
    path
        The dataset directory.
    manifest
        Its manifest.
    """

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest
        self._verified = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        m = self.manifest
        state = "complete" if m.complete else "INCOMPLETE"
        return (
            f"<Export {m.table_name!r} {m.items:,} items, {len(m.files)} parts, {state} "
            f"at {self.path}>"
        )

    @property
    def key_schema(self) -> KeySchema:
        """The table's primary key."""
        return self.manifest.key_schema

    @property
    def table_name(self) -> str:
        """The exported table's name."""
        return self.manifest.table_name

    @property
    def parquet_files(self) -> list[str]:
        """Absolute paths of the parts, in manifest order."""
        return [str(self.path / f.path) for f in self.manifest.files]

    def verify(self) -> None:
        """Check every part against the manifest: present, same size, same checksum.

        Raises
        ------
        ExportError
            Naming the first part that is missing, truncated or corrupt.
        """
        with self._lock:
            if self._verified:
                return
            for entry in self.manifest.files:
                part = self.path / entry.path
                try:
                    size = part.stat().st_size
                except FileNotFoundError as exc:
                    raise ExportError(
                        f"export {self.path}: part {entry.path} is missing", path=str(self.path)
                    ) from exc
                if size != entry.bytes:
                    raise ExportError(
                        f"export {self.path}: part {entry.path} is {size} bytes, the manifest "
                        f"says {entry.bytes} (truncated or replaced)",
                        path=str(self.path),
                    )
                try:
                    checksum = file_checksum(part)
                except OSError as exc:
                    raise storage_error(exc, part, "read") from exc
                if checksum != entry.xxh3_128:
                    raise ExportError(
                        f"export {self.path}: part {entry.path} does not match its checksum "
                        "in the manifest (corrupt or edited)",
                        path=str(self.path),
                    )
            self._verified = True

    def arrow(self, columns: Sequence[str] | None = None) -> pa.Table:
        """Read the whole dataset (or some columns) as one Arrow table."""
        if not self.manifest.files:
            schema = self.key_schema.arrow_schema()
            if columns is not None:
                schema = pa.schema([schema.field(c) for c in columns])
            return schema.empty_table()
        return pq.ParquetDataset(self.parquet_files).read(
            columns=list(columns) if columns else None
        )

    def batches(
        self, columns: Sequence[str] | None = None, batch_size: int = 65536
    ) -> Iterator[pa.RecordBatch]:
        """Stream the dataset as Arrow record batches (bounded memory)."""
        for part in self.parquet_files:
            yield from pq.ParquetFile(part).iter_batches(
                batch_size=batch_size, columns=list(columns) if columns else None
            )

    def items(self) -> Iterator[Item]:
        """Stream every item in canonical wire form (bounded memory)."""
        for batch in self.batches([ITEM_COLUMN]):
            for text in batch.column(0).to_pylist():
                yield orjson.loads(text)

    def to_pandas(self, *, decode: bool = True) -> pd.DataFrame:
        """The dataset as a DataFrame, one row per item.

        Parameters
        ----------
        decode
            ``True``: key attributes first (``N`` keys as ``Decimal``), then one
            column per other top-level attribute decoded to Python values
            (``Decimal``, ``bytes``, ``set``, ``dict``, ``list``, ``None``; absent
            attributes are ``None`` too), then the raw columns ``_key``,
            ``_item``, ``_hash``, ``_size``. ``False``: the raw columns only, as
            stored (see :meth:`arrow` for an Arrow table).

        Returns
        -------
        pandas.DataFrame
            The same layout as :meth:`pitrdiff.diff.Diff.deleted` and friends.
        """
        frame: pd.DataFrame = self.arrow().to_pandas()
        if not decode:
            return frame
        return decoded_frame(frame, self.key_schema, ITEM_COLUMN)


def load_export(
    path: str | os.PathLike[str],
    *,
    require_complete: bool = True,
    verify: bool = False,
    s3_endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
) -> Export:
    """Open the export dataset at ``path``.

    Parameters
    ----------
    path
        The dataset directory, or ``s3://bucket/prefix``: its manifest must be
        complete, and its parts are copied into a private temporary directory,
        each checked against the manifest (size, xxh3-128) as it streams; the
        copy is removed when the returned export is (:mod:`pitrdiff.export.remote`).
    require_complete
        Refuse an export whose manifest does not say ``complete`` (always, on S3).
    verify
        Check every part's size and checksum now (see :meth:`Export.verify`).
    s3_endpoint_url
        An S3-compatible endpoint for ``s3://`` (``AWS_ENDPOINT_URL_S3`` works too).
    aws
        Profile and region for S3.

    Raises
    ------
    ExportError
        When ``path`` is not an export dataset, or a part does not verify.
    IncompleteExportError
        When the export is not complete and ``require_complete`` is true, or a
        complete one's manifest disagrees with its parts (:func:`check_parts`).
    """
    from pitrdiff.export.remote import is_s3_url, stage_export

    if is_s3_url(path):
        return stage_export(str(path), endpoint_url=s3_endpoint_url, aws=aws)
    root = Path(path)
    manifest = read_manifest(root)
    if require_complete and not manifest.complete:
        raise IncompleteExportError(
            f"export {root} is not complete (interrupted?); re-run the export to finish it",
            path=str(root),
        )
    if manifest.complete:
        check_parts(root, manifest)
    export = Export(root, manifest)
    if verify:
        export.verify()
    return export


def remove_unlisted_parts(root: str | os.PathLike[str], keep: Iterable[str]) -> list[str]:
    """Delete parts under ``data/`` not named in ``keep`` (left by a crash); return them."""
    wanted = set(keep)
    removed = []
    data = Path(root) / DATA_DIR
    if data.is_dir():
        for part in sorted(data.iterdir()):
            relative = f"{DATA_DIR}/{part.name}"
            if relative not in wanted:
                part.unlink()
                removed.append(relative)
    return removed


__all__ = [
    "COLUMNS",
    "DATA_DIR",
    "FORMAT_VERSION",
    "HASH_COLUMN",
    "ITEM_COLUMN",
    "KEY_COLUMN",
    "KEY_STRUCT_COLUMN",
    "MANIFEST_NAME",
    "RESERVED_COLUMNS",
    "SIZE_COLUMN",
    "STATE_DIR",
    "Export",
    "FileEntry",
    "KeyAttribute",
    "KeySchema",
    "Manifest",
    "PartBuffer",
    "check_parts",
    "decoded_frame",
    "file_checksum",
    "key_column_value",
    "load_export",
    "prepare_directory",
    "read_manifest",
    "remove_unlisted_parts",
    "utc_now",
    "write_export",
    "write_manifest",
]

"""The notebook face of a diff: :func:`load_diff`, :class:`Diff` and :class:`Explanation`.

A :class:`Diff` opens a diff dataset on disk. Its class tables come out as
pandas DataFrames (decoded to Python values) or Arrow tables; :meth:`Diff.sql`
answers DuckDB SQL over views of the class files and the input exports;
:meth:`Diff.explain` shows one item's class and attribute-level changes.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import pyarrow as pa
import pyarrow.parquet as pq

from pitrdiff import codec
from pitrdiff.diff.changes import Change
from pitrdiff.diff.manifest import DiffManifest, check_figures, read_diff_manifest
from pitrdiff.diff.report import DiffSummary
from pitrdiff.diff.schema import CLASSES, literal
from pitrdiff.diff.sql import DEFAULT_THREADS, connect
from pitrdiff.errors import DiffError, ExportError, InputError, PitrdiffError
from pitrdiff.export.dataset import (
    KEY_COLUMN,
    Export,
    KeySchema,
    decoded_frame,
    file_checksum,
    load_export,
)
from pitrdiff.export.remote import is_s3_url

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from pitrdiff.aws import AwsConfig


def load_diff(
    path: str | os.PathLike[str],
    *,
    verify: bool = True,
    s3_endpoint_url: str | None = None,
    aws: AwsConfig | None = None,
) -> Diff:
    """Open the diff dataset at ``path``.

    Parameters
    ----------
    path
        The diff directory (written by :func:`diff_exports` or ``pitrdiff diff``),
        or ``s3://bucket/prefix``: read from a private local copy, every class
        file checked against the manifest while copied (whatever ``verify``
        says), removed when the diff is (:mod:`pitrdiff.diff.remote`).
    verify
        Check each class file's size and xxh3-128 checksum against the manifest,
        and its rows (the Parquet footer's) against the manifest's counts.
        Either way the manifest's figures must agree with one another
        (:func:`~pitrdiff.diff.manifest.check_figures`).
    s3_endpoint_url
        An S3-compatible endpoint for ``s3://`` (``AWS_ENDPOINT_URL_S3`` works too).
    aws
        Profile and region for S3.

    Raises
    ------
    DiffError
        When ``path`` is not a complete, intact diff dataset.
    """
    if is_s3_url(path):
        from pitrdiff.diff.remote import open_s3_diff

        return open_s3_diff(str(path), endpoint_url=s3_endpoint_url, aws=aws)
    root = Path(path)
    manifest = read_diff_manifest(root)
    if not manifest.complete:
        raise DiffError(f"diff {root} is not complete (interrupted?); re-run `pitrdiff diff`")
    if len(manifest.files) != len(CLASSES):
        raise DiffError(f"diff {root}: the manifest does not list every class file")
    check_figures(manifest, root)  # no I/O: the manifest's own figures agree
    diff = Diff(root, manifest)
    if verify:
        diff.verify()
    return diff


@dataclass(frozen=True)
class Explanation:
    """One item's place in a diff: its class and attribute-level changes.

    Attributes
    ----------
    key
        The canonical key JSON.
    kind
        ``deleted``, ``changed``, ``added``, ``expired``; for a key not in the diff,
        ``unchanged`` (in both tables, same content) or ``absent`` (in
        neither), told from the live export when it is still present, else
        ``unchanged``.
    changes
        The attribute-level changes (changed items only).
    signature
        The change signature (changed items only).
    live_item, restored_item
        The two versions as canonical JSON, ``None`` where absent.
    """

    key: str
    kind: str
    changes: tuple[Change, ...] = ()
    signature: str = ""
    live_item: str | None = None
    restored_item: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "key": self.key,
            "class": self.kind,
            "signature": self.signature,
            "changes": [c.to_dict() for c in self.changes],
            "live_item": self.live_item,
            "restored_item": self.restored_item,
        }

    def deepdiff(self) -> Any:
        """The DeepDiff view of the two versions decoded to Python values (slow; one item)."""
        from deepdiff import DeepDiff

        restored = codec.item_to_python(codec.loads(self.restored_item or "{}"))
        live = codec.item_to_python(codec.loads(self.live_item or "{}"))
        return DeepDiff(restored, live, ignore_order=False)

    def __str__(self) -> str:
        lines = [f"{self.kind}: {self.key}"]
        if self.kind == "changed":
            width = max((len(c.path) for c in self.changes), default=4)
            for c in self.changes:
                lines.append(
                    f"  {c.path:<{width}}  {c.kind:<12}  {c.old or '-'}  ->  {c.new or '-'}"
                )
        elif self.kind in ("deleted", "expired"):
            lines.append(f"  restored: {self.restored_item}")
        elif self.kind == "added":
            lines.append(f"  live: {self.live_item}")
        elif self.kind == "unchanged" and self.live_item:
            lines.append(f"  both: {self.live_item}")
        elif self.kind == "absent":
            lines.append("  in neither table")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        head = f"<p><b>{e(self.kind)}</b> <code>{e(self.key)}</code></p>"
        if self.kind != "changed":
            item = self.live_item if self.kind in ("added", "unchanged") else self.restored_item
            return head + (f"<pre>{e(item)}</pre>" if item else "")
        rows = "".join(
            f"<tr><td><code>{e(c.path)}</code></td><td>{e(c.kind)}</td>"
            f"<td><code>{e(c.old or '')}</code></td><td><code>{e(c.new or '')}</code></td></tr>"
            for c in self.changes
        )
        return (
            head
            + "<table><thead><tr><th>path</th><th>change</th><th>restored (old)</th>"
            + f"<th>live (new)</th></tr></thead><tbody>{rows}</tbody></table>"
        )


class Diff:
    """A diff dataset on disk, opened for reading (use :func:`load_diff`).

    Attributes
    ----------
    path
        The diff directory.
    manifest
        Its manifest.
    """

    def __init__(self, path: Path, manifest: DiffManifest) -> None:
        self.path = path
        self.manifest = manifest

    def __repr__(self) -> str:
        return f"<Diff {self.manifest.table_name!r}: {self.summary.headline()} at {self.path}>"

    @property
    def summary(self) -> DiffSummary:
        """What the diff found (counts, bytes, signatures, partitions, samples)."""
        return DiffSummary.from_dict(self.manifest.summary)

    @property
    def key_schema(self) -> KeySchema:
        """The table's primary key."""
        return self.manifest.key_schema

    @property
    def same(self) -> bool:
        """``True`` when the two tables hold the same items."""
        return self.summary.same

    def file_path(self, name: str) -> Path:
        """The Parquet file of one class (``deleted``, ``changed``, ``added``)."""
        return self.path / self.manifest.file(name).path

    def verify(self) -> None:
        """Check each class file's size, checksum and rows against the manifest.

        The rows are the Parquet footer's (a few KB read per file, after the
        checksum has read the whole file); the manifest's counts agree with
        ``files.<class>.rows`` (:func:`~pitrdiff.diff.manifest.check_figures`),
        so an edited count is refused too.

        Raises
        ------
        DiffError
            Naming the first file that is missing, truncated, corrupt, or
            whose rows differ from the manifest's.
        """
        for entry in self.manifest.files:
            part = self.path / entry.path
            try:
                size = part.stat().st_size
                if size != entry.bytes or file_checksum(part) != entry.xxh3_128:
                    raise DiffError(
                        f"diff {self.path}: {entry.path} does not match the manifest "
                        "(truncated, corrupt or edited)"
                    )
                rows = pq.read_metadata(part).num_rows
            except FileNotFoundError as exc:
                raise DiffError(f"diff {self.path}: {entry.path} is missing") from exc
            except (OSError, pa.ArrowException) as exc:
                raise DiffError(
                    f"diff {self.path}: {entry.path} does not match the manifest "
                    f"(not a Parquet file: {exc})"
                ) from exc
            if rows != entry.rows:
                raise DiffError(
                    f"diff {self.path}: {entry.path} does not match the manifest "
                    f"(edited): it holds {rows:,} rows, the manifest says {entry.rows:,}"
                )

    # tables -------------------------------------------------------------------
    def arrow(self, name: str) -> pa.Table:
        """The raw rows of one class as an Arrow table (``docs/FORMAT.md`` columns)."""
        if name not in CLASSES:
            raise InputError(f"unknown class {name!r}; choose {', '.join(CLASSES)}")
        return pq.read_table(self.file_path(name))

    # Typed for notebooks: a DataFrame unless arrow=True.
    @overload
    def deleted(self, *, arrow: Literal[False] = False, decode: bool = True) -> pd.DataFrame: ...
    @overload
    def deleted(self, *, arrow: bool, decode: bool = True) -> pd.DataFrame | pa.Table: ...
    def deleted(self, *, arrow: bool = False, decode: bool = True) -> pd.DataFrame | pa.Table:
        """Items in restored, not in live (lost since T).

        Parameters
        ----------
        arrow
            Return the raw Arrow table instead of a DataFrame.
        decode
            Add one column per top-level attribute, decoded to Python values
            (``Decimal``, ``bytes``, ``set``, ``dict``, ``list``).

        Returns
        -------
        pandas.DataFrame or pyarrow.Table
            Key attributes first (decoded, named as the attributes; with the
            suffix ``_attr`` when a name is one of the raw columns), then the
            decoded attributes, then the raw columns (``_key``,
            ``restored_item`` …; the ``key`` struct is shown as the key columns).
        """
        return self._frame("deleted", "restored_item", arrow=arrow, decode=decode)

    @overload
    def expired(self, *, arrow: Literal[False] = False, decode: bool = True) -> pd.DataFrame: ...
    @overload
    def expired(self, *, arrow: bool, decode: bool = True) -> pd.DataFrame | pa.Table: ...
    def expired(self, *, arrow: bool = False, decode: bool = True) -> pd.DataFrame | pa.Table:
        """Items in restored, not in live, that DynamoDB's TTL removed (not lost).

        Their TTL attribute (a Number of epoch seconds) had passed by the live
        export's time; plans leave them out unless asked. Columns as
        :meth:`deleted`.
        """
        return self._frame("expired", "restored_item", arrow=arrow, decode=decode)

    @overload
    def added(self, *, arrow: Literal[False] = False, decode: bool = True) -> pd.DataFrame: ...
    @overload
    def added(self, *, arrow: bool, decode: bool = True) -> pd.DataFrame | pa.Table: ...
    def added(self, *, arrow: bool = False, decode: bool = True) -> pd.DataFrame | pa.Table:
        """Items in live, not in restored (created since T); see :meth:`deleted`."""
        return self._frame("added", "live_item", arrow=arrow, decode=decode)

    @overload
    def changed(
        self, *, arrow: Literal[False] = False, decode: bool = True, side: str = "restored"
    ) -> pd.DataFrame: ...
    @overload
    def changed(
        self, *, arrow: bool, decode: bool = True, side: str = "restored"
    ) -> pd.DataFrame | pa.Table: ...
    def changed(
        self, *, arrow: bool = False, decode: bool = True, side: str = "restored"
    ) -> pd.DataFrame | pa.Table:
        """Items in both with different content.

        Parameters
        ----------
        arrow
            Return the raw Arrow table instead of a DataFrame.
        decode
            Add one column per top-level attribute of the ``side`` version, decoded.
        side
            Which version the decoded columns show: ``restored`` (at T, what a
            plan would put back) or ``live``.

        Returns
        -------
        pandas.DataFrame or pyarrow.Table
            Key attributes, ``signature``, ``changes`` (list of dicts with
            ``path``, ``kind``, ``old``, ``new``), the decoded attributes, then
            the raw columns.
        """
        if side not in ("restored", "live"):
            raise InputError("side is 'restored' or 'live'")
        return self._frame("changed", f"{side}_item", arrow=arrow, decode=decode)

    def _frame(
        self, name: str, item_column: str, *, arrow: bool, decode: bool
    ) -> pd.DataFrame | pa.Table:
        table = self.arrow(name)
        if arrow:
            return table
        lead = ("signature", "changes") if name == "changed" else ()
        return decoded_frame(
            table.to_pandas(), self.key_schema, item_column, lead=lead, decode=decode
        )

    # SQL ----------------------------------------------------------------------
    def connect(
        self, *, memory_limit: str | None = None, threads: int = DEFAULT_THREADS
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection over this diff, for queries :meth:`sql` does not cover.

        It has views ``deleted``, ``changed``, ``added`` (and ``live``,
        ``restored`` when the input exports are still at their paths) and the
        attribute macros (see :meth:`sql`). Close it when done.
        """
        con = connect(memory_limit=memory_limit, threads=threads)
        for name in CLASSES:
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet("
                f"{literal(str(self.file_path(name)))})"
            )
        for side in ("live", "restored"):
            export = self._input_export(side)
            if export is not None and export.manifest.files:
                files = ", ".join(literal(p) for p in export.parquet_files)
                con.execute(f"CREATE VIEW {side} AS SELECT * FROM read_parquet([{files}])")
            elif export is not None:
                con.register(f"{side}_empty", export.key_schema.arrow_schema().empty_table())
                con.execute(f"CREATE VIEW {side} AS SELECT * FROM {side}_empty")
        return con

    def _input_export(self, side: str) -> Export | None:
        info = self.manifest.live if side == "live" else self.manifest.restored
        where = info.get("path")
        if not where:
            return None
        if is_s3_url(where):  # copied once per diff object, with the diff's S3 endpoint
            return self._s3_input(side, str(where))
        try:
            return load_export(where)
        except ExportError:
            pass
        # Moved or shipped elsewhere with its exports (``sample_data/``, a copied
        # workdir): try beside the diff, and accept only the very export recorded.
        for candidate in (self.path / where, self.path.parent / Path(where).name):
            try:
                export = load_export(candidate)
            except ExportError:
                continue
            recorded = (info.get("table_name"), info.get("created_at"))
            if (export.table_name, export.manifest.created_at) == recorded:
                return export
        return None

    def _s3_input(self, side: str, url: str) -> Export | None:
        """An input export on S3 (``None`` when it cannot be read, as a moved one)."""
        cache: dict[str, Export | None] = self.__dict__.setdefault("_s3_inputs", {})
        if side not in cache:
            try:
                cache[side] = load_export(
                    url,
                    s3_endpoint_url=getattr(self, "s3_endpoint_url", None),
                    aws=getattr(self, "aws", None),
                )
            except PitrdiffError:
                cache[side] = None
        return cache[side]

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run DuckDB SQL over the diff and return a DataFrame.

        Views: ``deleted``, ``changed``, ``added``, ``expired`` (the class files,
        columns as in ``docs/FORMAT.md``), and ``live`` / ``restored`` (the input
        exports, when still present at the paths the manifest records). Key
        values are fields of the ``key`` struct: ``key.pk``, or ``key."sort key"``;
        when two key attributes differ only in letter case (SQL ignores case),
        ``attr_text(_key, 'PK')`` reads either exactly. Items are canonical
        DynamoDB JSON strings; reach attributes with DuckDB's JSON functions,
        e.g. ``json_extract_string(restored_item, '$.tenant.S')``, or the macros:

        - ``attr(item, 'name')``: the typed value as JSON (``{"N":"1.5"}``);
        - ``attr_type(item, 'name')``: its type tag (``'N'``);
        - ``attr_text(item, 'name')``: an S / N / B / BOOL value as exact text;
        - ``attr_num(item, 'name')``: an N value as DOUBLE (approximate: for
          filters and plots, not for writing back).

        ``unnest(changes)`` turns the changes of changed items into rows with
        ``path``, ``kind``, ``old``, ``new``.

        Examples
        --------
        >>> d.sql("SELECT attr_text(restored_item, 'tenant') AS tenant, count(*) AS n "
        ...       "FROM deleted GROUP BY ALL ORDER BY n DESC")  # doctest: +SKIP

        Raises
        ------
        DiffError
            When the query fails (a view ``live`` / ``restored`` is missing when
            the input export has moved).
        """
        import duckdb

        con = self.connect()
        try:
            try:
                frame: pd.DataFrame = con.execute(query, params or []).df()
            except duckdb.CatalogException as exc:
                missing = [
                    side
                    for side in ("live", "restored")
                    if self._input_export(side) is None and side in query
                ]
                if missing:
                    raise DiffError(
                        f"the {' and '.join(missing)} export is no longer at the path the diff "
                        f"recorded, so its view is absent: {exc}"
                    ) from exc
                raise DiffError(f"SQL error: {exc}") from exc
            except duckdb.Error as exc:
                raise DiffError(f"SQL error: {exc}") from exc
        finally:
            con.close()
        return frame

    # one item -----------------------------------------------------------------
    def key_of(self, key: Any) -> str:
        """The canonical key JSON of ``key``.

        ``key`` may be a canonical key string (``'{"pk":{"S":"a"}}'``), a
        mapping of Python values (``{"pk": "a", "sk": 3}``), a wire-form key
        (``{"pk": {"S": "a"}}``), or, for a table with only a partition key,
        the bare partition-key value.
        """
        names = self.key_schema.names
        if isinstance(key, str) and key.startswith("{"):
            return codec.canonical_key(codec.loads(key), names)
        if not isinstance(key, Mapping):
            if len(names) != 1:
                raise InputError(f"a key of this table has {len(names)} attributes: {names}")
            key = {names[0]: key}
        wire: dict[str, Any] = {}
        for name, value in key.items():
            typed = value if _is_typed(value) else codec.from_python(value)
            attribute = next((a for a in self.key_schema.attributes if a.name == name), None)
            if attribute and attribute.attribute_type == "N" and "S" in typed:
                typed = {"N": typed["S"]}
            wire[name] = typed
        return codec.canonical_key(wire, names)

    def explain(self, key: Any) -> Explanation:
        """Show one item's class and attribute-level changes.

        Parameters
        ----------
        key
            The item's key (see :meth:`key_of` for the accepted forms).

        Returns
        -------
        Explanation
            Printable, and rendered as a table in notebooks; ``.deepdiff()``
            gives deepdiff's view of the two versions.
        """
        canonical = self.key_of(key)
        for name in CLASSES:
            table = pq.read_table(self.file_path(name), filters=[(KEY_COLUMN, "=", canonical)])
            if table.num_rows:
                row = table.slice(0, 1).to_pylist()[0]
                if name == "changed":
                    return Explanation(
                        canonical,
                        name,
                        tuple(Change(**c) for c in row["changes"]),
                        row["signature"],
                        row["live_item"],
                        row["restored_item"],
                    )
                return Explanation(
                    canonical,
                    name,
                    live_item=row.get("live_item"),
                    restored_item=row.get("restored_item"),
                )
        live = self._input_export("live")
        if live is not None and live.manifest.files:
            found = pq.ParquetDataset(
                live.parquet_files, filters=[(KEY_COLUMN, "=", canonical)]
            ).read(columns=[KEY_COLUMN, "_item"])
            if not found.num_rows:
                return Explanation(canonical, "absent")
            item = found.column("_item")[0].as_py()
            return Explanation(canonical, "unchanged", live_item=item, restored_item=item)
        if live is not None:
            return Explanation(canonical, "absent")
        return Explanation(canonical, "unchanged")

    def _repr_html_(self) -> str:
        s = self.summary
        e = html.escape
        rows = "".join(
            f"<tr><td>{name}</td><td style='text-align:right'>{count:,}</td></tr>"
            for name, count in (
                ("deleted", s.deleted),
                ("changed", s.changed),
                ("added", s.added),
                ("unchanged", s.unchanged),
                ("expired", s.expired),
            )
            if name != "expired" or s.facts.ttl_attribute or count
        )
        sigs = "".join(
            f"<tr><td style='text-align:right'>{x.items:,}</td><td><code>{e(x.signature)}</code>"
            "</td></tr>"
            for x in s.top_signatures
        )
        out = (
            f"<p><b>Diff of {e(s.table_name)}</b> ({e(str(self.path))})</p>"
            f"<table><thead><tr><th>class</th><th>items</th></tr></thead><tbody>{rows}"
            "</tbody></table>"
        )
        if sigs:
            out += (
                "<p>Change signatures</p><table><thead><tr><th>items</th><th>changed paths"
                f"</th></tr></thead><tbody>{sigs}</tbody></table>"
            )
        return out


def _is_typed(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in codec.TYPE_TAGS

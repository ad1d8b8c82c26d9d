"""The diff dataset's manifest (``manifest.json``) and its directory.

``docs/FORMAT.md`` §3: the manifest records the inputs, counts and bytes per
class, the class files with checksums, timings and the summary; ``complete``
is written last. :func:`prepare_out` makes a directory ready for a diff and
refuses to write over anything else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pitrdiff import __version__
from pitrdiff.diff.schema import CLASSES, FILE_NAMES
from pitrdiff.errors import DiffError, InputError, RefusedError
from pitrdiff.export.dataset import FileEntry, KeySchema, check_format, utc_now
from pitrdiff.export.outdir import (
    foreign_entries,
    is_temp,
    refuse_foreign,
    refuse_inside_dataset,
    remove_owned,
)
from pitrdiff.files import make_dir, storage_error

DIFF_FORMAT = "pitrdiff-diff"
DIFF_FORMAT_VERSION = 2
"""Version 2: the ``key`` struct column and the ``expired`` class (version 1 had one
top-level column per key attribute, which could collide with pitrdiff's own)."""
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.md"
HTML_REPORT_NAME = "report.html"


@dataclass(frozen=True)
class DiffManifest:
    """The manifest of a diff dataset (``manifest.json``).

    Attributes
    ----------
    table_name
        The (live) table diffed.
    key_schema
        Its primary key.
    live, restored
        The inputs: ``{"path": ..., **identity}`` where the identity is the
        export manifest's :meth:`~pitrdiff.export.dataset.Manifest.identity`.
    counts
        Items per class: ``deleted``, ``changed``, ``added``, ``unchanged``.
    bytes
        Item bytes per class (deleted and changed: restored version; added:
        live version; unchanged: ``None`` when not known).
    files
        The class files with row counts and xxh3-128 checksums.
    timings
        Seconds spent per phase and in total.
    summary
        :meth:`DiffSummary.to_dict` of the summary.
    complete
        ``True`` once every file is written.
    """

    table_name: str
    key_schema: KeySchema
    live: dict[str, Any]
    restored: dict[str, Any]
    counts: dict[str, int]
    bytes: dict[str, int | None]
    files: tuple[FileEntry, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    complete: bool = False
    created_at: str = field(default_factory=utc_now)
    format_version: int = DIFF_FORMAT_VERSION
    tool_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """The JSON document written as ``manifest.json``."""
        return {
            "format": DIFF_FORMAT,
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "table_name": self.table_name,
            "key_schema": self.key_schema.to_list(),
            "live": self.live,
            "restored": self.restored,
            "counts": self.counts,
            "bytes": self.bytes,
            "files": {
                name: {"path": f.path, "rows": f.rows, "bytes": f.bytes, "xxh3_128": f.xxh3_128}
                for name, f in ((_class_of(f.path), f) for f in self.files)
            },
            "timings": self.timings,
            "summary": self.summary,
            "complete": self.complete,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DiffManifest:
        """Parse a ``manifest.json`` document.

        Raises
        ------
        DiffError
            When it is not a diff manifest this version reads.
        """
        check_format(doc, DIFF_FORMAT, DIFF_FORMAT_VERSION, "diff", DiffError)
        try:
            files_doc = doc.get("files") or {}
            files = tuple(
                FileEntry(
                    str(files_doc[name]["path"]),
                    int(files_doc[name]["rows"]),
                    int(files_doc[name]["bytes"]),
                    str(files_doc[name]["xxh3_128"]),
                )
                for name in CLASSES
                if name in files_doc
            )
            return cls(
                table_name=str(doc["table_name"]),
                key_schema=KeySchema.from_list(doc["key_schema"]),
                live=dict(doc.get("live") or {}),
                restored=dict(doc.get("restored") or {}),
                counts={k: int(v) for k, v in (doc.get("counts") or {}).items()},
                bytes={
                    k: (None if v is None else int(v)) for k, v in (doc.get("bytes") or {}).items()
                },
                files=files,
                timings={k: float(v) for k, v in (doc.get("timings") or {}).items()},
                summary=dict(doc.get("summary") or {}),
                complete=bool(doc.get("complete")),
                created_at=str(doc.get("created_at", "")),
                format_version=int(doc["format_version"]),
                tool_version=str(doc.get("tool_version", "")),
            )
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise DiffError(f"manifest.json is malformed: {exc}") from exc

    def file(self, name: str) -> FileEntry:
        """The file entry of one class."""
        for entry in self.files:
            if entry.path == FILE_NAMES[name]:
                return entry
        raise DiffError(f"the diff has no {name} file")


def _whole(value: Any) -> int | None:
    """``value`` when it is a whole number (not a bool), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _figure_disagreements(manifest: DiffManifest) -> list[str]:
    """The figures of ``manifest`` that disagree with one another (empty: none)."""
    summary = manifest.summary
    told = summary.get("counts")
    told = told if isinstance(told, Mapping) else {}
    sizes = summary.get("bytes")
    sizes = sizes if isinstance(sizes, Mapping) else {}
    rows = {_class_of(f.path): f.rows for f in manifest.files}
    if len(manifest.files) == len(CLASSES):  # from_dict keeps CLASSES order: by position
        rows = {name: f.rows for name, f in zip(CLASSES, manifest.files, strict=True)}
    groups = [
        {
            **({f"files.{name}.rows": rows.get(name)} if name in CLASSES else {}),
            f"counts.{name}": manifest.counts.get(name),
            f"summary.counts.{name}": _whole(told.get(name)),
        }
        for name in (*CLASSES, "unchanged")
    ]
    found = [
        ", ".join(f"{k} {'missing' if v is None else v}" for k, v in group.items())
        for group in groups
        if None in group.values() or len(set(group.values())) != 1
    ]
    found += [
        f"bytes.{name} {manifest.bytes.get(name)}, summary.bytes.{name} {sizes.get(name)}"
        for name in (*CLASSES, "unchanged")
        if sizes.get(name) != manifest.bytes.get(name)
    ]
    return found + _top_disagreements(summary, manifest.counts)


def _top_disagreements(summary: Mapping[str, Any], counts: Mapping[str, int]) -> list[str]:
    """Top signatures, attributes and partitions that hold more items than their class."""
    found = []
    changed = counts.get("changed", 0)
    try:
        signatures = sum(int(s["items"]) for s in summary.get("top_signatures") or ())
        if signatures > changed:
            found.append(f"summary.top_signatures {signatures} items, counts.changed {changed}")
        for a in summary.get("top_attributes") or ():
            if int(a["items"]) > changed:
                found.append(f"summary.top_attributes {a['path']!r} {a['items']} items, "
                             f"counts.changed {changed}")  # fmt: skip
        for name in CLASSES:
            held = sum(int(p.get(name, 0)) for p in summary.get("top_partitions") or ())
            if held > counts.get(name, 0):
                found.append(f"summary.top_partitions {held} {name}, counts.{name} "
                             f"{counts.get(name, 0)}")  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        found.append(f"summary is malformed ({exc!r})")
    return found


def check_figures(manifest: DiffManifest, root: Path) -> None:
    """Refuse a manifest whose figures disagree with one another (an edited manifest).

    The writer records each class's row count three times (``files.<class>.rows``,
    ``counts.<class>``, ``summary.counts.<class>``) and its bytes twice; the top
    signatures, attributes and partitions never hold more items than their
    class. Checked without reading any file; :meth:`Diff.verify
    <pitrdiff.diff.notebook.Diff.verify>` checks the rows against the class
    files' Parquet footers.

    Raises
    ------
    DiffError
        Naming the first figures that disagree (one line).
    """
    found = _figure_disagreements(manifest)
    if found:
        raise DiffError(
            f"diff {root}: {MANIFEST_NAME} does not match its class files (edited?): "
            f"{found[0]}; re-run `pitrdiff diff`"
        )


def read_diff_manifest(root: Path) -> DiffManifest:
    """Read and parse the manifest of the diff at ``root``.

    Raises
    ------
    DiffError
        When ``root`` is not a diff dataset (or is an export).
    """
    if not root.is_dir():
        raise DiffError(f"{root} is not a directory (expected a diff dataset)")
    path = root / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DiffError(f"{root} is not a diff: it has no {MANIFEST_NAME}") from exc
    except OSError as exc:
        raise storage_error(exc, path, "read") from exc
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DiffError(f"{path} is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise DiffError(f"{path} is not a manifest")
    if doc.get("format") == "pitrdiff-export":
        raise DiffError(f"{root} is an export, not a diff (run `pitrdiff diff` first)")
    return DiffManifest.from_dict(doc)


def prepare_out(out: str | os.PathLike[str], *, overwrite: bool, check_only: bool) -> Path:
    """Make ``out`` ready for a diff dataset, refusing to write over anything else.

    Parameters
    ----------
    out
        The diff directory.
    overwrite
        Replace a complete diff already there: only the files a diff consists
        of (manifest, class files, reports, temporary files) are removed.
    check_only
        Only check (raise if refused); touch nothing.

    Raises
    ------
    RefusedError
        When ``out`` lies inside an export or diff dataset, is a file, holds
        something other than a diff, holds a diff and files pitrdiff did not
        write beside it, or holds a complete diff and ``overwrite`` is false.
    """
    root = Path(out)
    refuse_inside_dataset(root, "a diff")
    if root.exists() and not root.is_dir():
        raise RefusedError(f"{root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MANIFEST_NAME).exists():
            raise RefusedError(f"{root} is not empty and is not a diff; choose another --out")
        try:
            existing: DiffManifest | None = read_diff_manifest(root)
        except DiffError as exc:
            if not (overwrite and _older_diff(root)):
                raise RefusedError(f"{root} is not empty and is not a usable diff ({exc})") from exc
            existing = None  # a diff of an older format: replaced as asked
        # An interrupted (incomplete) diff holds nothing worth keeping.
        if existing is not None and existing.complete and not overwrite:
            raise RefusedError(
                f"{root} already holds a diff of {existing.table_name!r}; "
                "pass --overwrite to replace it"
            )
        refuse_foreign(root, foreign_entries(root, _diff_file, ()), "diff")
        if not check_only:
            remove_owned(root, _diff_file, ())  # what a killed run (kill -9) left too
    if not check_only:
        make_dir(root)
    return root


_DIFF_FILES = frozenset((*FILE_NAMES.values(), REPORT_NAME, HTML_REPORT_NAME, MANIFEST_NAME))


def _diff_file(name: str) -> bool:
    """Whether a file of a diff directory is one pitrdiff writes there."""
    return name in _DIFF_FILES or is_temp(name)


def _older_diff(root: Path) -> bool:
    """Whether ``root`` holds a diff manifest of an older format version."""
    try:
        doc = orjson.loads((root / MANIFEST_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    version = doc.get("format_version") if isinstance(doc, dict) else None
    return (
        isinstance(doc, dict)
        and doc.get("format") == DIFF_FORMAT
        and isinstance(version, int)
        and version < DIFF_FORMAT_VERSION
    )


def _class_of(path: str) -> str:
    """The class a file entry holds (``deleted.parquet`` -> ``deleted``)."""
    return next((name for name, file in FILE_NAMES.items() if file == path), path)

"""THE SEAM: the interface a diff engine implements, and the registry of engines.

A diff engine does the two passes that need a data engine: **classify** the
items of two exports by ``_key`` and content (``_hash``, ``_size``), and
**fetch** the items of the differing keys. Everything after it (the ``expired``
split by TTL, attribute-level changes, signatures, the diff dataset's files,
the summary, ``report.md``) is shared code in :mod:`pitrdiff.diff.writer`, so
two engines cannot drift apart in what they write.

Contract of :meth:`DiffEngine.classify`
---------------------------------------
Inputs: two complete export datasets, already verified against their
checksums (``docs/FORMAT.md`` §2: columns ``_key``, ``_item``, ``_hash``,
``_size``, ``key``), and their merged :class:`~pitrdiff.export.dataset.KeySchema`.
The engine reads nothing else and writes nothing but spill files in
``EngineOptions.temp_dir``.

Output: a :class:`Classified` whose three row streams hold, **sorted by
``_key``** (plain byte order of the UTF-8 text) and with exactly these columns
(extra columns are dropped by the writer; missing ones are an error):

- ``deleted``: keys in restored, not in live: ``_key``, ``restored_item``,
  ``restored_hash``, ``restored_size`` (the restored export's ``_item``,
  ``_hash``, ``_size``);
- ``changed``: keys in both whose ``_hash`` or ``_size`` differ: ``_key``,
  ``live_item``, ``restored_item``, ``live_hash``, ``restored_hash``,
  ``live_size``, ``restored_size``;
- ``added``: keys in live, not in restored: ``_key``, ``live_item``,
  ``live_hash``, ``live_size``.

A ``key`` column (the export's key struct) may be passed through; when absent
the writer derives it from ``_key``. Types: ``_key`` / items string, hashes
uint64, sizes int32 (castable types are cast).

Each stream is a ``pyarrow.RecordBatchReader`` or an iterable of
``pyarrow.RecordBatch``; it may be lazy. The writer consumes ``deleted`` fully,
then ``changed``, then ``added`` (one at a time), then calls ``close()``, which
is also called when anything fails; ``close`` must be idempotent.
``unchanged_count`` / ``unchanged_bytes`` are the items in both with the same
content and the live export's ``_size`` sum over them. ``timings`` are seconds
per phase (e.g. ``classify_s``, ``extract_s``), recorded in the manifest.

Errors: an export holding a differing key twice raises
:class:`~pitrdiff.errors.ExportError` (a corrupt export); an interrupt
(SIGINT / SIGTERM) raises :class:`~pitrdiff.errors.Interrupted`; running out
of memory or disk raises :class:`~pitrdiff.errors.StorageError` or
:class:`~pitrdiff.errors.InputError` with one line naming the limit to raise.

Adding an engine
----------------
Write a class with ``name`` and ``classify`` taking an :class:`EngineOptions`
in its constructor, and register its import path in :data:`ENGINES` (engines
load lazily: ``import pitrdiff`` stays cheap and optional engines need their
dependencies only when chosen).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

import pyarrow as pa

from pitrdiff.errors import InputError
from pitrdiff.export.dataset import Export, KeySchema
from pitrdiff.progress import Progress

Rows: TypeAlias = Iterable[pa.RecordBatch] | pa.RecordBatchReader


@dataclass(frozen=True)
class EngineOptions:
    """What every engine is constructed with.

    Attributes
    ----------
    memory_limit
        A memory budget such as ``"1GB"`` (``None``: the engine's default).
    temp_dir
        A private, owner-only directory for spill files; the caller removes it.
    threads
        Worker threads (or cores) to use.
    """

    memory_limit: str | None = None
    temp_dir: str | os.PathLike[str] | None = None
    threads: int = 2


def _nothing() -> None:
    return None


@dataclass
class Classified:
    """What an engine hands to the shared writer (see the module docstring)."""

    deleted: Rows
    changed: Rows
    added: Rows
    unchanged_count: int
    unchanged_bytes: int
    timings: dict[str, float] = field(default_factory=dict)
    close: Callable[[], None] = _nothing


class DiffEngine(Protocol):
    """A data engine for the diff's classify and fetch passes."""

    name: str

    def classify(
        self, live: Export, restored: Export, key_schema: KeySchema, *, progress: Progress
    ) -> Classified:
        """Classify two exports' items; see the module docstring for the contract."""
        ...


ENGINES: dict[str, str] = {
    "duckdb": "pitrdiff.diff.duckdb_engine:DuckDBEngine",
    "spark": "pitrdiff.diff.spark_engine:SparkEngine",
}
"""Engine name -> ``module:factory``; the factory takes an :class:`EngineOptions`."""


def make_engine(name: str, options: EngineOptions) -> DiffEngine:
    """The engine registered as ``name``, constructed with ``options``.

    Raises
    ------
    InputError
        For an unknown engine, or one whose module cannot be imported (a missing
        optional dependency), naming the choices.
    """
    target = ENGINES.get(name)
    if target is None:
        raise InputError(f"unknown diff engine {name!r}; choose {', '.join(sorted(ENGINES))}")
    module_name, _, factory_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"the {name} diff engine is not available: {exc}") from exc
    factory: Callable[[EngineOptions], DiffEngine] = getattr(module, factory_name)
    return factory(options)

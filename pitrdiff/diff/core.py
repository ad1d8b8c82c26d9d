"""The diff's public names in one place (kept for importers of ``pitrdiff.diff.core``).

The diff is split by concern:

- :mod:`pitrdiff.diff.schema`: the class files' columns;
- :mod:`pitrdiff.diff.manifest`: ``manifest.json`` and the output directory;
- :mod:`pitrdiff.diff.sql`: DuckDB connections and the SQL macros;
- :mod:`pitrdiff.diff.engine`: THE SEAM, the interface of a diff engine;
- :mod:`pitrdiff.diff.duckdb_engine`: the DuckDB engine;
- :mod:`pitrdiff.diff.writer`: the shared writer of the diff dataset;
- :mod:`pitrdiff.diff.exports`: ``diff_exports`` (inputs → engine → writer);
- :mod:`pitrdiff.diff.notebook`: ``Diff``, ``Explanation``, ``load_diff``.
"""

from __future__ import annotations

from pitrdiff.diff.engine import ENGINES, Classified, DiffEngine, EngineOptions, make_engine
from pitrdiff.diff.exports import diff_exports
from pitrdiff.diff.manifest import (
    DIFF_FORMAT,
    DIFF_FORMAT_VERSION,
    MANIFEST_NAME,
    REPORT_NAME,
    DiffManifest,
    prepare_out,
    read_diff_manifest,
)
from pitrdiff.diff.notebook import Diff, Explanation, load_diff
from pitrdiff.diff.report import DiffSummary
from pitrdiff.diff.schema import CHANGE_TYPE, CLASSES, FILE_NAMES, diff_schema
from pitrdiff.diff.sql import DEFAULT_THREADS, SQL_MACROS, connect
from pitrdiff.diff.writer import DiffRows, write_diff_dataset

__all__ = [
    "CHANGE_TYPE",
    "CLASSES",
    "DEFAULT_THREADS",
    "DIFF_FORMAT",
    "DIFF_FORMAT_VERSION",
    "ENGINES",
    "FILE_NAMES",
    "MANIFEST_NAME",
    "REPORT_NAME",
    "SQL_MACROS",
    "Classified",
    "Diff",
    "DiffEngine",
    "DiffManifest",
    "DiffRows",
    "DiffSummary",
    "EngineOptions",
    "Explanation",
    "connect",
    "diff_exports",
    "diff_schema",
    "load_diff",
    "make_engine",
    "prepare_out",
    "read_diff_manifest",
    "write_diff_dataset",
]

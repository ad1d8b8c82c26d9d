"""Diff: two export datasets to a diff dataset (deleted / changed / added / expired).

The pipeline inside: :mod:`~pitrdiff.diff.exports` opens and verifies the two
exports, an engine behind :mod:`~pitrdiff.diff.engine` (THE SEAM;
:mod:`~pitrdiff.diff.duckdb_engine` by default) classifies them, and the shared
:mod:`~pitrdiff.diff.writer` writes the dataset (:mod:`~pitrdiff.diff.schema`,
:mod:`~pitrdiff.diff.manifest`), its attribute-level changes
(:mod:`~pitrdiff.diff.changes`), summary and ``report.md``
(:mod:`~pitrdiff.diff.report`). :mod:`~pitrdiff.diff.notebook` reads it back
(``Diff``, ``load_diff``); :mod:`~pitrdiff.diff.sql` makes DuckDB connections.
:mod:`pitrdiff.diff.core` re-exports the public names.
"""

"""Diff: two export datasets to a diff dataset (deleted / changed / added).

- :mod:`pitrdiff.diff.core`: classification, the diff dataset, the notebook ``Diff``;
- :mod:`pitrdiff.diff.changes`: attribute-level changes and signatures;
- :mod:`pitrdiff.diff.report`: the summary and ``report.md``.
"""

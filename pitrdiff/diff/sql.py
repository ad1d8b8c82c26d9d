"""DuckDB connections set up the way pitrdiff uses them, and its SQL macros.

One place makes every DuckDB connection of pitrdiff (the diff engine, the
summary, ``Diff.sql``, plans): bounded memory, a private spill directory, no
progress bar, and the attribute macros ``attr``, ``attr_type``, ``attr_text``,
``attr_num`` over canonical DynamoDB JSON.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from pitrdiff.errors import InputError

if TYPE_CHECKING:
    import duckdb

DEFAULT_THREADS = 2

SQL_MACROS = (
    # The typed value (DynamoDB JSON) of a top-level attribute, e.g. {"N":"1.5"}.
    "CREATE OR REPLACE MACRO attr(item, name) AS "
    "json_extract(item, '$.\"' || replace(name, '\"', '\\\"') || '\"')",
    # The tag of a top-level attribute: 'S', 'N', 'M', ...
    "CREATE OR REPLACE MACRO attr_type(item, name) AS json_keys(attr(item, name))[1]",
    # A scalar attribute (S, N, B, BOOL) as exact text; NULL for other types / absent.
    "CREATE OR REPLACE MACRO attr_text(item, name) AS "
    "coalesce(json_extract_string(attr(item, name), '$.S'), "
    "json_extract_string(attr(item, name), '$.N'), "
    "json_extract_string(attr(item, name), '$.B'), "
    "json_extract_string(attr(item, name), '$.BOOL'))",
    # A number attribute as DOUBLE, for filtering and plotting only (approximate).
    "CREATE OR REPLACE MACRO attr_num(item, name) AS "
    "TRY_CAST(json_extract_string(attr(item, name), '$.N') AS DOUBLE)",
)


_private_spill: str | None = None


def _default_spill_dir() -> str:
    """An owner-only directory for DuckDB's spill files, removed at exit.

    DuckDB's own default (``./.tmp``) would leave table data in the current
    directory, readable by others.
    """
    global _private_spill
    if _private_spill is None:
        _private_spill = tempfile.mkdtemp(prefix="pitrdiff-duckdb-")  # mode 0700
        atexit.register(shutil.rmtree, _private_spill, True)
    return _private_spill


def connect(
    *,
    memory_limit: str | None = None,
    temp_dir: str | os.PathLike[str] | None = None,
    threads: int = DEFAULT_THREADS,
    database: str | os.PathLike[str] = ":memory:",
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection set up the way pitrdiff uses it (bounded memory, spilling).

    Parameters
    ----------
    memory_limit
        DuckDB's memory limit, e.g. ``"1GB"``; DuckDB's default (80% of RAM) if ``None``.
    temp_dir
        Where DuckDB spills (table data lands there, so it should be owner-only);
        a private temporary directory removed at exit if ``None``.
    threads
        Worker threads.
    database
        A database file, or in memory by default.
    """
    import duckdb

    config: dict[str, Any] = {
        "threads": threads,
        "preserve_insertion_order": False,
        "temp_directory": os.fspath(temp_dir) if temp_dir is not None else _default_spill_dir(),
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    try:
        con = duckdb.connect(os.fspath(database), config=config)
    except duckdb.Error as exc:
        if memory_limit:
            raise InputError(
                f"invalid memory limit {memory_limit!r}: {exc} (e.g. --memory-limit 1GB)"
            ) from exc
        raise InputError(f"cannot set up DuckDB ({exc})") from exc
    # No progress bar: the library never prints (DuckDB would draw one on stderr).
    # In Jupyter without ipywidgets DuckDB refuses any change to the setting
    # (and draws no bar there), so a refusal is fine.
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    for macro in SQL_MACROS:
        con.execute(macro)
    return con

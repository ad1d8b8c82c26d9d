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
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pitrdiff.errors import InputError, Interrupted, StorageError
from pitrdiff.files import private_temp_dir

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
    directory, readable by others. Directories a killed run left are removed
    when the next one is made (:func:`pitrdiff.files.private_temp_dir`).
    """
    global _private_spill
    if _private_spill is None:
        manager = private_temp_dir("duckdb")
        _private_spill = str(manager.__enter__())
        atexit.register(manager.__exit__, None, None, None)
    return _private_spill


@contextlib.contextmanager
def duckdb_errors(doing: str) -> Iterator[None]:
    """Translate DuckDB's interrupt, memory and disk errors into pitrdiff's, in one line.

    Parameters
    ----------
    doing
        What was running, for the message (``"the diff"``).

    Raises
    ------
    Interrupted
        When DuckDB was interrupted (Ctrl-C or SIGTERM while a query ran).
    InputError
        When DuckDB ran out of memory within its limit (raise ``--memory-limit``).
    StorageError
        When DuckDB could not write its spill files (a full disk).
    """
    import duckdb

    try:
        yield
    except duckdb.InterruptException as exc:
        raise Interrupted(f"interrupted; {doing} was not finished") from exc
    except duckdb.OutOfMemoryException as exc:
        raise InputError(
            f"{doing} ran out of memory within DuckDB's limit ({_first_line(exc)}); "
            "raise --memory-limit"
        ) from exc
    except duckdb.IOException as exc:
        raise StorageError(f"{doing} could not use its files: {_first_line(exc)}") from exc
    except RuntimeError as exc:  # older DuckDB: "Query interrupted"
        if "interrupted" in str(exc).lower():
            raise Interrupted(f"interrupted; {doing} was not finished") from exc
        raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """The connection's memory limit in bytes (DuckDB's setting, e.g. ``286.1 MiB``)."""
    row = con.execute("SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'").fetchone()
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", str(row[0] if row else ""))
    if not match:
        return 1 << 30
    unit = _UNITS.get(match.group(2).lower() or "b", 1)
    return int(float(match.group(1)) * unit)


_SIZE = re.compile(r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(%|[A-Za-z]*)")


def check_memory_limit(memory_limit: str | None) -> str | None:
    """Refuse a memory limit that is not a positive size; return it stripped.

    DuckDB reads a negative size (``-5GB``) as *no* limit, so it is refused
    here, with zero and anything that does not start with a number; the unit
    (``KB``, ``MiB``, ``GB`` …) is DuckDB's to judge (:func:`connect`).

    Raises
    ------
    InputError
        Naming the value and an example.
    """
    if memory_limit is None:
        return None
    text = memory_limit.strip()
    match = _SIZE.fullmatch(text)
    if match is None or float(match.group(1)) <= 0:
        raise InputError(
            f"invalid memory limit {memory_limit!r}: give a positive size, e.g. "
            "--memory-limit 1GB (a negative or zero limit would remove the bound or stop "
            "every query)"
        )
    return text


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
        DuckDB's memory limit, e.g. ``"1GB"``; DuckDB's default (80% of RAM) if
        ``None``; a negative or zero size is refused (:func:`check_memory_limit`).
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
    memory_limit = check_memory_limit(memory_limit)
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

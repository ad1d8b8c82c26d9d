"""Which engine runs a job: ``duckdb``, ``spark``, or ``auto`` (by size).

DuckDB on one machine is the default: on 2 cores it diffs 1M items in a few
seconds, while Spark in local mode is an order of magnitude slower
(``bench/bench_spark.py``; figures in the README, "Past one machine"). Spark
pays only past one machine: ``auto`` picks it only for inputs of at least
:data:`AUTO_SPARK_MIN_ITEMS` items in all, where one machine's diff would
run for hours and spill hundreds of gigabytes, and only when pyspark is
installed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable

from pitrdiff.errors import InputError, PitrdiffError

ENGINE_CHOICES = ("duckdb", "spark", "auto")
AUTO_SPARK_MIN_ITEMS = 500_000_000
"""Items (both inputs together) from which ``auto`` runs on Spark."""


def spark_installed() -> bool:
    """Whether pyspark can be imported (without importing it)."""
    return importlib.util.find_spec("pyspark") is not None


def choose_engine(
    engine: str, item_counts: Iterable[int], *, spark_available: bool | None = None
) -> str:
    """The engine to run: ``engine`` itself, or for ``auto`` the one that fits the size.

    Parameters
    ----------
    engine
        ``duckdb``, ``spark`` or ``auto``.
    item_counts
        Items of each input (export manifests' ``items``, a native export's
        ``itemCount``).
    spark_available
        Whether pyspark is installed (looked up when ``None``).

    Returns
    -------
    str
        ``duckdb`` or ``spark``: ``auto`` gives ``spark`` only when the inputs
        hold at least :data:`AUTO_SPARK_MIN_ITEMS` items and pyspark is installed.

    Raises
    ------
    InputError
        For another name.
    """
    if engine not in ENGINE_CHOICES:
        raise InputError(f"unknown engine {engine!r}; choose duckdb, spark or auto")
    if engine != "auto":
        return engine
    available = spark_installed() if spark_available is None else spark_available
    return "spark" if available and sum(item_counts) >= AUTO_SPARK_MIN_ITEMS else "duckdb"


def prepare_engine(
    engine: str, item_counts: Callable[[], Iterable[int]], *, master: str | None = None
) -> str:
    """Resolve ``engine`` (``auto`` by size) and, for Spark, start its session on ``master``.

    What the command line does before a diff or an ingestion: the engine then
    finds the session running.

    Parameters
    ----------
    engine
        ``duckdb``, ``spark`` or ``auto``.
    item_counts
        Called only for ``auto``: the items of each input.
    master
        ``--spark-master``: ``local[N]``, ``yarn``, ``spark://host:port``
        (``local[*]`` when ``None``).

    Returns
    -------
    str
        ``duckdb`` or ``spark``.

    Raises
    ------
    InputError
        An unknown engine, ``master`` with ``duckdb``, or Spark chosen without pyspark.
    """
    chosen = choose_engine(engine, item_counts() if engine == "auto" else ())
    if engine == "duckdb" and master:
        raise InputError("--spark-master goes with --engine spark (or auto)")
    if chosen == "spark":
        from pitrdiff.spark.session import get_session

        get_session(master)
    return chosen


def export_items(path: str | os.PathLike[str]) -> int:
    """Items an export dataset's manifest lists (0 when it is not a readable export).

    ``auto`` only needs a size; the diff itself reports an unreadable input.
    """
    from pitrdiff.export.dataset import read_manifest

    try:
        return read_manifest(path).items
    except PitrdiffError:
        return 0

"""The ``SparkSession`` pitrdiff runs on.

A session already running (a Glue or EMR job, a notebook on a cluster) is
used as it is; otherwise one is started with ``master`` (``local[N]``,
``yarn``, ``spark://host:port``). Starting the JVM costs seconds, and the
first query of a fresh JVM runs several times slower than the next, so one
session serves a whole process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pitrdiff.errors import InputError, StorageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"
APP_NAME = "pitrdiff"
INSTALL_HINT = 'the Spark engine needs pyspark: pip install "pitrdiff[spark]"'


def require_pyspark() -> None:
    """Check that pyspark can be imported.

    Raises
    ------
    InputError
        Naming the extra to install when pyspark is missing.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise InputError(INSTALL_HINT) from exc


def master_to_set(master: str | None, fallback: str) -> str | None:
    """The master a new session is given: ``master``, else none under a launcher, else ``fallback``.

    Under ``spark-submit`` (Glue, EMR: the JVM is already up and
    ``PYSPARK_GATEWAY_PORT`` set) the launcher has chosen the master; setting
    one here would quietly run the job on the driver alone.
    """
    if master is not None:
        return master
    return None if "PYSPARK_GATEWAY_PORT" in os.environ else fallback


def get_session(
    master: str | None = None,
    *,
    shuffle_partitions: int | None = None,
    config: dict[str, str] | None = None,
) -> SparkSession:
    """The active ``SparkSession``, or a new one on ``master``.

    Parameters
    ----------
    master
        Where to run when no session is active: ``local[N]``, ``yarn``,
        ``spark://host:port``. By default, the master ``spark-submit`` (or
        Glue) launched this process with, else ``local[*]``. Ignored when a
        session is already running (a Glue or EMR job, a notebook).
    shuffle_partitions
        ``spark.sql.shuffle.partitions`` for a new session (Spark's default,
        200, with adaptive coalescing, when ``None``).
    config
        More Spark settings for a new session.

    Returns
    -------
    pyspark.sql.SparkSession
        With Arrow transfers enabled and the web UI off for local masters.

    Raises
    ------
    InputError
        When pyspark is not installed.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if active is not None:
        return active
    chosen = master_to_set(master, DEFAULT_MASTER)
    launched = chosen is None
    chosen = chosen or ""
    if chosen.startswith("local"):
        # Loopback only, and workers run this very interpreter (pitrdiff importable).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder if launched else SparkSession.builder.master(chosen)
    builder = (
        builder.appName(APP_NAME)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if chosen.startswith("local"):
        builder = builder.config("spark.ui.enabled", "false").config(
            "spark.ui.showConsoleProgress", "false"
        )
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    for name, value in (config or {}).items():
        builder = builder.config(name, value)
    previous = _sigint_handler()
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    _keep_sigint_handler(previous, session)
    # py4j logs each call a cancelled job breaks off, with its traceback, on stderr
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    return session


def _sigint_handler() -> Any:
    """The SIGINT handler in force (``None`` off the main thread, where it cannot change)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.getsignal(signal.SIGINT)


def _keep_sigint_handler(previous: Any, session: SparkSession) -> None:
    """Put back a caller's SIGINT handler that starting Spark replaced, chained after a cancel.

    pyspark's ``SparkContext`` installs its own SIGINT handler (cancel every
    job, raise ``KeyboardInterrupt``), replacing the command line's, so a
    Ctrl-C was reported as a Spark failure (exit 3) instead of an interrupt
    (130). Spark's jobs are still cancelled first; then the caller's handler
    runs. A caller without a handler of its own (Python's default) keeps pyspark's.
    """
    if not callable(previous) or previous is signal.default_int_handler:
        return
    if signal.getsignal(signal.SIGINT) is previous:
        return
    context = session.sparkContext

    def cancel_then_previous(signum: int, frame: Any) -> None:
        with contextlib.suppress(Exception):
            context.cancelAllJobs()
        previous(signum, frame)

    signal.signal(signal.SIGINT, cancel_then_previous)


@contextlib.contextmanager
def spark_errors() -> Iterator[None]:
    """Turn a failure inside Spark into one line (:class:`~pitrdiff.errors.StorageError`).

    pitrdiff's own errors raised in Python workers travel back as Spark's
    ``PythonException``; the JVM's as ``Py4JJavaError``. Either becomes a
    :class:`StorageError` (exit 3) holding the first line of Spark's message.
    """
    from py4j.protocol import Py4JError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JError) as exc:
        raise StorageError(f"Spark failed: {first_line(str(exc))}") from exc


def first_line(message: str) -> str:
    """The first non-empty line of a (multi-line, Java-traced) message."""
    for line in message.splitlines():
        if line.strip():
            return line.strip()[:500]
    return "(no message)"

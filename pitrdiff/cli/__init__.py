"""The ``pitrdiff`` command line: parse options, call the library, render.

Exit codes (asserted by name in the tests; see :mod:`pitrdiff.errors`):

- ``0`` done, no differences;
- ``1`` differences found (``diff``) or conflicts left (``apply``);
- ``2`` bad input or a refused operation (usage errors too);
- ``3`` an AWS or I/O failure;
- ``130`` interrupted (Ctrl-C, SIGINT);
- ``143`` terminated (SIGTERM).

:mod:`pitrdiff.cli.app` holds the typer app, the common options, the help
pages and the one place errors become exit codes; each other module here
defines the commands of one area and is imported only when one of its
commands runs. No library module imports this package.

:func:`main` is kept light on purpose: it installs the signal handlers before
anything heavy is imported, so a Ctrl-C or a SIGTERM that lands while Python
is still importing ends the same way as one that lands in a query: one line
on stderr and exit 130 or 143, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from pitrdiff.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated

__all__ = ["Common", "command", "load_commands", "main", "received_signal"]

_received: list[int] = []


def received_signal() -> int | None:
    """The first SIGINT or SIGTERM this process received through :func:`main`'s handlers."""
    return _received[0] if _received else None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into :class:`~pitrdiff.errors.Terminated` and SIGINT into KeyboardInterrupt.

    Both unwind the stack (every ``finally`` runs: temporary files are
    removed, journals flushed); the signal is recorded so that whatever
    exception comes out of a library (DuckDB raises its own interrupt error)
    is reported as the interruption it is.
    """
    _received.append(signum)
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


def install_signal_handlers() -> None:
    """Handle SIGINT and SIGTERM as described in :func:`_on_signal` (main thread only).

    A signal that lands inside a finalizer (``weakref.finalize``, ``__del__``)
    would be dropped by Python ("Exception ignored") and the command would run
    on: urllib3 closes a dropped boto3 client's connection pool in such a
    finalizer, at whatever moment the garbage collector picks (8 of 10 drills
    signalled 0.15-0.4 s after the restore request returned ran to the end,
    exit 0). A signal that lands while a module is being imported would raise
    inside the module's initialisation: a C extension's (DuckDB's nanobind
    bindings) can then abort the whole process (SIGABRT, no cleanup; seen once
    in about 180 signals during ``import duckdb``). In both places the handler
    is deferred (a profile hook of the main thread, :func:`sys.setprofile`) to
    the first call or return outside them, where its exception unwinds the
    command as usual; elsewhere it runs at once.
    """
    handler = _deferring(_on_signal)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _deferring(handler: Callable[[int, FrameType | None], Any]) -> Any:
    def deferring(signum: int, frame: FrameType | None) -> None:
        if not _in_finalizer(frame):
            handler(signum, frame)
            return
        previous = sys.getprofile()

        def after_finalizer(current: FrameType, event: str, arg: Any) -> None:
            # the first call or return outside the finalizer: the handler runs there
            if not _in_finalizer(current):
                sys.setprofile(previous)
                handler(signum, current)

        sys.setprofile(after_finalizer)

    return deferring


def _in_finalizer(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside ``weakref.finalize``, a ``__del__`` method or an import."""
    import weakref

    finalize = weakref.finalize.__call__.__code__
    while frame is not None:
        code = frame.f_code
        if code is finalize or code.co_name == "__del__" or code.co_filename in _IMPORT_FILES:
            return True
        frame = frame.f_back
    return False


# The import system's own frames: a module body runs below them.
_IMPORT_FILES = frozenset(
    {"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>"}
)


def interrupted_exit_code(exc: BaseException | None = None) -> int:
    """130 for an interrupt, 143 when SIGTERM was received (or ``exc`` is a Terminated)."""
    if isinstance(exc, Terminated) or received_signal() == signal.SIGTERM:
        return EXIT_TERMINATED
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``pitrdiff`` console script and of ``python -m pitrdiff``."""
    install_signal_handlers()
    # pitrdiff does no linear algebra, but pyarrow and pandas import numpy, whose
    # OpenBLAS starts a thread per core that spins for a while: about 0.09 s of
    # CPU per command on 2 cores (bench/bench_startup.py). A user's setting stays.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        from pitrdiff.cli.app import run_app

        code = run_app(argv)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM before a command took over
        code = interrupted_exit_code(exc)
        sys.stderr.write(f"error: {'terminated' if code == EXIT_TERMINATED else 'interrupted'}\n")
    _exit_on_late_signal(code)
    files = sys.modules.get("pitrdiff.files")  # loaded only by a command that wrote files
    if files is not None and code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        with contextlib.suppress(Exception):
            files.remove_own_temps()
    _exit(code, join_threads=code not in (EXIT_INTERRUPTED, EXIT_TERMINATED))


def _exit(code: int, *, join_threads: bool) -> None:
    """End the process with ``code`` now that the command is done.

    Python's own shutdown is done here, in its order (threads joined, then
    the exit handlers: logging flushed, temporary directories removed), and
    the rest is skipped with ``os._exit``: the C++ teardown of DuckDB's and
    Arrow's thread pools, during which Python has already given SIGINT and
    SIGTERM back to the system, so a signal there would kill the process and
    hide the exit code. An interrupted run does not join its threads: a worker
    blocked on the network (up to the read timeout) must not hold the exit.
    """
    import atexit
    import threading

    if join_threads and hasattr(threading, "_shutdown"):
        with contextlib.suppress(Exception):
            threading._shutdown()
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _exit_on_late_signal(code: int) -> None:
    """From here on, a signal ends the process at once with ``code``.

    The work is done and reported; a signal that arrives while Python shuts
    down (joining threads, closing files) must not turn into a traceback or a
    death by signal that hides the exit code.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()

    def exit_now(signum: int, frame: FrameType | None) -> None:
        os._exit(code)

    signal.signal(signal.SIGINT, exit_now)
    signal.signal(signal.SIGTERM, exit_now)


def __getattr__(name: str) -> Any:
    # Common, command, load_commands: from pitrdiff.cli.app, loaded on first use.
    # (``app`` is the submodule pitrdiff.cli.app; the typer app is pitrdiff.cli.app.app.)
    if name in ("Common", "command", "load_commands"):
        from pitrdiff.cli import app as app_module

        return getattr(app_module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

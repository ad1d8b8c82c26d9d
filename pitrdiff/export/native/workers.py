"""Worker pools for native-export files: one data file per worker, the first failure stops all.

Parsing and canonicalising items is CPU-bound Python, so large exports use
worker processes (spawned) where that is safe, threads otherwise. When the run
ends early (a failure, Ctrl-C, SIGTERM) the workers stop: threads at their
next look at the run's stop flag, processes are terminated; nothing is left
running and the caller's clean-up runs once they have.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures import as_completed as _as_completed
from pathlib import Path

from pitrdiff.errors import InputError
from pitrdiff.export.native.stream import (
    FileOutcome,
    FileTask,
    forget_run,
    process_file,
    stop_flag,
)
from pitrdiff.progress import Progress

# Below this many items, starting worker processes costs more than it saves.
PROCESS_THRESHOLD = 1_000_000


def default_workers() -> int:
    """Workers used when none are asked for: one per CPU core."""
    return max(1, os.cpu_count() or 1)


def new_run() -> str:
    """A fresh run id (names the run's stop flag)."""
    return uuid.uuid4().hex


def processes_are_safe() -> bool:
    """Whether worker processes can start without re-running the caller's script.

    multiprocessing's ``spawn`` imports the main module again in every worker:
    harmless for the ``pitrdiff`` command, ``python -m pitrdiff``, a notebook or
    a REPL, but a script without an ``if __name__ == "__main__":`` guard would
    run again. ``executor="auto"`` therefore uses processes only there;
    ``executor="process"`` is the caller's explicit choice.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None:
        return True  # interactive: nothing to re-run
    spec = getattr(main, "__spec__", None)
    if spec is not None and str(spec.name).split(".")[0] == "pitrdiff":
        return True
    return Path(path).name == "pitrdiff"


def choose_executor(executor: str, workers: int, items: int) -> str:
    """``"process"`` or ``"thread"`` for ``executor`` ``auto``, ``process`` or ``thread``.

    Raises
    ------
    InputError
        Any other executor name.
    """
    if executor not in ("auto", "process", "thread"):
        raise InputError(f"executor must be auto, process or thread, not {executor!r}")
    if executor == "auto":
        large = workers > 1 and items >= PROCESS_THRESHOLD
        return "process" if large and processes_are_safe() else "thread"
    return executor


def _ignore_interrupts() -> None:
    # Worker processes share the terminal's process group: Ctrl-C reaches them
    # too. The parent decides what an interrupt means and terminates them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _make_executor(kind: str, workers: int) -> Executor:
    if kind == "process":
        # spawn: forking a process that runs botocore threads can deadlock.
        return ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_interrupts,
        )
    return ThreadPoolExecutor(workers, thread_name_prefix="pitrdiff-s3export")


def run_files(
    tasks: Sequence[FileTask],
    *,
    label: str,
    workers: int,
    executor: str,
    total_items: int,
    progress: Progress,
) -> list[FileOutcome]:
    """Process every file, in parallel, as one progress task named ``label``.

    Returns
    -------
    list of FileOutcome
        In task order.

    Raises
    ------
    PitrdiffError
        The first failure of a file (the others are stopped).
    """
    runs = {t.run for t in tasks}
    for run in runs:
        stop_flag(run)  # before any worker starts: threads look it up
    progress.start(label, total=total_items)
    try:
        return _process_files(
            tasks, workers=workers, executor=executor, total_items=total_items, progress=progress
        )
    finally:
        progress.finish()
        for run in runs:
            forget_run(run)


def _process_files(
    tasks: Sequence[FileTask],
    *,
    workers: int,
    executor: str,
    total_items: int,
    progress: Progress,
) -> list[FileOutcome]:
    if not tasks:
        return []
    workers = max(1, min(workers, len(tasks)))
    kind = choose_executor(executor, workers, total_items)
    outcomes: list[FileOutcome] = []
    if workers == 1:
        for task in tasks:
            outcome = process_file(task)
            outcomes.append(outcome)
            progress.advance(outcome.lines, files=1)
        return outcomes
    runs = {t.run for t in tasks}
    pool = _make_executor(kind, workers)
    futures: list[Future[FileOutcome]] = []
    try:
        futures.extend(pool.submit(process_file, t) for t in tasks)
        for future in _as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            progress.advance(outcome.lines, files=1)
    except BaseException:
        _stop(pool, futures, runs)
        raise
    pool.shutdown(wait=True)
    return sorted(outcomes, key=lambda o: o.index)


def _stop(pool: Executor, futures: Sequence[Future[FileOutcome]], runs: set[str]) -> None:
    """Stop every worker of ``pool`` and wait for them: nothing runs after this returns."""
    for f in futures:
        f.cancel()
    for run in runs:
        stop_flag(run).set()
    if isinstance(pool, ProcessPoolExecutor):
        # A process in the middle of a file would finish it first: end it now.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
    else:
        wait(futures)  # threads stop within a thousand lines of their file
    pool.shutdown(wait=True, cancel_futures=True)

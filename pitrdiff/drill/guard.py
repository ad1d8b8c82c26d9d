"""Signals held while the drill deletes its restored table.

The restored table is billed: whatever ends the drill (success, a failed
check, an error, Ctrl-C or SIGTERM), the table is deleted first. A signal that
lands *during* that deletion (a new boto3 client takes a few tenths of a
second to build) would otherwise cut it short and leave the table behind, so
:func:`held_signals` holds SIGINT and SIGTERM for its block and delivers the
first one afterwards. A third signal is the user insisting: it is delivered
at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_INSIST = 3  # the third signal during a held block is delivered at once


@contextlib.contextmanager
def held_signals(*, deliver: bool = True) -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM for the block (main thread only; elsewhere a no-op).

    Parameters
    ----------
    deliver
        After the block ends normally, deliver the first held signal (its
        handler runs, e.g. raising ``KeyboardInterrupt``); ``False`` drops
        them (the caller is already ending because of a signal).

    Yields
    ------
    list of int
        The signals received during the block, in order.
    """
    held: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.getsignal(s) for s in _SIGNALS}
    if any(h is None for h in previous.values()):  # a handler not set from Python
        previous = {}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)
        if len(held) >= _INSIST:
            restore()
            signal.raise_signal(signum)

    for signum in previous:
        signal.signal(signum, hold)
    try:
        yield held
    finally:
        restore()
    if held and deliver and len(held) < _INSIST:
        signal.raise_signal(held[0])

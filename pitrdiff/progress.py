"""Progress reporting, injected into long operations.

The library never prints: a long operation takes a :class:`Progress` and calls
it. The default, :data:`SILENT`, does nothing. The CLI passes one that draws a
rich progress bar on stderr.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What a long operation reports while it runs."""

    def start(self, task: str, total: float | None = None, unit: str = "items") -> None:
        """Begin a task; ``total`` is the expected amount, if known."""

    def advance(self, amount: float = 1, **fields: float) -> None:
        """Record ``amount`` more done; ``fields`` are extra counters (bytes, retries)."""

    def status(self, message: str) -> None:
        """Replace the task's status line (for waits without a known total)."""

    def finish(self) -> None:
        """End the current task."""


class SilentProgress:
    """A :class:`Progress` that reports nothing."""

    def start(self, task: str, total: float | None = None, unit: str = "items") -> None:
        """Do nothing."""

    def advance(self, amount: float = 1, **fields: float) -> None:
        """Do nothing."""

    def status(self, message: str) -> None:
        """Do nothing."""

    def finish(self) -> None:
        """Do nothing."""


SILENT: Progress = SilentProgress()

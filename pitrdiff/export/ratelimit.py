"""A read-capacity token bucket shared by a scan export's segment threads."""

from __future__ import annotations

import threading
import time

from pitrdiff.errors import InputError

__all__ = ["CapacityLimiter"]


class CapacityLimiter:
    """A token bucket of read capacity units shared by the segment threads.

    Requests wait while the bucket is in debt; each response's measured
    ``ConsumedCapacity`` is then taken from it. The bucket refills at ``rate``
    units per second and holds at most one second's worth, so the long-run rate
    stays at or below ``rate``.

    Parameters
    ----------
    rate
        Read capacity units per second.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise InputError(f"--max-rcu must be positive, not {rate}")
        self.rate = float(rate)
        self._tokens = float(rate)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, stop: threading.Event) -> None:
        """Wait until the bucket is not in debt (or ``stop`` is set)."""
        while not stop.is_set():
            with self._lock:
                self._refill()
                if self._tokens > 0:
                    return
                wait_s = -self._tokens / self.rate + 0.001
            stop.wait(min(wait_s, 1.0))

    def consume(self, units: float) -> None:
        """Take ``units`` consumed by a request."""
        with self._lock:
            self._refill()
            self._tokens -= units

"""An injectable monotonic clock, so timing logic can be tested without sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds. Never wall-clock time: expiry and backoff must not jump with NTP."""

    def now(self) -> float: ...


class MonotonicClock:
    """The real clock: :func:`time.monotonic` (the same base as the asyncio loop's clock on Linux)."""

    def now(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that only moves when told to; for unit tests of rate limiters and leases."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds


MONOTONIC = MonotonicClock()

"""An injectable monotonic clock, so timing logic can be tested without sleeping.

Like ``k8s.io/utils/clock``: components that wait or measure take a :class:`Clock`; the
default :data:`MONOTONIC` is real time, and :class:`jangar.runtime.testing.FakeClock` only
moves when a test steps it (firing the timers that became due).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """A scheduled callback that can be cancelled (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic seconds and timers on the same time base.

    Never wall-clock time: expiry and backoff must not jump with NTP.
    """

    def now(self) -> float:
        """The current time in seconds (only differences are meaningful)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` (on the event loop) once ``delay`` seconds have passed on this clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until ``seconds`` have passed on this clock."""
        ...


class MonotonicClock:
    """The real clock: :func:`time.monotonic` and the running event loop's timers."""

    def now(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


MONOTONIC = MonotonicClock()

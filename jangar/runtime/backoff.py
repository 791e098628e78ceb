"""Jittered exponential backoff with client-go's reflector constants (800 ms .. 30 s, reset after 2 min)."""

from __future__ import annotations

import random

from jangar.runtime.clock import MONOTONIC, Clock


class Backoff:
    """``initial * factor**n`` capped at ``cap``, plus up to ``jitter`` times that at random.

    The step count resets when no backoff was needed for ``reset_after`` seconds, so a
    component that failed once an hour is not punished with the cap forever.
    """

    def __init__(
        self,
        initial: float = 0.8,
        cap: float = 30.0,
        factor: float = 2.0,
        jitter: float = 1.0,
        reset_after: float = 120.0,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.reset_after = reset_after
        self._clock = clock
        self._steps = 0
        self._last: float | None = None

    def next(self) -> float:
        """The next delay to sleep."""
        now = self._clock.now()
        if self._last is not None and now - self._last > self.reset_after:
            self._steps = 0
        self._last = now
        base = min(self.cap, self.initial * (self.factor**self._steps))
        self._steps += 1
        return base * (1.0 + self.jitter * random.random())

    def reset(self) -> None:
        self._steps = 0
        self._last = None

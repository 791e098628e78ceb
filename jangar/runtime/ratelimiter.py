"""Rate limiters that decide how long a failed key waits before it is retried.

Same rules and defaults as client-go's ``util/workqueue/default_rate_limiters.go``: a
per-item exponential backoff (5 ms doubling to 1000 s for controllers), a global token
bucket (10 per second, burst 100), and a max-of combinator. A limiter is consulted by
:meth:`jangar.runtime.workqueue.WorkQueue.add_rate_limited`; ``forget`` resets an item
after a success.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from jangar.runtime.clock import MONOTONIC, Clock

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[K_contra]):
    """Decides a retry delay per item."""

    def when(self, item: K_contra) -> float:
        """Seconds to wait before ``item`` is retried; counts as one more failure."""
        ...

    def forget(self, item: K_contra) -> None:
        """Stop tracking ``item`` (it succeeded); its backoff starts over."""
        ...

    def num_requeues(self, item: K_contra) -> int:
        """How many failures are currently counted for ``item``."""
        ...


class ItemExponentialFailureRateLimiter(Generic[K]):
    """``base * 2**n`` where ``n`` is the failures counted before this call, capped at ``max_delay``."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[K, int] = {}

    def when(self, item: K) -> float:
        n = self._failures.get(item, 0)
        self._failures[item] = n + 1
        if n >= 1024:  # 2**1024 overflows a float; the cap was reached long before.
            return self.max_delay
        return min(self.base_delay * (2.0**n), self.max_delay)

    def forget(self, item: K) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: K) -> int:
        return self._failures.get(item, 0)


class ItemFastSlowRateLimiter(Generic[K]):
    """``fast_delay`` for the first ``max_fast_attempts`` failures of an item, then ``slow_delay``."""

    def __init__(self, fast_delay: float, slow_delay: float, max_fast_attempts: int) -> None:
        self.fast_delay = fast_delay
        self.slow_delay = slow_delay
        self.max_fast_attempts = max_fast_attempts
        self._failures: dict[K, int] = {}

    def when(self, item: K) -> float:
        n = self._failures.get(item, 0) + 1
        self._failures[item] = n
        return self.fast_delay if n <= self.max_fast_attempts else self.slow_delay

    def forget(self, item: K) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: K) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter(Generic[K]):
    """A global token bucket: bounds the overall retry rate, whatever the item.

    Like ``golang.org/x/time/rate`` reservations: every call consumes a token, going into
    debt if none is left, and the delay is the time until the debt is repaid. A reservation
    is consumed even when a max-of combinator picks another limiter's longer delay.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = MONOTONIC) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("need qps > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    def when(self, item: K) -> float:
        now = self._clock.now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.qps

    def forget(self, item: K) -> None:
        """Not per item: nothing to forget."""

    def num_requeues(self, item: K) -> int:
        return 0


class MaxOfRateLimiter(Generic[K]):
    """The longest delay of several limiters; ``forget`` goes to all of them."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("need at least one limiter")
        self.limiters = limiters

    def when(self, item: K) -> float:
        # Every limiter must see the failure (the bucket consumes a token), so no short-circuit.
        return max([limiter.when(item) for limiter in self.limiters])

    def forget(self, item: K) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


class WithMaxWaitRateLimiter(Generic[K]):
    """Caps any delay of the wrapped limiter at ``max_wait``."""

    def __init__(self, limiter: RateLimiter[K], max_wait: float) -> None:
        self.limiter = limiter
        self.max_wait = max_wait

    def when(self, item: K) -> float:
        return min(self.limiter.when(item), self.max_wait)

    def forget(self, item: K) -> None:
        self.limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        return self.limiter.num_requeues(item)


def default_controller_rate_limiter(clock: Clock = MONOTONIC) -> MaxOfRateLimiter[str]:
    """controller-runtime's default: max of exponential (5 ms .. 1000 s) and bucket (10 qps, burst 100)."""
    return MaxOfRateLimiter[str](
        ItemExponentialFailureRateLimiter[str](0.005, 1000.0),
        BucketRateLimiter[str](10.0, 100, clock),
    )

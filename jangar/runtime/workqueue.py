"""A de-duplicating, delaying, rate-limited work queue for asyncio.

Guarantees (the same as client-go's ``util/workqueue``):

* a key added several times before a worker takes it is handed out once (dedupe);
* a key is never handed to two workers at once (the ``processing`` set);
* a key added while it is being processed is handed out again after :meth:`WorkQueue.done`
  (the ``dirty`` set), exactly once however often it was added meanwhile;
* :meth:`WorkQueue.shutdown` stops accepting new keys but still hands out the queued ones,
  and :meth:`WorkQueue.shutdown_with_drain` also waits for in-flight keys to be ``done``.

On top of that each key carries a priority (higher first, FIFO within a priority), so keys
enqueued by an initial list or a resync (:data:`LOW_PRIORITY`) do not delay real changes;
re-adding a queued key keeps its highest priority, as controller-runtime's priority queue does.

All state transitions happen without an ``await`` in between, so no lock is needed: the
event loop is the lock. Delays and the duration metrics use the queue's
:class:`~jangar.runtime.clock.Clock` (a :class:`~jangar.runtime.testing.FakeClock` in tests).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

from jangar.runtime.clock import MONOTONIC, Clock, Timer
from jangar.runtime.ratelimiter import RateLimiter

K = TypeVar("K", bound=Hashable)

LOW_PRIORITY = -100
"""Priority for keys from an initial list or a resync (controller-runtime's ``LowPriority``)."""


class QueueShutDown(Exception):
    """Raised by :meth:`WorkQueue.get` once the queue is shut down and empty."""


class QueueMetrics(Protocol):
    """Receives the queue's events; the Prometheus implementation lives in :mod:`.metrics`.

    Kept as a protocol with a no-op default (client-go's ``MetricsProvider`` pattern) so the
    queue has no dependency on Prometheus and unnamed queues cost nothing.
    """

    def added(self) -> None:
        """A key was enqueued (not counted when de-duplicated)."""

    def got(self, queued_seconds: float) -> None:
        """A key was handed to a worker after waiting ``queued_seconds`` since its first add."""

    def done(self, work_seconds: float) -> None:
        """A worker finished a key after ``work_seconds``."""

    def retried(self) -> None:
        """A key was re-added with a delay."""

    def watch_processing(self, probe: Callable[[], tuple[float, float]]) -> None:
        """Register a probe returning (unfinished work seconds, longest running seconds)."""


class NoopQueueMetrics:
    """Metrics that go nowhere."""

    def added(self) -> None:
        pass

    def got(self, queued_seconds: float) -> None:
        pass

    def done(self, work_seconds: float) -> None:
        pass

    def retried(self) -> None:
        pass

    def watch_processing(self, probe: Callable[[], tuple[float, float]]) -> None:
        pass


class WorkQueue(Generic[K]):
    """The controller work queue: dedupe, per-key exclusion, delays, priorities and rate limits."""

    def __init__(
        self,
        rate_limiter: RateLimiter[K] | None = None,
        *,
        name: str = "",
        metrics: QueueMetrics | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.name = name
        self.clock = clock
        self._rate_limiter = rate_limiter
        self._metrics: QueueMetrics = metrics or NoopQueueMetrics()
        self._metrics.watch_processing(self._processing_probe)
        self._seq = itertools.count()
        # Ready heap of (-priority, seq, key); an entry is live only if _queued[key] == seq.
        self._heap: list[tuple[int, int, K]] = []
        self._queued: dict[K, int] = {}
        self._dirty: dict[K, int] = {}  # key -> highest priority requested while dirty
        self._processing: dict[K, float] = {}  # key -> monotonic start time
        self._first_added: dict[K, float] = {}
        self._timers: dict[K, tuple[float, Timer]] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._drained: asyncio.Event | None = None

    # -- adding -------------------------------------------------------------------------

    def add(self, item: K, priority: int = 0) -> None:
        """Mark ``item`` as needing processing. Ignored after shutdown."""
        if self._shutting_down:
            return
        current = self._dirty.get(item)
        if current is not None:
            if priority > current:
                self._dirty[item] = priority
                if item in self._queued:
                    self._push(item, priority)  # re-prioritise; the old entry becomes stale
            return
        self._dirty[item] = priority
        self._first_added.setdefault(item, self.clock.now())
        self._metrics.added()
        if item in self._processing:
            return  # done() re-queues it
        self._push(item, priority)

    def add_after(self, item: K, delay: float, priority: int = 0) -> None:
        """Add ``item`` after ``delay`` seconds; if already waiting, the earlier time wins.

        Like client-go's delaying queue, an item can be both waiting and queued: an immediate
        :meth:`add` does not cancel a pending delayed add.
        """
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item, priority)
            return
        self._metrics.retried()
        when = self.clock.now() + delay
        pending = self._timers.get(item)
        if pending is not None:
            if pending[0] <= when:
                return
            pending[1].cancel()
        timer = self.clock.call_later(delay, lambda: self._fire(item, priority))
        self._timers[item] = (when, timer)

    def add_rate_limited(self, item: K, priority: int = 0) -> None:
        """Add ``item`` after the delay its rate limiter decides (one more failure counted)."""
        if self._rate_limiter is None:
            raise RuntimeError("this queue has no rate limiter")
        self.add_after(item, self._rate_limiter.when(item), priority)

    def forget(self, item: K) -> None:
        """Reset the rate limiter's memory of ``item`` (call after a success; still call ``done``)."""
        if self._rate_limiter is not None:
            self._rate_limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        return self._rate_limiter.num_requeues(item) if self._rate_limiter is not None else 0

    def _fire(self, item: K, priority: int) -> None:
        self._timers.pop(item, None)
        self.add(item, priority)

    def _push(self, item: K, priority: int) -> None:
        seq = next(self._seq)
        self._queued[item] = seq
        heapq.heappush(self._heap, (-priority, seq, item))
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    # -- taking -------------------------------------------------------------------------

    async def get(self) -> K:
        """Wait for the next key and mark it as processing. Call :meth:`done` when finished.

        Raises :class:`QueueShutDown` once the queue is shut down and nothing is queued.
        """
        while True:
            item = self._pop()
            if item is not None:
                return item[0]
            if self._shutting_down:
                raise QueueShutDown(self.name)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # A wake-up delivered to a cancelled getter must go to another getter.
                if waiter.done() and not waiter.cancelled() and self._queued:
                    self._wake_one()
                raise

    def get_nowait(self) -> K | None:
        """The next key if one is ready, else ``None``."""
        item = self._pop()
        return item[0] if item is not None else None

    def _pop(self) -> tuple[K] | None:
        while self._heap:
            _, seq, item = heapq.heappop(self._heap)
            if self._queued.get(item) != seq:
                continue  # stale entry (re-prioritised)
            del self._queued[item]
            del self._dirty[item]
            now = self.clock.now()
            self._processing[item] = now
            self._metrics.got(now - self._first_added.pop(item, now))
            return (item,)
        return None

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def done(self, item: K) -> None:
        """Finish processing ``item``; if it was added meanwhile it is queued again."""
        started = self._processing.pop(item, None)
        if started is None:
            return
        self._metrics.done(self.clock.now() - started)
        priority = self._dirty.get(item)
        if priority is not None:
            self._push(item, priority)
        if not self._processing and self._drained is not None:
            self._drained.set()

    # -- shutdown -----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop accepting keys, drop delayed ones, wake all getters (they drain the ready keys)."""
        self._shutting_down = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def shutdown_with_drain(self, timeout: float | None = None) -> bool:
        """Shut down, then wait until every queued and in-flight key is ``done``.

        Returns ``False`` if ``timeout`` expired first. Needs workers that keep calling
        :meth:`get` until :class:`QueueShutDown`.
        """
        self.shutdown()
        if not self._processing and not self._queued:
            return True
        self._drained = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                while self._processing or self._queued:
                    self._drained.clear()
                    await self._drained.wait()
        except TimeoutError:
            return False
        return True

    # -- introspection ------------------------------------------------------------------

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Keys ready to be handed out (not in-flight, not waiting on a delay)."""
        return len(self._queued)

    @property
    def processing(self) -> int:
        return len(self._processing)

    @property
    def waiting(self) -> int:
        """Keys waiting on a delayed add."""
        return len(self._timers)

    def is_processing(self, item: K) -> bool:
        return item in self._processing

    def _processing_probe(self) -> tuple[float, float]:
        if not self._processing:
            return 0.0, 0.0
        now = self.clock.now()
        ages = [now - t for t in self._processing.values()]
        return sum(ages), max(ages)

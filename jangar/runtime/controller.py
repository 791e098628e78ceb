"""A controller: a work queue of requests, workers that reconcile them, and the result rules.

Outcome handling matches controller-runtime:

======================  ==========================================  ==================
outcome                 queue action                                ``result`` label
======================  ==========================================  ==================
exception               ``add_rate_limited`` (exponential backoff)  ``error``
:class:`TerminalError`  none                                        ``error``
per-reconcile timeout   ``add_rate_limited``                        ``error``
``requeue_after > 0``   ``forget`` then ``add_after``               ``requeue_after``
``requeue=True``        ``add_rate_limited``                        ``requeue``
``None``/empty result   ``forget``                                  ``success``
======================  ==========================================  ==================

A key is never reconciled by two workers at once (the queue guarantees it), and a change
during a reconcile causes exactly one more pass afterwards.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from jangar.runtime.cache import Cache
from jangar.runtime.handler import EnqueueHandler, Mapper
from jangar.runtime.log import bind_reconcile_context
from jangar.runtime.metrics import RuntimeMetrics
from jangar.runtime.predicate import Predicate
from jangar.runtime.ratelimiter import ItemExponentialFailureRateLimiter, RateLimiter
from jangar.runtime.reconcile import ReconcileFunc, Request, Result, TerminalError
from jangar.runtime.resources import ResourceRef
from jangar.runtime.workqueue import QueueShutDown, WorkQueue

log = structlog.get_logger("jangar.runtime.controller")


def default_rate_limiter() -> RateLimiter[Request]:
    """Per-item exponential 5 ms .. 1000 s: controller-runtime's default with its priority queue
    (the 10 qps bucket would throttle a whole controller because of one failing key)."""
    return ItemExponentialFailureRateLimiter[Request](0.005, 1000.0)


@dataclass
class ControllerOptions:
    max_concurrent_reconciles: int = 1
    reconcile_timeout: float | None = None
    """Seconds before a reconcile is cancelled and retried with backoff (None: no limit)."""
    cache_sync_timeout: float = 120.0
    rate_limiter: Callable[[], RateLimiter[Request]] = field(default=default_rate_limiter)
    need_leader_election: bool = True


class CacheSyncTimeout(RuntimeError):
    """The controller's caches did not sync within ``cache_sync_timeout``."""


class Controller:
    """Runs a reconciler over a queue fed by informer events. Usually built with :class:`Builder`."""

    def __init__(
        self,
        name: str,
        reconcile: ReconcileFunc,
        cache: Cache,
        metrics: RuntimeMetrics,
        options: ControllerOptions | None = None,
    ) -> None:
        self.name = name
        self.options = options or ControllerOptions()
        if self.options.max_concurrent_reconciles < 1:
            raise ValueError("max_concurrent_reconciles must be >= 1")
        self._reconcile = reconcile
        self.cache = cache
        self.metrics = metrics
        self.queue: WorkQueue[Request] = WorkQueue(
            self.options.rate_limiter(), name=name, metrics=metrics.queue_metrics(name)
        )
        self._watched: list[ResourceRef] = []
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._log = log.bind(controller=name)
        m = metrics
        self._m_total = {
            r: m.reconcile_total.labels(name, r) for r in ("success", "error", "requeue", "requeue_after")
        }
        self._m_errors = m.reconcile_errors_total.labels(name)
        self._m_terminal = m.terminal_reconcile_errors_total.labels(name)
        self._m_timeouts = m.reconcile_timeouts_total.labels(name)
        self._m_time = m.reconcile_time_seconds.labels(name)
        self._m_active = m.active_workers.labels(name)

    @property
    def need_leader_election(self) -> bool:
        return self.options.need_leader_election

    def watch(self, ref: ResourceRef, mapper: Mapper, predicates: tuple[Predicate, ...] = ()) -> None:
        """Enqueue the requests ``mapper`` derives from every event on ``ref`` that passes ``predicates``."""
        self.cache.add_event_handler(ref, EnqueueHandler(self.queue, mapper, predicates))
        self._watched.append(ref)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Wait for the watched caches, then start the workers (returns once they run)."""
        self.metrics.init_controller(self.name, self.options.max_concurrent_reconciles)
        groups = [self.cache.informer(ref) for ref in self._watched]
        try:
            async with asyncio.timeout(self.options.cache_sync_timeout):
                for g in groups:
                    for inf in g.informers.values():
                        await inf.wait_for_sync()
        except TimeoutError as exc:
            raise CacheSyncTimeout(
                f"controller {self.name}: caches not synced in {self.options.cache_sync_timeout}s"
            ) from exc
        self._workers = [
            asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
            for i in range(self.options.max_concurrent_reconciles)
        ]
        self._log.info("controller started", workers=len(self._workers))

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work; let in-flight reconciles finish for up to ``timeout`` s, then cancel them."""
        self._stopping = True
        self.queue.shutdown()
        if self._workers:
            _, pending = await asyncio.wait(self._workers, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            if pending:
                self._log.warning("reconciles cancelled at shutdown", count=len(pending))
        self._workers = []

    # -- workers ------------------------------------------------------------------------------

    async def _worker(self) -> None:
        queue = self.queue
        while not self._stopping:
            try:
                req = await queue.get()
            except QueueShutDown:
                return
            if self._stopping:
                queue.done(req)
                return
            self._m_active.inc()
            try:
                await self.reconcile_handler(req)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in result handling must not kill the worker
                self._log.exception("unexpected error handling a reconcile", request=str(req))
            finally:
                self._m_active.dec()
                queue.done(req)

    async def reconcile_handler(self, req: Request) -> None:
        """Reconcile one request and apply the result rules (public for tests and tools)."""
        # Not uuid4(): that reads os.urandom per call (measured ~0.3 ms on a busy VM); an id
        # for log correlation needs uniqueness, not unpredictability.
        reconcile_id = uuid.UUID(int=random.getrandbits(128), version=4).hex
        started = time.monotonic()
        queue = self.queue
        with bind_reconcile_context(self.name, req.namespace, req.name, reconcile_id):
            try:
                timeout = self.options.reconcile_timeout
                deadline = asyncio.timeout(timeout)
                try:
                    async with deadline:
                        result = await self._call(req)
                except TimeoutError:
                    if not deadline.expired():
                        raise
                    self._m_timeouts.inc()
                    raise TimeoutError(f"reconcile exceeded {timeout}s") from None
            except asyncio.CancelledError:
                raise
            except TerminalError as exc:
                self._m_errors.inc()
                self._m_terminal.inc()
                self._m_total["error"].inc()
                self._log.error("reconcile failed terminally", request=str(req), error=str(exc))
                return
            except Exception as exc:
                self._m_errors.inc()
                self._m_total["error"].inc()
                queue.add_rate_limited(req)
                self._log.error(
                    "reconcile failed",
                    request=str(req),
                    error=repr(exc),
                    retries=queue.num_requeues(req),
                    exc_info=not isinstance(exc, TimeoutError),
                )
                return
            finally:
                self._m_time.observe(time.monotonic() - started)
        if result is not None and result.requeue_after and result.requeue_after > 0:
            queue.forget(req)
            queue.add_after(req, result.requeue_after)
            self._m_total["requeue_after"].inc()
        elif result is not None and result.requeue:
            queue.add_rate_limited(req)
            self._m_total["requeue"].inc()
        else:
            queue.forget(req)
            self._m_total["success"].inc()

    def _call(self, req: Request) -> Awaitable[Result | None]:
        return self._reconcile(req)

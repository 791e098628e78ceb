"""A controller: a work queue of requests, workers that reconcile them, and the result rules.

Outcome handling matches controller-runtime:

======================  ==========================================  ==================
outcome                 queue action                                ``result`` label
======================  ==========================================  ==================
exception               ``add_rate_limited`` (exponential backoff)  ``error``
:class:`TerminalError`  none                                        ``error``
per-reconcile timeout   ``add_rate_limited``                        ``error``
:class:`ConflictError`  ``add_rate_limited``, logged at debug       ``error``
``requeue_after > 0``   ``forget`` then ``add_after``               ``requeue_after``
``None``/empty result   ``forget``                                  ``success``
======================  ==========================================  ==================

There is no ``Result(requeue=True)`` (controller-runtime deprecated ``Result.Requeue``): a
reconciler that wants a rate-limited retry raises. A 409 (:class:`ConflictError`, including
``AlreadyExists``) is the normal outcome of acting on a stale cache, so it is retried with
backoff like any error but logged at debug level without a traceback, and counted in
``reconcile_errors_total`` as controller-runtime does.

A worker that dies (a bug outside the reconciler, which is already guarded) is reported to
the failure handler the manager installs, so the manager stops instead of running with one
worker less.

A key is never reconciled by two workers at once (the queue guarantees it), and a change
during a reconcile causes exactly one more pass afterwards.

Under leader election the manager installs a *leader fence* (``set_leader_check``): a worker
checks it right before each reconcile and, when it is false (the lease was not renewed within
the renew deadline), puts the request back (``add_after``, ``FENCED_RETRY`` s) instead of
acting. The manager stops the controller soon after; the fence closes the window between the
clock passing the deadline and that stop actually running.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from jangar.runtime.cache import Cache
from jangar.runtime.clock import MONOTONIC, Clock
from jangar.runtime.errors import ConflictError
from jangar.runtime.fence import LEADER_FENCE
from jangar.runtime.handler import EnqueueHandler, Mapper
from jangar.runtime.log import bind_reconcile_context
from jangar.runtime.metrics import RuntimeMetrics
from jangar.runtime.predicate import Predicate
from jangar.runtime.ratelimiter import ItemExponentialFailureRateLimiter, RateLimiter
from jangar.runtime.reconcile import ReconcileFunc, Request, Result, TerminalError
from jangar.runtime.resources import ResourceRef
from jangar.runtime.workqueue import QueueShutDown, WorkQueue

log = structlog.get_logger("jangar.runtime.controller")

FENCED_RETRY = 1.0
"""Seconds after which a request refused by the leader fence is offered again."""


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
    """A factory: every controller gets its own limiter."""
    need_leader_election: bool = True
    clock: Clock = MONOTONIC
    """Time for the work queue's delays and the reconcile-duration metric (tests: a FakeClock)."""


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
        self.clock = self.options.clock
        self.queue: WorkQueue[Request] = WorkQueue(
            self.options.rate_limiter(), name=name, metrics=metrics.queue_metrics(name), clock=self.clock
        )
        self._watched: list[ResourceRef] = []
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._on_failure: Callable[[BaseException], None] | None = None
        self._leader_check: Callable[[], bool] | None = None
        self.fenced = 0
        """Requests the leader fence refused (put back instead of reconciled)."""
        self._log = log.bind(controller=name)
        m = metrics
        self._m_total = {r: m.reconcile_total.labels(name, r) for r in ("success", "error", "requeue_after")}
        self._m_errors = m.reconcile_errors_total.labels(name)
        self._m_terminal = m.terminal_reconcile_errors_total.labels(name)
        self._m_timeouts = m.reconcile_timeouts_total.labels(name)
        self._m_time = m.reconcile_time_seconds.labels(name)
        self._m_active = m.active_workers.labels(name)

    @property
    def need_leader_election(self) -> bool:
        return self.options.need_leader_election

    def set_failure_handler(self, handler: Callable[[BaseException], None]) -> None:
        """Called (once per dead worker) if a worker task dies; the manager installs one."""
        self._on_failure = handler

    def set_leader_check(self, check: Callable[[], bool] | None) -> None:
        """A predicate checked before every reconcile; the manager installs its elector's ``holds_lease``."""
        self._leader_check = check

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
                    for inf in g.all_informers:
                        await inf.wait_for_sync()
        except TimeoutError as exc:
            raise CacheSyncTimeout(
                f"controller {self.name}: caches not synced in {self.options.cache_sync_timeout}s"
            ) from exc
        self._workers = [
            asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
            for i in range(self.options.max_concurrent_reconciles)
        ]
        for task in self._workers:
            task.add_done_callback(self._worker_done)
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

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping:
            return
        exc = task.exception()
        if exc is None:
            exc = RuntimeError(f"worker {task.get_name()} exited while the controller was running")
        if self._on_failure is not None:
            died = RuntimeError(f"worker {task.get_name()} died: {exc!r}")
            died.__cause__ = exc
            self._on_failure(died)
        else:  # not run by a manager: at least say so
            self._log.error("controller worker died", worker=task.get_name(), error=repr(exc))

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
            check = self._leader_check
            if check is not None and not check():
                self.fenced += 1
                queue.done(req)
                queue.add_after(req, FENCED_RETRY)
                continue
            self._m_active.inc()
            token = LEADER_FENCE.set(check) if check is not None else None
            try:
                await self.reconcile_handler(req)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in result handling must not kill the worker
                self._log.exception("unexpected error handling a reconcile", request=str(req))
            finally:
                if token is not None:
                    LEADER_FENCE.reset(token)
                self._m_active.dec()
                queue.done(req)

    async def reconcile_handler(self, req: Request) -> None:
        """Reconcile one request and apply the result rules (public for tests and tools)."""
        # Not uuid4(): that reads os.urandom per call (measured ~0.3 ms on a busy VM); an id
        # for log correlation needs uniqueness, not unpredictability.
        reconcile_id = uuid.UUID(int=random.getrandbits(128), version=4).hex
        started = self.clock.now()
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
            except ConflictError as exc:
                self._m_errors.inc()
                self._m_total["error"].inc()
                queue.add_rate_limited(req)
                self._log.debug(
                    "conflict, retrying", request=str(req), error=str(exc), retries=queue.num_requeues(req)
                )
                return
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
                self._m_time.observe(self.clock.now() - started)
        if result is not None and result.requeue_after and result.requeue_after > 0:
            queue.forget(req)
            queue.add_after(req, result.requeue_after)
            self._m_total["requeue_after"].inc()
        else:
            queue.forget(req)
            self._m_total["success"].inc()

    def _call(self, req: Request) -> Awaitable[Result | None]:
        return self._reconcile(req)

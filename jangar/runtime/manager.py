"""The manager: owns the client, cache, metrics, HTTP probes and runnables, and their order.

Start order (controller-runtime's runnable groups): HTTP server (``/healthz``, ``/readyz``,
``/metrics``) first so probes answer during start-up; then caches; then runnables that do
not need leadership; then leader election, and once elected the runnables that do
(controllers, by default). Caches run on every replica, so a standby is warm when it wins.

Shutdown (SIGTERM/SIGINT, :meth:`Manager.stop`, or lost leadership): stop taking work,
let in-flight reconciles finish within ``graceful_shutdown_timeout``, release the lease,
then stop the rest in reverse order. Losing leadership skips the grace period and makes
:meth:`Manager.start` raise :class:`LeaderLost`: the process must exit. Controllers also get
the elector's ``holds_lease`` as a fence checked before each reconcile (:class:`LeaderFenced`),
so none starts after the renew deadline passed, even before the stop has run.

A runnable that fails — its ``start()`` raises, or it reports a crash later through the
failure handler the manager installs (``set_failure_handler``; :class:`FuncRunnable` and
controllers do) — is logged once, naming it, the others are stopped gracefully, and
:meth:`Manager.start` raises :class:`RunnableFailed`: the process must exit non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import structlog
from aiohttp import web

from jangar.runtime.cache import Cache, CacheOptions
from jangar.runtime.client import Client
from jangar.runtime.events import EventRecorder
from jangar.runtime.healthz import Check, Checks, ping
from jangar.runtime.leaderelection import LeaderElectionOptions, LeaderElector, LeaderLost
from jangar.runtime.metrics import RuntimeMetrics

log = structlog.get_logger("jangar.runtime.manager")


@runtime_checkable
class Runnable(Protocol):
    """Something the manager starts and stops. ``start`` returns once it is running."""

    async def start(self) -> None: ...

    async def stop(self, timeout: float) -> None: ...


@runtime_checkable
class Supervised(Protocol):
    """A runnable that can report a crash after ``start()`` returned (e.g. a background task died).

    The manager calls ``set_failure_handler`` before ``start()``; calling the handler stops the
    manager (:class:`RunnableFailed`).
    """

    def set_failure_handler(self, handler: Callable[[BaseException], None]) -> None: ...


@runtime_checkable
class LeaderFenced(Protocol):
    """A leader runnable that checks leadership before each unit of work (controllers do).

    The manager passes :meth:`LeaderElector.holds_lease` before starting it.
    """

    def set_leader_check(self, check: Callable[[], bool] | None) -> None: ...


class RunnableFailed(RuntimeError):
    """A runnable failed to start or crashed; the manager stopped the others and the process should exit."""

    def __init__(self, runnable: str, error: BaseException) -> None:
        super().__init__(f"runnable {runnable!r} failed: {error!r}")
        self.runnable = runnable
        self.error = error


def runnable_name(runnable: object) -> str:
    """``runnable.name`` if it has one, else its class name (used in logs and errors)."""
    name = getattr(runnable, "name", None)
    return name if isinstance(name, str) and name else type(runnable).__name__


class FuncRunnable:
    """Wraps a long-running coroutine function as a runnable; stopping cancels it.

    If the coroutine raises, the failure is reported to the manager, which stops; if it
    returns, the runnable is simply done.
    """

    def __init__(
        self, func: Callable[[], Coroutine[Any, Any, None]], name: str = "", need_leader_election: bool = True
    ) -> None:
        self.func = func
        self.name = name or getattr(func, "__name__", "runnable")
        self.need_leader_election = need_leader_election
        self._task: asyncio.Task[None] | None = None
        self._on_failure: Callable[[BaseException], None] | None = None

    def set_failure_handler(self, handler: Callable[[BaseException], None]) -> None:
        self._on_failure = handler

    async def start(self) -> None:
        self._task = asyncio.create_task(self.func(), name=self.name)
        self._task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self._on_failure is not None:
            self._on_failure(exc)

    async def stop(self, timeout: float) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout)


@dataclass
class ManagerOptions:
    bind_address: str | None = ":8080"
    """Where ``/metrics``, ``/healthz`` and ``/readyz`` are served (``host:port``; port 0 picks
    a free one; ``None`` disables the server)."""
    leader_election: LeaderElectionOptions | None = None
    graceful_shutdown_timeout: float = 30.0
    cache: CacheOptions = field(default_factory=CacheOptions)
    cache_sync_timeout: float = 120.0
    reporting_instance: str | None = None
    """``reportingInstance`` of recorded Events (this replica); default: the host name, which
    is the pod name in a pod."""
    event_flush_timeout: float = 5.0
    """At shutdown, how long buffered Events may take to be written before they are dropped."""
    metrics_path: str | None = "/metrics"
    """Where the Prometheus exposition is served on the probe server; ``None`` serves none (404)."""
    metrics_twin_names: bool = True
    """Also expose every ``jangar_*`` family as ``agents_*`` (the 0.9.29 names, `jangar.runtime.metric_names`)."""


class Manager:
    """Create one per process; add controllers with :class:`~jangar.runtime.builder.Builder`."""

    def __init__(self, client: Client, options: ManagerOptions | None = None) -> None:
        self.options = options or ManagerOptions()
        self.metrics = RuntimeMetrics(twin_names=self.options.metrics_twin_names)
        self.client = client.with_metrics(self.metrics)
        self.cache = Cache(self.client, self.options.cache)
        self.healthz = Checks("/healthz")
        self.readyz = Checks("/readyz")
        self.healthz.add("ping", ping)
        self.healthz.add("informers", self.cache.healthy)
        self.readyz.add("cache-sync", self.cache.has_synced)
        self.elector: LeaderElector | None = None
        if self.options.leader_election is not None:
            self.elector = LeaderElector(self.client, self.options.leader_election, metrics=self.metrics)
        self._leader_runnables: list[Runnable] = []
        self._other_runnables: list[Runnable] = []
        self._started: list[Runnable] = []
        self._stop = asyncio.Event()
        self._app = web.Application()
        if self.options.metrics_path:
            self._app.router.add_get(self.options.metrics_path, self._metrics)
        self._runner: web.AppRunner | None = None
        self.http_port: int | None = None
        self._controller_names: set[str] = set()
        self._signals: list[signal.Signals] = []
        self._recorders: dict[str, EventRecorder] = {}
        self._failure: tuple[str, BaseException] | None = None
        self._shutting_down = False

    # -- registration -------------------------------------------------------------------------

    def add(self, runnable: Runnable, need_leader_election: bool | None = None) -> None:
        """Add a runnable; by default it needs leadership unless it says otherwise."""
        if need_leader_election is None:
            need_leader_election = bool(getattr(runnable, "need_leader_election", True))
        (self._leader_runnables if need_leader_election else self._other_runnables).append(runnable)

    def add_func(
        self,
        func: Callable[[], Coroutine[Any, Any, None]],
        *,
        name: str = "",
        need_leader_election: bool = True,
    ) -> None:
        self.add(FuncRunnable(func, name, need_leader_election), need_leader_election)

    def add_healthz_check(self, name: str, check: Check) -> None:
        self.healthz.add(name, check)

    def add_readyz_check(self, name: str, check: Check) -> None:
        self.readyz.add(name, check)

    @property
    def app(self) -> web.Application:
        """The aiohttp app serving probes and metrics; add routes before :meth:`start`."""
        return self._app

    def event_recorder(self, component: str) -> EventRecorder:
        """The :class:`EventRecorder` for ``component`` (controller-runtime's ``GetEventRecorderFor``).

        One per component; its ``reportingInstance`` is ``options.reporting_instance``. The
        manager flushes it at shutdown (within ``event_flush_timeout``).
        """
        recorder = self._recorders.get(component)
        if recorder is None:
            instance = self.options.reporting_instance or socket.gethostname()
            recorder = self._recorders[component] = EventRecorder(self.client, component, instance=instance)
        return recorder

    get_event_recorder = event_recorder

    def register_controller_name(self, name: str) -> None:
        if name in self._controller_names:
            raise ValueError(f"a controller named {name!r} already exists")
        self._controller_names.add(name)

    # -- running ------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT request a graceful stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
            self._signals.append(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("signal received, shutting down gracefully", signal=sig.name)
        self._stop.set()

    def request_stop(self) -> None:
        """Ask :meth:`start` to shut down gracefully (safe from signal handlers and tasks)."""
        self._stop.set()

    def _fail(self, name: str, error: BaseException) -> None:
        """Record the first runnable failure and stop; later failures are only logged briefly."""
        if self._failure is not None or self._shutting_down:
            # Already stopping: a crash while being stopped does not change the outcome.
            log.warning("runnable failed while the manager was stopping", runnable=name, error=repr(error))
            return
        self._failure = (name, error)
        log.error(
            "runnable failed, stopping the manager",
            runnable=name,
            error=repr(error),
            exc_info=(type(error), error, error.__traceback__),
        )
        self._stop.set()

    async def _start_runnable(self, r: Runnable) -> bool:
        """Start ``r``; on failure report it and return ``False`` (also if another already failed)."""
        if self._failure is not None:
            return False
        name = runnable_name(r)
        if isinstance(r, Supervised):
            r.set_failure_handler(lambda exc: self._fail(name, exc))
        try:
            await r.start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(name, exc)
            return False
        self._started.append(r)
        return True

    async def start(self) -> None:
        """Run until stopped.

        Raises :class:`LeaderLost` if leadership is lost and :class:`RunnableFailed` if a
        runnable failed to start or crashed (after stopping everything else).
        """
        elector_task: asyncio.Task[None] | None = None
        lost = False
        self._failure = None
        self._shutting_down = False
        try:
            await self._start_http()
            self.cache.start()
            if not await self.cache.wait_for_sync(self.options.cache_sync_timeout):
                log.error("caches did not sync, stopping", timeout=self.options.cache_sync_timeout)
                raise TimeoutError(f"caches did not sync within {self.options.cache_sync_timeout}s")
            for r in self._other_runnables:
                if not await self._start_runnable(r):
                    return
            if self.elector is not None:
                elector_task = asyncio.create_task(self.elector.run(), name="leader-election")
                stop_wait = asyncio.create_task(self._stop.wait())
                elected = asyncio.create_task(self.elector.elected.wait())
                await asyncio.wait({stop_wait, elected, elector_task}, return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                elected.cancel()
                if elector_task.done() and not elector_task.cancelled() and elector_task.exception():
                    raise RuntimeError("leader election failed") from elector_task.exception()
                if self._stop.is_set() or not self.elector.elected.is_set():
                    return
            for r in self._leader_runnables:
                if self.elector is not None and isinstance(r, LeaderFenced):
                    r.set_leader_check(self.elector.holds_lease)
                if not await self._start_runnable(r):
                    return
            log.info("manager started", runnables=len(self._started))
            waits = [asyncio.create_task(self._stop.wait())]
            if self.elector is not None:
                waits.append(asyncio.create_task(self.elector.lost.wait()))
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            lost = self.elector is not None and self.elector.lost.is_set()
        finally:
            await self._shutdown(elector_task, lost)
            if self._failure is not None:
                name, error = self._failure
                raise RunnableFailed(name, error) from error
        if lost:
            raise LeaderLost("leader election lost")

    async def _shutdown(self, elector_task: asyncio.Task[None] | None, lost: bool) -> None:
        self._shutting_down = True
        grace = 0.0 if lost else self.options.graceful_shutdown_timeout
        log.info("manager stopping", grace=grace)
        leader = [r for r in self._started if r in self._leader_runnables]
        others = [r for r in self._started if r not in self._leader_runnables]
        self._log_stop_errors(
            leader, await asyncio.gather(*(r.stop(grace) for r in reversed(leader)), return_exceptions=True)
        )
        if elector_task is not None:
            elector_task.cancel()
            await asyncio.gather(elector_task, return_exceptions=True)
            if (
                self.elector is not None
                and self.options.leader_election
                and self.options.leader_election.release_on_cancel
            ):
                await self.elector.release()
        self._log_stop_errors(
            others, await asyncio.gather(*(r.stop(grace) for r in reversed(others)), return_exceptions=True)
        )
        flush = self.options.event_flush_timeout
        await asyncio.gather(*(rec.close(flush) for rec in self._recorders.values()), return_exceptions=True)
        self._started.clear()
        await self.cache.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()
        log.info("manager stopped")

    @staticmethod
    def _log_stop_errors(runnables: list[Runnable], results: list[BaseException | None]) -> None:
        for r, result in zip(reversed(runnables), results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.warning("runnable failed to stop cleanly", runnable=runnable_name(r), error=repr(result))

    async def _start_http(self) -> None:
        addr = self.options.bind_address
        if addr is None:
            return
        host, _, port = addr.rpartition(":")
        for checks in (self.healthz, self.readyz):
            self._app.router.add_routes(checks.routes())
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host or "0.0.0.0", int(port))
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.http_port = sockets[0].getsockname()[1] if sockets else int(port)
        log.info("serving probes and metrics", address=f"{host or '0.0.0.0'}:{self.http_port}")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), content_type="text/plain", charset="utf-8")

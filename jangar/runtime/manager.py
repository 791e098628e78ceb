"""The manager: owns the client, cache, metrics, HTTP probes and runnables, and their order.

Start order (controller-runtime's runnable groups): HTTP server (``/healthz``, ``/readyz``,
``/metrics``) first so probes answer during start-up; then caches; then runnables that do
not need leadership; then leader election, and once elected the runnables that do
(controllers, by default). Caches run on every replica, so a standby is warm when it wins.

Shutdown (SIGTERM/SIGINT, :meth:`Manager.stop`, or lost leadership): stop taking work,
let in-flight reconciles finish within ``graceful_shutdown_timeout``, release the lease,
then stop the rest in reverse order. Losing leadership skips the grace period and makes
:meth:`Manager.start` raise :class:`LeaderLost`: the process must exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
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


class FuncRunnable:
    """Wraps a long-running coroutine function as a runnable; stopping cancels it."""

    def __init__(
        self, func: Callable[[], Coroutine[Any, Any, None]], name: str = "", need_leader_election: bool = True
    ) -> None:
        self.func = func
        self.name = name or getattr(func, "__name__", "runnable")
        self.need_leader_election = need_leader_election
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.func(), name=self.name)

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


class Manager:
    """Create one per process; add controllers with :class:`~jangar.runtime.builder.Builder`."""

    def __init__(self, client: Client, options: ManagerOptions | None = None) -> None:
        self.options = options or ManagerOptions()
        self.metrics = RuntimeMetrics()
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
        self._app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.http_port: int | None = None
        self._controller_names: set[str] = set()
        self._signals: list[signal.Signals] = []
        self._recorders: dict[str, EventRecorder] = {}

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

    def get_event_recorder(self, component: str) -> EventRecorder:
        """An :class:`EventRecorder` for ``component``; pending events are flushed at shutdown."""
        if component not in self._recorders:
            self._recorders[component] = EventRecorder(self.client, component)
        return self._recorders[component]

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

    async def start(self) -> None:
        """Run until stopped. Raises :class:`LeaderLost` if leadership is lost."""
        elector_task: asyncio.Task[None] | None = None
        lost = False
        try:
            await self._start_http()
            self.cache.start()
            if not await self.cache.wait_for_sync(self.options.cache_sync_timeout):
                raise TimeoutError(f"caches did not sync within {self.options.cache_sync_timeout}s")
            for r in self._other_runnables:
                await r.start()
                self._started.append(r)
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
                await r.start()
                self._started.append(r)
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
        if lost:
            raise LeaderLost("leader election lost")

    async def _shutdown(self, elector_task: asyncio.Task[None] | None, lost: bool) -> None:
        grace = 0.0 if lost else self.options.graceful_shutdown_timeout
        log.info("manager stopping", grace=grace)
        leader = [r for r in self._started if r in self._leader_runnables]
        others = [r for r in self._started if r not in self._leader_runnables]
        await asyncio.gather(*(r.stop(grace) for r in reversed(leader)), return_exceptions=True)
        if elector_task is not None:
            elector_task.cancel()
            await asyncio.gather(elector_task, return_exceptions=True)
            if (
                self.elector is not None
                and self.options.leader_election
                and self.options.leader_election.release_on_cancel
            ):
                await self.elector.release()
        await asyncio.gather(*(r.stop(grace) for r in reversed(others)), return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(grace, 1.0)):
                for recorder in self._recorders.values():
                    await recorder.flush()
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

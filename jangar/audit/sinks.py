"""Where audit events go: the `AuditSink` protocol and its three sinks (`JANGAR_AUDIT_SINK_TYPE`).

`emit` never blocks and never raises: an audit event must not slow or fail a reconcile or a submission.
The http sink therefore posts from a background task reading a bounded queue; an event that finds the
queue full, or whose POST fails (error, timeout, non-2xx), is dropped and counted in
`jangar_audit_events_dropped_total{reason}` (events are not retried: the sink is a feed, not a ledger;
Kubernetes Events and the Postgres run records stay the durable history). The configured headers (often an
Authorization token) are sent and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from threading import Lock
from typing import Any, Protocol, TextIO
from weakref import WeakKeyDictionary

import aiohttp
import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from jangar.audit.events import AuditEvent
from jangar.settings import AuditSettings

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "AuditMetrics",
    "AuditSink",
    "HttpSink",
    "NoneSink",
    "SinkCloser",
    "StdoutSink",
    "audit_metrics",
    "build_sink",
]

log = structlog.get_logger("jangar.audit")

DEFAULT_QUEUE_SIZE = 1000
"""Events the http sink holds at most while its POSTs catch up."""


class AuditSink(Protocol):
    """One per process; `emit` returns at once."""

    def emit(self, event: AuditEvent) -> None: ...

    async def close(self, timeout: float = 5.0) -> None: ...


@dataclass(frozen=True, slots=True)
class AuditMetrics:
    emitted: Counter
    dropped: Counter


_lock = Lock()
_by_registry: WeakKeyDictionary[CollectorRegistry, AuditMetrics] = WeakKeyDictionary()


def audit_metrics(registry: CollectorRegistry | None = None) -> AuditMetrics:
    """The audit metrics of `registry` (default: the global one), created once per registry."""
    target = REGISTRY if registry is None else registry
    with _lock:
        found = _by_registry.get(target)
        if found is None:
            found = AuditMetrics(
                emitted=Counter(
                    "jangar_audit_events_total",
                    "Audit events delivered by the configured sink, by sink type.",
                    ["sink"],
                    registry=target,
                ),
                dropped=Counter(
                    "jangar_audit_events_dropped_total",
                    "Audit events the sink dropped instead of blocking: queue_full, error or status.",
                    ["reason"],
                    registry=target,
                ),
            )
            _by_registry[target] = found
        return found


class NoneSink:
    """`none`: audit events are not written anywhere."""

    def emit(self, event: AuditEvent) -> None:
        return None

    async def close(self, timeout: float = 5.0) -> None:
        return None


class StdoutSink:
    """`stdout`: one JSON object per line (a log collector picks them up with the process's logs)."""

    def __init__(self, stream: TextIO | None = None, *, registry: CollectorRegistry | None = None) -> None:
        self.stream = stream
        self.metrics = audit_metrics(registry)

    def emit(self, event: AuditEvent) -> None:
        stream = self.stream or sys.stdout
        try:
            stream.write(json.dumps({"audit": event.as_dict()}, sort_keys=True) + "\n")
            stream.flush()
        except (OSError, ValueError):
            self.metrics.dropped.labels("error").inc()
            return
        self.metrics.emitted.labels("stdout").inc()

    async def close(self, timeout: float = 5.0) -> None:
        return None


class HttpSink:
    """`http`: POST each event as JSON to `url` with `headers`, each POST bounded by `timeout` seconds."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 2.0,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.url = url
        self._headers = {"Content-Type": "application/json", **dict(headers or {})}
        self.timeout = timeout
        self.metrics = audit_metrics(registry)
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=max(1, queue_size))
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def emit(self, event: AuditEvent) -> None:
        if self._closed:
            self.metrics.dropped.labels("closed").inc()
            return
        try:
            self._queue.put_nowait(event.as_dict())
        except asyncio.QueueFull:
            self.metrics.dropped.labels("queue_full").inc()
            return
        if self._task is None:
            try:
                self._task = asyncio.get_running_loop().create_task(self._run(), name="jangar-audit-http")
            except RuntimeError:  # no event loop: the event stays queued for the first emit that has one
                return

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def _run(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        while True:
            body = await self._queue.get()
            try:
                await self._post(body)
            finally:
                self._queue.task_done()

    async def _post(self, body: dict[str, Any]) -> None:
        assert self._session is not None
        try:
            async with self._session.post(self.url, json=body, headers=self._headers) as response:
                if response.status >= 300:
                    self.metrics.dropped.labels("status").inc()
                    log.warning("audit.post_refused", status=response.status, action=body.get("action"))
                    return
        except Exception as exc:  # a sink failure is counted, never raised into a reconcile
            self.metrics.dropped.labels("error").inc()
            log.warning("audit.post_failed", error=type(exc).__name__, action=body.get("action"))
            return
        self.metrics.emitted.labels("http").inc()

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued event was posted (or dropped); False when `timeout` passed first."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 5.0) -> None:
        """Post what is queued for at most `timeout` seconds, then stop (later events are dropped)."""
        self._closed = True
        if self._task is not None:
            await self.flush(timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._session is not None:
            await self._session.close()


def build_sink(settings: AuditSettings, registry: CollectorRegistry | None = None) -> AuditSink:
    """The sink `JANGAR_AUDIT_SINK_*` configure (settings validation already required a URL for http)."""
    if settings.sink_type == "stdout":
        return StdoutSink(registry=registry)
    if settings.sink_type == "http":
        assert settings.url is not None
        return HttpSink(
            settings.url, headers=settings.headers, timeout=settings.timeout_ms / 1000, registry=registry
        )
    return NoneSink()


class SinkCloser:
    """Closes the process's sink at shutdown, posting what is queued (a non-leader runnable)."""

    name = "audit-sink"
    need_leader_election = False

    def __init__(self, sink: AuditSink) -> None:
        self.sink = sink

    async def start(self) -> None:
        return None

    async def stop(self, timeout: float) -> None:
        await self.sink.close(timeout=max(0.5, min(timeout, 5.0)))

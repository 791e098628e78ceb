"""Kubernetes Events for the objects a controller manages (``kubectl describe`` shows them).

Best effort, like client-go's recorder (``tools/record``):

* recording never raises and never blocks a reconcile: :meth:`EventRecorder.event` only puts
  the event on a bounded buffer (``max_pending``, client-go's 1000) that one background task
  writes out in order; when the buffer is full the event is dropped and counted (client-go's
  ``DropIfChannelFull``), so a slow or unreachable API server costs bounded memory;
* repeats of the same (object, type, reason, message) within ``dedupe_window`` seconds are
  folded into one Event whose ``count`` and ``lastTimestamp`` are patched (client-go's
  correlator); the memory of recent events is bounded too (``max_recent``);
* messages are truncated to 1024 bytes (the API's limit for an event note) and reasons to
  128 characters;
* every Event carries ``source.component``/``reportingComponent`` (the controller) and
  ``reportingInstance`` (the replica, usually the pod name);
* only the identifying fields of the object are kept in the buffer, so the caller may mutate
  (or drop) the object right after recording.

Get one from the manager (``manager.event_recorder("widget-controller")``): it is flushed, with
a timeout, when the manager shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from jangar.runtime.client import Client
from jangar.runtime.clock import MONOTONIC, Clock
from jangar.runtime.errors import NotFoundError
from jangar.runtime.resources import EVENTS, JsonObject

log = structlog.get_logger("jangar.runtime.events")

NORMAL = "Normal"
WARNING = "Warning"
MAX_MESSAGE_BYTES = 1024
MAX_REASON_CHARS = 128


class Recorder(Protocol):
    """What a reconciler needs to record events; :class:`EventRecorder` and
    :class:`jangar.runtime.testing.FakeEventRecorder` implement it."""

    def event(self, obj: Mapping[str, Any], event_type: str, reason: str, message: str) -> None: ...

    def normal(self, obj: Mapping[str, Any], reason: str, message: str) -> None: ...

    def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None: ...

    async def flush(self, timeout: float | None = None) -> bool: ...


def truncate_message(message: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """``message`` cut to at most ``limit`` UTF-8 bytes, on a character boundary, marked with ``...``."""
    data = message.encode("utf-8")
    if len(data) <= limit:
        return message
    return data[: limit - 3].decode("utf-8", errors="ignore") + "..."


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_Key = tuple[str, str, str, str]


class EventRecorder:
    """Records core/v1 Events attributed to ``component`` on replica ``instance``.

    ``instance`` defaults to the host name (the pod name in a pod). ``clock`` only drives the
    dedupe window (timestamps are wall-clock UTC, as the API expects).
    """

    def __init__(
        self,
        client: Client,
        component: str,
        *,
        instance: str | None = None,
        dedupe_window: float = 600.0,
        max_pending: int = 1000,
        max_recent: int = 4096,
        clock: Clock = MONOTONIC,
    ) -> None:
        if max_pending < 1 or max_recent < 1:
            raise ValueError("max_pending and max_recent must be >= 1")
        self.client = client
        self.component = component
        self.instance = instance or socket.gethostname()
        self.dedupe_window = dedupe_window
        self.max_pending = max_pending
        self.max_recent = max_recent
        self.clock = clock
        self.dropped = 0
        """Events dropped because the buffer was full (or recorded with no running event loop)."""
        # key -> (event name, event namespace, count, last recorded at)
        self._recent: OrderedDict[_Key, tuple[str, str, int, float]] = OrderedDict()
        self._pending: asyncio.Queue[tuple[JsonObject, str, str, str]] | None = None
        self._writer: asyncio.Task[None] | None = None

    # -- recording ----------------------------------------------------------------------------

    def event(self, obj: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        """Record an event about ``obj`` (needs ``apiVersion``, ``kind`` and metadata). Never raises."""
        try:
            loop = asyncio.get_running_loop()  # first: without a loop nothing is buffered
            if self._pending is None:
                self._pending = asyncio.Queue(self.max_pending)
            meta = obj.get("metadata") or {}
            snapshot: JsonObject = {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")},
            }
            self._pending.put_nowait((snapshot, event_type, reason, message))
            if self._writer is None or self._writer.done():
                self._writer = loop.create_task(
                    self._write_loop(self._pending), name=f"event-recorder-{self.component}"
                )
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning(
                    "event buffer full, dropping events",
                    component=self.component,
                    dropped=self.dropped,
                    reason=reason,
                )
        except Exception as exc:  # e.g. no running event loop: an Event must never break the caller
            self.dropped += 1
            log.warning("could not record event", reason=reason, error=repr(exc))

    def normal(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self.event(obj, NORMAL, reason, message)

    def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self.event(obj, WARNING, reason, message)

    @property
    def pending(self) -> int:
        """Events buffered and not yet written."""
        return self._pending.qsize() if self._pending is not None else 0

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every buffered event is written (or failed); ``False`` if ``timeout`` expired."""
        queue = self._pending
        if queue is None:
            return True
        try:
            async with asyncio.timeout(timeout):
                await queue.join()
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float | None = None) -> bool:
        """Flush (up to ``timeout``), then stop the writer; later events start a new one."""
        flushed = await self.flush(timeout)
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if not flushed:
            log.warning("events not written at shutdown", component=self.component, pending=self.pending)
        self._pending = None
        return flushed

    # -- writing ------------------------------------------------------------------------------

    async def _write_loop(self, queue: asyncio.Queue[tuple[JsonObject, str, str, str]]) -> None:
        while True:
            obj, event_type, reason, message = await queue.get()
            try:
                await self._record(obj, event_type, reason, message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                meta = obj.get("metadata") or {}
                log.warning("could not record event", reason=reason, object=meta.get("name"), error=repr(exc))
            finally:
                queue.task_done()

    async def _record(self, obj: JsonObject, event_type: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        reason = reason[:MAX_REASON_CHARS]
        message = truncate_message(message)
        key: _Key = (
            str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"),
            event_type,
            reason,
            message,
        )
        now = self.clock.now()
        recent = self._recent.get(key)
        if recent is not None and now - recent[3] < self.dedupe_window:
            name, ns, count, _ = recent
            try:
                await self.client.patch(
                    EVENTS, name, {"count": count + 1, "lastTimestamp": _timestamp()}, namespace=ns
                )
            except NotFoundError:
                pass  # the Event expired (events have a TTL): create a new one below
            else:
                self._remember(key, (name, ns, count + 1, now))
                return
        self._recent.pop(key, None)
        created = await self.client.create(EVENTS, self._body(obj, event_type, reason, message))
        created_meta = created.get("metadata") or {}
        self._remember(key, (str(created_meta.get("name")), str(created_meta.get("namespace")), 1, now))

    def _remember(self, key: _Key, value: tuple[str, str, int, float]) -> None:
        self._recent[key] = value
        self._recent.move_to_end(key)
        while len(self._recent) > self.max_recent:
            self._recent.popitem(last=False)  # least recently recorded first

    def _body(self, obj: JsonObject, event_type: str, reason: str, message: str) -> JsonObject:
        meta = obj.get("metadata") or {}
        involved = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        now = _timestamp()
        return {
            "metadata": {
                "generateName": f"{meta.get('name')}.",
                "namespace": meta.get("namespace") or "default",
            },
            "involvedObject": {k: v for k, v in involved.items() if v is not None},
            "type": event_type,
            "reason": reason,
            "message": message,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }

"""Kubernetes Events for the objects a controller manages (``kubectl describe`` shows them).

Best effort, like client-go's recorder: recording never raises and never blocks a reconcile
(the write runs in a background task); repeats of the same (object, type, reason, message)
within ``dedupe_window`` are folded into one Event whose ``count`` is increased.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import structlog

from jangar.runtime.client import Client
from jangar.runtime.errors import ApiError
from jangar.runtime.resources import EVENTS, JsonObject

log = structlog.get_logger("jangar.runtime.events")

NORMAL = "Normal"
WARNING = "Warning"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Records core/v1 Events attributed to ``component``."""

    def __init__(self, client: Client, component: str, *, dedupe_window: float = 600.0) -> None:
        self.client = client
        self.component = component
        self.dedupe_window = dedupe_window
        self._recent: dict[tuple[str, str, str, str], tuple[str, str, int, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def event(self, obj: JsonObject, event_type: str, reason: str, message: str) -> None:
        """Record an event about ``obj`` (needs ``apiVersion``, ``kind`` and metadata)."""
        task = asyncio.create_task(self._record(obj, event_type, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def normal(self, obj: JsonObject, reason: str, message: str) -> None:
        self.event(obj, NORMAL, reason, message)

    def warning(self, obj: JsonObject, reason: str, message: str) -> None:
        self.event(obj, WARNING, reason, message)

    async def flush(self) -> None:
        """Wait for pending writes (for shutdown and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _record(self, obj: JsonObject, event_type: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        key = (str(meta.get("uid") or meta.get("name")), event_type, reason, message)
        now = _now()
        try:
            recent = self._recent.get(key)
            if recent is not None and time.monotonic() - recent[3] < self.dedupe_window:
                name, ns, count, _ = recent
                await self.client.patch(
                    EVENTS, name, {"count": count + 1, "lastTimestamp": now}, namespace=ns
                )
                self._recent[key] = (name, ns, count + 1, time.monotonic())
                return
            body: dict[str, Any] = {
                "metadata": {"generateName": f"{meta.get('name')}.", "namespace": namespace},
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion"),
                    "kind": obj.get("kind"),
                    "name": meta.get("name"),
                    "namespace": meta.get("namespace"),
                    "uid": meta.get("uid"),
                    "resourceVersion": meta.get("resourceVersion"),
                },
                "type": event_type,
                "reason": reason,
                "message": message[:1024],
                "source": {"component": self.component},
                "reportingComponent": self.component,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            }
            created = await self.client.create(EVENTS, body)
            self._recent[key] = (created["metadata"]["name"], namespace, 1, time.monotonic())
            if len(self._recent) > 4096:  # bound memory: drop the oldest half
                for old in sorted(self._recent, key=lambda k: self._recent[k][3])[:2048]:
                    del self._recent[old]
        except ApiError as exc:
            self._recent.pop(key, None)
            log.warning("could not record event", reason=reason, object=meta.get("name"), error=str(exc))
        except Exception as exc:
            log.warning("could not record event", reason=reason, object=meta.get("name"), error=repr(exc))

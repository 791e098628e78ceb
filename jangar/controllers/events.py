"""Kubernetes Events on the objects we reconcile, for the transitions a user cares about.

`kubectl describe agentrun X` shows them. Emission never blocks or fails a reconcile: the create runs in a
background task and errors are only logged (an Event is a courtesy, the status is the record). Events are
emitted only on transitions the reconciler detected, so a re-reconcile of an unchanged run emits nothing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from jangar.conditions import format_time
from jangar.controllers.kinds import EVENTS
from jangar.runtime import Client

log = structlog.get_logger("jangar.controllers.events")

EventType = Literal["Normal", "Warning"]
COMPONENT = "jangar-controller"


class EventRecorder:
    """Creates core/v1 Events in the background."""

    def __init__(self, client: Client, instance: str | None = None) -> None:
        self._client = client
        self._instance = instance or COMPONENT
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(self, obj: Mapping[str, Any], type_: EventType, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = format_time(datetime.now(UTC))
        event = {
            "metadata": {
                "name": f"{meta.get('name')}.{secrets.token_hex(8)}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        task = asyncio.create_task(self._create(event, str(meta.get("name")), namespace))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _create(self, event: dict[str, Any], name: str, namespace: str) -> None:
        try:
            await self._client.create(EVENTS, event)
        except Exception as exc:  # an Event must never break reconciling
            log.warning(
                "event not recorded", name=name, namespace=namespace, reason=event["reason"], error=str(exc)
            )

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for in-flight creates (tests and shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

"""The reconcile contract: a request names one object; the reconciler makes the world match it.

Reconciles are level-triggered: a request carries only the object's namespace and name, never
the event that caused it, so the reconciler must read current state (from the cache) and be
idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, order=True)
class Request:
    """The object to reconcile. ``namespace`` is ``None`` for cluster-scoped objects."""

    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Result:
    """What to do after a successful reconcile.

    ``requeue_after`` (seconds) schedules another pass and resets the error backoff. There is
    no ``requeue=True`` (controller-runtime deprecated ``Result.Requeue``): to retry with
    backoff, raise (a :class:`~jangar.runtime.errors.ConflictError` from a stale write is
    retried quietly). An exception always wins over any result.
    """

    requeue_after: float | None = None


class TerminalError(Exception):
    """A failure retrying cannot fix: counted and logged, but the request is not requeued."""


class Reconciler(Protocol):
    async def reconcile(self, request: Request) -> Result | None: ...


ReconcileFunc = Callable[[Request], Awaitable[Result | None]]

"""Test doubles for code built on :mod:`jangar.runtime` (public API, like controller-runtime's fakes).

* :class:`FakeClock` — a :class:`~jangar.runtime.clock.Clock` that only moves when stepped;
  stepping fires the timers (work-queue delays, rate-limited retries, ``clock.sleep``) that
  became due, in time order. Pass it as ``WorkQueue(clock=...)``,
  ``ControllerOptions(clock=...)`` / ``Builder.with_options(clock=...)``,
  ``EventRecorder(clock=...)``, ``BucketRateLimiter(clock=...)``, ``LeaderElector(clock=...)``.
* :class:`FakeCache` — a :class:`~jangar.runtime.cache.CacheReader` over the real
  :class:`~jangar.runtime.store.Store`, so ``get``/``list`` (namespaces, labels, the built-in
  ``namespace``/``owner-uid``/``controller-uid`` indexes and custom ones from ``add_index``)
  behave exactly like the manager's cache. Fill it with ``add(ref, obj)``.
* :class:`FakeEventRecorder` — a :class:`~jangar.runtime.events.Recorder` that keeps what was
  recorded in ``events`` for assertions.

Unit-testing a reconciler::

    cache = FakeCache(WIDGETS, JOBS)
    cache.add(WIDGETS, widget)
    cache.add(JOBS, job_owned_by(widget))
    events = FakeEventRecorder()
    result = await WidgetReconciler(cache=cache, client=client, events=events).reconcile(Request("ns", "w"))
    assert events.reasons() == ["Created"]
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jangar.runtime.cache import InformerNotRegistered, deep_copy, select
from jangar.runtime.clock import Timer
from jangar.runtime.events import NORMAL, WARNING
from jangar.runtime.resources import JsonObject, ResourceRef, make_key
from jangar.runtime.store import IndexFunc, Store

__all__ = ["FakeCache", "FakeClock", "FakeEventRecorder", "RecordedEvent"]


# -- clock ------------------------------------------------------------------------------------


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "clock", "fired", "when")

    def __init__(self, clock: FakeClock, when: float, callback: Callable[[], None]) -> None:
        self.clock = clock
        self.when = when
        self.callback = callback
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        if not self.cancelled and not self.fired:
            self.cancelled = True
            self.clock._live -= 1


class FakeClock:
    """A monotonic clock for tests: time stands still until :meth:`step` moves it.

    ``call_later`` timers and ``sleep`` calls wait for the fake time; :meth:`step` advances
    it and runs every callback that became due, earliest first, each seeing ``now()`` equal
    to its own due time (so a callback that schedules another timer inside the same step
    gets it fired too). Callbacks run synchronously inside :meth:`step`; coroutines they wake
    (a ``get()`` on a queue, a ``sleep``) run at the caller's next ``await``.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._seq = itertools.count()
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._live = 0

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer(self, self._now + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        self._live += 1
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await future
        finally:
            timer.cancel()

    def step(self, seconds: float) -> int:
        """Advance by ``seconds`` and fire the timers that became due; returns how many fired."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        target = self._now + seconds
        fired = 0
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            timer.fired = True
            self._live -= 1
            fired += 1
            timer.callback()
        self._now = target
        return fired

    advance = step
    """Alias of :meth:`step` (the old ``jangar.runtime.clock.FakeClock`` name)."""

    def set_time(self, t: float) -> int:
        """Move to absolute time ``t`` (not backwards), firing due timers."""
        return self.step(t - self._now)

    def step_to_next_timer(self) -> bool:
        """Jump to the earliest pending timer and fire it (and any due at the same time)."""
        when = self.next_timer_at()
        if when is None:
            return False
        self.step(when - self._now)
        return True

    def next_timer_at(self) -> float | None:
        """When the earliest pending timer is due, or ``None``."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    @property
    def waiters(self) -> int:
        """Pending (not fired, not cancelled) timers and sleeps."""
        return self._live

    def has_waiters(self) -> bool:
        return self._live > 0


# -- cache ------------------------------------------------------------------------------------


class FakeCache:
    """An in-memory :class:`~jangar.runtime.cache.CacheReader` with the real cache's read rules.

    Every resource has a real :class:`~jangar.runtime.store.Store` (with the built-in indexes),
    and ``get``/``list`` share their code with :class:`~jangar.runtime.cache.Cache`. Objects are
    deep-copied on ``add`` and (unless ``copy=False``) on read, as in the real cache.

    With ``strict=True``, reading a resource that was not registered (by the constructor,
    :meth:`register`, :meth:`add` or :meth:`add_index`) raises
    :class:`~jangar.runtime.cache.InformerNotRegistered` like the real cache; by default such
    a resource reads as empty.
    """

    def __init__(self, *refs: ResourceRef, strict: bool = False) -> None:
        self.strict = strict
        self._stores: dict[ResourceRef, Store] = {}
        for ref in refs:
            self.register(ref)

    def register(self, ref: ResourceRef) -> Store:
        """Make ``ref`` readable (empty); returns its store."""
        store = self._stores.get(ref)
        if store is None:
            store = self._stores[ref] = Store()
        return store

    def store(self, ref: ResourceRef) -> Store:
        return self.register(ref)

    def add_index(self, ref: ResourceRef, name: str, func: IndexFunc) -> None:
        """Like :meth:`Cache.add_index <jangar.runtime.cache.Cache.add_index>`; existing objects are indexed."""
        self.register(ref).add_indexer(name, func)

    def add(self, ref: ResourceRef, *objs: JsonObject) -> None:
        """Insert or replace objects (by namespace/name). A namespaced object needs ``metadata.namespace``."""
        store = self.register(ref)
        for obj in objs:
            meta = obj.get("metadata") or {}
            if ref.namespaced and not meta.get("namespace"):
                raise ValueError(f"{ref.kind} {meta.get('name')!r} is namespaced: set metadata.namespace")
            store.upsert(deep_copy(obj))

    update = add

    def delete(self, ref: ResourceRef, name: str, namespace: str | None = None) -> JsonObject | None:
        """Remove an object; returns it if it was there."""
        ns = namespace if ref.namespaced else None
        return self.register(ref).delete_key(make_key(ns, name))

    def clear(self, ref: ResourceRef | None = None) -> None:
        """Remove every object (of ``ref``, or of all resources); indexes stay registered."""
        for r, store in self._stores.items():
            if ref is None or r == ref:
                for key in store:
                    store.delete_key(key)

    def _read(self, ref: ResourceRef) -> Store:
        store = self._stores.get(ref)
        if store is None:
            if self.strict:
                raise InformerNotRegistered(
                    f"no informer for {ref}: register it with cache.informer(ref) first"
                )
            return Store()  # reads as an empty resource (custom indexes still must be added)
        return store

    # -- CacheReader --------------------------------------------------------------------------

    def get(
        self, ref: ResourceRef, name: str, namespace: str | None = None, *, copy: bool = True
    ) -> JsonObject | None:
        obj = self._read(ref).get(make_key(namespace if ref.namespaced else None, name))
        if obj is None:
            return None
        return deep_copy(obj) if copy else obj

    def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        index: tuple[str, str] | None = None,
        copy: bool = True,
    ) -> list[JsonObject]:
        objs = select(self._read(ref), namespace if ref.namespaced else None, labels=labels, index=index)
        return [deep_copy(o) for o in objs] if copy else objs


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedEvent:
    kind: str | None
    namespace: str | None
    name: str | None
    type: str
    reason: str
    message: str


class FakeEventRecorder:
    """Keeps recorded events in :attr:`events` (controller-runtime's ``record.FakeRecorder``)."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def event(self, obj: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        self.events.append(
            RecordedEvent(
                obj.get("kind"), meta.get("namespace"), meta.get("name"), event_type, reason, message
            )
        )

    def normal(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self.event(obj, NORMAL, reason, message)

    def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self.event(obj, WARNING, reason, message)

    async def flush(self, timeout: float | None = None) -> bool:
        return True

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]

    def clear(self) -> None:
        self.events.clear()

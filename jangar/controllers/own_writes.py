"""Resource versions this process has already replaced with its own writes (issue 14 §2: no repeated writes).

After a reconcile writes an object, another event for it (its Job changed, a Pod moved) can start the next
reconcile before the informer has delivered the write: the cache still shows the version the write replaced.
Deciding from it repeats the write: an update with the old `resourceVersion` comes back 409 (and the run is
retried with backoff), a patch is sent twice. `OwnWrites` remembers, per object, the versions our writes
replaced; a read that returns one of them is stale and the caller requeues for a moment instead of deciding.
The first read showing any other version forgets the object, so the memory is bounded by the objects with a
write in flight, and a stale read can only be deferred until the informer catches up (or relists).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CREATE_MEMORY_SECONDS", "MAX_REMEMBERED", "STALE_RETRY_SECONDS", "OwnWrites", "RecentCreates"]

MAX_REMEMBERED = 10_000
"""Objects remembered at most, oldest dropped first: a Job patched once is never read through `is_stale`
again once the cache shows the patch, so without a bound every finished Job would stay. Forgetting one only
risks a repeated (idempotent) write."""

STALE_RETRY_SECONDS = 0.25
"""How soon a pass that read a superseded version runs again (the watch usually delivers within ms)."""


def _key(kind: str, obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return kind, str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class OwnWrites:
    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self._replaced: OrderedDict[tuple[str, str, str], set[str]] = OrderedDict()
        self._max = max_remembered

    def __len__(self) -> int:
        return len(self._replaced)

    def wrote(self, kind: str, before: Mapping[str, Any], after: Mapping[str, Any] | None = None) -> None:
        """A write replaced `before` (the object as read, with its resourceVersion) with `after` (the API
        server's answer, when there is one). A write that changed nothing keeps the resourceVersion, so no
        event will ever show another version: remembering it would defer every later pass forever."""
        rv = _rv(before)
        if after is not None and _rv(after) == rv:
            return
        if rv:
            key = _key(kind, before)
            self._replaced.setdefault(key, set()).add(rv)
            self._replaced.move_to_end(key)
            while len(self._replaced) > self._max:
                self._replaced.popitem(last=False)

    def is_stale(self, kind: str, obj: Mapping[str, Any]) -> bool:
        """`obj` (as read from the cache) is a version one of our writes already replaced."""
        key = _key(kind, obj)
        replaced = self._replaced.get(key)
        if replaced is None:
            return False
        if _rv(obj) in replaced:
            return True
        del self._replaced[key]  # the cache caught up
        return False

    def forget(self, kind: str, namespace: str | None, name: str) -> None:
        self._replaced.pop((kind, namespace or "", name), None)


CREATE_MEMORY_SECONDS = 10.0
"""How long a create of ours stands in for the object the cache does not show yet. Past it, a child that
still is not cached is created again (it may have been deleted at once): the create is idempotent by name."""


class RecentCreates:
    """Children this process created that the cache may not show yet (the create's twin of `OwnWrites`).

    A pass that finds its child missing from the cache right after creating it would POST it again and get
    409 AlreadyExists plus a GET to adopt it (1.4 of each per 5-step DAG run in a burst once the status
    writes stopped conflicting). A create remembered here for `CREATE_MEMORY_SECONDS` counts as the child;
    the cache showing the child forgets it."""

    def __init__(
        self,
        memory_seconds: float = CREATE_MEMORY_SECONDS,
        max_remembered: int = MAX_REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._at: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._memory = memory_seconds
        self._max = max_remembered
        self._clock = clock

    def __len__(self) -> int:
        return len(self._at)

    def created(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        self._at[key] = self._clock()
        self._at.move_to_end(key)
        while len(self._at) > self._max:
            self._at.popitem(last=False)

    def pending(self, kind: str, namespace: str, name: str) -> bool:
        """We created it less than `CREATE_MEMORY_SECONDS` ago (and the cache has not shown it)."""
        key = (kind, namespace, name)
        at = self._at.get(key)
        if at is None:
            return False
        if self._clock() - at < self._memory:
            return True
        del self._at[key]
        return False

    def seen(self, kind: str, namespace: str, name: str) -> None:
        """The cache shows the child: nothing to remember any more."""
        self._at.pop((kind, namespace, name), None)

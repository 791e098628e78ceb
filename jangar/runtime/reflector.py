"""The reflector: keeps a sink in step with the API server by listing, then watching.

Follows client-go's ``tools/cache/reflector.go`` (see docs/runtime.md for differences):

* LIST page by page (``limit``/``continue``, resourceVersion rules in :meth:`Reflector._list`),
  passing each page through the sink's ``prepare`` (the informer's transform) before the next
  page is decoded, hand the full set to the sink (``replace``), then WATCH from the list's
  resourceVersion with bookmarks, a random server timeout in [5, 10) minutes, and a client
  watchdog: if nothing at all (no event, no bookmark) arrives for ``watchdog_timeout``
  seconds the stream is dropped and re-opened from the last resourceVersion;
* a clean close re-watches from the last resourceVersion without relisting;
* 410 Gone (HTTP or in-stream, or an expired ``continue`` token in the middle of a list)
  relists at once, from the first page, as a consistent read; the sink diffs the new list
  against its store so objects deleted in the gap are reported as deletes;
* other failures back off (800 ms doubling to 30 s, jittered); connection errors and 429
  keep the resourceVersion and re-watch, anything else relists;
* a watch that ends within a second without delivering anything counts as a failure, so a
  flapping server does not cause a hot loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

import structlog

from jangar.runtime.backoff import Backoff
from jangar.runtime.client import Client
from jangar.runtime.errors import ApiError, GoneError, WatchStalledError
from jangar.runtime.resources import JsonObject, ResourceRef

log = structlog.get_logger("jangar.runtime.reflector")


@dataclass(frozen=True, slots=True)
class ReflectorOptions:
    """Tuning knobs; the defaults suit the API server's bookmark cadence (~1/min)."""

    watchdog_timeout: float = 70.0
    """Seconds of complete silence after which a watch is presumed dead (kopf uses 70 s too:
    a reconnect then lands inside the server's ~75 s event history)."""
    watch_timeout_min: int = 300
    watch_timeout_max: int = 600
    page_size: int = 500
    """Objects per list page; 0 asks for the whole list in one response (what lists did before
    pagination; kept for benchmarks that compare the two)."""
    backoff_initial: float = 0.8
    backoff_cap: float = 30.0
    backoff_reset: float = 120.0


class ReflectorSink(Protocol):
    """Where the reflector delivers state: the informer."""

    def prepare(self, obj: JsonObject) -> JsonObject:
        """Shrink one listed object to what the sink keeps (its transform), page by page.

        Called on each page as it arrives, so the untransformed objects of a page are garbage
        before the next page is decoded: the peak memory of a list is one raw page plus the
        kept (transformed) objects, not the whole raw collection.
        """

    def replace(self, items: list[JsonObject], resource_version: str) -> None:
        """A complete, fresh list of every object, each already passed through :meth:`prepare`."""

    def apply(self, event_type: str, obj: JsonObject) -> None:
        """One ADDED, MODIFIED or DELETED watch event."""


class Reflector:
    """List-and-watch loop for one resource type and one scope. Run :meth:`run` as a task."""

    def __init__(
        self,
        client: Client,
        ref: ResourceRef,
        sink: ReflectorSink,
        *,
        namespace: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | Mapping[str, str] | None = None,
        options: ReflectorOptions | None = None,
    ) -> None:
        self.client = client
        self.ref = ref
        self.sink = sink
        self.namespace = namespace if ref.namespaced else None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.options = options or ReflectorOptions()
        self.last_resource_version = ""
        self.lists = 0
        """Number of completed lists (the first one plus every relist): for tests and metrics."""
        self.list_pages = 0
        """Pages read by completed lists (for tests and benchmarks: > lists means paginated)."""
        self.list_restarts = 0
        """Lists abandoned midway because their ``continue`` token expired (410) and restarted."""
        self.watches = 0
        self.stalls = 0
        self._consistent_next = False
        self._backoff = Backoff(
            self.options.backoff_initial, self.options.backoff_cap, reset_after=self.options.backoff_reset
        )
        self._log = log.bind(resource=str(ref), namespace=self.namespace or "")

    async def run(self) -> None:
        """List and watch until cancelled. Never returns otherwise; errors are retried.

        A reflector that ran before resumes watching from its last resourceVersion instead
        of relisting (an informer stopped and started again); if that version has expired
        the 410 triggers a relist, which reports what changed in between.
        """
        need_list = not self.last_resource_version
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch()
            except asyncio.CancelledError:
                raise
            except GoneError as exc:
                self._log.info(
                    "resourceVersion expired, relisting", rv=self.last_resource_version, error=str(exc)
                )
                need_list = True
                self._consistent_next = True
            except WatchStalledError:
                self.stalls += 1
                self._log.warning("watch went silent, reconnecting", rv=self.last_resource_version)
            except ApiError as exc:
                delay = self._backoff.next()
                # Transport errors and throttling keep the resourceVersion: the server state
                # is unknown but not invalid. Anything else relists after the backoff.
                if exc.status not in (0, 429):
                    need_list = True
                self._log.warning(
                    "list/watch failed", status=exc.status, error=str(exc), retry_in=round(delay, 3)
                )
                await asyncio.sleep(delay)
            except Exception as exc:
                delay = self._backoff.next()
                need_list = True
                self._log.error("list/watch failed unexpectedly", error=repr(exc), retry_in=round(delay, 3))
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        """List page by page (``page_size`` > 0, the default) or whole (``page_size`` = 0).

        Paged lists are consistent reads (resourceVersion ``""``), the first one and every relist:
        the watch cache answers ``resourceVersion=0`` (and "not older than" a version) whole,
        ignoring ``limit`` (measured on kube-apiserver 1.36: 1,200 ConfigMaps in one response to
        ``limit=500``), so only a consistent read is really paged. Each page goes through the
        sink's ``prepare`` before the next is requested, so a cache of lean objects never holds
        the whole raw collection at once (the first list was the RSS peak of a process with
        10,000 cached Jobs or Pods). Servers with consistent reads from the cache (1.31+) serve
        these from memory too; older ones read etcd, page by page.

        Whole lists follow client-go's resourceVersion rules: ``"0"`` first (watch cache), the
        last seen version after a failed watch, ``""`` after a 410 or a failed list.

        A 410 on a ``continue`` request (the token's snapshot was compacted while we paged)
        discards the pages read so far and raises :class:`GoneError`: :meth:`run` relists at
        once from the first page as a consistent read, as it does for any 410.
        """
        if self._consistent_next or self.options.page_size:
            rv = ""
        elif not self.last_resource_version:
            rv = "0"
        else:
            rv = self.last_resource_version
        prepare = self.sink.prepare
        items: list[JsonObject] = []
        token: str | None = None
        pages = 0
        try:
            while True:
                page = await self.client.list_page(
                    self.ref,
                    self.namespace,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    limit=self.options.page_size or None,
                    continue_token=token,
                    resource_version=rv,
                )
                pages += 1
                items.extend([prepare(item) for item in page.items])
                token = page.continue_token
                if not token:
                    break
        except GoneError:
            if token:
                self.list_restarts += 1
                self._log.info("continue token expired, restarting the list", pages_read=pages)
            self._consistent_next = True
            raise
        except ApiError:
            self._consistent_next = True
            raise
        self._consistent_next = False
        self.sink.replace(items, page.resource_version)
        self.last_resource_version = page.resource_version
        self.lists += 1
        self.list_pages += pages

    async def _watch(self) -> None:
        opts = self.options
        started = time.monotonic()
        events = 0
        stream = self.client.watch(
            self.ref,
            self.namespace,
            resource_version=self.last_resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=random.randint(
                opts.watch_timeout_min, max(opts.watch_timeout_min, opts.watch_timeout_max - 1)
            ),
            idle_timeout=opts.watchdog_timeout,
        )
        self.watches += 1
        async with aclosing(stream):
            async for event in stream:
                events += 1
                rv = ((event.object.get("metadata") or {}).get("resourceVersion")) or ""
                if event.type in ("ADDED", "MODIFIED", "DELETED"):
                    self.sink.apply(event.type, event.object)
                elif event.type != "BOOKMARK":
                    self._log.warning("unknown watch event type", type=event.type)
                    continue
                if rv:
                    self.last_resource_version = rv
        if events == 0 and time.monotonic() - started < 1.0:
            raise ApiError(0, "VeryShortWatch", "watch closed within 1s without any event")

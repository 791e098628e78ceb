"""Shared informer: one reflector and one store per (resource, scope), many event handlers.

The in-order model (what client-go now ships as ``InOrderInformers``): one task consumes
reflector output in arrival order, updates the store, and only then notifies handlers, so a
handler reading the cache sees a state at least as new as its event. On a relist the new
list is diffed against the store: vanished objects are delivered as deletes with
``final_state_unknown=True`` first (the tombstone case: the delete happened during a gap),
then adds and changed objects as updates.

Each handler gets its own unbounded buffer and task: calls to one handler are sequential,
a slow handler only delays itself.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from jangar.runtime.client import Client
from jangar.runtime.reflector import Reflector, ReflectorOptions
from jangar.runtime.resources import JsonObject, ResourceRef, object_key, resource_version
from jangar.runtime.store import IndexFunc, Store

log = structlog.get_logger("jangar.runtime.informer")

TransformFunc = Callable[[JsonObject], JsonObject]


def strip_managed_fields(obj: JsonObject) -> JsonObject:
    """The default transform: drop ``metadata.managedFields`` (about a quarter of an object's memory)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


class EventHandler(Protocol):
    """Receives informer notifications. Methods may be plain or ``async``."""

    def on_add(self, obj: JsonObject, is_in_initial_list: bool) -> Awaitable[None] | None: ...

    def on_update(self, old: JsonObject, new: JsonObject) -> Awaitable[None] | None: ...

    def on_delete(self, obj: JsonObject, final_state_unknown: bool) -> Awaitable[None] | None: ...


@dataclass
class FuncHandler:
    """An :class:`EventHandler` from optional callables."""

    add: Callable[[JsonObject, bool], Any] | None = None
    update: Callable[[JsonObject, JsonObject], Any] | None = None
    delete: Callable[[JsonObject, bool], Any] | None = None

    def on_add(self, obj: JsonObject, is_in_initial_list: bool) -> Any:
        return self.add(obj, is_in_initial_list) if self.add else None

    def on_update(self, old: JsonObject, new: JsonObject) -> Any:
        return self.update(old, new) if self.update else None

    def on_delete(self, obj: JsonObject, final_state_unknown: bool) -> Any:
        return self.delete(obj, final_state_unknown) if self.delete else None


_SYNCED = ("synced",)


class HandlerRegistration:
    """A handler's listener: its buffer, its task, and whether it has seen the initial list."""

    def __init__(self, handler: EventHandler, name: str) -> None:
        self.handler = handler
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._name = name

    @property
    def has_synced(self) -> bool:
        """True once the informer synced and this handler received every initial notification."""
        return self._synced.is_set()

    async def wait_for_sync(self) -> None:
        await self._synced.wait()

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"handler:{self._name}")

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _push(self, item: tuple[Any, ...]) -> None:
        self._queue.put_nowait(item)

    async def _run(self) -> None:
        h = self.handler
        while True:
            item = await self._queue.get()
            kind = item[0]
            try:
                if kind == "add":
                    result = h.on_add(item[1], item[2])
                elif kind == "update":
                    result = h.on_update(item[1], item[2])
                elif kind == "delete":
                    result = h.on_delete(item[1], item[2])
                else:
                    self._synced.set()
                    continue
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event handler failed", informer=self._name, event_type=kind)


class SharedInformer:
    """A cache of one resource type in one scope, kept current by a reflector."""

    def __init__(
        self,
        client: Client,
        ref: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | Mapping[str, str] | None = None,
        transform: TransformFunc | None = strip_managed_fields,
        resync_period: float | None = None,
        indexers: dict[str, IndexFunc] | None = None,
        options: ReflectorOptions | None = None,
    ) -> None:
        self.ref = ref
        self.namespace = namespace if ref.namespaced else None
        self.store = Store(indexers)
        self.transform = transform
        self.resync_period = resync_period
        self.name = f"{ref}/{self.namespace}" if self.namespace else str(ref)
        self.reflector = Reflector(
            client,
            ref,
            self,
            namespace=self.namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            options=options,
        )
        self._handlers: list[HandlerRegistration] = []
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reflector (and the resync timer) as background tasks."""
        if self._started:
            return
        self._started = True
        for reg in self._handlers:
            reg._start()
        self._tasks.append(asyncio.create_task(self.reflector.run(), name=f"reflector:{self.name}"))
        if self.resync_period:
            self._tasks.append(
                asyncio.create_task(self._resync_loop(self.resync_period), name=f"resync:{self.name}")
            )

    async def stop(self) -> None:
        """Stop the reflector and handlers. The store is kept; :meth:`start` resumes from it."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for reg in self._handlers:
            await reg._stop()
        self._started = False

    @property
    def has_synced(self) -> bool:
        """True once the first complete list is in the store."""
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Wait for the first list (and every handler's initial notifications); False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
                for reg in list(self._handlers):
                    await reg.wait_for_sync()
        except TimeoutError:
            return False
        return True

    # -- handlers and indexes -------------------------------------------------------------

    def add_event_handler(self, handler: EventHandler) -> HandlerRegistration:
        """Register a handler. Added late, it first receives an add for every cached object."""
        reg = HandlerRegistration(handler, self.name)
        self._handlers.append(reg)
        if self._synced.is_set():
            for obj in self.store.values():
                reg._push(("add", obj, True))
            reg._push(_SYNCED)
        if self._started:
            reg._start()
        return reg

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        self.store.add_indexer(name, func)

    def _notify(self, item: tuple[Any, ...]) -> None:
        for reg in self._handlers:
            reg._push(item)

    # -- ReflectorSink --------------------------------------------------------------------

    def prepare(self, obj: JsonObject) -> JsonObject:
        """The transform, applied by the reflector to each list page as it arrives."""
        return self.transform(obj) if self.transform else obj

    def replace(self, items: list[JsonObject], resource_version_: str) -> None:
        initial = not self._synced.is_set()
        fresh: dict[str, JsonObject] = {object_key(obj): obj for obj in items}  # already prepared
        store = self.store
        for key in store:
            if key not in fresh:
                old = store.delete_key(key)
                if old is not None:
                    self._notify(("delete", old, True))
        for obj in fresh.values():
            old = store.upsert(obj)
            if old is None:
                self._notify(("add", obj, initial))
            elif resource_version(old) != resource_version(obj):
                self._notify(("update", old, obj))
        if initial:
            self._synced.set()
            self._notify(_SYNCED)

    def apply(self, event_type: str, obj: JsonObject) -> None:
        if self.transform:
            obj = self.transform(obj)
        if event_type == "DELETED":
            old = self.store.delete_key(object_key(obj))
            self._notify(("delete", obj, False))
            return
        old = self.store.upsert(obj)
        if old is None:
            self._notify(("add", obj, False))
        else:
            self._notify(("update", old, obj))

    async def _resync_loop(self, period: float) -> None:
        """Re-deliver every cached object as an update with old == new (nothing is fetched)."""
        await self._synced.wait()
        while True:
            await asyncio.sleep(period * random.uniform(0.9, 1.1))
            for obj in self.store.values():
                self._notify(("update", obj, obj))


async def wait_for_cache_sync(*informers: SharedInformer, timeout: float | None = None) -> bool:
    """Wait until every informer has synced; False if ``timeout`` expired first."""
    try:
        async with asyncio.timeout(timeout):
            for inf in informers:
                await inf.wait_for_sync()
    except TimeoutError:
        return False
    return True

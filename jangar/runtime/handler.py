"""Turn informer events into reconcile requests.

A mapper takes an object and returns the requests it should cause: the object itself
(``for_``), its controlling owner (``owns``), or anything custom (``watches``).
:class:`EnqueueHandler` applies predicates, maps old and new objects of an update (so a
child that moved from one owner to another wakes both), and enqueues. Events from an
initial list or a resync enqueue at low priority so real changes overtake them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from jangar.runtime.predicate import Predicate
from jangar.runtime.reconcile import Request
from jangar.runtime.resources import JsonObject, ResourceRef, resource_version
from jangar.runtime.workqueue import LOW_PRIORITY, WorkQueue

Mapper = Callable[[JsonObject], Iterable[Request]]


def request_for_object(obj: JsonObject) -> list[Request]:
    """The object itself."""
    meta = obj.get("metadata") or {}
    return [Request(meta.get("namespace") or None, meta["name"])]


def requests_for_owner(owner: ResourceRef, *, controller_only: bool = True) -> Mapper:
    """The owner(s) of kind ``owner`` in the object's owner references.

    Matched on group and kind (version ignored), like controller-runtime's
    ``EnqueueRequestForOwner``; by default only the reference marked ``controller: true``.
    """
    group, kind = owner.group_kind

    def mapper(obj: JsonObject) -> list[Request]:
        meta = obj.get("metadata") or {}
        out = []
        for ref in meta.get("ownerReferences") or []:
            if controller_only and not ref.get("controller"):
                continue
            api_version = str(ref.get("apiVersion") or "")
            ref_group = api_version.rpartition("/")[0] if "/" in api_version else ""
            if ref.get("kind") == kind and ref_group == group:
                out.append(Request(meta.get("namespace") if owner.namespaced else None, ref["name"]))
        return out

    return mapper


class EnqueueHandler:
    """An informer event handler that feeds a controller's queue."""

    def __init__(
        self, queue: WorkQueue[Request], mapper: Mapper, predicates: Sequence[Predicate] = ()
    ) -> None:
        self.queue = queue
        self.mapper = mapper
        self.predicates = tuple(predicates)

    def on_add(self, obj: JsonObject, is_in_initial_list: bool) -> None:
        if all(p.create(obj) for p in self.predicates):
            priority = LOW_PRIORITY if is_in_initial_list else 0
            for req in self.mapper(obj):
                self.queue.add(req, priority)

    def on_update(self, old: JsonObject, new: JsonObject) -> None:
        if all(p.update(old, new) for p in self.predicates):
            resync = resource_version(old) == resource_version(new)
            priority = LOW_PRIORITY if resync else 0
            requests = dict.fromkeys(self.mapper(new))
            if old is not new:
                requests.update(dict.fromkeys(self.mapper(old)))
            for req in requests:
                self.queue.add(req, priority)

    def on_delete(self, obj: JsonObject, final_state_unknown: bool) -> None:
        if all(p.delete(obj) for p in self.predicates):
            for req in self.mapper(obj):
                self.queue.add(req)

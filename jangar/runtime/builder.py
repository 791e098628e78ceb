"""Fluent controller construction, after controller-runtime's builder.

::

    Builder(manager).for_(WIDGETS, GenerationChanged()).owns(JOBS).with_options(
        max_concurrent_reconciles=4, reconcile_timeout=60
    ).complete(reconciler)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from jangar.runtime.clock import Clock
from jangar.runtime.controller import Controller, ControllerOptions
from jangar.runtime.handler import Mapper, request_for_object, requests_for_owner
from jangar.runtime.manager import Manager
from jangar.runtime.predicate import Predicate
from jangar.runtime.ratelimiter import RateLimiter
from jangar.runtime.reconcile import ReconcileFunc, Reconciler, Request
from jangar.runtime.resources import ResourceRef


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET: Literal[_Unset.UNSET] = _Unset.UNSET


class Builder:
    def __init__(self, manager: Manager) -> None:
        self._manager = manager
        self._for: tuple[ResourceRef, tuple[Predicate, ...]] | None = None
        self._watches: list[tuple[ResourceRef, Mapper | None, tuple[Predicate, ...], bool]] = []
        self._filters: tuple[Predicate, ...] = ()
        self._options = ControllerOptions()
        self._name: str | None = None

    def for_(self, ref: ResourceRef, *predicates: Predicate) -> Builder:
        """The reconciled kind: its own events enqueue its own namespace/name."""
        if self._for is not None:
            raise ValueError("for_() may be called only once")
        self._for = (ref, predicates)
        return self

    def owns(self, ref: ResourceRef, *predicates: Predicate, controller_only: bool = True) -> Builder:
        """A child kind: its events enqueue the owning ``for_`` object (via owner references)."""
        self._watches.append((ref, None, predicates, controller_only))
        return self

    def watches(self, ref: ResourceRef, mapper: Mapper, *predicates: Predicate) -> Builder:
        """Any kind, mapped to requests by ``mapper``."""
        self._watches.append((ref, mapper, predicates, True))
        return self

    def with_event_filter(self, *predicates: Predicate) -> Builder:
        """Predicates applied to every watch of this controller."""
        self._filters += predicates
        return self

    def with_options(
        self,
        *,
        max_concurrent_reconciles: int | Literal[_Unset.UNSET] = _UNSET,
        reconcile_timeout: float | Literal[_Unset.UNSET] | None = _UNSET,
        cache_sync_timeout: float | Literal[_Unset.UNSET] = _UNSET,
        rate_limiter: Callable[[], RateLimiter[Request]] | Literal[_Unset.UNSET] = _UNSET,
        need_leader_election: bool | Literal[_Unset.UNSET] = _UNSET,
        clock: Clock | Literal[_Unset.UNSET] = _UNSET,
    ) -> Builder:
        """Set :class:`ControllerOptions` fields; omitted ones keep their current value.

        ``rate_limiter`` is a factory (``lambda: ItemExponentialFailureRateLimiter(0.05, 60)``);
        ``reconcile_timeout=None`` means no limit. Keyword-only, so a typo is a type error.
        """
        given: dict[str, Any] = {
            k: v
            for k, v in (
                ("max_concurrent_reconciles", max_concurrent_reconciles),
                ("reconcile_timeout", reconcile_timeout),
                ("cache_sync_timeout", cache_sync_timeout),
                ("rate_limiter", rate_limiter),
                ("need_leader_election", need_leader_election),
                ("clock", clock),
            )
            if v is not _UNSET
        }
        self._options = replace(self._options, **given)
        return self

    def named(self, name: str) -> Builder:
        self._name = name
        return self

    def complete(self, reconciler: Reconciler | ReconcileFunc) -> Controller:
        """Build the controller and add it to the manager."""
        if self._for is None:
            raise ValueError("for_() is required (owns() maps children to the for_ kind)")
        ref, for_predicates = self._for
        name = self._name or ref.kind.lower()
        self._manager.register_controller_name(name)
        func: ReconcileFunc = reconciler.reconcile if hasattr(reconciler, "reconcile") else reconciler
        ctrl = Controller(name, func, self._manager.cache, self._manager.metrics, self._options)
        ctrl.watch(ref, request_for_object, self._filters + for_predicates)
        for child, mapper, predicates, controller_only in self._watches:
            m = mapper if mapper is not None else requests_for_owner(ref, controller_only=controller_only)
            ctrl.watch(child, m, self._filters + predicates)
        self._manager.add(ctrl, ctrl.need_leader_election)
        return ctrl

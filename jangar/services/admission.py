"""Early refusal of a submission, by the controller's own admission decision.

A surface refuses up front exactly the runs the controller would end as `QueueLimitExceeded`: it builds the
admission snapshot from the informer cache with the controller's code (`jangar.admission.snapshot`: held,
invalid and deleting runs excluded, a run with a Job counted as admitted), applies the in-process ledger's
reservations when the controller runs in this process, and asks `submission_rejection` — the same
`decide()` — about a candidate created now. So the per-namespace, per-repository and cluster queue limits all
count. The count comes from the shared informer cache, so every replica agrees.

A run whose Budget (`spec.budgetRef`, else its Agent's) is exceeded is refused too (`BudgetExceeded`, 429):
the same `budget_verdict` the controller's hold uses, on the cached Budget. A Budget that does not exist is
not refused here (the controller holds the run for the reference grace, so apply order does not matter);
without a Budget informer (supporting controller off) nothing is refused for budgets.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from jangar.admission import (
    WAIT_REQUEUE_SECONDS,
    AdmissionLedger,
    AdmissionLimits,
    Rejection,
    submission_rejection,
)
from jangar.admission.snapshot import ensure_admission_index, snapshot
from jangar.api.refs import AGENTS, BUDGETS
from jangar.runtime import CacheReader, InformerNotRegistered, JsonObject
from jangar.scheduler.budget import BudgetVerdict, budget_name, budget_verdict
from jangar.scheduler.contract import repository_of
from jangar.services.errors import BudgetExceeded, QueueFull

__all__ = ["RETRY_AFTER_SECONDS", "EarlyRefusal"]

RETRY_AFTER_SECONDS = int(WAIT_REQUEUE_SECONDS)
"""What a refused caller is told to wait (HTTP `Retry-After`): the period a Queued run looks again."""


class EarlyRefusal:
    def __init__(
        self,
        cache: CacheReader,
        limits: AdmissionLimits,
        *,
        ledger: AdmissionLedger | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.cache = cache
        self.limits = limits
        self.ledger = ledger
        self.clock = clock
        ensure_admission_index(cache)  # the snapshot reads unfinished runs through it

    def rejection(self, manifest: JsonObject) -> Rejection | None:
        """The controller's rejection for `manifest` if it were created now, else None (also when the cache
        does not watch AgentRuns: the controller then decides alone)."""
        now = self.clock()
        try:
            records = snapshot(self.cache, self.clock)
        except InformerNotRegistered:
            return None
        if self.ledger is not None:
            records = self.ledger.with_reservations(records, now)
        meta = manifest.get("metadata") or {}
        agent = ((manifest.get("spec") or {}).get("agentRef") or {}).get("name") or "unknown"
        return submission_rejection(
            records,
            self.limits,
            namespace=str(meta.get("namespace") or "default"),
            agent=str(agent),
            repository=repository_of(manifest),
            now=now,
            admissions=self.ledger.admissions(now) if self.ledger is not None else None,
        )

    def budget(self, manifest: JsonObject) -> tuple[str, BudgetVerdict] | None:
        """The Budget `manifest` would count against and its verdict (None: no Budget, not cached, or
        Budgets not watched)."""
        meta = manifest.get("metadata") or {}
        ns = str(meta.get("namespace") or "default")
        try:
            agent_name = ((manifest.get("spec") or {}).get("agentRef") or {}).get("name")
            agent = self.cache.get(AGENTS, str(agent_name), ns, copy=False) if agent_name else None
            name = budget_name(manifest, agent)
            if name is None:
                return None
            budget = self.cache.get(BUDGETS, name, ns, copy=False)
        except InformerNotRegistered:
            return None
        if budget is None:
            return None
        return name, budget_verdict(budget, name)

    def check(self, manifest: JsonObject) -> None:
        """Raise `QueueFull` when the controller would reject `manifest`, `BudgetExceeded` when it would
        hold it for its Budget."""
        rejection = self.rejection(manifest)
        if rejection is not None:
            raise QueueFull(
                rejection.message,
                scope=rejection.scope,
                limit=rejection.limit,
                retry_after=RETRY_AFTER_SECONDS,
            )
        found = self.budget(manifest)
        if found is not None and found[1].exceeded:
            name, verdict = found
            raise BudgetExceeded(
                verdict.message, budget=name, resource=verdict.resource, retry_after=RETRY_AFTER_SECONDS
            )

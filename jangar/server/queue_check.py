"""The early queue-limit refusal shared by the HTTP API and gRPC submission.

The controller is where admission happens; a surface only refuses up front what the controller would end as
`QueueLimitExceeded` anyway. The count comes from the manager's informer cache, so every replica agrees.
"""

from __future__ import annotations

from jangar.controllers.admission_gate import held_for_admission
from jangar.runtime import CacheReader, InformerNotRegistered
from jangar.server.resources import AGENT_RUN, PENDING_PHASES
from jangar.settings import Settings


def queue_full(cache: CacheReader, settings: Settings, namespace: str) -> str | None:
    """A message when the namespace's waiting runs reach `queue.per_namespace` (0 turns it off), else None.

    Runs held for an invalid spec or being deleted do not wait for capacity, so, as in the controller's own
    admission, they do not count."""
    limit = settings.queue.per_namespace
    if limit <= 0:
        return None
    try:
        runs = cache.list(AGENT_RUN, namespace, copy=False)
    except InformerNotRegistered:
        return None
    waiting = sum(
        1
        for run in runs
        if (run.get("status") or {}).get("phase", "") in PENDING_PHASES and not held_for_admission(run)
    )
    if waiting >= limit:
        return f"queue limit reached in namespace {namespace}: {waiting} runs waiting (limit {limit})"
    return None

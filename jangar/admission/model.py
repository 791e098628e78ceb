"""The admission snapshot (one `RunRecord` per AgentRun) and the limits it is checked against.

Everything the admission decision needs is in the cluster's state: each run's phase, agent, repository,
creation time and `status.queue.admittedAt`, and the rate window's record of recent admissions (one ConfigMap
per namespace, `jangar.admission.window`), which outlives deleted runs. Nothing is kept only in memory, so a
restarted controller rebuilds the same decisions from the same objects (issue §3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from jangar.api.contract import is_terminal
from jangar.conditions import parse_time
from jangar.scheduler.contract import repository_of
from jangar.settings import Settings

__all__ = ["WAIT_REQUEUE_SECONDS", "AdmissionLimits", "RunKey", "RunRecord", "natural_key"]

RunKey = tuple[str, str]  # (namespace, name)
WAIT_REQUEUE_SECONDS = 30.0
"""A Queued run is looked at again this often (its position may change), besides admission's wake-ups;
also what a refused submitter is told to wait (HTTP `Retry-After`)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def natural_key(name: str) -> tuple[tuple[int, str], ...]:
    """`run-2` < `run-10`: digit runs compare as numbers, the rest as text."""
    return tuple(
        (int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", name) if part
    )


@dataclass(frozen=True)
class RunRecord:
    """What admission knows about one AgentRun.

    * `admitted_at`: when admission let it run (`status.queue.admittedAt`); a run that is Running without it
      (created before jangar managed admission) counts as admitted too.
    * `queued`: it already holds a place in the queue (phase Queued), so queue limits no longer reject it.
    * `uid`: keys the run's admission in the rate window, which outlives the run.
    """

    namespace: str
    name: str
    created_at: datetime
    phase: str = ""
    agent: str = "unknown"
    repository: str | None = None
    admitted_at: datetime | None = None
    queued: bool = False
    uid: str = ""

    @property
    def key(self) -> RunKey:
        return (self.namespace, self.name)

    @property
    def window_id(self) -> str:
        """The run's key in the rate window (`jangar.admission.window`): its uid, else namespace/name."""
        return self.uid or f"{self.namespace}/{self.name}"

    @cached_property
    def terminal(self) -> bool:
        return is_terminal(self.phase)

    @cached_property
    def active(self) -> bool:
        """Holds capacity: admitted (or Running) and not finished."""
        return not self.terminal and (self.admitted_at is not None or self.phase == "Running")

    @cached_property
    def waiting(self) -> bool:
        return not self.terminal and not self.active

    @cached_property
    def order(self) -> tuple[datetime, str, tuple[tuple[int, str], ...]]:
        """FIFO order: creation time (whole seconds in the API), then namespace, then the name compared
        naturally, so a burst `run-2`, `run-10` created in the same second keeps its numeric order."""
        return (self.created_at, self.namespace, natural_key(self.name))

    @classmethod
    def from_run(cls, run: Mapping[str, Any]) -> RunRecord:
        """Build a record from an AgentRun as the cache holds it."""
        metadata = run.get("metadata") or {}
        status = run.get("status") or {}
        queue = status.get("queue") or {}
        agent_ref = (run.get("spec") or {}).get("agentRef") or {}
        phase = str(status.get("phase") or "")
        return cls(
            namespace=str(metadata.get("namespace") or "default"),
            name=str(metadata.get("name")),
            created_at=parse_time(metadata.get("creationTimestamp")) or _EPOCH,
            phase=phase,
            agent=str(agent_ref.get("name") or "unknown"),
            repository=repository_of(run),
            admitted_at=parse_time(queue.get("admittedAt")),
            queued=phase == "Queued",
            uid=str(metadata.get("uid") or ""),
        )


@dataclass(frozen=True)
class AdmissionLimits:
    """Concurrency, queue and rate limits. 0 turns a limit off. Repository keys are lower-case."""

    per_namespace: int = 10
    per_agent: int = 5
    cluster: int = 100
    repo_enabled: bool = False
    repo_default: int = 0
    repo_overrides: Mapping[str, int] | None = None
    queue_per_namespace: int = 200
    queue_per_repo: int = 50
    queue_cluster: int = 1000
    rate_window_seconds: int = 60
    rate_per_namespace: int = 120
    rate_per_repo: int = 30
    rate_cluster: int = 600

    def repo_limit(self, repository: str | None) -> int:
        if not self.repo_enabled or not repository:
            return 0
        return (self.repo_overrides or {}).get(repository.lower(), self.repo_default)

    @classmethod
    def from_settings(cls, settings: Settings) -> AdmissionLimits:
        return cls(
            per_namespace=settings.concurrency.per_namespace,
            per_agent=settings.concurrency.per_agent,
            cluster=settings.concurrency.cluster,
            repo_enabled=settings.repo_concurrency.enabled,
            repo_default=settings.repo_concurrency.default,
            repo_overrides=dict(settings.repo_concurrency.overrides),
            queue_per_namespace=settings.queue.per_namespace,
            queue_per_repo=settings.queue.per_repo,
            queue_cluster=settings.queue.cluster,
            rate_window_seconds=settings.rate.window_seconds,
            rate_per_namespace=settings.rate.per_namespace,
            rate_per_repo=settings.rate.per_repo,
            rate_cluster=settings.rate.cluster,
        )

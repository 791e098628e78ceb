"""Durable AgentRun idempotency keys, as the AgentRun controller uses them (issue 13, docs/idempotency.md).

`IdempotencyClaims.check(run)` answers, for a run with `spec.idempotencyKey`, whether it may go on:

* a run that has not started claims its key (`jangar.storage.idempotency.claim_key`): it wins, already holds
  it, or reclaims a stale claim, and goes on; or another run holds it (`IdempotencyKeyInUse`) or held it and
  finished (`IdempotencyKeyCompleted`), and it fails without starting — whether it came from the API,
  gRPC, or `kubectl apply`;
* a started or finished holder records that on its row (so a later claimer knows the key was consumed);
* Postgres unreachable (or the table missing): the answer is "unavailable", and the run is held Pending
  (`IdempotencyCheckPending`) and checked again, never started unchecked and never failed for the outage.

Answers already committed are remembered per run uid, so re-reconciling a run costs no round trip. Without
`DATABASE_URL`, or with `JANGAR_AGENTRUN_IDEMPOTENCY_ENABLED=false`, there is no `IdempotencyClaims` at all
and only the API's deterministic names protect a key (`jangar.services.idempotency`).
`IdempotencyPruner` deletes keys older than the retention, on the leader only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from jangar.api.contract import is_terminal
from jangar.controllers.kinds import AGENTRUNS
from jangar.runtime import CacheReader, Manager
from jangar.settings import Settings
from jangar.storage.engine import create_engine
from jangar.storage.events import redact_text
from jangar.storage.idempotency import (
    ClaimOutcome,
    ClaimRow,
    Holder,
    KeyClaim,
    claim_key,
    prune_keys,
    record_progress,
)

log = structlog.get_logger("jangar.controllers.idempotency")

__all__ = [
    "CHECK_TIMEOUT_SECONDS",
    "PRUNE_INTERVAL_SECONDS",
    "EngineCloser",
    "IdempotencyClaims",
    "IdempotencyPruner",
    "KeyCheck",
    "install_idempotency",
    "run_key",
]

CHECK_TIMEOUT_SECONDS = 5.0
"""The longest one claim may take before the run is held as if Postgres were down (a reconcile must not hang)."""
PRUNE_INTERVAL_SECONDS = 3600.0
"""How often the leader prunes keys older than the retention."""
_MEMO_SIZE = 50_000


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """The answer for one run: `outcome` None with `error` set means Postgres could not be asked."""

    claim: KeyClaim
    outcome: ClaimOutcome | None = None
    holder: ClaimRow | None = None
    error: str | None = None

    @property
    def unavailable(self) -> bool:
        return self.outcome is None


def run_key(run: Mapping[str, Any]) -> KeyClaim | None:
    """The claim `run` makes: None without `spec.idempotencyKey`, or while the run is being deleted."""
    meta = run.get("metadata") or {}
    spec = run.get("spec") or {}
    key = spec.get("idempotencyKey")
    if not isinstance(key, str) or not key or meta.get("deletionTimestamp") or not meta.get("uid"):
        return None
    ref = spec.get("agentRef")
    agent = ref.get("name") if isinstance(ref, Mapping) else ref
    status = run.get("status") or {}
    return KeyClaim(
        namespace=str(meta.get("namespace") or "default"),
        agent=str(agent or ""),
        key=key,
        run_uid=str(meta["uid"]),
        run_name=str(meta.get("name") or ""),
        started=bool(status.get("startedAt") or (status.get("jobRef") or {}).get("name")),
        finished=is_terminal(status.get("phase")),
    )


class IdempotencyClaims:
    """Claims keys in Postgres for the AgentRun reconciler; one per controller process (leader)."""

    def __init__(
        self,
        engine: AsyncEngine,
        cache: CacheReader,
        *,
        clock: Callable[[], datetime],
        timeout: float = CHECK_TIMEOUT_SECONDS,
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.clock = clock
        self.timeout = timeout
        # run uid -> the (started, finished) Postgres last confirmed for it, and whether it holds its key
        self._known: OrderedDict[str, tuple[bool, bool, bool]] = OrderedDict()

    def holder_of(self, row: ClaimRow, namespace: str) -> Holder:
        """The claim row's run, as the cache sees it (a run being deleted counts as gone)."""
        run = self.cache.get(AGENTRUNS, row.run_name, namespace, copy=False)
        meta = (run or {}).get("metadata") or {}
        if run is None or meta.get("uid") != row.run_uid or meta.get("deletionTimestamp"):
            return Holder.ABSENT
        return Holder.FINISHED if is_terminal((run.get("status") or {}).get("phase")) else Holder.LIVE

    async def check(self, claim: KeyClaim) -> KeyCheck:
        """Claim (a run not started) or record progress (a started one); never raises."""
        known = self._known.get(claim.run_uid)
        if known is not None and known[:2] == (claim.started, claim.finished):
            self._known.move_to_end(claim.run_uid)
            return KeyCheck(claim, ClaimOutcome.OWN if known[2] else ClaimOutcome.COMPLETED)
        try:
            async with asyncio.timeout(self.timeout):
                if claim.started or claim.finished:
                    holds = await record_progress(self.engine, claim, self.clock())
                    self._remember(claim, holds)
                    return KeyCheck(claim, ClaimOutcome.OWN if holds else ClaimOutcome.COMPLETED)
                outcome, row = await claim_key(
                    self.engine, claim, lambda row: self.holder_of(row, claim.namespace), self.clock()
                )
        except Exception as exc:
            error = _describe(exc)
            log.warning(
                "idempotency.unavailable",
                namespace=claim.namespace,
                name=claim.run_name,
                error=error,
            )
            return KeyCheck(claim, error=error)
        if outcome.allowed:
            self._remember(claim, True)
        if outcome is not ClaimOutcome.OWN:
            log.info(
                "idempotency.claim",
                namespace=claim.namespace,
                name=claim.run_name,
                agent=claim.agent,
                outcome=str(outcome),
                holder=row.run_name,
            )
        return KeyCheck(claim, outcome, row)

    def _remember(self, claim: KeyClaim, holds: bool) -> None:
        self._known[claim.run_uid] = (claim.started, claim.finished, holds)
        self._known.move_to_end(claim.run_uid)
        while len(self._known) > _MEMO_SIZE:
            self._known.popitem(last=False)


def _describe(exc: BaseException) -> str:
    """What went wrong, without credentials (a DSN in a driver message is redacted)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return redact_text(f"{type(exc).__name__}: {text}"[:300]) or type(exc).__name__


class IdempotencyPruner:
    """Leader runnable: every `PRUNE_INTERVAL_SECONDS`, delete the keys untouched for the retention."""

    name = "idempotency-pruner"
    need_leader_election = True

    def __init__(
        self,
        engine: AsyncEngine,
        retention_days: int,
        *,
        clock: Callable[[], datetime],
        interval: float = PRUNE_INTERVAL_SECONDS,
    ) -> None:
        self.engine = engine
        self.retention = timedelta(days=retention_days)
        self.clock = clock
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def prune_once(self) -> int:
        """Delete the keys older than the retention now; return how many (0 when Postgres failed)."""
        try:
            pruned = await prune_keys(self.engine, self.clock() - self.retention)
        except Exception as exc:
            log.warning("idempotency.prune_failed", error=_describe(exc))
            return 0
        if pruned:
            log.info("idempotency.pruned", keys=pruned, retention_days=self.retention.days)
        return pruned

    async def _loop(self) -> None:
        while True:
            await self.prune_once()
            await asyncio.sleep(self.interval)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self, timeout: float) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout)


class EngineCloser:
    """Disposes the claims' engine at shutdown (a non-leader runnable: stopped after the controllers)."""

    name = "idempotency-engine"
    need_leader_election = False

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def start(self) -> None:
        return None

    async def stop(self, timeout: float) -> None:
        await self.engine.dispose()


def install_idempotency(
    manager: Manager, settings: Settings, clock: Callable[[], datetime]
) -> IdempotencyClaims | None:
    """The AgentRun reconciler's `IdempotencyClaims`, with the leader's pruner and the engine's closer added
    to `manager`; None when the feature is off or no `DATABASE_URL` is set (then only the API's deterministic
    names protect a key, as before)."""
    if not settings.idempotency.enabled or not settings.database.url:
        log.info(
            "idempotency.off",
            reason="JANGAR_AGENTRUN_IDEMPOTENCY_ENABLED=false"
            if settings.database.url
            else "no DATABASE_URL",
        )
        return None
    engine = create_engine(settings.database.url, pool_size=2)
    manager.add(IdempotencyPruner(engine, settings.idempotency.retention_days, clock=clock))
    manager.add(EngineCloser(engine), need_leader_election=False)
    return IdempotencyClaims(engine, manager.cache, clock=clock)

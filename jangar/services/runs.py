"""`RunsService`: submit, cancel, get and list AgentRuns — the rules every surface shares.

`POST /v1/agent-runs` (`jangar.server.agentruns_api`) and the AgentRun methods of the agentctl gRPC service
(`jangar.grpc.service`) only translate their protocol to these calls and the typed errors
(`jangar.services.errors`) back. The rules, once:

* **namespace**: `NamespaceScope` (default namespace, `*` refused, unmanaged namespaces refused);
* **manifest**: `build_agent_run` (also `agentctl`'s);
* **early refusal**: the controller's admission decision over the controller's snapshot (`EarlyRefusal`),
  so a surface answers QueueFull for exactly the runs admission would reject;
* **idempotency**: a key is a deterministic name; the same key again returns the existing run (a replay),
  another or no key on a taken name is `AlreadyExists`. A replay is answered even when the queue is full;
* **cancel**: the cancel annotation; `NotFound` for a missing run;
* **reads** go to the API server, not the cache, so a run is readable the moment its submission returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from jangar.admission import AdmissionLedger, AdmissionLimits
from jangar.api.contract import Phase
from jangar.api.refs import AGENTRUNS
from jangar.audit import AuditSink, audit_run
from jangar.runtime import CacheReader, Client, JsonObject, NotFoundError, strip_managed_fields
from jangar.services.admission import EarlyRefusal
from jangar.services.cancel import request_cancel
from jangar.services.errors import InvalidRequest, NotFound, QueueFull
from jangar.services.idempotency import Submitted, create_or_replay, existing_replay
from jangar.services.scope import NamespaceScope
from jangar.services.submission import Submission, build_agent_run
from jangar.settings import Settings

__all__ = ["RunList", "RunsService"]

log = structlog.get_logger("jangar.services.runs")


@dataclass(frozen=True)
class RunList:
    items: list[JsonObject]
    resource_version: str = ""
    """The list's resourceVersion when it covers one namespace ("" across several)."""


def _phase(obj: JsonObject) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def _order(obj: JsonObject) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


class RunsService:
    def __init__(
        self,
        client: Client,
        cache: CacheReader,
        settings: Settings,
        *,
        ledger: AdmissionLedger | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        audit: AuditSink | None = None,
    ) -> None:
        """`ledger`: the controller's reservations when it runs in this process (None on an API-only
        replica, which then sees admissions once their `admittedAt` write reaches the cache)."""
        self.client = client
        self.audit = audit
        self.scope = NamespaceScope.from_settings(settings)
        self.refusal = EarlyRefusal(
            cache, AdmissionLimits.from_settings(settings), ledger=ledger, clock=clock
        )

    def namespace(self, requested: str | None) -> str:
        return self.scope.resolve(requested)

    async def submit(self, submission: Submission, *, actor: str | None = None) -> Submitted:
        """Create the run `submission` describes (its namespace defaulted and checked first); `actor` is the
        authenticated caller, for the audit event."""
        sub = dataclasses.replace(submission, namespace=self.scope.resolve(submission.namespace))
        manifest = build_agent_run(sub)
        try:
            self.refusal.check(manifest)
        except QueueFull:
            # A replay of an accepted submission is not a new run: answer it, whatever the queue.
            replay = await existing_replay(self.client, manifest)
            if replay is None:
                self._audit(manifest, "rejected", actor, "QueueFull")
                raise
            self._audit(replay.run, "replayed", actor)
            return dataclasses.replace(replay, run=strip_managed_fields(replay.run))
        result = await create_or_replay(self.client, manifest)
        meta = result.run["metadata"]
        log.info("runs.submitted", namespace=meta["namespace"], name=meta["name"], replayed=result.replayed)
        self._audit(result.run, "replayed" if result.replayed else "accepted", actor)
        return dataclasses.replace(result, run=strip_managed_fields(result.run))

    def _audit(self, run: JsonObject, decision: str, actor: str | None, reason: str | None = None) -> None:
        """issue 13: every submission, accepted, replayed or refused, is an audit event (docs/audit.md)."""
        if self.audit is not None:
            event = audit_run(run, "agentrun.submit", source="api", decision=decision, reason=reason)
            self.audit.emit(dataclasses.replace(event, actor=actor))

    async def cancel(self, namespace: str, name: str) -> JsonObject:
        """Request cancellation (the annotation); the controller ends the run as Cancelled."""
        ns = self.scope.resolve(namespace)
        if not name:
            raise InvalidRequest("name is required")
        run = strip_managed_fields(await request_cancel(self.client, ns, name))
        log.info("runs.cancel_requested", namespace=ns, name=name, phase=_phase(run))
        return run

    async def get(self, namespace: str, name: str) -> JsonObject:
        ns = self.scope.resolve(namespace)
        if not name:
            raise InvalidRequest("name is required")
        try:
            return strip_managed_fields(await self.client.get(AGENTRUNS, name, ns))
        except NotFoundError:
            raise NotFound(AGENTRUNS.kind, ns, name) from None

    async def list(
        self,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        phase: str | None = None,
        runtime: str | None = None,
    ) -> RunList:
        """Runs oldest first. `namespace=None`: every managed namespace; `""`: the default namespace.

        `phase` matches case-insensitively (a run without a phase is Pending); `runtime` is the runtime type.
        """
        namespaces = self.scope.managed() if namespace is None else (self.scope.resolve(namespace),)
        selector = (label_selector or "").strip() or None
        results = [
            await self.client.list(AGENTRUNS, ns, label_selector=selector) for ns in namespaces or (None,)
        ]
        items = [strip_managed_fields(o) for result in results for o in result.items]
        rv = results[0].resource_version if len(results) == 1 else ""
        if phase:
            items = [o for o in items if (_phase(o) or Phase.PENDING).lower() == phase.lower()]
        if runtime:
            items = [o for o in items if _runtime(o) == runtime]
        items.sort(key=_order)
        return RunList(items, rv)


def _runtime(obj: JsonObject) -> Any:
    return ((obj.get("spec") or {}).get("runtime") or {}).get("type")

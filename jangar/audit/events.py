"""The shape of one audit event: who did what to which object, and what was decided.

Fields are identities, decisions and reasons only: never a spec, a parameter, an env value or a message
that could carry one (a reason is a CamelCase word; `detail` takes short, known-safe strings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["AuditEvent", "audit_run"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited action. `action` is dotted (`agentrun.submit`, `admission.decision`, ...)."""

    action: str
    source: str
    """Who acted: `api` (HTTP and gRPC submissions), `controller` (a reconciler's decision)."""
    namespace: str
    kind: str
    name: str
    uid: str | None = None
    decision: str | None = None
    """`accepted`, `replayed`, `rejected`, `held`, `admitted`, `approved` ..."""
    reason: str | None = None
    actor: str | None = None
    """The authenticated caller, when the surface knows it."""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    detail: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form both the stdout and the http sinks write (camelCase keys, RFC 3339 time)."""
        out: dict[str, Any] = {
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "source": self.source,
            "action": self.action,
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "decision": self.decision,
            "reason": self.reason,
        }
        if self.actor:
            out["actor"] = self.actor
        if self.detail:
            out["detail"] = dict(self.detail)
        return out


def audit_run(
    run: Mapping[str, Any],
    action: str,
    *,
    source: str,
    decision: str | None = None,
    reason: str | None = None,
    detail: Mapping[str, str] | None = None,
    time: datetime | None = None,
) -> AuditEvent:
    """An event about the object `run` (any kind), from its metadata only."""
    meta = run.get("metadata") or {}
    return AuditEvent(
        action=action,
        source=source,
        namespace=str(meta.get("namespace") or ""),
        kind=str(run.get("kind") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta["uid"]) if meta.get("uid") else None,
        decision=decision,
        reason=reason,
        time=time or datetime.now(UTC),
        detail=dict(detail or {}),
    )

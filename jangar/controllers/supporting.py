"""The shared reconcile loop of the supporting kinds (Agent, AgentProvider, ImplementationSpec,
ImplementationSource, Memory, VersionControlProvider, SecretBinding).

Each kind module supplies a `check(obj, env)` that returns a `Verdict`: Ready or not, why, and any extra
conditions and status fields. This loop turns it into a status with observedGeneration, the full condition
set (Ready, InvalidSpec, Unreachable, plus the kind's own), and writes it only when something changed — the
reference stamped `lastCheckedAt`/`lastValidatedAt` on every pass, which defeated its own "unchanged" check
and fed a reconcile storm (§12.5). A verdict that depends on something not watched (a Secret) asks for a
timed requeue instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from jangar.controllers.status import Cond, compose_status, write_status
from jangar.runtime import (
    CacheReader,
    Client,
    JsonObject,
    Recorder,
    Request,
    ResourceRef,
    Result,
)
from jangar.settings import Settings

log = structlog.get_logger("jangar.controllers.supporting")

__all__ = ["CheckEnv", "SupportingReconciler", "Verdict", "invalid", "ready", "unreachable"]

UNREACHABLE_REQUEUE_SECONDS = 60.0


@dataclass(frozen=True)
class Verdict:
    ready: bool
    reason: str
    message: str = ""
    invalid: bool = False
    unreachable: bool = False
    phase: str | None = None  # default: Ready / Invalid / Unreachable / NotReady
    conditions: tuple[Cond, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None
    #: conditions set after the phase-derived Ready/Progressing/Degraded (a provider Degraded but Ready)
    overrides: tuple[Cond, ...] = ()
    #: (type, reason, message) of the Event for a phase change, instead of a Warning when not Ready
    event: tuple[str, str, str] | None = None


def ready(reason: str, message: str = "", **kw: Any) -> Verdict:
    return Verdict(True, reason, message, **kw)


def invalid(reason: str, message: str, **kw: Any) -> Verdict:
    return Verdict(False, reason, message, invalid=True, **kw)


def unreachable(reason: str, message: str, **kw: Any) -> Verdict:
    kw.setdefault("requeue_after", UNREACHABLE_REQUEUE_SECONDS)
    return Verdict(False, reason, message, unreachable=True, **kw)


@dataclass(frozen=True)
class CheckEnv:
    settings: Settings
    client: Client
    cache: CacheReader


CheckFunc = Callable[[JsonObject, CheckEnv], Awaitable[Verdict]]


def _phase(v: Verdict) -> str:
    if v.phase:
        return v.phase
    if v.ready:
        return "Ready"
    if v.invalid:
        return "Invalid"
    return "Error" if v.unreachable else "NotReady"


class SupportingReconciler:
    def __init__(
        self,
        ref: ResourceRef,
        check: CheckFunc,
        env: CheckEnv,
        events: Recorder | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ref = ref
        self.check = check
        self.env = env
        self.events = events
        self.clock = clock

    async def reconcile(self, req: Request) -> Result | None:
        obj = self.env.cache.get(self.ref, req.name, req.namespace)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return None
        verdict = await self.check(obj, self.env)
        now = self.clock()
        conds = [
            Cond(
                "InvalidSpec",
                verdict.invalid,
                verdict.reason if verdict.invalid else "Valid",
                verdict.message if verdict.invalid else "",
            ),
            Cond(
                "Unreachable",
                verdict.unreachable,
                verdict.reason if verdict.unreachable else "Reachable",
                verdict.message if verdict.unreachable else "",
            ),
            *verdict.conditions,
        ]
        phase = _phase(verdict)
        status = compose_status(
            obj.get("status"),
            phase=phase,
            conditions=conds,
            generation=obj["metadata"].get("generation"),
            now=now,
            fields=verdict.fields,
            summary_reason=verdict.reason,
            summary_message=verdict.message,
        )
        # Ready carries the verdict's own reason and message (summary_conditions derives it from the phase).
        status["conditions"] = compose_status(
            {"conditions": status["conditions"]},
            phase=None,
            conditions=[Cond("Ready", verdict.ready, verdict.reason, verdict.message), *verdict.overrides],
            generation=obj["metadata"].get("generation"),
            now=now,
            summary=False,
        )["conditions"]
        old_phase = (obj.get("status") or {}).get("phase")
        updated = await write_status(self.env.client, self.ref, obj, status, now=now)
        if updated is not None:
            meta = obj["metadata"]
            log.info(
                "status updated",
                kind=self.ref.kind,
                namespace=meta.get("namespace"),
                name=meta.get("name"),
                phase=phase,
                reason=verdict.reason,
            )
            if self.events is not None and old_phase != phase and verdict.event is not None:
                self.events.event(updated, *verdict.event)
            elif self.events is not None and old_phase != phase and not verdict.ready:
                self.events.warning(updated, verdict.reason, verdict.message)
        return Result(requeue_after=verdict.requeue_after) if verdict.requeue_after else None


async def read_secret_key(client: Client, namespace: str, name: str, key: str | None) -> Verdict | None:
    """None when the Secret exists (and has `key`, if given); else the Unreachable/InvalidSpec verdict."""
    from jangar.controllers.kinds import SECRETS
    from jangar.runtime import NotFoundError

    try:
        secret = await client.get(SECRETS, name, namespace)
    except NotFoundError:
        return unreachable("SecretNotFound", f"secret {name!r} not found in namespace {namespace!r}")
    if key is not None:
        data = {**(secret.get("data") or {}), **(secret.get("stringData") or {})}
        if key not in data:
            return invalid(
                "SecretKeyMissing",
                f"secret {name!r} has no key {key!r}",
                requeue_after=UNREACHABLE_REQUEUE_SECONDS,
            )
    return None

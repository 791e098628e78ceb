"""Provider health from its runs' outcomes (chart 0.9.29, drift row 10), as pure functions.

A run that fails because the provider's account hit a usage limit, a quota or a rate limit ("capacity"),
or because its credentials no longer work (an expired token, an invalid grant: "auth"), says nothing
about the run and everything about the next one: it would fail the same way. 0.9.29 reads the failed
pod's logs for these phrases; jangar reads what the run already recorded from the pod's termination
message (`status.runner.message`, the failure condition's message). With `FallbackToLogsOnError` that is
the log tail of a container that wrote no report, so no log is fetched, and the text is bounded.

`provider_health` turns the runs of one AgentProvider into its health:

* the newest classified failure that finished inside the cool-down window
  (`JANGAR_PROVIDER_HEALTH_COOLDOWN_SECONDS`) and after the provider's last spec change (`resetAt`) makes the
  provider unhealthy until `failedAt + cool-down`;
* a run of the provider that succeeded after that failure clears it at once (the provider works again);
* a spec change clears it too (a new token Secret, another model, a higher tier: the user acted).

Only a provider that sets `spec.health` (any object, `{}` included) is gated: a 0.9.1 provider has no such
field and is never held. Auth failures always make the provider Ready=False; capacity failures follow
`spec.health.capacityFailurePolicy`: `degrade` (the default) sets Degraded=True and keeps Ready=True,
`block` sets Ready=False. In every unhealthy state new runs of the provider's Agents are held Pending with
Blocked=True (`provider_hold`) instead of starting and burning their retries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from jangar.api.shape import as_map
from jangar.conditions import format_time, parse_time

__all__ = [
    "REASON_AUTH",
    "REASON_CAPACITY",
    "FailureKind",
    "ProviderHealth",
    "ProviderHold",
    "RunOutcome",
    "capacity_failure_policy",
    "classify_failure",
    "failure_text",
    "provider_health",
    "provider_hold",
    "run_outcome",
]

FailureKind = Literal["capacity", "auth"]
HealthState = Literal["Healthy", "CapacityExhausted", "AuthFailed"]

REASON_CAPACITY = "ProviderCapacityExhausted"
REASON_AUTH = "ProviderAuthFailed"
_TEXT_CAP = 4096
_EXCERPT_CAP = 200

# Auth is matched first: a revoked token can also be reported with a 429-ish retry hint, never the reverse.
_AUTH = re.compile(
    r"token[\s_-]*(has[\s_-]*)?expired|expired[\s_-]*(access[\s_-]*|refresh[\s_-]*)?token|invalid[\s_-]*grant"
    r"|refresh[\s_-]*token[\s_-]*(was[\s_-]*)?(reused|revoked|invalid)|invalid[\s_-]*api[\s_-]*key"
    r"|401[\s:-]*unauthori[sz]ed|authentication[\s_-]*(failed|required)|not[\s_-]*logged[\s_-]*in",
    re.IGNORECASE,
)
_CAPACITY = re.compile(
    r"usage[\s_-]*limit|quota|rate[\s_-]*limit|ratelimit|too[\s_-]*many[\s_-]*requests"
    r"|429[\s:-]*too|insufficient[\s_-]*quota|capacity[\s_-]*exhausted",
    re.IGNORECASE,
)


def classify_failure(text: str | None) -> FailureKind | None:
    """`auth`, `capacity` or None for what a failed run said."""
    if not text:
        return None
    if _AUTH.search(text):
        return "auth"
    if _CAPACITY.search(text):
        return "capacity"
    return None


def failure_text(run: Mapping[str, Any]) -> str:
    """What a failed run said, from its status only: the runner's message and `outputs.message`/`error`,
    then the Failed condition's message (which quotes the container's termination message); bounded."""
    status = as_map(run.get("status"))
    runner = as_map(status.get("runner"))
    outputs = as_map(runner.get("outputs"))
    parts = [runner.get("message"), outputs.get("message"), outputs.get("error"), status.get("message")]
    for condition in status.get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "Failed":
            parts.append(condition.get("message"))
    text = "\n".join(p for p in parts if isinstance(p, str) and p)
    return text[-_TEXT_CAP:]


@dataclass(frozen=True)
class RunOutcome:
    """A finished run of the provider, as far as its health goes."""

    name: str
    succeeded: bool
    finished_at: datetime
    kind: FailureKind | None = None
    excerpt: str = ""


def _excerpt(text: str, kind: FailureKind) -> str:
    """The line that matched, shortened, for the provider's and the held runs' messages."""
    pattern = _AUTH if kind == "auth" else _CAPACITY
    for raw in text.splitlines():
        if pattern.search(raw):
            line = raw.strip()
            return line if len(line) <= _EXCERPT_CAP else line[: _EXCERPT_CAP - 3] + "..."
    return ""


def _started(status: Mapping[str, Any]) -> bool:
    """The run reached its runtime: a start time, a Job, or a runner report."""
    return bool(status.get("startedAt") or as_map(status.get("jobRef")).get("name") or status.get("runner"))


def run_outcome(run: Mapping[str, Any]) -> RunOutcome | None:
    """A Succeeded or Failed run with a finish time; None for anything else, and for a run that failed
    without starting (its message is jangar's own, e.g. an idempotency key or a spec value quoted back)."""
    status = as_map(run.get("status"))
    phase = status.get("phase")
    finished = parse_time(status.get("finishedAt"))
    if phase not in ("Succeeded", "Failed") or finished is None:
        return None
    name = str(as_map(run.get("metadata")).get("name") or "")
    if phase == "Succeeded":
        return RunOutcome(name, True, finished)
    if not _started(status):
        return None  # failed before reaching the provider (validation, idempotency key): says nothing of it
    text = failure_text(run)
    kind = classify_failure(text)
    return RunOutcome(name, False, finished, kind, _excerpt(text, kind) if kind else "")


def capacity_failure_policy(provider: Mapping[str, Any]) -> Literal["degrade", "block"]:
    policy = as_map(as_map(as_map(provider.get("spec")).get("health"))).get("capacityFailurePolicy")
    return "block" if policy == "block" else "degrade"


@dataclass(frozen=True)
class ProviderHealth:
    """The provider's health and what it means for its status and its runs."""

    state: HealthState
    generation: int | None
    reset_at: datetime | None = None
    reason: str = "Healthy"
    message: str = ""
    failed_run: str | None = None
    failed_at: datetime | None = None
    until: datetime | None = None
    #: the provider stays Ready (capacity failure under policy `degrade`)
    ready: bool = True

    @property
    def healthy(self) -> bool:
        return self.state == "Healthy"

    def status(self) -> dict[str, Any]:
        """`status.health`."""
        out: dict[str, Any] = {"state": self.state, "reason": self.reason}
        if self.message:
            out["message"] = self.message
        if self.failed_run:
            out["failedRun"] = self.failed_run
        if self.failed_at is not None:
            out["failedAt"] = format_time(self.failed_at)
        if self.until is not None:
            out["until"] = format_time(self.until)
        if self.generation is not None:
            out["generation"] = self.generation
        if self.reset_at is not None:
            out["resetAt"] = format_time(self.reset_at)
        return out


def provider_health(
    provider: Mapping[str, Any],
    outcomes: Iterable[RunOutcome],
    *,
    now: datetime,
    cooldown_seconds: float,
) -> ProviderHealth:
    """The provider's health from its finished runs (see the module docstring)."""
    meta = as_map(provider.get("metadata"))
    generation = meta.get("generation") if isinstance(meta.get("generation"), int) else None
    previous = as_map(as_map(provider.get("status")).get("health"))
    reset_at = parse_time(previous.get("resetAt"))
    if previous.get("generation") is not None and previous.get("generation") != generation:
        reset_at = now  # the spec changed since the last verdict: what failed before is forgotten
    if cooldown_seconds <= 0:
        return ProviderHealth("Healthy", generation, reset_at, message="health gating is off")
    if not isinstance(as_map(provider.get("spec")).get("health"), Mapping):
        # Opt-in: only a provider with `spec.health` is gated. A 0.9.1 provider (which has no such field)
        # is never held: its runs' log tails are free text, and a test log saying "rate limit" must not
        # stop every run of the provider for the cool-down.
        return ProviderHealth("Healthy", generation, reset_at, message="no spec.health: health gating is off")
    cutoff = now - timedelta(seconds=cooldown_seconds)
    if reset_at is not None and reset_at > cutoff:
        cutoff = reset_at
    recent = sorted(
        (o for o in outcomes if o.finished_at > cutoff), key=lambda o: (o.finished_at, o.name), reverse=True
    )
    failure = next((o for o in recent if not o.succeeded and o.kind is not None), None)
    if failure is None:
        return ProviderHealth("Healthy", generation, reset_at)
    recovered = next((o for o in recent if o.succeeded and o.finished_at > failure.finished_at), None)
    if recovered is not None:
        return ProviderHealth(
            "Healthy", generation, reset_at, message=f"run {recovered.name} succeeded after {failure.name}"
        )
    until = failure.finished_at + timedelta(seconds=cooldown_seconds)
    said = f" ({failure.excerpt!r})" if failure.excerpt else ""
    name = str(meta.get("name") or "")
    if failure.kind == "auth":
        message = (
            f"run {failure.name} failed to authenticate with provider {name}{said}; renew the provider's "
            f"credentials, then change the AgentProvider's spec to clear this at once; new runs wait until "
            f"{format_time(until)}"
        )
        return ProviderHealth(
            "AuthFailed",
            generation,
            reset_at,
            REASON_AUTH,
            message,
            failure.name,
            failure.finished_at,
            until,
            ready=False,
        )
    policy = capacity_failure_policy(provider)
    message = (
        f"run {failure.name} hit provider {name}'s capacity (usage limit, quota or rate limit){said}; new "
        f"runs wait until {format_time(until)}, or until a run succeeds or the AgentProvider's spec changes "
        f"(capacityFailurePolicy {policy})"
    )
    return ProviderHealth(
        "CapacityExhausted",
        generation,
        reset_at,
        REASON_CAPACITY,
        message,
        failure.name,
        failure.finished_at,
        until,
        ready=policy == "degrade",
    )


@dataclass(frozen=True)
class ProviderHold:
    """Why a run of an unhealthy provider waits, and until when."""

    provider: str
    reason: str
    message: str
    until: datetime


def provider_hold(provider: Mapping[str, Any] | None, now: datetime) -> ProviderHold | None:
    """The hold `provider.status.health` puts on a run about to start, or None.

    Read by the AgentRun decision from the provider in its snapshot. It holds only while the health was
    computed for the provider's current generation (a spec change frees runs before the provider controller
    has looked again) and `until` is still ahead (a stalled provider controller never holds a run for good).
    """
    if not provider:
        return None
    meta = as_map(provider.get("metadata"))
    health = as_map(as_map(provider.get("status")).get("health"))
    if health.get("state") in (None, "Healthy"):
        return None
    until = parse_time(health.get("until"))
    if until is None or until <= now or health.get("generation") != meta.get("generation"):
        return None
    reason = str(health.get("reason") or REASON_CAPACITY)
    message = str(health.get("message") or f"agent provider {meta.get('name')} is unhealthy")
    return ProviderHold(str(meta.get("name") or ""), reason, message, until)

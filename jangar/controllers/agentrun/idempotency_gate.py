"""The AgentRun's durable idempotency check (issue 13), ahead of `decide`.

`check_key` asks `IdempotencyClaims` about the run's `spec.idempotencyKey`; `key_plan` (pure) turns the answer
into this pass's plan when the key stops the run:

* another run holds the key and is live → Failed, reason `IdempotencyKeyInUse`;
* another run held it and finished (or started and was deleted) → Failed, `IdempotencyKeyCompleted`;
* Postgres could not be asked → Pending, reason and Warning `IdempotencyCheckPending`, checked again soon:
  never started unchecked, never failed because of an outage.

A run that may go on gets no plan (`None`), and `decide` runs as without the feature. A started or finished
run only records its progress on its claim; when that write fails, `with_retry` brings the run back soon.
"""

from __future__ import annotations

import random
from dataclasses import replace

from jangar.api.contract import FINALIZER_RUNTIME_CLEANUP, Phase, is_cancel_requested, is_resting_template
from jangar.controllers.agentrun.decide import _status
from jangar.controllers.agentrun.plan import RunPlan
from jangar.controllers.agentrun.snapshot import RunSnapshot
from jangar.controllers.idempotency import IdempotencyClaims, KeyCheck, run_key
from jangar.controllers.runconditions import RunDetails
from jangar.runtime import Result
from jangar.storage.idempotency import ClaimOutcome

__all__ = [
    "KEY_COMPLETED",
    "KEY_IN_USE",
    "KEY_PENDING",
    "RETRY_MAX_SECONDS",
    "RETRY_MIN_SECONDS",
    "check_key",
    "key_plan",
    "retry_seconds",
    "with_retry",
]

KEY_IN_USE = "IdempotencyKeyInUse"
KEY_COMPLETED = "IdempotencyKeyCompleted"
KEY_PENDING = "IdempotencyCheckPending"
RETRY_MIN_SECONDS = 5.0
RETRY_MAX_SECONDS = 30.0
"""A run held for an unreachable Postgres is checked again between these (spread, so an outage's many held
runs do not come back in one wave)."""


async def check_key(claims: IdempotencyClaims | None, snap: RunSnapshot) -> KeyCheck | None:
    """The key check for the run in `snap`; None without claims (feature off, no database), without a key,
    for a cancel request (a run cancelled before it starts needs no key), or for a template that has not
    started (it never runs: its copies carry the key)."""
    skip = is_cancel_requested(snap.run) or is_resting_template(snap.run)
    claim = run_key(snap.run) if claims is not None and not skip else None
    return None if claims is None or claim is None else await claims.check(claim)


def retry_seconds() -> float:
    """A moment to check a held run again, spread between `RETRY_MIN_SECONDS` and `RETRY_MAX_SECONDS`."""
    return random.uniform(RETRY_MIN_SECONDS, RETRY_MAX_SECONDS)


def key_plan(
    snap: RunSnapshot, check: KeyCheck | None, retry_after: float = RETRY_MIN_SECONDS
) -> RunPlan | None:
    """This pass's plan when the key stops a run that has not started; None when the run goes on."""
    if check is None or check.claim.started or check.claim.finished:
        return None
    claim = check.claim
    key = f"idempotency key {claim.key!r} of agent {claim.agent!r} in namespace {claim.namespace!r}"
    if check.outcome is None:
        message = (
            f"cannot check the {key} in Postgres ({check.error}); the run waits and is checked again: "
            "make the database reachable (DATABASE_URL) and its schema migrated (JANGAR_MIGRATIONS)"
        )
        details = RunDetails(KEY_PENDING, message, warning=(KEY_PENDING, message))
        plan = RunPlan(status=_status(snap, Phase.PENDING, details), requeue_after=retry_after)
    elif check.outcome.allowed:
        return None
    else:
        holder = check.holder.run_name if check.holder is not None else "another run"
        if check.outcome is ClaimOutcome.IN_USE:
            reason = KEY_IN_USE
            message = (
                f"the {key} is held by AgentRun {holder!r}, which has not finished; this run was not started"
            )
        else:
            reason = KEY_COMPLETED
            message = (
                f"the {key} was already used by AgentRun {holder!r}, which ran; this run was not started "
                "(submit with a new key to run again)"
            )
        plan = RunPlan(
            release_admission=True, status=_status(snap, Phase.FAILED, RunDetails(reason, message))
        )
    if FINALIZER_RUNTIME_CLEANUP not in (snap.run["metadata"].get("finalizers") or ()):
        plan = replace(plan, add_finalizer=True)
    return plan


def with_retry(result: Result | None, check: KeyCheck | None) -> Result | None:
    """`result`, brought forward when a started run's progress could not be recorded (try again soon)."""
    if check is None or not check.unavailable:
        return result
    delay = retry_seconds()
    current = result.requeue_after if result is not None else None
    return Result(requeue_after=delay if current is None else min(current, delay))

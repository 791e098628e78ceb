"""Kubernetes-shaped status conditions, as plain dicts.

Why a module of its own: the reference never cleared a condition (a Succeeded run kept `InProgress=True` and
so reported Progressing; `Blocked` stayed after admission, §12.9). These helpers make the intended behaviour
easy: every pass sets a definitive status for each type it owns, and `lastTransitionTime` moves only when the
status flips (the metav1 `SetStatusCondition` rule), so re-writing the same status is a no-op that does not
wake watchers.

Conditions are ``{"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}`` with
`status` one of ``"True"``, ``"False"``, ``"Unknown"``; the CRD schema limits are enforced here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "MAX_MESSAGE_LENGTH",
    "Condition",
    "ConditionStatus",
    "conditions_equal",
    "find_condition",
    "format_time",
    "is_true",
    "parse_time",
    "remove_condition",
    "sanitize_reason",
    "set_condition",
    "summary_conditions",
]

Condition = dict[str, Any]
ConditionStatus = Literal["True", "False", "Unknown"]

MAX_MESSAGE_LENGTH = 32_768
_REASON_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")


def format_time(moment: datetime) -> str:
    """RFC 3339 with second precision and a `Z`, the form the API server stores for `date-time` fields."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp from a status field; `None` for missing or malformed values."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def sanitize_reason(reason: str) -> str:
    """Coerce a reason into the CRD pattern (a letter, then letters/digits/_ , :) so a write never fails."""
    if _REASON_RE.match(reason) and len(reason) <= 1024:
        return reason
    cleaned = re.sub(r"[^A-Za-z0-9_,:]+", "_", reason).strip("_,:")
    cleaned = re.sub(r"^[^A-Za-z]+", "", cleaned)[:1024].rstrip(",:")
    return cleaned or "Unknown"


def find_condition(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for condition in conditions or ():
        if condition.get("type") == type_:
            return condition
    return None


def is_true(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> bool:
    found = find_condition(conditions, type_)
    return found is not None and found.get("status") == "True"


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type_: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str = "",
    *,
    now: datetime,
    observed_generation: int | None = None,
) -> list[Condition]:
    """Return a new list with `type_` upserted.

    `lastTransitionTime` is kept when the status is unchanged, even if reason or message change, so a
    condition that is merely re-asserted does not look like a transition.
    """
    status_str: str = ("True" if status else "False") if isinstance(status, bool) else status
    result: list[Condition] = []
    replaced = False
    new: Condition = {
        "type": type_,
        "status": status_str,
        "reason": sanitize_reason(reason),
        "message": message[:MAX_MESSAGE_LENGTH],
        "lastTransitionTime": format_time(now),
    }
    if observed_generation is not None:
        new["observedGeneration"] = observed_generation
    for existing in conditions or ():
        if existing.get("type") != type_:
            result.append(dict(existing))
            continue
        if replaced:  # drop duplicates of the same type
            continue
        if existing.get("status") == status_str and existing.get("lastTransitionTime"):
            new["lastTransitionTime"] = existing["lastTransitionTime"]
        result.append(new)
        replaced = True
    if not replaced:
        result.append(new)
    return result


def remove_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> list[Condition]:
    return [dict(c) for c in conditions or () if c.get("type") != type_]


def _comparable(conditions: Iterable[Mapping[str, Any]] | None) -> list[tuple[Any, ...]]:
    return sorted(
        (
            str(c.get("type")),
            c.get("status"),
            c.get("reason"),
            c.get("message", ""),
            c.get("observedGeneration"),
        )
        for c in conditions or ()
    )


def conditions_equal(
    left: Iterable[Mapping[str, Any]] | None, right: Iterable[Mapping[str, Any]] | None
) -> bool:
    """Equal ignoring order and `lastTransitionTime`: used to skip status writes that change nothing."""
    return _comparable(left) == _comparable(right)


_FAILED_PHASES = frozenset({"failed", "cancelled", "invalid", "error"})
_PROGRESSING_PHASES = frozenset({"pending", "queued", "running"})
_READY_PHASES = frozenset({"succeeded", "ready", "active", "completed"})


def summary_conditions(
    conditions: Sequence[Mapping[str, Any]] | None,
    phase: str | None,
    *,
    now: datetime,
    observed_generation: int | None = None,
    reason: str | None = None,
    message: str = "",
) -> list[Condition]:
    """Set Ready, Progressing and Degraded from the phase alone, each to a definitive True or False.

    The reference derived them from both the phase and stale conditions, so a Succeeded run whose
    `InProgress` was never cleared showed Progressing=True (§3.11). Deriving from the phase only, and always
    writing all three, makes the summary truthful. `reason` defaults to the phase.
    """
    normalized = (phase or "").lower()
    why = reason or (phase or "Unknown")
    degraded = normalized in _FAILED_PHASES
    progressing = normalized in _PROGRESSING_PHASES
    ready = normalized in _READY_PHASES
    result: list[Condition] = [dict(c) for c in conditions or ()]
    for type_, value in (("Ready", ready), ("Progressing", progressing), ("Degraded", degraded)):
        result = set_condition(
            result,
            type_,
            value,
            why,
            message if value else "",
            now=now,
            observed_generation=observed_generation,
        )
    return result

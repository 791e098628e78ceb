"""Status writes shared by every reconciler: compose, compare, and write only real changes.

Why this shape (reference §2.5 and weak points 5 and 9):

* Each pass states every condition type the reconciler owns, True or False, so nothing stale survives
  (a Succeeded run never shows Progressing; `Blocked` is cleared once admitted).
* Ready/Progressing/Degraded are derived from the phase alone (`jangar.conditions.summary_conditions`).
* The write is skipped when nothing but timestamps would change, so a reconcile that finds the world as it
  left it writes nothing, wakes no watcher and cannot start a self-triggering loop. `updatedAt` moves only
  with a real change.
* Writes are a PUT of the status subresource carrying the cached resourceVersion: a stale cache gives a
  409 and a retry from fresh state, never a lost update.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jangar.conditions import Condition, ConditionStatus, format_time, set_condition, summary_conditions
from jangar.runtime import Client, JsonObject, ResourceRef

__all__ = ["Cond", "compose_status", "status_changed", "write_status"]

_VOLATILE_STATUS_KEYS = frozenset({"updatedAt"})


@dataclass(frozen=True)
class Cond:
    """One condition to assert this pass."""

    type: str
    status: ConditionStatus | bool
    reason: str
    message: str = ""


def compose_status(
    current: Mapping[str, Any] | None,
    *,
    phase: str | None,
    conditions: Iterable[Cond],
    generation: int | None,
    now: datetime,
    fields: Mapping[str, Any] | None = None,
    drop: Iterable[str] = (),
    summary: bool = True,
    summary_reason: str | None = None,
    summary_message: str = "",
) -> dict[str, Any]:
    """The new status: `current` with `fields` set (None removes a key), `drop` removed, conditions upserted.

    Condition types not mentioned are kept as they are (another writer may own them).
    """
    status: dict[str, Any] = dict(current or {})
    for key in drop:
        status.pop(key, None)
    for key, value in (fields or {}).items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    if phase is not None:
        status["phase"] = phase
    if generation is not None:
        status["observedGeneration"] = generation
    conds: list[Condition] = [dict(c) for c in status.get("conditions") or ()]
    for c in conditions:
        conds = set_condition(
            conds, c.type, c.status, c.reason, c.message, now=now, observed_generation=generation
        )
    if summary:
        conds = summary_conditions(
            conds,
            status.get("phase"),
            now=now,
            observed_generation=generation,
            reason=summary_reason,
            message=summary_message,
        )
    status["conditions"] = conds
    return status


def _normalized(status: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {k: v for k, v in (status or {}).items() if k not in _VOLATILE_STATUS_KEYS and v is not None}
    conds = out.get("conditions")
    if isinstance(conds, list):
        out["conditions"] = sorted(
            (
                {k: v for k, v in c.items() if k != "lastTransitionTime"}
                for c in conds
                if isinstance(c, Mapping)
            ),
            key=lambda c: str(c.get("type")),
        )
    return out


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """True when `new` differs from `old` in anything but `updatedAt` and condition transition times."""
    return _normalized(old) != _normalized(new)


async def write_status(
    client: Client,
    ref: ResourceRef,
    obj: JsonObject,
    status: Mapping[str, Any],
    *,
    now: datetime,
) -> JsonObject | None:
    """Write `status` if it changed; returns the updated object, or `None` when nothing was written.

    Raises `ConflictError` when the cached object is stale (the caller's reconcile is retried).
    """
    if not status_changed(obj.get("status"), status):
        return None
    body = {k: v for k, v in obj.items() if k != "status"}
    body["status"] = {**status, "updatedAt": format_time(now)}
    return await client.update_status(ref, body)

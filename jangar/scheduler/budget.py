"""Budgets that count: what runs consumed, a window, a ledger that outlives deleted runs, and the verdict.

Pure functions over plain dicts (the cache's objects), shared by the Budget reconciler (which computes
`status.used`), the AgentRun decision (which holds a run whose budget is exceeded) and the submission
surfaces (which refuse it with 429). ToolRuns and OrchestrationRuns reuse `budget_verdict` as is.

Units (docs/orchestration.md, "Budgets"):

| resource | counted as | from |
|---|---|---|
| `cpu` | core-seconds | each Pod's CPU request (its limit when it has no request) x its run time |
| `memory` | byte-seconds | each Pod's memory request (or limit) x its run time |
| `gpu` | GPU-seconds | each Pod's `*/gpu` extended resource (e.g. `nvidia.com/gpu`) x its run time |
| `tokens` | tokens | the run's `status.runner.outputs.usage.tokens` (a number, or an object of numbers summed) |
| `dollars` | dollars | the run's `status.runner.outputs.usage.dollars` |

A Pod's run time is from its `status.startTime` (when the kubelet took it: its requests are reserved from
then; else its first container start) to its last container's finish, or to now while it runs; a Pod that never started costs nothing. A Pod's request follows Kubernetes'
effective-request rule: the larger of the sum over its containers and the largest init container.

Limits are Kubernetes quantities in those units (`cpu: "28800"` is 8 core-hours, `memory: "57600Gi"` is
16 GiB for an hour). A budget is exceeded once usage **reaches** a limit (a limit of 0 allows nothing).

Windows: with `spec.window` (`24h`, `30m`, `7d`, `1h30m` or seconds), a finished run counts while its
`finishedAt` is inside the sliding window `(now - window, now]`, with all of its usage; a running run always
counts. Without a window every finished run counts for ever.

The ledger: the usage of every finished run is recorded in `status.runs` by uid the first time the Budget
controller sees it, so deleting a finished run (retention, `kubectl delete`) does not give its usage back.
The ledger is bounded (`MAX_LEDGER_ENTRIES`): older entries are folded into `status.carried`, a sum that
expires (without a window: never) once the newest run folded into it leaves the window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from jangar.conditions import format_time, parse_time
from jangar.scheduler.quantity import QuantityError, format_decimal, parse_quantity

__all__ = [
    "MAX_LEDGER_ENTRIES",
    "RESOURCES",
    "UNITS",
    "Accounting",
    "BudgetVerdict",
    "Ledger",
    "LedgerEntry",
    "RunUsage",
    "Usage",
    "WindowError",
    "account",
    "budget_name",
    "budget_verdict",
    "parse_limits",
    "parse_window",
    "pod_usage",
    "read_ledger",
    "runner_usage",
    "workload_usage",
]

RESOURCES = ("tokens", "dollars", "cpu", "memory", "gpu")
"""The limits a Budget may set, in the order a verdict names the first one exceeded."""
UNITS = {
    "tokens": "tokens",
    "dollars": "dollars",
    "cpu": "core-seconds",
    "memory": "byte-seconds",
    "gpu": "GPU-seconds",
}
MAX_LEDGER_ENTRIES = 200
_PLACES = {"tokens": 0, "dollars": 6, "cpu": 3, "memory": 0, "gpu": 3}
_ZERO = Decimal(0)


# -- usage ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Amounts of each resource, in `UNITS`."""

    tokens: Decimal = _ZERO
    dollars: Decimal = _ZERO
    cpu: Decimal = _ZERO
    memory: Decimal = _ZERO
    gpu: Decimal = _ZERO

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{r: getattr(self, r) + getattr(other, r) for r in RESOURCES})

    def get(self, resource: str) -> Decimal:
        value: Decimal = getattr(self, resource)
        return value

    def merged_max(self, other: Usage) -> Usage:
        """Per resource, the larger of the two (a run seen again after its Pods were removed keeps what was
        counted while they existed)."""
        return Usage(**{r: max(getattr(self, r), getattr(other, r)) for r in RESOURCES})

    def as_status(self) -> dict[str, str]:
        return {r: format_decimal(getattr(self, r), _PLACES[r]) for r in RESOURCES}

    @classmethod
    def from_status(cls, data: Any) -> Usage:
        """Read amounts written by `as_status` (or by hand); anything unreadable counts as 0."""
        if not isinstance(data, Mapping):
            return cls()
        values: dict[str, Decimal] = {}
        for r in RESOURCES:
            try:
                values[r] = max(_ZERO, parse_quantity(data.get(r, 0)))
            except QuantityError:
                values[r] = _ZERO
        return cls(**values)


def _amount(value: Any) -> Decimal:
    """A reported number (int, float, numeric string; an object: the sum of its numbers); else 0."""
    if isinstance(value, Mapping):
        return sum((_amount(v) for v in value.values()), _ZERO)
    if isinstance(value, bool) or value is None:
        return _ZERO
    try:
        amount = parse_quantity(value) if isinstance(value, str | int | float) else _ZERO
    except QuantityError:
        return _ZERO
    return amount if amount.is_finite() and amount > 0 else _ZERO


def runner_usage(run: Mapping[str, Any]) -> Usage:
    """Tokens and dollars the run reported (`status.runner.outputs.usage`), read defensively."""
    runner = (run.get("status") or {}).get("runner")
    outputs = runner.get("outputs") if isinstance(runner, Mapping) else None
    usage = outputs.get("usage") if isinstance(outputs, Mapping) else None
    if not isinstance(usage, Mapping):
        return Usage()
    return Usage(tokens=_amount(usage.get("tokens")), dollars=_amount(usage.get("dollars")))


def _container_amounts(container: Mapping[str, Any]) -> dict[str, Decimal]:
    """cpu (cores), memory (bytes), gpu (devices) of one container: its request, else its limit."""
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    out = {"cpu": _ZERO, "memory": _ZERO, "gpu": _ZERO}
    for source in (limits, requests):  # requests win: applied last
        if not isinstance(source, Mapping):
            continue
        for key, value in source.items():
            resource = "gpu" if str(key).endswith("/gpu") else str(key)
            if resource not in out:
                continue
            try:
                out[resource] = max(_ZERO, parse_quantity(value))
            except QuantityError:
                continue
    return out


def pod_amounts(pod_spec: Mapping[str, Any]) -> dict[str, Decimal]:
    """The effective request of a Pod spec (or a Job's Pod template spec): per resource, the larger of the
    sum over its containers and the largest init container."""
    app = [_container_amounts(c) for c in pod_spec.get("containers") or () if isinstance(c, Mapping)]
    init = [_container_amounts(c) for c in pod_spec.get("initContainers") or () if isinstance(c, Mapping)]
    out: dict[str, Decimal] = {}
    for r in ("cpu", "memory", "gpu"):
        total = sum((a[r] for a in app), _ZERO)
        out[r] = max([total, *(i[r] for i in init)])
    return out


def _times(statuses: Iterable[Any]) -> tuple[list[datetime], list[datetime], bool]:
    """(start times, finish times, all terminated) of container statuses."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    all_done = True
    seen = False
    for cs in statuses:
        if not isinstance(cs, Mapping):
            continue
        seen = True
        state = cs.get("state") or {}
        running = state.get("running") or {}
        terminated = state.get("terminated") or {}
        start = parse_time(running.get("startedAt")) or parse_time(terminated.get("startedAt"))
        if start is not None:
            starts.append(start)
        end = parse_time(terminated.get("finishedAt"))
        if end is not None:
            ends.append(end)
        if not terminated:
            all_done = False
    return starts, ends, all_done and seen


def pod_interval(pod: Mapping[str, Any], now: datetime) -> tuple[datetime, datetime] | None:
    """When the Pod held its requests: from `status.startTime` (the kubelet took it) or, without one, its first
    container start; to its last container's finish, or now while it runs. None if it never started."""
    status = pod.get("status") or {}
    starts, ends, all_done = _times(status.get("containerStatuses") or ())
    start = parse_time(status.get("startTime")) or (min(starts) if starts else None)
    if start is None:
        return None
    if all_done and ends:
        end = max(ends)
    elif status.get("phase") in ("Succeeded", "Failed"):
        end = max(ends) if ends else start
    else:
        end = now
    return start, max(start, end)


def _seconds(start: datetime, end: datetime) -> Decimal:
    return Decimal(str(max(0.0, (end - start).total_seconds())))


def pod_usage(pod: Mapping[str, Any], now: datetime) -> Usage:
    """cpu, memory and gpu the Pod consumed up to `now` (`UNITS`)."""
    interval = pod_interval(pod, now)
    if interval is None:
        return Usage()
    seconds = _seconds(*interval)
    amounts = pod_amounts(pod.get("spec") or {})
    return Usage(
        cpu=amounts["cpu"] * seconds, memory=amounts["memory"] * seconds, gpu=amounts["gpu"] * seconds
    )


def workload_usage(pod_spec: Mapping[str, Any], start: datetime | None, end: datetime | None) -> Usage:
    """An estimate when the Pods are gone: a Pod spec (a Job's template, or one built from the run's
    `spec.workload.resources`) over the run's own start and finish."""
    if start is None or end is None:
        return Usage()
    seconds = _seconds(start, end)
    amounts = pod_amounts(pod_spec)
    return Usage(
        cpu=amounts["cpu"] * seconds, memory=amounts["memory"] * seconds, gpu=amounts["gpu"] * seconds
    )


@dataclass(frozen=True)
class RunUsage:
    """One run's consumption as seen now. `finished_at` None: it is still running."""

    uid: str
    kind: str
    name: str
    usage: Usage
    finished_at: datetime | None = None


# -- windows and limits -----------------------------------------------------------------------------


class WindowError(ValueError):
    pass


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_window(value: Any) -> float | None:
    """`spec.window` in seconds: `24h`, `30m`, `7d`, `1h30m`, `90s` or a number of seconds; None when unset.
    Raises `WindowError` for anything else, or for a window that is not positive."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise WindowError(f"spec.window {value!r} is not a duration (for example 24h, 30m, 7d)")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            for match in _DURATION_PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match[1]) * _UNIT_SECONDS[match[2]]
                pos = match.end()
            if pos != len(text) or not text:
                raise WindowError(f"spec.window {value!r} is not a duration (for example 24h, 30m, 7d)")
    else:
        raise WindowError(f"spec.window {value!r} is not a duration (for example 24h, 30m, 7d)")
    if seconds <= 0:
        raise WindowError(f"spec.window {value!r} must be longer than 0 seconds")
    return seconds


def parse_limits(limits: Any) -> tuple[dict[str, Decimal], list[tuple[str, str]]]:
    """The Budget's limits as Decimals, and (resource, message) for each unreadable one. Unknown keys are
    ignored (another writer may add them); unset resources are unlimited."""
    out: dict[str, Decimal] = {}
    problems: list[tuple[str, str]] = []
    if limits is None:
        return out, problems
    if not isinstance(limits, Mapping):
        return out, [("limits", "spec.limits must be an object")]
    for r in RESOURCES:
        value = limits.get(r)
        if value is None or value == "":
            continue
        try:
            amount = parse_quantity(value)
        except QuantityError as exc:
            problems.append((r, f"spec.limits.{r}: {exc}"))
            continue
        if amount < 0:
            problems.append((r, f"spec.limits.{r} must not be negative, got {value!r}"))
            continue
        out[r] = amount
    return out, problems


# -- the ledger -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    uid: str
    kind: str
    name: str
    finished_at: datetime
    usage: Usage

    def as_status(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "kind": self.kind,
            "name": self.name,
            "finishedAt": format_time(self.finished_at),
            **self.usage.as_status(),
        }


@dataclass(frozen=True)
class Ledger:
    """Finished runs' usage by uid (newest first), and what was folded out of it."""

    entries: tuple[LedgerEntry, ...] = ()
    carried: Usage = field(default_factory=Usage)
    carried_runs: int = 0
    carried_until: datetime | None = None
    """The newest `finishedAt` folded into `carried`; with a window, `carried` expires when it leaves it."""

    def carried_status(self) -> dict[str, Any] | None:
        if not self.carried_runs:
            return None
        out: dict[str, Any] = {**self.carried.as_status(), "runs": self.carried_runs}
        if self.carried_until is not None:
            out["until"] = format_time(self.carried_until)
        return out


def read_ledger(status: Mapping[str, Any] | None) -> Ledger:
    """The ledger stored in a Budget's status (malformed entries are dropped)."""
    status = status or {}
    entries = []
    for item in status.get("runs") or ():
        if not isinstance(item, Mapping):
            continue
        finished = parse_time(item.get("finishedAt"))
        uid = item.get("uid")
        if finished is None or not isinstance(uid, str) or not uid:
            continue
        entries.append(
            LedgerEntry(
                uid,
                str(item.get("kind") or ""),
                str(item.get("name") or ""),
                finished,
                Usage.from_status(item),
            )
        )
    carried = status.get("carried")
    if not isinstance(carried, Mapping):
        return Ledger(tuple(entries))
    runs = carried.get("runs")
    return Ledger(
        tuple(entries),
        carried=Usage.from_status(carried),
        carried_runs=runs if isinstance(runs, int) and runs > 0 else 0,
        carried_until=parse_time(carried.get("until")),
    )


@dataclass(frozen=True)
class Accounting:
    used: Usage
    ledger: Ledger
    window_start: datetime | None
    #: (resource, used, limit) for every limit reached, in `RESOURCES` order
    exceeded: tuple[tuple[str, Decimal, Decimal], ...]
    #: seconds until the window drops something counted (None: nothing will expire)
    next_expiry: float | None


def account(
    limits: Mapping[str, Decimal],
    window_seconds: float | None,
    ledger: Ledger,
    runs: Sequence[RunUsage],
    now: datetime,
    *,
    max_entries: int = MAX_LEDGER_ENTRIES,
) -> Accounting:
    """Usage now: the ledger plus the runs seen now (finished ones enter the ledger), inside the window."""
    try:
        window_start = now - timedelta(seconds=window_seconds) if window_seconds is not None else None
    except OverflowError:  # a window longer than the calendar: everything is inside it
        window_start = None
    by_uid = {e.uid: e for e in ledger.entries}
    live = Usage()
    for run in runs:
        if run.finished_at is None:
            live = live + run.usage
            continue
        old = by_uid.get(run.uid)
        usage = run.usage if old is None else old.usage.merged_max(run.usage)
        by_uid[run.uid] = LedgerEntry(run.uid, run.kind, run.name, run.finished_at, usage)

    def inside(moment: datetime | None) -> bool:
        return window_start is None or (moment is not None and moment > window_start)

    entries = sorted(
        (e for e in by_uid.values() if inside(e.finished_at)),
        key=lambda e: (e.finished_at, e.uid),
        reverse=True,
    )
    carried = ledger if inside(ledger.carried_until) or window_start is None else Ledger()
    carried_usage, carried_runs, carried_until = carried.carried, carried.carried_runs, carried.carried_until
    for old in entries[max_entries:]:
        carried_usage = carried_usage + old.usage
        carried_runs += 1
        if carried_until is None or old.finished_at > carried_until:
            carried_until = old.finished_at
    entries = entries[:max_entries]
    if not carried_runs:
        carried_usage, carried_until = Usage(), None
    new_ledger = Ledger(tuple(entries), carried_usage, carried_runs, carried_until if window_start else None)
    used = sum((e.usage for e in entries), Usage()) + carried_usage + live
    exceeded = tuple(
        (r, used.get(r), limits[r]) for r in RESOURCES if r in limits and used.get(r) >= limits[r]
    )
    next_expiry: float | None = None
    if window_seconds is not None:
        moments = [e.finished_at for e in entries]
        if carried_runs and carried_until is not None:
            moments.append(carried_until)
        if moments:
            expires = min(moments) + timedelta(seconds=window_seconds)
            next_expiry = max(1.0, (expires - now).total_seconds())
    return Accounting(used, new_ledger, window_start, exceeded, next_expiry)


# -- the verdict ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetVerdict:
    """Whether a run that counts against a Budget may start now.

    `reason`: `WithinBudget`, `BudgetExceeded` (a limit reached; `resource` names it), `BudgetInvalid`
    (a limit cannot be read: runs are held rather than spend without a limit), `BudgetNotFound`.
    """

    exceeded: bool
    reason: str
    message: str
    resource: str | None = None
    used: str | None = None
    limit: str | None = None

    @property
    def found(self) -> bool:
        return self.reason != "BudgetNotFound"


def _name(budget: Mapping[str, Any]) -> str:
    meta = budget.get("metadata") or {}
    return str(meta.get("name") or "")


def budget_verdict(budget: Mapping[str, Any] | None, name: str | None = None) -> BudgetVerdict:
    """The verdict for a run counting against `budget` (the cached object; None when it does not exist).

    Pure: the limits come from the spec (a raised limit counts at once), the usage from `status.used`
    (kept current by the Budget controller, including runs still running).
    """
    if budget is None:
        return BudgetVerdict(True, "BudgetNotFound", f"budget {name or '?'} not found", resource=None)
    label = name or _name(budget)
    limits, problems = parse_limits((budget.get("spec") or {}).get("limits"))
    if problems:
        resource, message = problems[0]
        return BudgetVerdict(
            True, "BudgetInvalid", f"budget {label} is invalid: {message}", resource=resource
        )
    used = Usage.from_status((budget.get("status") or {}).get("used"))
    for r in RESOURCES:
        if r in limits and used.get(r) >= limits[r]:
            used_text = format_decimal(used.get(r), _PLACES[r])
            limit_text = format_decimal(limits[r], _PLACES[r])
            return BudgetVerdict(
                True,
                "BudgetExceeded",
                f"budget {label} {r} exceeded ({used_text}/{limit_text} {UNITS[r]})",
                resource=r,
                used=used_text,
                limit=limit_text,
            )
    return BudgetVerdict(False, "WithinBudget", f"budget {label} is within its limits")


def budget_name(run: Mapping[str, Any], agent: Mapping[str, Any] | None = None) -> str | None:
    """The Budget a run counts against: its own `spec.budgetRef`, else its Agent's `spec.budgetRef`."""
    for obj in (run, agent or {}):
        ref = (obj.get("spec") or {}).get("budgetRef")
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"].strip():
            return str(ref["name"]).strip()
    return None

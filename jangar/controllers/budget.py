"""The Budget reconciler: usage computed from what the runs consumed, the ledger, `Exceeded`.

A full reconciler rather than a supporting `check`: it reads runs, their Jobs and Pods through indexes,
wakes itself on a timer while usage moves (running runs) or a window will drop something, and emits Events
on the transitions users care about (exceeded, back within limits).

Each pass (level-triggered, pure arithmetic in `jangar.scheduler.budget`):

1. the runs that count against the Budget — AgentRuns whose `spec.budgetRef` names it (index
   `agentrun-budget`) and the runs of Agents whose `spec.budgetRef` names it (index `agent-budget`, then
   runs by agent) that name no Budget themselves, and ToolRuns whose `spec.budgetRef` names it (index
   `toolrun-budget`, `jangar.controllers.run_budgets`); never a namespace list;
2. each run's usage: its Jobs' Pods (`pod_usage`: requests x run time, up to the run's finish), plus the
   tokens and dollars the runner reported; a finished run whose Pods are gone is estimated from its Job
   template (or `spec.workload.resources`) over its own start and finish;
3. `account`: finished runs enter the ledger (`status.runs`, by uid, so deleting a run keeps its usage);
   usage inside the window; the limits reached;
4. one status write: phase `Active` / `Exceeded` / `Invalid`, `used`, `windowStart`, `runs`, `carried`,
   conditions `Exceeded` (reason `<Resource>Exceeded` or `WithinLimits`), `InvalidSpec`, `Ready`.

Requeue: every `USAGE_REFRESH_SECONDS` while a counted run is running, and when the window next drops a run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from jangar.api.contract import LABEL_JOB_NAME, is_terminal
from jangar.api.refs import BUDGETS
from jangar.conditions import find_condition, format_time, parse_time
from jangar.controllers import indexes as ix
from jangar.controllers.budget_hold import AGENT_BUDGET, RUN_BUDGET, effective_budget
from jangar.controllers.kinds import AGENTRUNS, AGENTS, JOBS, PODS
from jangar.controllers.run_budgets import counted_toolruns
from jangar.controllers.status import Cond, compose_status, write_status
from jangar.runtime import CacheReader, Client, InformerNotRegistered, JsonObject, Recorder, Request, Result
from jangar.runtime.store import CONTROLLER_UID_INDEX
from jangar.scheduler.budget import (
    UNITS,
    RunUsage,
    WindowError,
    account,
    parse_limits,
    parse_window,
    pod_usage,
    read_ledger,
    runner_usage,
    workload_usage,
)
from jangar.scheduler.quantity import format_decimal

log = structlog.get_logger("jangar.controllers.budget")

__all__ = [
    "USAGE_REFRESH_SECONDS",
    "BudgetReconciler",
    "budget_of_run",
    "budgets_of_agent",
    "counted_runs",
    "run_usage",
]

USAGE_REFRESH_SECONDS = 30.0


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def counted_runs(cache: CacheReader, namespace: str, budget: str) -> list[JsonObject]:
    """The AgentRuns counting against `namespace/budget` (directly, or through their Agent)."""
    key = f"{namespace}/{budget}"
    try:
        runs = {
            r["metadata"]["name"]: r
            for r in cache.list(AGENTRUNS, namespace, index=(RUN_BUDGET, key), copy=False)
        }
        for agent in cache.list(AGENTS, namespace, index=(AGENT_BUDGET, key), copy=False):
            agent_key = f"{namespace}/{agent['metadata']['name']}"
            for run in cache.list(AGENTRUNS, namespace, index=(ix.RUN_AGENT, agent_key), copy=False):
                if not ((run.get("spec") or {}).get("budgetRef") or {}).get("name"):
                    runs.setdefault(run["metadata"]["name"], run)
    except InformerNotRegistered:
        return []  # runs are not watched in this namespace
    return [runs[name] for name in sorted(runs)]


def _workload_pod_spec(run: Mapping[str, Any]) -> dict[str, Any]:
    resources = ((run.get("spec") or {}).get("workload") or {}).get("resources") or {}
    return {"containers": [{"name": "runner", "resources": resources}]}


def run_usage(cache: CacheReader, run: Mapping[str, Any], now: datetime) -> RunUsage:
    """What `run` consumed up to now (or up to its finish)."""
    meta = run.get("metadata") or {}
    status = run.get("status") or {}
    ns = _ns(run)
    uid = str(meta.get("uid") or "")
    finished = parse_time(status.get("finishedAt")) if is_terminal(status.get("phase")) else None
    if is_terminal(status.get("phase")) and finished is None:
        finished = now
    until = min(now, finished) if finished is not None else now
    usage = runner_usage(run)
    jobs = cache.list(JOBS, ns, index=(CONTROLLER_UID_INDEX, uid), copy=False) if uid else []
    pods = [
        pod
        for job in jobs
        for pod in cache.list(PODS, ns, labels={LABEL_JOB_NAME: job["metadata"]["name"]}, copy=False)
    ]
    if pods:
        for pod in pods:
            usage = usage + pod_usage(pod, until)
    elif finished is not None:
        template = next(
            (((j.get("spec") or {}).get("template") or {}).get("spec") for j in jobs),
            None,
        )
        started = parse_time(status.get("startedAt"))
        usage = usage + workload_usage(template or _workload_pod_spec(run), started, finished)
    return RunUsage(uid, str(run.get("kind") or "AgentRun"), str(meta.get("name")), usage, finished)


def budget_of_run(cache: CacheReader) -> Callable[[JsonObject], list[Request]]:
    """Mapper: an AgentRun → the Budget it counts against."""

    def mapper(run: JsonObject) -> list[Request]:
        name = effective_budget(cache, run)
        return [Request(_ns(run) or None, name)] if name else []

    return mapper


def budgets_of_agent(agent: JsonObject) -> list[Request]:
    name = ((agent.get("spec") or {}).get("budgetRef") or {}).get("name")
    return [Request(_ns(agent) or None, str(name))] if name else []


def _exceeded_condition(exceeded: tuple[tuple[str, Any, Any], ...]) -> Cond:
    if not exceeded:
        return Cond("Exceeded", False, "WithinLimits", "usage is below every limit")
    parts = [f"{r} {format_decimal(used)}/{format_decimal(limit)} {UNITS[r]}" for r, used, limit in exceeded]
    reason = f"{exceeded[0][0].capitalize()}Exceeded"
    return Cond("Exceeded", True, reason, "limit reached: " + "; ".join(parts))


class BudgetReconciler:
    def __init__(
        self,
        client: Client,
        cache: CacheReader,
        events: Recorder | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.cache = cache
        self.events = events
        self.clock = clock

    async def reconcile(self, req: Request) -> Result | None:
        budget = self.cache.get(BUDGETS, req.name, req.namespace)
        if budget is None or (budget.get("metadata") or {}).get("deletionTimestamp"):
            return None
        now = self.clock()
        spec = budget.get("spec") or {}
        old = budget.get("status") or {}
        limits, problems = parse_limits(spec.get("limits"))
        messages = [m for _, m in problems]
        reason = "InvalidLimit" if problems else ""
        try:
            window = parse_window(spec.get("window"))
        except WindowError as exc:
            window = None
            messages.append(str(exc))
            reason = reason or "InvalidWindow"
        runs = [
            run_usage(self.cache, r, now) for r in counted_runs(self.cache, req.namespace or "", req.name)
        ]
        runs += [
            run_usage(self.cache, r, now) for r in counted_toolruns(self.cache, req.namespace or "", req.name)
        ]
        acc = account(limits, window, read_ledger(old), runs, now)
        invalid = bool(messages)
        exceeded_cond = _exceeded_condition(acc.exceeded)
        phase = "Invalid" if invalid else ("Exceeded" if acc.exceeded else "Active")
        ready_reason = reason if invalid else phase
        ready_message = "; ".join(messages) if invalid else exceeded_cond.message
        fields: dict[str, Any] = {
            "used": acc.used.as_status(),
            "windowStart": None,
            "runs": [e.as_status() for e in acc.ledger.entries] or None,
            "carried": acc.ledger.carried_status(),
        }
        if acc.window_start is not None:
            fields["windowStart"] = format_time(acc.window_start)
        generation = budget["metadata"].get("generation")
        status = compose_status(
            old,
            phase=phase,
            conditions=[
                Cond("InvalidSpec", invalid, reason or "Valid", "; ".join(messages)),
                exceeded_cond,
            ],
            generation=generation,
            now=now,
            fields=fields,
            summary_reason=ready_reason if invalid else None,
            summary_message=ready_message if invalid else "",
        )
        status["conditions"] = compose_status(
            {"conditions": status["conditions"]},
            phase=None,
            conditions=[Cond("Ready", not invalid, ready_reason, ready_message)],
            generation=generation,
            now=now,
            summary=False,
        )["conditions"]
        was_exceeded = (find_condition(old.get("conditions"), "Exceeded") or {}).get("status") == "True"
        updated = await write_status(self.client, BUDGETS, budget, status, now=now)
        if updated is not None:
            log.info(
                "budget status", namespace=req.namespace, name=req.name, phase=phase, used=fields["used"]
            )
            if self.events is not None:
                if acc.exceeded and not was_exceeded:
                    self.events.warning(updated, exceeded_cond.reason, exceeded_cond.message)
                elif was_exceeded and not acc.exceeded:
                    self.events.normal(updated, "WithinLimits", "budget usage is below every limit again")
        waits = []
        if any(r.finished_at is None for r in runs):
            waits.append(USAGE_REFRESH_SECONDS)
        if acc.next_expiry is not None:
            waits.append(acc.next_expiry)
        return Result(requeue_after=min(waits)) if waits else None

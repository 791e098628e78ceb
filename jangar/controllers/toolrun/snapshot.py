"""Everything one ToolRun decision reads, from the informer cache only: the run, its Tool, the Jobs it
controls (by the controller-uid index, so a Job of an earlier ToolRun with the same name is never mistaken
for ours) and their Pods (by the Job controller's `job-name` label)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jangar.api.contract import LABEL_JOB_NAME, is_terminal
from jangar.api.refs import TOOLS
from jangar.controllers.budget_hold import BudgetCheck, read_budget_check
from jangar.controllers.kinds import JOBS, PODS
from jangar.runtime import CacheReader, JsonObject
from jangar.runtime.store import CONTROLLER_UID_INDEX
from jangar.settings import ControllerTuning, Settings

__all__ = ["ToolRunSnapshot", "read_snapshot", "tool_name"]


def tool_name(toolrun: Mapping[str, Any]) -> str | None:
    ref = (toolrun.get("spec") or {}).get("toolRef")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name.strip() if isinstance(name, str) and name.strip() else None


@dataclass(frozen=True)
class ToolRunSnapshot:
    toolrun: Mapping[str, Any]
    now: datetime
    settings: Settings
    #: the Tool named by spec.toolRef (None: not found)
    tool: Mapping[str, Any] | None = None
    #: the Jobs this ToolRun controls, by name
    jobs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: each of those Jobs' Pods, by Job name
    pods: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    #: the Budget of `spec.budgetRef`, read only before the Job is submitted (None: none, or not enforced)
    budget: BudgetCheck | None = None

    @property
    def timing(self) -> ControllerTuning:
        return self.settings.tuning

    @property
    def name(self) -> str:
        return str(self.toolrun["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.toolrun["metadata"]["namespace"])


def read_snapshot(
    cache: CacheReader, toolrun: JsonObject, settings: Settings, now: datetime
) -> ToolRunSnapshot:
    meta = toolrun["metadata"]
    ns = str(meta["namespace"])
    uid = str(meta.get("uid") or "")
    jobs = (
        {
            str(j["metadata"]["name"]): j
            for j in cache.list(JOBS, ns, index=(CONTROLLER_UID_INDEX, uid), copy=False)
        }
        if uid
        else {}
    )
    pods = {name: cache.list(PODS, ns, labels={LABEL_JOB_NAME: name}, copy=False) for name in jobs}
    name = tool_name(toolrun)
    tool = cache.get(TOOLS, name, ns, copy=False) if name else None
    status = toolrun.get("status") or {}
    submitted = bool((status.get("jobRef") or {}).get("name")) or is_terminal(status.get("phase"))
    budget = None if submitted else read_budget_check(cache, toolrun)
    return ToolRunSnapshot(
        toolrun=toolrun, now=now, settings=settings, tool=tool, jobs=jobs, pods=pods, budget=budget
    )

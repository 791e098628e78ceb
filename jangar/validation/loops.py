"""Admission checks of workflow step loops (`spec.workflow.steps[].loop`, 0.9.29; docs/workflows.md).

A loop is checked before the run starts, so a mistake costs no iteration: loops must be enabled on the
controller (`JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED`, off by default as in the reference:
`WorkflowLoopsDisabled`), the CEL condition must compile (`InvalidLoopCondition`, with the parser's
position), and the bounds, policies and state volumes must make sense (`InvalidWorkflowLoop`). The CRD
schema checks types and ranges too; these checks also hold for objects the schema did not see (render,
older CRDs) and explain themselves in the run's condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jangar.api.agents.agentrun import LOOP_MAX_ITERATIONS
from jangar.api.shape import as_list, as_map, maps
from jangar.scheduler.loop_condition import condition_error
from jangar.settings import Settings
from jangar.validation.problems import Problem

__all__ = ["check_loop"]

_POLICIES = ("stop", "fail")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= LOOP_MAX_ITERATIONS


def _carrying_volumes(run: Mapping[str, Any], step: Mapping[str, Any]) -> set[str]:
    """Volume names whose content outlives an iteration: pvc workload volumes and the run's Workspace."""
    spec = as_map(run.get("spec"))
    names = {
        str(v.get("name"))
        for workload in (as_map(spec.get("workload")), as_map(step.get("workload")))
        for v in maps(workload.get("volumes"))
        if v.get("type") == "pvc"
    }
    workspace = as_map(spec.get("workspaceRef")).get("name")
    if isinstance(workspace, str) and workspace:
        names.add(workspace)
    return names


def check_loop(
    run: Mapping[str, Any], step: Mapping[str, Any], where: str, settings: Settings
) -> list[Problem]:
    """Problems of the step's `loop` (none when it has no loop)."""
    if "loop" not in step or step.get("loop") is None:
        return []
    at = f"{where}.loop"
    loop = step.get("loop")
    name = step.get("name")
    if not settings.workflow_loops.enabled:
        return [
            Problem(
                "WorkflowLoopsDisabled",
                f"step {name!r} has a loop, but workflow loops are disabled on this controller: set "
                "JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED=true (or AGENTS_AGENTRUN_WORKFLOW_LOOPS_ENABLED), or "
                f"remove {at}",
                at,
            )
        ]
    if not isinstance(loop, Mapping):
        return [Problem("InvalidWorkflowLoop", f"{at} must be an object", at)]
    problems: list[Problem] = []
    if not _count(loop.get("maxIterations")):
        problems.append(
            Problem(
                "InvalidWorkflowLoop",
                f"{at}.maxIterations must be an integer from 1 to {LOOP_MAX_ITERATIONS}, "
                f"got {loop.get('maxIterations')!r}",
                f"{at}.maxIterations",
            )
        )
    limit = loop.get("historyLimit")
    if limit is not None and not _count(limit):
        problems.append(
            Problem(
                "InvalidWorkflowLoop",
                f"{at}.historyLimit must be an integer from 1 to {LOOP_MAX_ITERATIONS}, got {limit!r}",
                f"{at}.historyLimit",
            )
        )
    for key in ("onMissingControl", "onInvalidControl"):
        value = loop.get(key)
        if value is not None and value not in _POLICIES:
            problems.append(
                Problem(
                    "InvalidWorkflowLoop", f"{at}.{key} must be stop or fail, got {value!r}", f"{at}.{key}"
                )
            )
    condition = loop.get("condition")
    if condition is not None:
        cel = as_map(condition).get("cel")
        if not isinstance(cel, str) or not cel.strip():
            problems.append(
                Problem(
                    "InvalidLoopCondition", f"{at}.condition.cel must be a CEL expression", f"{at}.condition"
                )
            )
        else:
            error = condition_error(cel)
            if error is not None:
                problems.append(
                    Problem(
                        "InvalidLoopCondition",
                        f"step {name!r}: {at}.condition.cel does not compile: {error}",
                        f"{at}.condition.cel",
                    )
                )
    carrying = _carrying_volumes(run, step)
    for index, volume in enumerate(as_list(loop.get("stateVolumes"))):
        if volume not in carrying:
            known = ", ".join(sorted(carrying)) or "none"
            problems.append(
                Problem(
                    "InvalidWorkflowLoop",
                    f"{at}.stateVolumes[{index}] {volume!r} is not a pvc volume of the workload nor the run's "
                    f"Workspace, so it cannot carry state between iterations (candidates: {known})",
                    f"{at}.stateVolumes[{index}]",
                )
            )
    return problems

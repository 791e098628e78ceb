"""Orchestration: the definition is validated (`jangar.scheduler.orchestration.validate_definition`) and the
objects its steps name are looked up in the cache.

* invalid → phase `Invalid`, `Ready=False` and `InvalidSpec=True` with the reason (`MissingSteps`,
  `DuplicateStep`, `DependencyCycle`, `UnknownStepKind`, `StepMissingAgentRef`, `InvalidTemplateReference`, …);
* valid, but a named Agent, ImplementationSpec, Tool, Orchestration, ApprovalPolicy or Signal does not exist
  → phase `Pending`, `Ready=False/MissingReferences` and `ReferencesResolved=False` naming them; the
  references index wakes the Orchestration when one of them is created, so it turns Ready by itself;
* otherwise phase `Ready`, `Ready=True/ValidSpec`, `ReferencesResolved=True`.

Runs of a `Pending` orchestration still start: each child waits for its own references (an AgentRun holds
itself Pending for the reference grace), so applying a directory in any order works.
"""

from __future__ import annotations

from jangar.api.refs import APPROVALPOLICIES, ORCHESTRATIONS, SIGNALS, TOOLS
from jangar.controllers.kinds import AGENTS, IMPLEMENTATIONSPECS
from jangar.controllers.status import Cond
from jangar.controllers.supporting import CheckEnv, Verdict, invalid, ready
from jangar.runtime import JsonObject, ResourceRef
from jangar.scheduler.orchestration import orchestration_steps, referenced_objects, validate_definition

__all__ = ["REFERENCED_KINDS", "check_orchestration"]

REFERENCED_KINDS: dict[str, ResourceRef] = {
    "Agent": AGENTS,
    "ImplementationSpec": IMPLEMENTATIONSPECS,
    "Tool": TOOLS,
    "Orchestration": ORCHESTRATIONS,
    "ApprovalPolicy": APPROVALPOLICIES,
    "Signal": SIGNALS,
}


async def check_orchestration(obj: JsonObject, env: CheckEnv) -> Verdict:
    meta = obj["metadata"]
    ns, name = str(meta["namespace"]), str(meta["name"])
    spec = obj.get("spec") or {}
    problem = validate_definition(spec, name)
    if problem is not None:
        return invalid(
            problem.reason,
            problem.message,
            conditions=(Cond("ReferencesResolved", "Unknown", "InvalidSpec"),),
        )
    missing: list[str] = []
    for step in orchestration_steps(spec):
        for kind, ref_name in referenced_objects(step):
            if env.cache.get(REFERENCED_KINDS[kind], ref_name, ns, copy=False) is None:
                item = f"{kind} {ref_name} (step {step.get('name')})"
                if item not in missing:
                    missing.append(item)
    steps = len(orchestration_steps(spec))
    if missing:
        message = f"not found in namespace {ns}: {', '.join(missing)}"
        return Verdict(
            False,
            "MissingReferences",
            message,
            phase="Pending",
            conditions=(Cond("ReferencesResolved", False, "MissingReferences", message),),
        )
    return ready(
        "ValidSpec",
        f"orchestration ready ({steps} steps)",
        conditions=(Cond("ReferencesResolved", True, "Resolved", "every referenced object exists"),),
    )

"""Orchestration definitions, pure: validation, the DAG order, step references and step inputs.

One set of rules read by the Orchestration controller (its Ready/InvalidSpec status) and by the
OrchestrationRun controller (a run of an invalid definition fails with `InvalidSpec` and the reason), so the
two never disagree. Fixes over the reference (§6.1, §6.2): a dependency cycle, an unknown step kind, a step
without the reference its kind needs, and a `with` template naming an unknown step or a step that is not a
(transitive) dependency are definition errors, not an empty string or a stuck step at run time.

Steps are plain dicts (the API server's JSON); every function here is total on malformed input.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jangar.scheduler.templating import references, render_strict

__all__ = [
    "IMMEDIATE_KINDS",
    "STEP_KINDS",
    "DefinitionProblem",
    "RenderedInputs",
    "dependencies",
    "orchestration_steps",
    "referenced_objects",
    "render_inputs",
    "step_ref",
    "topological_order",
    "transitive_dependencies",
    "validate_definition",
]

STEP_KINDS = (
    "AgentRun",
    "ToolRun",
    "SubOrchestration",
    "ApprovalGate",
    "SignalWait",
    "Checkpoint",
    "MemoryOp",
)
IMMEDIATE_KINDS = frozenset({"Checkpoint", "MemoryOp"})
"""Step kinds that succeed in the pass they start (no child, nothing to wait for)."""


@dataclass(frozen=True)
class DefinitionProblem:
    """Why a definition cannot run: a CamelCase reason (the condition reason) and a message for people."""

    reason: str
    message: str


def orchestration_steps(spec: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """`spec.steps` entries that are objects (anything else is reported by `validate_definition`)."""
    steps = (spec or {}).get("steps")
    return [s for s in steps if isinstance(s, Mapping)] if isinstance(steps, list) else []


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def step_ref(step: Mapping[str, Any], key: str) -> str | None:
    """The name a step refers to under `key` (`agentRef`, `toolRef`, ...): `key.name`, a string `key`, or
    `with.<key>` (the forms the reference accepted)."""
    value = step.get(key)
    if isinstance(value, Mapping):
        found = _text(value.get("name"))
        if found:
            return found
    found = _text(value)
    if found:
        return found
    inputs = step.get("with")
    return _text(inputs.get(key)) if isinstance(inputs, Mapping) else None


def _delivery_id(step: Mapping[str, Any]) -> str | None:
    found = _text(step.get("deliveryId"))
    if found:
        return found
    inputs = step.get("with")
    return _text(inputs.get("deliveryId")) if isinstance(inputs, Mapping) else None


def dependencies(step: Mapping[str, Any]) -> list[str]:
    deps = step.get("dependsOn")
    return [d for d in deps if isinstance(d, str) and d] if isinstance(deps, list) else []


def referenced_objects(step: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, name) of the objects the step needs to exist at run time, e.g. ("Agent", "coder")."""
    kind = step.get("kind")
    wanted: list[tuple[str, str | None]] = []
    if kind == "AgentRun":
        wanted = [
            ("Agent", step_ref(step, "agentRef")),
            ("ImplementationSpec", step_ref(step, "implementationSpecRef")),
        ]
    elif kind == "ToolRun":
        wanted = [("Tool", step_ref(step, "toolRef"))]
    elif kind == "SubOrchestration":
        wanted = [("Orchestration", step_ref(step, "orchestrationRef"))]
    elif kind == "ApprovalGate":
        wanted = [("ApprovalPolicy", step_ref(step, "policyRef"))]
    elif kind == "SignalWait":
        wanted = [("Signal", step_ref(step, "signalRef"))]
    return [(k, n) for k, n in wanted if n]


def _missing_ref(step: Mapping[str, Any]) -> DefinitionProblem | None:
    name, kind = step.get("name"), step.get("kind")
    where = f"step {name!r} ({kind})"
    if kind == "AgentRun":
        if not step_ref(step, "agentRef"):
            return DefinitionProblem("StepMissingAgentRef", f"{where} needs agentRef.name")
        if not step_ref(step, "implementationSpecRef") and not isinstance(
            step.get("implementation"), Mapping
        ):
            return DefinitionProblem(
                "StepMissingImplementation",
                f"{where} needs implementationSpecRef.name or an inline implementation",
            )
    elif kind == "ToolRun" and not step_ref(step, "toolRef"):
        return DefinitionProblem("StepMissingToolRef", f"{where} needs toolRef.name")
    elif kind == "SubOrchestration" and not step_ref(step, "orchestrationRef"):
        return DefinitionProblem("StepMissingOrchestrationRef", f"{where} needs orchestrationRef.name")
    elif kind == "ApprovalGate" and not step_ref(step, "policyRef"):
        return DefinitionProblem("StepMissingPolicyRef", f"{where} needs policyRef (an ApprovalPolicy name)")
    elif kind == "SignalWait" and not step_ref(step, "signalRef") and not _delivery_id(step):
        return DefinitionProblem("StepMissingSignalRef", f"{where} needs signalRef or deliveryId")
    return None


def topological_order(steps: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """Step names in dependency order (Kahn's algorithm, ties broken by the steps' order); `None` when the
    dependencies have a cycle. Unknown dependencies are ignored here (`validate_definition` reports them)."""
    names = [str(s.get("name")) for s in steps]
    position = {n: i for i, n in enumerate(names)}
    waiting = {
        n: {d for d in dependencies(s) if d in position and d != n}
        for n, s in zip(names, steps, strict=False)
    }
    dependents: dict[str, list[str]] = {n: [] for n in names}
    for n, deps in waiting.items():
        for d in deps:
            dependents[d].append(n)
    ready = [position[n] for n, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for child in dependents[name]:
            waiting[child].discard(name)
            if not waiting[child]:
                heapq.heappush(ready, position[child])
    return order if len(order) == len(names) else None


def transitive_dependencies(steps: Sequence[Mapping[str, Any]], name: str) -> set[str]:
    """Every step `name` waits for, directly or through other steps."""
    by_name = {str(s.get("name")): s for s in steps}
    seen: set[str] = set()
    todo = list(dependencies(by_name.get(name, {})))
    while todo:
        dep = todo.pop()
        if dep in seen:
            continue
        seen.add(dep)
        todo.extend(dependencies(by_name.get(dep, {})))
    return seen


def _template_problem(
    steps: Sequence[Mapping[str, Any]], step: Mapping[str, Any]
) -> DefinitionProblem | None:
    inputs = step.get("with")
    if not isinstance(inputs, Mapping):
        return None
    known = {str(s.get("name")) for s in steps}
    upstream: set[str] | None = None
    name = step.get("name")
    for key, value in inputs.items():
        if not isinstance(value, str):
            continue
        for path in references(value):
            parts = path.split(".")
            where = f"step {name!r} with.{key}: {{{{{path}}}}}"
            if parts[0] == "parameters" and len(parts) >= 2 and all(parts):
                continue
            if parts[0] != "steps" or len(parts) < 3 or parts[2] != "outputs" or not all(parts):
                return DefinitionProblem(
                    "InvalidTemplateReference",
                    f"{where} is neither parameters.<key> nor steps.<step>.outputs[.<key>]",
                )
            if parts[1] not in known:
                return DefinitionProblem("InvalidTemplateReference", f"{where} names an unknown step")
            if upstream is None:
                upstream = transitive_dependencies(steps, str(name))
            if parts[1] not in upstream:
                return DefinitionProblem(
                    "InvalidTemplateReference",
                    f"{where} names step {parts[1]!r}, which is not a dependency (dependsOn, directly or "
                    "transitively), so its outputs may not exist yet",
                )
    return None


def validate_definition(spec: Mapping[str, Any] | None, name: str | None = None) -> DefinitionProblem | None:
    """The first problem of an Orchestration spec, in the reference's order (§6.1) then jangar's checks
    (unknown kind, missing refs, a self-referencing SubOrchestration, cycle, templates); `None` when valid.
    `name` is the Orchestration's own name (for the self-reference check)."""
    raw = (spec or {}).get("steps")
    if not isinstance(raw, list) or not raw:
        return DefinitionProblem("MissingSteps", "spec.steps must list at least one step")
    steps: list[Mapping[str, Any]] = []
    for i, step in enumerate(raw):
        if not isinstance(step, Mapping) or not _text(step.get("name")):
            return DefinitionProblem("StepMissingName", f"spec.steps[{i}] has no name")
        if not _text(step.get("kind")):
            return DefinitionProblem("StepMissingKind", f"step {step['name']!r} has no kind")
        steps.append(step)
    seen: set[str] = set()
    for step in steps:
        if step["name"] in seen:
            return DefinitionProblem("DuplicateStep", f"step name {step['name']!r} is used more than once")
        seen.add(step["name"])
    entrypoint = (spec or {}).get("entrypoint")
    if entrypoint not in (None, "") and (not isinstance(entrypoint, str) or entrypoint not in seen):
        return DefinitionProblem("EntrypointMissing", f"entrypoint {entrypoint!r} is not a step")
    for step in steps:
        for dep in dependencies(step):
            if dep == step["name"]:
                return DefinitionProblem("InvalidDependency", f"step {dep!r} depends on itself")
            if dep not in seen:
                return DefinitionProblem(
                    "MissingDependency", f"step {step['name']!r} depends on unknown step {dep!r}"
                )
    for step in steps:
        if step["kind"] not in STEP_KINDS:
            return DefinitionProblem(
                "UnknownStepKind",
                f"step {step['name']!r} has kind {step['kind']!r}; known kinds: {', '.join(STEP_KINDS)}",
            )
        problem = _missing_ref(step)
        if problem is not None:
            return problem
        if name and step["kind"] == "SubOrchestration" and step_ref(step, "orchestrationRef") == name:
            return DefinitionProblem(
                "RecursiveSubOrchestration", f"step {step['name']!r} runs its own orchestration {name!r}"
            )
    if topological_order(steps) is None:
        return DefinitionProblem("DependencyCycle", "the steps' dependsOn form a cycle")
    for step in steps:
        problem = _template_problem(steps, step)
        if problem is not None:
            return problem
    return None


@dataclass(frozen=True)
class RenderedInputs:
    """A step's `with`, rendered: the values, and the references that resolved to nothing."""

    values: dict[str, str]
    missing: list[str]


def render_inputs(
    step: Mapping[str, Any],
    parameters: Mapping[str, Any],
    outputs: Mapping[str, Mapping[str, Any] | None],
) -> RenderedInputs:
    """Render every `with` value against `{parameters, steps.<name>.outputs}` (non-strings as JSON).

    Unlike provider templates (where a missing value renders as ""), a reference that resolves to nothing is
    returned in `missing` so the step can fail with `MissingOutput` naming it.
    """
    context = {
        "parameters": dict(parameters),
        "steps": {name: {"outputs": dict(out or {})} for name, out in outputs.items()},
    }
    values: dict[str, str] = {}
    missing: list[str] = []
    inputs = step.get("with")
    for key, value in inputs.items() if isinstance(inputs, Mapping) else ():
        if isinstance(value, str):
            rendered, absent = render_strict(value, context)
            values[str(key)] = rendered
            missing += [p for p in absent if p not in missing]
        else:
            values[str(key)] = render_strict("{{v}}", {"v": value})[0]
    return RenderedInputs(values, missing)

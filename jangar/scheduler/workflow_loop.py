"""Workflow step loops (0.9.29 `workflow.steps[].loop`): what a looping step does after each iteration.

A loop repeats its step: `maxIterations` times (a fixed loop), or while a CEL `condition` over the step's
loop-control data holds (at most `maxIterations` times). Each iteration is a new Job,
`<run>-step-<i>-iter-<k>-attempt-<n>`, with the step's own retries per iteration, so a controller restart
adopts the Job of the iteration in flight instead of starting another.

Where the loop-control data comes from: the step's pod writes a JSON file (`condition.source.path`,
default `.agent/loop-control.json` in the working directory, the Workspace PVC when the path points there).
The controller cannot read a PVC, so the data travels in the container's termination message, which the
kubelet copies into the Pod status the controller already caches: `jangar-runner` reads the file named by
`AGENT_LOOP_CONTROL_PATH` and adds `"loopControl": {...}` to its report (or `"loopControlError"` when the
file is missing or not a JSON object); an agent without the runner writes `{"loopControl": {...}}` to
`/dev/termination-log` itself. The termination message holds at most 4 KiB: keep the control data small.

Everything here is pure; `jangar.scheduler.workflow.plan_workflow` calls it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jangar.api.agents.agentrun import LOOP_DEFAULT_HISTORY_LIMIT
from jangar.api.shape import as_map
from jangar.scheduler.loop_condition import evaluate_condition
from jangar.scheduler.runspec import WORKSPACE
from jangar.scheduler.termination import container_termination_message

__all__ = [
    "CONTROL_ERROR_KEY",
    "CONTROL_KEY",
    "CONTROL_PATH_ENV",
    "DEFAULT_CONTROL_PATH",
    "Control",
    "LoopSpec",
    "LoopVerdict",
    "after_iteration",
    "control_path",
    "current_iteration",
    "loop_spec",
    "note_iteration",
    "read_control",
]

DEFAULT_CONTROL_PATH = ".agent/loop-control.json"
CONTROL_PATH_ENV = "AGENT_LOOP_CONTROL_PATH"
"""Set on a looping step's container: the absolute path of its loop-control file (read by jangar-runner)."""
CONTROL_KEY = "loopControl"
CONTROL_ERROR_KEY = "loopControlError"

Policy = Literal["stop", "fail"]


@dataclass(frozen=True)
class LoopSpec:
    """A step's `loop`, with the defaults applied."""

    max_iterations: int
    condition: str | None = None
    control_path: str = f"{WORKSPACE}/{DEFAULT_CONTROL_PATH}"
    on_missing: Policy = "stop"
    on_invalid: Policy = "fail"
    history_limit: int = LOOP_DEFAULT_HISTORY_LIMIT


def _count(value: Any, default: int) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return int(value) if ok else default


def _policy(value: Any, default: Policy) -> Policy:
    return value if value in ("stop", "fail") else default


def _absolute(path: str) -> str:
    """A relative control path is relative to the step's working directory."""
    return path if path.startswith("/") else f"{WORKSPACE}/{path.removeprefix('./')}"


def loop_spec(step: Mapping[str, Any]) -> LoopSpec | None:
    """The step's loop, or `None` when it has none (`loop` absent or not an object)."""
    raw = step.get("loop")
    if not isinstance(raw, Mapping):
        return None
    condition = as_map(raw.get("condition"))
    cel = condition.get("cel")
    path = as_map(condition.get("source")).get("path")
    return LoopSpec(
        max_iterations=_count(raw.get("maxIterations"), 1),
        condition=cel if isinstance(cel, str) and cel.strip() else None,
        control_path=_absolute(path if isinstance(path, str) and path.strip() else DEFAULT_CONTROL_PATH),
        on_missing=_policy(raw.get("onMissingControl"), "stop"),
        on_invalid=_policy(raw.get("onInvalidControl"), "fail"),
        history_limit=_count(raw.get("historyLimit"), LOOP_DEFAULT_HISTORY_LIMIT),
    )


def control_path(step: Mapping[str, Any]) -> str | None:
    """`AGENT_LOOP_CONTROL_PATH` for the step's container: set for a conditional loop only."""
    loop = loop_spec(step)
    return loop.control_path if loop is not None and loop.condition is not None else None


@dataclass(frozen=True)
class Control:
    """An iteration's loop-control data: `ok` with the object, or `missing`/`invalid` with why."""

    state: Literal["ok", "missing", "invalid"]
    value: Mapping[str, Any] | None = None
    detail: str = ""


def read_control(pods: Iterable[Mapping[str, Any]], container: str) -> Control:
    """The loop-control data `container` reported in its termination message (newest terminated Pod)."""
    text = container_termination_message(pods, container)
    try:
        report = json.loads(text) if text and text.strip() else None
    except ValueError:
        report = None
    if not isinstance(report, Mapping):
        return Control(
            "missing", detail="the step reported no loop-control data (no JSON termination message)"
        )
    error = report.get(CONTROL_ERROR_KEY)
    if isinstance(error, Mapping):
        detail = str(error.get("message") or "")
        if error.get("reason") == "missing":
            return Control("missing", detail=detail or "the loop-control file is missing")
        return Control("invalid", detail=detail or "the loop-control file is invalid")
    if CONTROL_KEY not in report:
        return Control("missing", detail=f"the step's termination message has no {CONTROL_KEY!r}")
    value = report[CONTROL_KEY]
    if not isinstance(value, Mapping):
        return Control("invalid", detail=f"{CONTROL_KEY} must be a JSON object, got {type(value).__name__}")
    return Control("ok", value=value)


@dataclass(frozen=True)
class LoopVerdict:
    """After a successful iteration: start the `next` one, `stop` (the step succeeds) or `fail` the step.

    `stop_reason` goes to `status.workflow.steps[].loop.stopReason`; `reason`/`message` explain a failure
    (the step's and the run's reason) or a stop (the step's message)."""

    action: Literal["next", "stop", "fail"]
    stop_reason: str = ""
    reason: str = ""
    message: str = ""


def _policy_verdict(policy: Policy, what: Literal["Missing", "Invalid"], detail: str) -> LoopVerdict:
    if policy == "fail":
        return LoopVerdict("fail", f"Control{what}", f"WorkflowLoopControl{what}", detail)
    return LoopVerdict("stop", f"Control{what}", "", f"loop stopped: {detail}")


def after_iteration(loop: LoopSpec, iteration: int, control: Control) -> LoopVerdict:
    """What follows iteration `iteration` (1-based), which succeeded and reported `control`."""
    if loop.condition is not None:
        if control.state == "missing":
            return _policy_verdict(loop.on_missing, "Missing", control.detail)
        if control.state == "invalid" or control.value is None:
            return _policy_verdict(loop.on_invalid, "Invalid", control.detail)
        result = evaluate_condition(
            loop.condition, control.value, iteration=iteration, max_iterations=loop.max_iterations
        )
        if result.value is None:
            return _policy_verdict(loop.on_invalid, "Invalid", result.error)
        if not result.value:
            return LoopVerdict(
                "stop", "ConditionFalse", "", f"loop condition false after iteration {iteration}"
            )
    if iteration >= loop.max_iterations:
        return LoopVerdict("stop", "MaxIterationsReached", "", f"{iteration} iteration(s) done")
    return LoopVerdict("next")


def current_iteration(entry: Mapping[str, Any]) -> int:
    """The step's current iteration (1-based) from its status entry; 1 before the first started."""
    return _count(as_map(entry.get("loop")).get("iteration"), 1)


def note_iteration(
    entry: dict[str, Any], loop: LoopSpec, iteration: int, fields: Mapping[str, Any], drop: Iterable[str] = ()
) -> None:
    """Record `fields` on iteration `iteration` of the step's `loop` status (adding it if new), keep only
    the newest `historyLimit` iterations and count the pruned ones."""
    state = dict(as_map(entry.get("loop")))
    history = [dict(i) for i in state.get("iterations") or () if isinstance(i, Mapping)]
    record = next((i for i in history if i.get("index") == iteration), None)
    if record is None:
        record = {"index": iteration}
        history.append(record)
    record.update(fields)
    for key in drop:
        record.pop(key, None)
    history.sort(key=lambda i: int(i.get("index") or 0))
    excess = max(0, len(history) - loop.history_limit)
    state.update(
        iteration=iteration,
        iterations=history[excess:],
        pruned=_count(state.get("pruned"), 0) + excess,
        retained=len(history) - excess,
    )
    entry["loop"] = state

"""The system-prompt policy of a run about to build a Job, pure (0.9.29 row 5, issue 13 item 3).

0.9.1 Agents have no system prompt and 0.9.1 runs pass their task as `parameters.prompt`, so the 0.9.29
policy applies only when it is asked for: the run's Agent has a prompt (`spec.defaults.systemPrompt` or
`systemPromptRef`), or `JANGAR_AGENT_SYSTEM_PROMPT_REQUIRED` is on. Then

* an Agent without a prompt fails its runs (`MissingSystemPromptConfiguration`, only when required);
* a `prompt` parameter (run or step) is refused (`PromptParameterNotAllowed`): the task text belongs in the
  ImplementationSpec's `spec.text`, the system prompt in the Agent;
* a referenced prompt that is missing holds the run for the reference grace (`SystemPromptNotFound`).

A resolved prompt goes into the `RunContext` with the hash the pod must find: the one recorded at
acceptance (`status.systemPromptHash`) once there is one, so a later attempt never silently switches prompt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from jangar.api.shape import as_map
from jangar.controllers.agentrun.prompt_read import PromptRead
from jangar.prepare import Prepared
from jangar.scheduler.context import StepRef
from jangar.settings import Settings
from jangar.validation import Problem

__all__ = ["PROMPT_PARAMETER", "prompt_problems", "with_system_prompt"]

PROMPT_PARAMETER = "prompt"


def _prompt_parameter_fields(run: Mapping[str, Any], step: StepRef | None) -> list[str]:
    spec = as_map(run.get("spec"))
    found = ["spec.parameters.prompt"] if PROMPT_PARAMETER in as_map(spec.get("parameters")) else []
    steps = [step.spec] if step is not None else as_map(spec.get("workflow")).get("steps") or []
    for entry in steps:
        if isinstance(entry, Mapping) and PROMPT_PARAMETER in as_map(entry.get("parameters")):
            found.append(f"spec.workflow.steps[{entry.get('name')}].parameters.prompt")
    return found


def prompt_problems(
    run: Mapping[str, Any], read: PromptRead, settings: Settings, step: StepRef | None = None
) -> list[Problem]:
    """Why the run cannot start under the system-prompt policy (empty: it may)."""
    required = settings.spec_policy.system_prompt_required
    if read.source is None and not required:
        return []  # a 0.9.1 Agent: nothing changes
    status = as_map(run.get("status"))
    if step is not None and status.get("phase") == "Running" and not status.get("systemPromptHash"):
        # accepted before its Agent had a prompt (or before the policy was on): a running workflow ends under
        # the rules it started with; its later steps are not failed for a `prompt` parameter
        return []
    problems: list[Problem] = []
    agent = as_map(as_map(run.get("spec")).get("agentRef")).get("name")
    if read.source is None:
        problems.append(
            Problem(
                "MissingSystemPromptConfiguration",
                f"Agent {agent!r} has no system prompt and JANGAR_AGENT_SYSTEM_PROMPT_REQUIRED is on: set "
                "spec.defaults.systemPrompt or spec.defaults.systemPromptRef (a Secret or ConfigMap key)",
                field="spec.agentRef",
            )
        )
    elif read.problem is not None:
        problems.append(read.problem)
    for field in _prompt_parameter_fields(run, step):
        problems.append(
            Problem(
                "PromptParameterNotAllowed",
                f"{field} is not allowed when the Agent carries the system prompt: put the task text in the "
                "ImplementationSpec's spec.text and remove the prompt parameter",
                field=field,
            )
        )
    return problems


def with_system_prompt(
    prepared: Prepared,
    run: Mapping[str, Any],
    read: PromptRead | None,
    settings: Settings,
    step: StepRef | None = None,
) -> Prepared:
    """`prepared` under the policy: its problems extended, or its context given the resolved prompt.
    `read` is None when the prompt was not read this pass (no Job is built then)."""
    if read is None:
        return prepared
    problems = prompt_problems(run, read, settings, step)
    if problems:
        return dataclasses.replace(prepared, problems=[*prepared.problems, *problems], context=None)
    if read.prompt is None or prepared.context is None:
        return prepared
    recorded = as_map(run.get("status")).get("systemPromptHash")
    expected = recorded if isinstance(recorded, str) and recorded else read.prompt.sha256
    context = dataclasses.replace(prepared.context, system_prompt=read.prompt, system_prompt_sha256=expected)
    return dataclasses.replace(prepared, context=context)

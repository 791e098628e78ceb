"""The two JSON documents a runner pod reads: `run.json` (AGENT_RUN_SPEC) and `agent-runner.json`
(AGENT_RUNNER_SPEC_PATH). Their exact shapes are documented in docs/scheduler.md; the runner
(`jangar/runner`) depends on them, so change both together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jangar.api.shape import as_list, as_map, maps
from jangar.scheduler.context import RunContext, spec_of
from jangar.scheduler.goal import run_goal
from jangar.scheduler.templating import render_template
from jangar.settings import Settings

__all__ = [
    "AGENT_RUNNER_SPEC_PATH",
    "RUNNER_LOG_PATH",
    "RUNNER_STATUS_PATH",
    "RUN_SPEC_PATH",
    "WORKSPACE",
    "log_retention_seconds",
    "render_context",
    "render_input_files",
    "run_spec",
    "runner_spec",
]

WORKSPACE = "/workspace"
RUN_SPEC_PATH = f"{WORKSPACE}/run.json"
AGENT_RUNNER_SPEC_PATH = f"{WORKSPACE}/agent-runner.json"
RUNNER_STATUS_PATH = f"{WORKSPACE}/.agent/status.json"
RUNNER_LOG_PATH = f"{WORKSPACE}/.agent/runner.log"
DEFAULT_BINARY = "/usr/local/bin/agent-runner"

#: Metadata keys spread at the top level of run.json (reference §3.3).
_PAYLOAD_KEYS = (
    "prompt",
    "repository",
    "issueNumber",
    "issueTitle",
    "issueBody",
    "issueUrl",
    "base",
    "head",
    "stage",
)


def _memory_block(memory: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not memory:
        return None
    spec = spec_of(memory)
    connection = spec.get("connection") if isinstance(spec.get("connection"), Mapping) else {}
    secret_ref = connection.get("secretRef") if isinstance(connection, Mapping) else None
    return {
        "name": as_map(memory.get("metadata")).get("name"),
        "type": spec.get("type") or "custom",
        "connectionRef": secret_ref.get("name") if isinstance(secret_ref, Mapping) else None,
    }


def _workspace_block(workspace: Mapping[str, Any]) -> dict[str, Any]:
    name = str(as_map(workspace.get("metadata")).get("name") or "")
    return {"name": name, "claimName": name, "mountPath": f"{WORKSPACE}/{name}"}


def render_context(ctx: RunContext) -> dict[str, Any]:
    """What `{{ … }}` placeholders in argsTemplate, envTemplate and inputFiles can reference.

    `inputs` is an alias of `parameters`, used by the reference chart's examples (`{{inputs.stage}}`).
    """
    agent_spec = spec_of(ctx.agent)
    return {
        "agentRun": {"name": ctx.name, "uid": ctx.uid, "namespace": ctx.namespace},
        "agent": {
            "name": ctx.agent_name,
            "config": as_map(agent_spec.get("config")),
            "env": {
                e["name"]: e.get("value", "")
                for e in maps(agent_spec.get("env"))
                if isinstance(e.get("name"), str)
            },
        },
        "provider": {"name": ctx.provider_name},
        "implementation": dict(ctx.implementation),
        "parameters": dict(ctx.parameters),
        "inputs": dict(ctx.parameters),
        "metadata": dict(ctx.metadata),
        "memory": dict(ctx.memory) if ctx.memory else {},
        "vcs": dict(ctx.vcs.context) if ctx.vcs else {},
        "workspace": _workspace_block(ctx.workspace) if ctx.workspace is not None else {},
        "step": {"name": ctx.step.name, "index": ctx.step.index, "attempt": ctx.step.attempt}
        if ctx.step
        else {},
        "goal": run_goal(ctx.spec) or {},
    }


def run_spec(ctx: RunContext) -> dict[str, Any]:
    """`run.json`: what the agent works on."""
    provider_spec = spec_of(ctx.provider)
    document: dict[str, Any] = {
        "provider": ctx.provider_name,
        "agentRun": {"name": ctx.name, "uid": ctx.uid, "namespace": ctx.namespace},
        "implementation": dict(ctx.implementation),
        "parameters": dict(ctx.parameters),
        "memory": _memory_block(ctx.memory),
        "artifacts": list(as_list(provider_spec.get("outputArtifacts"))),
    }
    if ctx.vcs is not None:
        document["vcs"] = dict(ctx.vcs.context)
    if ctx.step is not None:
        document["step"] = {"name": ctx.step.name, "index": ctx.step.index, "attempt": ctx.step.attempt}
    if ctx.workspace is not None:
        document["workspace"] = _workspace_block(ctx.workspace)
    goal = run_goal(ctx.spec)
    if goal is not None:
        document["goal"] = goal
    for key in _PAYLOAD_KEYS:
        if ctx.metadata.get(key):
            document[key] = ctx.metadata[key]
    document["metadata"] = {"map": dict(ctx.metadata)}
    return document


def log_retention_seconds(ctx: RunContext, settings: Settings) -> int:
    """`runtime.config.logRetentionSeconds`, else the controller default; floored, at least 0."""
    value = ctx.runtime_config.get("logRetentionSeconds")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return max(0, int(value))
    if isinstance(value, str):
        try:
            return max(0, int(float(value)))
        except ValueError:
            pass
    return settings.runner.log_retention_seconds


def render_input_files(ctx: RunContext) -> list[dict[str, str]]:
    """The provider's `inputFiles`, with content rendered (the reference forgot to, §12.17)."""
    context = render_context(ctx)
    files: list[dict[str, str]] = []
    for entry in maps(spec_of(ctx.provider).get("inputFiles")):
        path, content = entry.get("path"), entry.get("content")
        if isinstance(path, str) and path.strip() and isinstance(content, str) and content:
            files.append({"path": path.strip(), "content": render_template(content, context)})
    return files


def runner_spec(ctx: RunContext, settings: Settings) -> dict[str, Any]:
    """`agent-runner.json`: how to run the agent (binary, rendered args and env, inputs, artifact paths)."""
    provider_spec = spec_of(ctx.provider)
    context = render_context(ctx)
    env_template = as_map(provider_spec.get("envTemplate"))
    return {
        "provider": ctx.provider_name,
        "binary": provider_spec.get("binary") or DEFAULT_BINARY,
        "args": [render_template(str(arg), context) for arg in as_list(provider_spec.get("argsTemplate"))],
        "env": {str(k): render_template(str(v), context) for k, v in env_template.items()},
        "workingDir": WORKSPACE,
        "inputs": dict(ctx.parameters),
        "inputFiles": render_input_files(ctx),
        "payloads": {"eventFilePath": RUN_SPEC_PATH},
        "artifacts": {
            "statusPath": RUNNER_STATUS_PATH,
            "logPath": RUNNER_LOG_PATH,
            "logRetentionSeconds": log_retention_seconds(ctx, settings),
        },
    }

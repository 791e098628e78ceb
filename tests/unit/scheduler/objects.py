"""Builders for the raw dicts the controller's cache holds (shared by scheduler/validation/admission tests)."""

from __future__ import annotations

from typing import Any


def agent_run(
    name: str = "run-1",
    *,
    namespace: str = "agents",
    uid: str | None = "uid-run-1",
    runtime: str = "job",
    config: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agentRef": {"name": "agent-1"},
        "implementationSpecRef": {"name": "impl-1"},
        "runtime": {"type": runtime, "config": config or {}},
    }
    body.update(spec)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "generation": 1}
    if uid:
        metadata["uid"] = uid
    return {
        "apiVersion": "agents.proompteng.ai/v1alpha1",
        "kind": "AgentRun",
        "metadata": metadata,
        "spec": body,
    }


def agent(name: str = "agent-1", *, provider: str = "provider-1", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "agents"},
        "spec": {"providerRef": {"name": provider}} | spec,
    }


def provider(name: str = "provider-1", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "agents"},
        "spec": {"binary": "/usr/local/bin/codex"} | spec,
    }


def implementation(text: str = "Fix the bug", **spec: Any) -> dict[str, Any]:
    return {"text": text, "summary": "Fix it"} | spec

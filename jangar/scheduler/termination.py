"""A container's termination message → the outputs it reports (shared by ToolRuns and AgentRuns).

A container may write a JSON object to its termination message file (`/dev/termination-log`, Kubernetes'
convention; the kubelet keeps at most 4096 bytes). Kubernetes copies it into the Pod's
`status.containerStatuses[].state.terminated.message`, so the controller reads it from the Pod in its cache,
with no sidecar, no log scraping and no extra API. Containers are built with
`terminationMessagePolicy: FallbackToLogsOnError`, so a container that fails without writing the file gets
the tail of its log there instead: that is plain text, used as failure detail.

The rules of `parse_termination_message`:

* a JSON object with an `outputs` key whose value is an object → those outputs, and the `artifacts` list if
  present (entries that are not objects are dropped);
* any other JSON object → the whole object is the outputs;
* anything else (not JSON, a JSON array or scalar, empty) → no outputs, the stripped text (or `None` when
  empty) as `text`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TERMINATION_MESSAGE_LIMIT",
    "TERMINATION_MESSAGE_PATH",
    "TERMINATION_MESSAGE_POLICY",
    "TerminationReport",
    "container_termination_message",
    "parse_termination_message",
    "render_termination_message",
]

TERMINATION_MESSAGE_PATH = "/dev/termination-log"
TERMINATION_MESSAGE_POLICY = "FallbackToLogsOnError"
TERMINATION_MESSAGE_LIMIT = 4096
"""Bytes the kubelet keeps of a container's termination message."""


@dataclass(frozen=True)
class TerminationReport:
    outputs: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    text: str | None = None
    """Plain (non-JSON-object) text: with `FallbackToLogsOnError` a failing container's log tail."""
    runner: dict[str, Any] = field(default_factory=dict)
    """Besides `outputs`, what jangar-runner said about the run itself (model, threadId,
    systemPromptSha256, phase, ...): the other top-level keys of an `outputs` message."""


def parse_termination_message(text: str | None) -> TerminationReport:
    stripped = (text or "").strip()
    if not stripped:
        return TerminationReport()
    try:
        decoded = json.loads(stripped)
    except ValueError:
        return TerminationReport(text=stripped)
    if not isinstance(decoded, dict):
        return TerminationReport(text=stripped)
    outputs = decoded.get("outputs")
    if isinstance(outputs, dict):
        artifacts = decoded.get("artifacts")
        listed = [dict(a) for a in artifacts if isinstance(a, dict)] if isinstance(artifacts, list) else []
        said = {k: v for k, v in decoded.items() if k not in ("outputs", "artifacts")}
        return TerminationReport(outputs=dict(outputs), artifacts=listed, runner=said)
    return TerminationReport(outputs=dict(decoded))


def render_termination_message(
    outputs: Mapping[str, Any], artifacts: Iterable[Mapping[str, Any]] = ()
) -> str:
    """The compact JSON a container writes; `ValueError` when it would not fit in the kubelet's limit."""
    listed = [dict(a) for a in artifacts]
    body: dict[str, Any] = {"outputs": dict(outputs)}
    if listed:
        body["artifacts"] = listed
    text = json.dumps(body, separators=(",", ":"), sort_keys=True, default=str)
    size = len(text.encode("utf-8"))
    if size > TERMINATION_MESSAGE_LIMIT:
        raise ValueError(
            f"termination message is {size} bytes, over the {TERMINATION_MESSAGE_LIMIT}-byte limit; "
            "write large results to an artifact and report its location instead"
        )
    return text


def container_termination_message(pods: Iterable[Mapping[str, Any]], container: str) -> str | None:
    """The termination message of `container` in the newest Pod where it has terminated, or `None`.

    Newest by creationTimestamp, so a Job that retried reports its last attempt.
    """
    ordered = sorted(
        pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True
    )
    for pod in ordered:
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            if status.get("name") != container:
                continue
            terminated = (status.get("state") or {}).get("terminated")
            if isinstance(terminated, Mapping):
                message = terminated.get("message")
                return str(message) if message is not None else None
    return None

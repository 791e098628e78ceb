"""Cancelling a run: set the cancel annotation; the AgentRun controller deletes its Jobs and ends it as
Cancelled (for every runtime). The same write `kubectl annotate agentrun X agents.proompteng.ai/cancel=true`
makes, so every surface cancels the same way."""

from __future__ import annotations

from jangar.api.contract import ANNOTATION_CANCEL
from jangar.api.refs import AGENTRUNS
from jangar.runtime import Client, JsonObject, NotFoundError, ResourceRef
from jangar.services.errors import NotFound

__all__ = ["CANCEL_PATCH", "request_cancel"]

CANCEL_PATCH = {"metadata": {"annotations": {ANNOTATION_CANCEL: "true"}}}


async def request_cancel(
    client: Client, namespace: str, name: str, ref: ResourceRef = AGENTRUNS
) -> JsonObject:
    """Annotate the run for cancellation and return it; `NotFound` when it does not exist. `ref`: the kind
    (AgentRun by default; OrchestrationRuns and ToolRuns honour the same annotation)."""
    try:
        return await client.patch(ref, name, CANCEL_PATCH, namespace=namespace)
    except NotFoundError:
        raise NotFound(ref.kind, namespace, name) from None

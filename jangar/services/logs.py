"""A run's container log, for `agentctl run logs` (kube mode) and gRPC `StreamAgentRunLogs`.

The pod is found by the run's label (`agents.proompteng.ai/agent-run`), unless named: the first Running one,
else the newest (a workflow's latest step). The log comes from the API server's pod log endpoint, so it is
what `kubectl logs` shows; `follow` keeps the stream open until the container ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jangar.api.contract import LABEL_RUN
from jangar.runtime import ApiError, Client
from jangar.runtime.resources import PODS
from jangar.scheduler.naming import label_value
from jangar.services.errors import ServiceError

__all__ = ["LogLine", "LogUnavailable", "PodNotFound", "choose_pod", "stream_run_logs"]


class PodNotFound(ServiceError):
    """The run has no pod yet, or the named pod does not exist."""


class LogUnavailable(ServiceError):
    """The pod has no log to read yet (not scheduled, container not started, unknown container)."""


@dataclass(frozen=True)
class LogLine:
    pod: str
    text: str


def choose_pod(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """The pod whose log to read: the first Running one (oldest first), else the newest, else none."""
    if not pods:
        return None
    ordered = sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
    for pod in ordered:
        if (pod.get("status") or {}).get("phase") == "Running":
            return str(pod["metadata"]["name"])
    return str(ordered[-1]["metadata"]["name"])


async def stream_run_logs(
    client: Client,
    namespace: str,
    run: str,
    *,
    pod: str = "",
    container: str = "",
    follow: bool = False,
    tail_lines: int = 0,
    label: str = LABEL_RUN,
    kind: str = "AgentRun",
) -> AsyncIterator[LogLine]:
    """The log lines of the run's pod. Raises `PodNotFound` and `LogUnavailable` (nothing to read yet).

    `label`/`kind`: the pod label naming the run (`jangar.proompteng.ai/tool-run` for a ToolRun)."""
    if not pod:
        pods = (await client.list(PODS, namespace, label_selector={label: label_value(run)})).items
        pod = choose_pod(pods) or ""
        if not pod:
            raise PodNotFound(f"no pods for {kind} {run}")
    from kubernetes_asyncio.client import CoreV1Api

    kwargs: dict[str, Any] = {"follow": follow, "_preload_content": False}
    if container:
        kwargs["container"] = container
    if tail_lines > 0:
        kwargs["tail_lines"] = tail_lines
    if not follow:
        kwargs["_request_timeout"] = client.timeout
    api: Any = CoreV1Api(client.api)
    # With _preload_content=False kubernetes-asyncio hands back the raw aiohttp response, unchecked.
    resp: Any = await api.read_namespaced_pod_log(pod, namespace, **kwargs)
    try:
        if resp.status >= 400:
            raw = await resp.read()
            try:
                message = str(json.loads(raw).get("message") or "")
            except (ValueError, AttributeError):
                message = raw[:500].decode(errors="replace")
            message = message or f"HTTP {resp.status}"
            if resp.status == 404:
                raise PodNotFound(f"pod {pod}: {message}")
            if resp.status == 400:  # no node yet, container not started, unknown container
                raise LogUnavailable(f"pod {pod}: {message}")
            if resp.status >= 500:  # the API server proxies to the node's kubelet, which it could not reach
                raise LogUnavailable(
                    f"pod {pod}: its log could not be read from its node (the API server answered HTTP "
                    f"{resp.status}: {message}); the node's kubelet is unreachable or serves no logs"
                )
            raise ApiError(resp.status, "", message)
        async for raw_line in resp.content:
            yield LogLine(pod, raw_line.decode(errors="replace").rstrip("\n"))
    finally:
        resp.release()

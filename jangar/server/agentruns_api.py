"""`/v1/agent-runs`: submit, list, read and cancel AgentRuns over HTTP.

Admission lives in the controller (one place, as the reference's weak point 8 asks); the API only refuses
early what the controller would refuse anyway: when the namespace's queue is full it answers 429 with a
Retry-After instead of creating a run that would end as `QueueLimitExceeded`. The queue depth is read from
the manager's informer cache, never from a per-replica counter.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from jangar.api.contract import ANNOTATION_CANCEL
from jangar.runtime import AlreadyExistsError, ApiError, CacheReader, Client, NotFoundError
from jangar.server.queue_check import queue_full
from jangar.server.resources import AGENT_RUN
from jangar.settings import Settings
from jangar.submit import Submission, SubmissionError, build_agent_run

CANCEL_ANNOTATION = ANNOTATION_CANCEL
RETRY_AFTER_SECONDS = 30


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


class AgentRunsApi:
    def __init__(self, client: Client, cache: CacheReader, settings: Settings) -> None:
        self.client = client
        self.cache = cache
        self.settings = settings

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/agent-runs", self.submit),
            web.get("/v1/agent-runs", self.list_runs),
            web.get("/v1/agent-runs/{namespace}/{name}", self.get_run),
            web.post("/v1/agent-runs/{namespace}/{name}/cancel", self.cancel),
        ]

    def _namespaces(self) -> tuple[str, ...]:
        return tuple(self.settings.agents_controller.namespaces)

    def _in_scope(self, namespace: str) -> bool:
        scope = self._namespaces()
        return "*" in scope or namespace in scope

    async def submit(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError as err:
            return _error(400, f"request body is not JSON: {err}")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object")
        namespace = str(body.get("namespace") or self._namespaces()[0])
        if namespace == "*":
            return _error(400, "namespace is required: this controller watches all namespaces")
        if not self._in_scope(namespace):
            return _error(403, f"namespace {namespace!r} is not managed by this controller")
        try:
            runtime = body.get("runtime") or {}
            manifest = build_agent_run(
                Submission(
                    agent=str(_ref(body, "agentRef", "agent")),
                    namespace=namespace,
                    implementation_spec=_ref(body, "implementationSpecRef", "implementation"),
                    runtime=str(runtime.get("type", "job")) if isinstance(runtime, dict) else str(runtime),
                    runtime_config=dict(runtime.get("config") or {}) if isinstance(runtime, dict) else {},
                    parameters={str(k): str(v) for k, v in (body.get("parameters") or {}).items()},
                    workload_image=(body.get("workload") or {}).get("image"),
                    name=body.get("name"),
                    idempotency_key=request.headers.get("Idempotency-Key") or body.get("idempotencyKey"),
                    secrets=[str(s) for s in body.get("secrets") or []],
                )
            )
        except (SubmissionError, AttributeError, TypeError) as err:
            return _error(400, str(err))
        refusal = queue_full(self.cache, self.settings, namespace)
        if refusal is not None:
            response = _error(429, refusal, reason="QueueLimitExceeded")
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        try:
            created = await self.client.create(AGENT_RUN, manifest, namespace=namespace)
            status = 201
        except AlreadyExistsError:
            name = manifest["metadata"]["name"]
            created = await self.client.get(AGENT_RUN, name, namespace)
            key = manifest["spec"].get("idempotencyKey")
            if not key or created.get("spec", {}).get("idempotencyKey") != key:
                return _error(409, f"AgentRun {namespace}/{name} already exists")
            status = 200
        except ApiError as err:
            return _error(err.status if 400 <= err.status < 500 else 502, str(err))
        return web.json_response(created, status=status)

    async def list_runs(self, request: web.Request) -> web.Response:
        namespace = request.query.get("namespace")
        if namespace is not None and not self._in_scope(namespace):
            return _error(403, f"namespace {namespace!r} is not managed by this controller")
        items = self.cache.list(AGENT_RUN, namespace)
        items.sort(key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))
        return web.json_response({"items": items})

    async def get_run(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if not self._in_scope(namespace):
            return _error(403, f"namespace {namespace!r} is not managed by this controller")
        obj = self.cache.get(AGENT_RUN, name, namespace)
        if obj is None:
            return _error(404, f"AgentRun {namespace}/{name} not found")
        return web.json_response(obj)

    async def cancel(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if not self._in_scope(namespace):
            return _error(403, f"namespace {namespace!r} is not managed by this controller")
        try:
            patched = await self.client.patch(
                AGENT_RUN,
                name,
                {"metadata": {"annotations": {CANCEL_ANNOTATION: "true"}}},
                namespace=namespace,
            )
        except NotFoundError:
            return _error(404, f"AgentRun {namespace}/{name} not found")
        return web.json_response(patched, status=202)


def _ref(body: dict[str, Any], ref_key: str, short_key: str) -> str | None:
    ref = body.get(ref_key)
    if isinstance(ref, dict):
        name = ref.get("name")
        return str(name) if name is not None else None
    value = body.get(short_key)
    return str(value) if value is not None else None

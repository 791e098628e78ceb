"""`/v1/agent-runs`: submit, list, read and cancel AgentRuns over HTTP — a protocol adapter only.

The rules (namespace scope, manifest, early queue refusal by the controller's own admission decision,
idempotency, cancel) are `jangar.services.RunsService`'s, shared with the gRPC API; this module parses the
request, calls the service and maps its typed errors: `InvalidRequest` 400, `NamespaceNotManaged` 403,
`NotFound` 404, `AlreadyExists` 409, `QueueFull` 429 with `Retry-After`; an API-server 4xx keeps its status,
anything else from the API server is 502.

Every route needs an authenticated caller (`jangar.server.auth`: 401) with the permission kubectl would
need (403): `create agentruns` (and `get secrets` for each of `secrets`) to submit, `list` / `get` to read,
`patch agentruns` to cancel (the cancel is an annotation).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from jangar.access import AccessError, listing, on, secret_reads, service_account_rights
from jangar.api.refs import AGENTRUNS
from jangar.runtime import ApiError
from jangar.server.auth import access_error_response, require
from jangar.services import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidRequest,
    NamespaceNotManaged,
    NotFound,
    QueueFull,
    RunsService,
    ServiceError,
    Submission,
)

__all__ = ["AgentRunsApi", "error_response", "parse_submission"]

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def error_response(exc: Exception) -> web.Response:
    """The HTTP answer for an access, service or API-server error."""
    if isinstance(exc, AccessError):
        return access_error_response(exc)
    if isinstance(exc, QueueFull):
        response = _error(429, exc.message, reason=exc.reason, scope=exc.scope, limit=exc.limit)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, Conflict):
        return _error(409, exc.message, reason=exc.reason)
    if isinstance(exc, ServiceError):
        status = {
            InvalidRequest: 400,
            NamespaceNotManaged: 403,
            NotFound: 404,
            AlreadyExists: 409,
            Forbidden: 403,
        }
        return _error(next((s for t, s in status.items() if isinstance(exc, t)), 400), exc.message)
    if isinstance(exc, ApiError):
        return _error(exc.status if 400 <= exc.status < 500 else 502, str(exc))
    raise exc


def _mapped(fn: Handler) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        try:
            return await fn(request)
        except (AccessError, ServiceError, ApiError) as exc:
            return error_response(exc)

    return handler


def _ref(body: dict[str, Any], ref_key: str, short_key: str) -> str | None:
    ref = body.get(ref_key)
    if isinstance(ref, dict):
        name = ref.get("name")
        return str(name) if name is not None else None
    value = body.get(short_key)
    return str(value) if value is not None else None


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _budget_ref(body: dict[str, Any]) -> str | None:
    """`budgetRef` (`{name}` or a name), or the reference's `policy.budgetRef`."""
    policy = body.get("policy")
    for given in (body.get("budgetRef"), policy.get("budgetRef") if isinstance(policy, dict) else None):
        value = given.get("name") if isinstance(given, dict) else given
        if value not in (None, ""):
            return str(value)
    return None


def parse_submission(body: object, idempotency_header: str | None = None) -> Submission:
    """The request body (AgentRun spec field names, plus `namespace`, `name`, `idempotencyKey`) as a
    `Submission`; `InvalidRequest` when it has the wrong shape."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    try:
        runtime = body.get("runtime") or {}
        workload = body.get("workload") or {}
        policy = body.get("vcsPolicy") or {}
        requests = (workload.get("resources") or {}).get("requests") or {}
        return Submission(
            agent=_ref(body, "agentRef", "agent") or "",
            namespace=str(body.get("namespace") or ""),
            implementation_spec=_ref(body, "implementationSpecRef", "implementation"),
            runtime=str(runtime.get("type", "job")) if isinstance(runtime, dict) else str(runtime),
            runtime_config=dict(runtime.get("config") or {}) if isinstance(runtime, dict) else {},
            parameters={str(k): str(v) for k, v in (body.get("parameters") or {}).items()},
            workload_image=_text(workload.get("image")),
            resource_requests={str(k): str(v) for k, v in requests.items()},
            name=_text(body.get("name")),
            idempotency_key=idempotency_header or _text(body.get("idempotencyKey")),
            secrets=[str(s) for s in body.get("secrets") or []],
            memory_ref=_ref(body, "memoryRef", "memory"),
            vcs_ref=_ref(body, "vcsRef", "vcs"),
            vcs_policy_mode=_text(policy.get("mode")),
            vcs_policy_required=policy.get("required"),
            budget_ref=_budget_ref(body),
        )
    except (AttributeError, TypeError, ValueError) as err:
        raise InvalidRequest(f"malformed submission: {err}") from None


class AgentRunsApi:
    def __init__(self, runs: RunsService) -> None:
        self.runs = runs

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/agent-runs", _mapped(self.submit)),
            web.get("/v1/agent-runs", _mapped(self.list_runs)),
            web.get("/v1/agent-runs/{namespace}/{name}", _mapped(self.get_run)),
            web.post("/v1/agent-runs/{namespace}/{name}/cancel", _mapped(self.cancel)),
        ]

    async def submit(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError as err:
            return _error(400, f"request body is not JSON: {err}")
        submission = parse_submission(body, request.headers.get("Idempotency-Key"))
        ns = self.runs.namespace(submission.namespace)
        user = await require(
            request,
            on(AGENTRUNS, "create", ns),
            *secret_reads(ns, submission.secrets),
            *service_account_rights(ns, submission.runtime_config),
        )
        result = await self.runs.submit(submission, actor=user.username)
        return web.json_response(result.run, status=200 if result.replayed else 201)

    async def list_runs(self, request: web.Request) -> web.Response:
        namespace = request.query.get("namespace")
        await require(request, *listing(AGENTRUNS, self.runs.scope, namespace))
        listed = await self.runs.list(namespace)
        return web.json_response({"items": listed.items})

    async def get_run(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        await require(request, on(AGENTRUNS, "get", ns, name))
        run = await self.runs.get(ns, name)
        return web.json_response(run)

    async def cancel(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        await require(request, on(AGENTRUNS, "patch", ns, name))
        run = await self.runs.cancel(ns, name)
        return web.json_response(run, status=202)

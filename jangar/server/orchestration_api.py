"""`/v1/orchestration-runs` and `/v1/tool-runs`: submit, list, read and cancel OrchestrationRuns and
ToolRuns, and approve or reject an ApprovalGate step, over HTTP — a protocol adapter only.

The rules are `jangar.services.OrchestrationService`'s and `ToolRunService`'s (shared with gRPC and
agentctl); errors map as for `/v1/agent-runs` (`jangar.server.agentruns_api.error_response`): 400 bad
input, 403 namespace not managed or not a subject of the ApprovalPolicy, 404 missing run/Orchestration/Tool/
step, 409 a name taken by another submission or a step already decided / not waiting (`reason`), 429 a
Budget exceeded (`Retry-After`).

Submissions answer 201 with the run, or 200 with the same run when the `deliveryId` (body, or the
`Idempotency-Key` header) was submitted before. Decisions answer 201 with the decision SignalDelivery.

Every route needs an authenticated caller (`jangar.server.auth`, 401) with the permission kubectl would
need (403): `create`, `list`, `get`, `patch` (cancel) on `orchestrationruns` / `toolruns`; a decision is a
SignalDelivery, so approve and reject need `create signaldeliveries` and then the ApprovalPolicy's
`subjects` are checked against the authenticated identity. Who decided is that identity: the
`X-Remote-User`/`X-Remote-Group` headers and the body's `decidedBy` are ignored (anyone could send them).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from jangar.access import listing, on
from jangar.api.refs import ORCHESTRATIONRUNS, SIGNALDELIVERIES, TOOLRUNS
from jangar.server.agentruns_api import _mapped
from jangar.server.auth import caller, require
from jangar.services import (
    Caller,
    InvalidRequest,
    OrchestrationService,
    OrchestrationSubmission,
    ToolRunService,
    ToolRunSubmission,
)

__all__ = ["OrchestrationRunsApi", "caller_from", "parse_orchestration_submission", "parse_tool_submission"]


def _name(body: dict[str, Any], ref_key: str, short_key: str) -> str:
    ref = body.get(ref_key)
    value = ref.get("name") if isinstance(ref, dict) else ref
    if value in (None, ""):
        value = body.get(short_key)
    return str(value) if value not in (None, "") else ""


def _common(body: object, header_key: str | None) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidRequest("parameters must be an object of strings")
    labels = body.get("labels") or {}
    if not isinstance(labels, dict):
        raise InvalidRequest("labels must be an object of strings")
    delivery = body.get("deliveryId")
    return {
        "namespace": str(body.get("namespace") or ""),
        "parameters": dict(parameters),
        "delivery_id": header_key or (str(delivery) if delivery not in (None, "") else None),
        "name": str(body["name"]) if body.get("name") else None,
        "labels": {str(k): str(v) for k, v in labels.items()},
    }


def parse_orchestration_submission(
    body: object, idempotency_header: str | None = None
) -> OrchestrationSubmission:
    """`{orchestrationRef: {name} | orchestration, namespace, parameters, deliveryId, name, labels}`."""
    common = _common(body, idempotency_header)
    assert isinstance(body, dict)
    return OrchestrationSubmission(orchestration=_name(body, "orchestrationRef", "orchestration"), **common)


def parse_tool_submission(body: object, idempotency_header: str | None = None) -> ToolRunSubmission:
    """`{toolRef: {name} | tool, namespace, parameters, deliveryId, name, labels}`."""
    common = _common(body, idempotency_header)
    assert isinstance(body, dict)
    return ToolRunSubmission(tool=_name(body, "toolRef", "tool"), **common)


def caller_from(request: web.Request, body: dict[str, Any] | None = None) -> Caller:
    """The decider: the authenticated identity (headers and the body's `decidedBy` are not trusted)."""
    user = caller(request)
    return Caller(user=user.username, groups=user.groups)


async def _body(request: web.Request, *, optional: bool = False) -> Any:
    if optional and not request.can_read_body:
        return {}
    try:
        return await request.json()
    except json.JSONDecodeError as err:
        raise InvalidRequest(f"request body is not JSON: {err}") from None


class OrchestrationRunsApi:
    def __init__(self, orchestrations: OrchestrationService, tools: ToolRunService) -> None:
        self.orchestrations = orchestrations
        self.tools = tools

    def routes(self) -> list[web.RouteDef]:
        base, tools = "/v1/orchestration-runs", "/v1/tool-runs"
        return [
            web.post(base, _mapped(self.submit)),
            web.get(base, _mapped(self.list_runs)),
            web.get(base + "/{namespace}/{name}", _mapped(self.get_run)),
            web.post(base + "/{namespace}/{name}/cancel", _mapped(self.cancel)),
            web.post(base + "/{namespace}/{name}/steps/{step}/approve", _mapped(self.approve)),
            web.post(base + "/{namespace}/{name}/steps/{step}/reject", _mapped(self.reject)),
            web.post(tools, _mapped(self.submit_tool)),
            web.get(tools, _mapped(self.list_tools)),
            web.get(tools + "/{namespace}/{name}", _mapped(self.get_tool)),
            web.post(tools + "/{namespace}/{name}/cancel", _mapped(self.cancel_tool)),
        ]

    async def submit(self, request: web.Request) -> web.Response:
        sub = parse_orchestration_submission(await _body(request), request.headers.get("Idempotency-Key"))
        await require(request, on(ORCHESTRATIONRUNS, "create", self.orchestrations.namespace(sub.namespace)))
        result = await self.orchestrations.submit(sub)
        return web.json_response(result.run, status=200 if result.replayed else 201)

    async def list_runs(self, request: web.Request) -> web.Response:
        namespace = request.query.get("namespace")
        await require(request, *listing(ORCHESTRATIONRUNS, self.orchestrations.scope, namespace))
        listed = await self.orchestrations.list(namespace, phase=request.query.get("phase"))
        return web.json_response({"items": listed.items})

    async def get_run(self, request: web.Request) -> web.Response:
        m = request.match_info
        await require(request, on(ORCHESTRATIONRUNS, "get", m["namespace"], m["name"]))
        return web.json_response(await self.orchestrations.get(m["namespace"], m["name"]))

    async def cancel(self, request: web.Request) -> web.Response:
        m = request.match_info
        await require(request, on(ORCHESTRATIONRUNS, "patch", m["namespace"], m["name"]))
        return web.json_response(await self.orchestrations.cancel(m["namespace"], m["name"]), status=202)

    async def _decide(self, request: web.Request, decision: str) -> web.Response:
        body = await _body(request, optional=True)
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object")
        m = request.match_info
        await require(request, on(SIGNALDELIVERIES, "create", self.orchestrations.namespace(m["namespace"])))
        delivery = await self.orchestrations.decide(
            m["namespace"],
            m["name"],
            m["step"],
            decision,
            caller=caller_from(request, body),
            reason=str(body["reason"]) if body.get("reason") else None,
        )
        return web.json_response(delivery, status=201)

    async def approve(self, request: web.Request) -> web.Response:
        return await self._decide(request, "approved")

    async def reject(self, request: web.Request) -> web.Response:
        return await self._decide(request, "rejected")

    async def submit_tool(self, request: web.Request) -> web.Response:
        sub = parse_tool_submission(await _body(request), request.headers.get("Idempotency-Key"))
        await require(request, on(TOOLRUNS, "create", self.tools.namespace(sub.namespace)))
        result = await self.tools.submit(sub)
        return web.json_response(result.run, status=200 if result.replayed else 201)

    async def list_tools(self, request: web.Request) -> web.Response:
        namespace = request.query.get("namespace")
        await require(request, *listing(TOOLRUNS, self.tools.scope, namespace))
        listed = await self.tools.list(namespace, phase=request.query.get("phase"))
        return web.json_response({"items": listed.items})

    async def get_tool(self, request: web.Request) -> web.Response:
        m = request.match_info
        await require(request, on(TOOLRUNS, "get", m["namespace"], m["name"]))
        return web.json_response(await self.tools.get(m["namespace"], m["name"]))

    async def cancel_tool(self, request: web.Request) -> web.Response:
        m = request.match_info
        await require(request, on(TOOLRUNS, "patch", m["namespace"], m["name"]))
        return web.json_response(await self.tools.cancel(m["namespace"], m["name"]), status=202)

"""`/v1/agent-runs` is a protocol adapter: body → Submission, service errors → status codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from jangar.access.testing import StaticAccess
from jangar.api.contract import ANNOTATION_CANCEL
from jangar.api.refs import AGENTRUNS
from jangar.runtime import ApiError
from jangar.runtime.testing import FakeCache
from jangar.server.agentruns_api import AgentRunsApi, error_response, parse_submission
from jangar.server.auth import auth_middleware
from jangar.services import (
    AlreadyExists,
    InvalidRequest,
    NamespaceNotManaged,
    NotFound,
    QueueFull,
    RunsService,
)
from jangar.settings import Settings
from tests.unit.services.fakes import FakeClient

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BODY = {"agentRef": {"name": "codex-agent"}, "implementationSpecRef": {"name": "impl"}}


@pytest_asyncio.fixture
async def http() -> AsyncIterator[tuple[TestClient[Any, Any], FakeCache]]:
    settings = Settings.from_env(
        {
            "JANGAR_AGENTS_CONTROLLER_NAMESPACES": "agents,other",
            "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_CLUSTER": "1",
            "JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE": "1",
        }
    )
    cache = FakeCache()
    runs = RunsService(FakeClient(), cache, settings, clock=lambda: NOW)  # type: ignore[arg-type]
    app = web.Application(middlewares=[auth_middleware(StaticAccess())])
    app.router.add_routes(AgentRunsApi(runs).routes())
    async with TestClient(TestServer(app), headers={"Authorization": "Bearer admin-token"}) as client:
        yield client, cache


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (InvalidRequest("bad"), 400),
        (NamespaceNotManaged("x"), 403),
        (NotFound("AgentRun", "a", "r"), 404),
        (AlreadyExists("AgentRun", "a", "r"), 409),
        (ApiError(422, "Invalid", "spec.x"), 422),
        (ApiError(500, "InternalError", "etcd"), 502),
        (ApiError(0, "ConnectionError", "refused"), 502),
    ],
)
def test_error_mapping(exc: Exception, status: int) -> None:
    assert error_response(exc).status == status


def test_queue_full_is_429_with_retry_after() -> None:
    response = error_response(QueueFull("full", scope="repository", limit=3, retry_after=30))
    assert (response.status, response.headers["Retry-After"]) == (429, "30")
    assert response.text is not None and '"reason": "QueueLimitExceeded"' in response.text


def test_body_parsing() -> None:
    sub = parse_submission(
        {
            **BODY,
            "runtime": {"type": "workflow", "config": {"stage": "plan"}},
            "parameters": {"issue": 7},
            "workload": {"image": "img", "resources": {"requests": {"cpu": "1"}}},
            "vcsRef": {"name": "github"},
            "vcsPolicy": {"mode": "read-only", "required": True},
            "idempotencyKey": "body-key",
        },
        "header-key",
    )
    assert (sub.agent, sub.implementation_spec, sub.runtime) == ("codex-agent", "impl", "workflow")
    assert sub.parameters == {"issue": "7"}
    assert sub.resource_requests == {"cpu": "1"}
    assert (sub.vcs_ref, sub.vcs_policy_mode, sub.vcs_policy_required) == ("github", "read-only", True)
    assert sub.idempotency_key == "header-key"  # the header wins
    assert parse_submission({"agent": "a", "implementation": "i", "runtime": "job"}).runtime == "job"
    for bad in ([], {"parameters": ["x"]}, {"workload": "img"}):
        with pytest.raises(InvalidRequest):
            parse_submission(bad)


async def test_submit_replay_conflict_cancel_and_refusals(
    http: tuple[TestClient[Any, Any], FakeCache],
) -> None:
    client, cache = http
    resp = await client.post("/v1/agent-runs", json=BODY, headers={"Idempotency-Key": "k"})
    assert resp.status == 201, await resp.text()
    run = await resp.json()
    assert run["metadata"]["namespace"] == "agents"  # the default namespace
    resp = await client.post("/v1/agent-runs", json=BODY, headers={"Idempotency-Key": "k"})
    assert resp.status == 200 and (await resp.json())["metadata"]["uid"] == run["metadata"]["uid"]
    resp = await client.post("/v1/agent-runs", json={**BODY, "name": run["metadata"]["name"]})
    assert resp.status == 409
    # A running run holds the cluster slot and ours waits in the namespace queue (limit 1): the next is 429.
    cache.add(AGENTRUNS, {**run, "status": {}})
    cache.add(
        AGENTRUNS,
        {
            "metadata": {"name": "r0", "namespace": "other", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"agentRef": {"name": "x"}},
            "status": {"phase": "Running"},
        },
    )
    resp = await client.post("/v1/agent-runs", json=BODY)
    assert resp.status == 429 and resp.headers["Retry-After"] == "30"
    assert (await resp.json())["reason"] == "QueueLimitExceeded"
    resp = await client.post("/v1/agent-runs", json={**BODY, "namespace": "other"})  # other's queue is empty
    assert resp.status == 201
    for body, status in (
        ({**BODY, "namespace": "elsewhere"}, 403),
        ({**BODY, "namespace": "*"}, 400),
        ({**BODY, "runtime": {"type": "lambda"}}, 400),
        ({"implementationSpecRef": {"name": "impl"}}, 400),
    ):
        resp = await client.post("/v1/agent-runs", json=body)
        assert resp.status == status, (body, await resp.text())
    resp = await client.post("/v1/agent-runs", data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status == 400

    name = run["metadata"]["name"]
    resp = await client.get(f"/v1/agent-runs/agents/{name}")
    assert resp.status == 200
    resp = await client.post(f"/v1/agent-runs/agents/{name}/cancel")
    assert resp.status == 202
    assert (await resp.json())["metadata"]["annotations"][ANNOTATION_CANCEL] == "true"
    assert (await client.post("/v1/agent-runs/agents/missing/cancel")).status == 404
    assert (await client.get("/v1/agent-runs/agents/missing")).status == 404
    assert (await client.get("/v1/agent-runs/elsewhere/x")).status == 403
    resp = await client.get("/v1/agent-runs")
    assert [o["metadata"]["namespace"] for o in (await resp.json())["items"]] == ["agents", "other"]
    assert (await client.get("/v1/agent-runs", params={"namespace": "elsewhere"})).status == 403

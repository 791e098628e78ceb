"""The service's method table against the proto, and the small pure rules of the gRPC service."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from jangar.access.testing import ADMIN, StaticAccess
from jangar.api import registry
from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb
from jangar.grpc.manifests import ManifestError
from jangar.grpc.service import AgentctlService, RpcFailure, _status_for, list_method, phase_of
from jangar.runtime import ApiError, InvalidError, NotFoundError
from jangar.services import (
    AlreadyExists,
    InvalidRequest,
    NamespaceNotManaged,
    NotFound,
    QueueFull,
    ServiceError,
    SubmissionError,
)
from jangar.services.logs import choose_pod
from jangar.settings import Settings

SERVICE = pb.DESCRIPTOR.services_by_name["AgentctlService"]


def _service(env: dict[str, str] | None = None) -> AgentctlService:
    return AgentctlService(
        Settings.from_env(env or {}),
        client=None,  # type: ignore[arg-type]
        cache=None,  # type: ignore[arg-type]
        access=StaticAccess(),
    )


def _code(exc: BaseException) -> grpc.StatusCode:
    return _status_for(exc)[0]


def test_every_proto_method_has_a_handler_and_nothing_else() -> None:
    handlers = _service().method_handlers()
    assert set(handlers) == {m.name for m in SERVICE.methods}


def test_every_jangar_kind_has_the_reference_per_kind_methods() -> None:
    names = {m.name for m in SERVICE.methods}
    for info in registry.KINDS:
        for method in (list_method(info.kind), f"Get{info.kind}", f"Apply{info.kind}", f"Delete{info.kind}"):
            assert method in names, f"{method} missing from agentctl.proto"


def test_handler_shapes_match_the_proto() -> None:
    handlers = _service().method_handlers()
    for method in SERVICE.methods:
        h = handlers[method.name]
        assert h.response_streaming == method.server_streaming, method.name
        assert not h.request_streaming
        # The deserializer decodes the proto's input type (a mismatch would garble every request).
        assert h.request_deserializer is not None
        decoded = h.request_deserializer(b"")
        assert type(decoded).DESCRIPTOR.full_name == method.input_type.full_name, method.name


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("Agent", "ListAgents"),
        ("Memory", "ListMemories"),
        ("ApprovalPolicy", "ListApprovalPolicies"),
        ("SignalDelivery", "ListSignalDeliveries"),
        ("AgentRun", "ListAgentRuns"),
        ("Budget", "ListBudgets"),
    ],
)
def test_list_method_names(kind: str, name: str) -> None:
    assert list_method(kind) == name


@pytest.mark.parametrize(
    ("obj", "phase"),
    [
        ({}, ""),
        ({"status": {"phase": "Running", "state": "x"}}, "Running"),
        ({"status": {"state": "Active"}}, "Active"),
        ({"status": {"result": "ok"}}, "ok"),
        (
            {
                "status": {
                    "conditions": [{"type": "Other", "status": "x"}, {"type": "Ready", "status": "True"}]
                }
            },
            "True",
        ),
    ],
)
def test_phase_of(obj: dict[str, object], phase: str) -> None:
    assert phase_of(obj) == phase


def _pod(name: str, created: str, phase: str) -> dict[str, object]:
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": {"phase": phase}}


def test_choose_pod_prefers_running_then_newest() -> None:
    assert choose_pod([]) is None
    pods = [_pod("b", "2026-01-02T00:00:00Z", "Succeeded"), _pod("a", "2026-01-01T00:00:00Z", "Failed")]
    assert choose_pod(pods) == "b"
    assert (
        choose_pod(
            [
                *pods,
                _pod("c", "2026-01-03T00:00:00Z", "Pending"),
                _pod("r", "2026-01-01T00:00:00Z", "Running"),
            ]
        )
        == "r"
    )


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (RpcFailure(grpc.StatusCode.RESOURCE_EXHAUSTED, "full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (ManifestError("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (SubmissionError("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (InvalidError(422, "Invalid", "spec.x: bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFoundError(404, "NotFound", "gone"), grpc.StatusCode.NOT_FOUND),
        (ApiError(400, "BadRequest", "unable to parse requirement"), grpc.StatusCode.INVALID_ARGUMENT),
        (ApiError(403, "Forbidden", "rbac"), grpc.StatusCode.PERMISSION_DENIED),
        (ApiError(0, "ConnectionError", "refused"), grpc.StatusCode.UNAVAILABLE),
        (ApiError(500, "InternalError", "etcd"), grpc.StatusCode.INTERNAL),
        (RuntimeError("boom"), grpc.StatusCode.INTERNAL),
    ],
)
def test_status_mapping(exc: Exception, code: grpc.StatusCode) -> None:
    assert _status_for(exc)[0] == code


@pytest.mark.parametrize(
    ("exc", "code", "details"),
    [
        (InvalidRequest("name is required"), grpc.StatusCode.INVALID_ARGUMENT, "name is required"),
        (
            NamespaceNotManaged("x"),
            grpc.StatusCode.PERMISSION_DENIED,
            "namespace 'x' is not managed by this controller",
        ),
        (NotFound("AgentRun", "a", "r"), grpc.StatusCode.NOT_FOUND, "AgentRun not found"),
        (AlreadyExists("AgentRun", "a", "r"), grpc.StatusCode.ALREADY_EXISTS, "AgentRun a/r already exists"),
        (
            QueueFull("namespace a reached its queue limit", scope="namespace", limit=2, retry_after=30),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "namespace a reached its queue limit",
        ),
    ],
)
def test_service_errors_map_to_status_codes(exc: ServiceError, code: grpc.StatusCode, details: str) -> None:
    assert _status_for(exc) == (code, details)


def test_namespace_scope_is_the_runs_service_rule() -> None:
    svc = _service({"JANGAR_AGENTS_CONTROLLER_NAMESPACES": "team-a,team-b"})
    assert svc._namespace("") == "team-a"
    assert svc._namespace("team-b") == "team-b"
    for outside, code in (
        ("team-c", grpc.StatusCode.PERMISSION_DENIED),
        ("*", grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(ServiceError) as err:
            svc._namespace(outside)
        assert _code(err.value) == code
    everywhere = _service({"JANGAR_AGENTS_CONTROLLER_NAMESPACES": "*", "JANGAR_RBAC_CLUSTER_SCOPED": "true"})
    assert everywhere._namespace("anything") == "anything"
    with pytest.raises(InvalidRequest, match="namespace is required"):
        everywhere._namespace("")


@pytest.mark.parametrize(
    "request_",
    [
        pb.SubmitAgentRunRequest(implementation_name="impl", runtime_type="job"),
        pb.SubmitAgentRunRequest(agent_name="a", runtime_type="job"),
        pb.SubmitAgentRunRequest(agent_name="a", implementation_name="impl"),
    ],
)
async def test_submit_requires_the_reference_fields(request_: pb.SubmitAgentRunRequest) -> None:
    with pytest.raises(InvalidRequest, match="is required"):
        await _service().submit_agent_run(request_, ADMIN)


async def test_agentrun_methods_translate_the_runs_service() -> None:
    import json
    from datetime import UTC, datetime

    from jangar.runtime.testing import FakeCache
    from jangar.services import RunsService
    from tests.unit.services.fakes import FakeClient

    settings = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_NAMESPACES": "agents"})
    client, cache = FakeClient(), FakeCache()
    runs = RunsService(client, cache, settings, clock=lambda: datetime(2026, 3, 1, tzinfo=UTC))  # type: ignore[arg-type]
    svc = AgentctlService(settings, client, cache, runs=runs, access=StaticAccess())  # type: ignore[arg-type]
    request = pb.SubmitAgentRunRequest(
        agent_name="a", implementation_name="impl", runtime_type="job", idempotency_key="k"
    )
    first = await svc.submit_agent_run(request, ADMIN)
    again = await svc.submit_agent_run(request, ADMIN)
    assert (first.idempotent, again.idempotent) == (False, True)
    name = json.loads(first.resource_json)["metadata"]["name"]
    cancelled = await svc.cancel_agent_run(pb.CancelAgentRunRequest(name=name), ADMIN)
    assert (cancelled.ok, cancelled.message) == (True, "cancel requested")
    client.objects[("agents", name)]["status"] = {"phase": "Succeeded"}
    done = await svc.cancel_agent_run(pb.CancelAgentRunRequest(name=name), ADMIN)
    assert done.message == "already Succeeded"
    listed = json.loads((await svc.list_agent_runs(pb.ListAgentRunsRequest(phase="succeeded"), ADMIN)).json)
    assert (listed["kind"], len(listed["items"])) == ("AgentRunList", 1)
    with pytest.raises(NotFound):
        await svc.get_agent_run(pb.GetRequest(name="missing"), ADMIN)
    with pytest.raises(InvalidRequest):
        await svc.cancel_agent_run(pb.CancelAgentRunRequest(namespace="agents"), ADMIN)


class _Context:
    """The slice of a gRPC servicer context `_authenticate` uses."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        self.aborted = (code, message)
        raise RuntimeError("aborted")


class _ProxyThenShared(StaticAccess):
    """TokenReview is down for the proxy's `authorization` token; the shared token needs no TokenReview."""

    async def authenticate(self, token: str | None) -> Any:
        from jangar.access import AccessUnavailable, Unauthenticated

        if token == "shared":
            return ADMIN
        if token == "proxy":
            raise AccessUnavailable("TokenReview failed: 503")
        raise Unauthenticated("no")


async def test_a_token_tokenreview_cannot_judge_does_not_hide_the_callers_shared_token() -> None:
    service = AgentctlService(
        Settings.from_env({}),
        client=None,  # type: ignore[arg-type]
        cache=None,  # type: ignore[arg-type]
        access=_ProxyThenShared(),
    )
    both = _Context((("authorization", "Bearer proxy"), ("x-jangar-token", "shared")))
    assert await service._authenticate("GetServerInfo", both) == ADMIN  # type: ignore[arg-type]
    alone = _Context((("authorization", "Bearer proxy"), ("x-jangar-token", "wrong")))
    with pytest.raises(RuntimeError):
        await service._authenticate("GetServerInfo", alone)  # type: ignore[arg-type]
    assert alone.aborted is not None and alone.aborted[0] == grpc.StatusCode.UNAVAILABLE


async def test_the_0_9_29_token_header_authenticates_like_x_jangar_token() -> None:
    """issue 13 item 1: `x-agents-token` (the 0.9.29 header) is read beside `x-jangar-token`."""
    service = AgentctlService(
        Settings.from_env({}),
        client=None,  # type: ignore[arg-type]
        cache=None,  # type: ignore[arg-type]
        access=_ProxyThenShared(),
    )
    agents = _Context((("authorization", "Bearer proxy"), ("x-agents-token", "shared")))
    assert await service._authenticate("GetServerInfo", agents) == ADMIN  # type: ignore[arg-type]


async def test_the_service_answers_under_both_package_names() -> None:
    """issue 13 item 1: a 0.9.29 client calls `/proompteng.agents.v1.AgentctlService/<Method>`; the same
    handlers answer there and under the 0.9.1 name (a real in-process server on a loopback port)."""
    from jangar.grpc.service import SERVICE_NAMES

    settings = Settings.from_env({"JANGAR_VERSION": "9.9.9"})
    service = AgentctlService(
        settings,
        client=None,  # type: ignore[arg-type]
        cache=None,  # type: ignore[arg-type]
        access=StaticAccess(),
    )
    assert SERVICE_NAMES == ("proompteng.jangar.v1.AgentctlService", "proompteng.agents.v1.AgentctlService")
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(service.handlers())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for name in (*SERVICE_NAMES, "proompteng.other.v1.AgentctlService"):
                call = channel.unary_unary(
                    f"/{name}/GetServerInfo",
                    request_serializer=pb.GetServerInfoRequest.SerializeToString,
                    response_deserializer=pb.GetServerInfoResponse.FromString,
                )
                if name.startswith("proompteng.other"):
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await call(pb.GetServerInfoRequest(), metadata=(("x-agents-token", "admin-token"),))
                    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
                    continue
                reply = await call(pb.GetServerInfoRequest(), metadata=(("x-agents-token", "admin-token"),))
                assert reply.version == "9.9.9", name
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call(pb.GetServerInfoRequest(), metadata=(("x-agents-token", "wrong"),))
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
    finally:
        await server.stop(grace=None)

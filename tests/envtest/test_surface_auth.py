"""issue 12: every HTTP route and every gRPC method against a real kube-apiserver with RBAC — no token →
401 / UNAUTHENTICATED, a ServiceAccount token without rights → 403 / PERMISSION_DENIED naming the
permission, the same token once a Role grants it → allowed; plus the privilege escalations (binding or using
a Secret the caller may not read) denied, the shared gRPC token authorized like anyone, and agentctl taking
the kubeconfig's token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest_asyncio
import yaml

from jangar.access import SHARED_TOKEN_USER
from jangar.api import groups
from jangar.api.refs import AGENTRUNS, SECRETBINDINGS, ref_for
from jangar.app import Options, build_manager
from jangar.dev.cluster import LocalCluster
from jangar.dev.processes import free_port
from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb
from jangar.grpc.server import GrpcRunnable
from jangar.grpc.service import SERVICE_NAME
from jangar.runtime import Client, Manager, NotFoundError
from tests.envtest.auth_support import grant, service_account, token_for
from tests.envtest.controllers_fixtures import settings_for
from tests.support.waiting import eventually

SHARED = "matrix-shared-token"
NO_AUTH = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
WRITER_RULES = [
    {"apiGroups": list(groups.ALL), "resources": ["*"], "verbs": ["*"]},
    {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["readable"], "verbs": ["get"]},
]


@dataclass
class Api:
    manager: Manager
    admin: Client
    base: str
    channel: grpc.aio.Channel
    address: str
    namespace: str
    nobody: str
    writer: str
    writer_user: str


@pytest_asyncio.fixture
async def api(envtest_crds: LocalCluster, namespace: str) -> AsyncIterator[Api]:
    address = f"127.0.0.1:{free_port()}"
    settings = settings_for(
        namespace,
        JANGAR_LEADER_ELECTION_ENABLED="false",
        JANGAR_GRPC_ENABLED="true",
        JANGAR_GRPC_ADDRESS=address,
        JANGAR_GRPC_TOKEN=SHARED,
        JANGAR_AUTH_DENIED_CACHE_TTL_SECONDS="1",
    )
    admin = await Client.from_kubeconfig(str(envtest_crds.kubeconfig))
    nobody = await token_for(admin, namespace, "nobody")
    writer_user = await service_account(admin, namespace, "writer")
    await grant(admin, namespace, "writer", WRITER_RULES, service_account=(namespace, "writer"))
    writer = await token_for(admin, namespace, "writer")
    manager, _ = await build_manager(settings, admin, Options(bind_address="127.0.0.1:0", controllers=False))
    grpc_runnable = next(r for r in manager._other_runnables if isinstance(r, GrpcRunnable))
    task = asyncio.create_task(manager.start())
    channel = grpc.aio.insecure_channel(address)
    try:
        await eventually(
            lambda: bool(manager.http_port and grpc_runnable.port and manager.cache.has_synced()),
            timeout=60,
            what="jangar serving",
        )
        yield Api(
            manager,
            admin,
            f"http://127.0.0.1:{manager.http_port}",
            channel,
            address,
            namespace,
            nobody,
            writer,
            writer_user,
        )
    finally:
        await channel.close()
        manager.request_stop()
        await asyncio.wait_for(task, 30)
        await admin.close()


# -- HTTP ----------------------------------------------------------------------------------------------


def http_matrix(ns: str) -> list[tuple[str, str, Any]]:
    run = {"namespace": ns, "agentRef": {"name": "a"}, "implementationSpecRef": {"name": "impl"}}
    orch = {"namespace": ns, "orchestrationRef": {"name": "o"}}
    tool = {"namespace": ns, "toolRef": {"name": "t"}}
    out: list[tuple[str, str, Any]] = [
        ("POST", "/v1/agent-runs", run),
        ("GET", f"/v1/agent-runs?namespace={ns}", None),
        ("GET", "/v1/agent-runs", None),
        ("GET", f"/v1/agent-runs/{ns}/x", None),
        ("POST", f"/v1/agent-runs/{ns}/x/cancel", None),
        ("POST", "/v1/orchestration-runs", orch),
        ("GET", f"/v1/orchestration-runs?namespace={ns}", None),
        ("GET", f"/v1/orchestration-runs/{ns}/x", None),
        ("POST", f"/v1/orchestration-runs/{ns}/x/cancel", None),
        ("POST", f"/v1/orchestration-runs/{ns}/x/steps/gate/approve", {}),
        ("POST", f"/v1/orchestration-runs/{ns}/x/steps/gate/reject", {}),
        ("POST", "/v1/tool-runs", tool),
        ("GET", f"/v1/tool-runs?namespace={ns}", None),
        ("GET", f"/v1/tool-runs/{ns}/x", None),
        ("POST", f"/v1/tool-runs/{ns}/x/cancel", None),
        ("POST", "/v1/memory-queries", {"memoryRef": "m", "namespace": ns, "key": "k"}),
        (
            "POST",
            "/v1/memory-records",
            {"memoryRef": "m", "namespace": ns, "records": [{"key": "k", "embedding": [1.0]}]},
        ),
    ]
    return out


async def _http(
    api: Api, method: str, path: str, body: Any, token: str | None
) -> tuple[int, dict[str, Any], Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, api.base + path, json=body, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def test_every_http_route_needs_a_token_and_the_permission(api: Api) -> None:
    ns = api.namespace
    wrong: list[str] = []
    for method, path, body in http_matrix(ns):
        where = f"{method} {path}"
        for token in (None, "not-a-token"):
            status, headers, answer = await _http(api, method, path, body, token)
            if status != 401 or not headers.get("WWW-Authenticate", "").startswith("Bearer"):
                wrong.append(f"{where} token={token!r}: {status} {answer}")
        status, _, answer = await _http(api, method, path, body, api.nobody)
        message = (answer or {}).get("error", "")
        if status != 403 or f'user "system:serviceaccount:{ns}:nobody" cannot' not in message:
            wrong.append(f"{where} without rights: {status} {answer}")
        status, _, answer = await _http(api, method, path, body, api.writer)
        if status in (401, 403):
            wrong.append(f"{where} with rights: {status} {answer}")
    assert not wrong, "\n".join(wrong)


async def test_http_answers_with_rights_and_the_named_permission(api: Api) -> None:
    ns = api.namespace
    status, _, answer = await _http(api, "POST", "/v1/agent-runs", http_matrix(ns)[0][2], api.nobody)
    assert status == 403
    assert answer["error"] == (
        f'user "system:serviceaccount:{ns}:nobody" cannot create resource "agentruns" '
        f'in API group "agents.proompteng.ai" in the namespace "{ns}"'
    )
    status, _, answer = await _http(api, "POST", "/v1/agent-runs", http_matrix(ns)[0][2], api.writer)
    assert status == 201, answer
    name = answer["metadata"]["name"]
    status, _, answer = await _http(api, "GET", f"/v1/agent-runs/{ns}/{name}", None, api.writer)
    assert status == 200 and answer["metadata"]["name"] == name
    status, _, answer = await _http(api, "POST", f"/v1/agent-runs/{ns}/{name}/cancel", None, api.writer)
    assert status == 202, answer
    # Probes and metrics stay open.
    for path in ("/health", "/ready", "/metrics"):
        async with aiohttp.ClientSession() as http, http.get(api.base + path) as resp:
            assert resp.status == 200, path


async def test_http_submit_with_a_secret_the_caller_cannot_read_is_refused(api: Api) -> None:
    ns = api.namespace
    body = {**http_matrix(ns)[0][2], "secrets": ["forbidden"], "name": "escalate"}
    status, _, answer = await _http(api, "POST", "/v1/agent-runs", body, api.writer)
    assert status == 403
    assert 'cannot get resource "secrets" "forbidden" in API group "" in the namespace' in answer["error"]
    try:
        await api.admin.get(AGENTRUNS, "escalate", ns)
        raise AssertionError("the refused run was created")
    except NotFoundError:
        pass
    body = {**body, "secrets": ["readable"], "name": "allowed"}
    status, _, answer = await _http(api, "POST", "/v1/agent-runs", body, api.writer)
    assert status == 201, answer


# -- gRPC ----------------------------------------------------------------------------------------------


def _methods() -> list[Any]:
    return list(pb.DESCRIPTOR.services_by_name["AgentctlService"].methods)


def _request(method: Any, ns: str) -> Any:
    cls = getattr(pb, method.input_type.name)
    msg = cls()
    fields = {f.name for f in cls.DESCRIPTOR.fields}
    values = {
        "namespace": ns,
        "name": "x",
        "run_name": "x",
        "step": "gate",
        "kind": "Agent",
        "agent_name": "a",
        "implementation_name": "impl",
        "runtime_type": "job",
        "orchestration_name": "o",
        "text": "t",
    }
    for key, value in values.items():
        if key in fields:
            setattr(msg, key, value)
    if "manifest_yaml" in fields:
        kind = method.name.removeprefix("Apply") if method.name != "ApplyResource" else "Agent"
        ref = ref_for(kind)
        msg.manifest_yaml = json.dumps(
            {"apiVersion": ref.api_version, "kind": kind, "metadata": {"name": "auth-matrix"}, "spec": {}}
        )
    return msg


async def _call(api: Api, method: Any, request: Any, token: str | None) -> tuple[grpc.StatusCode, str]:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    path = f"/{SERVICE_NAME}/{method.name}"
    serializer = type(request).SerializeToString
    response_cls = getattr(pb, method.output_type.name)
    try:
        if method.server_streaming:
            call = api.channel.unary_stream(path, serializer, response_cls.FromString)(
                request, metadata=metadata, timeout=30
            )
            async for _ in call:
                break
            call.cancel()
        else:
            await api.channel.unary_unary(path, serializer, response_cls.FromString)(
                request, metadata=metadata, timeout=30
            )
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


async def test_every_grpc_method_needs_a_token_and_the_permission(api: Api) -> None:
    ns = api.namespace
    methods = _methods()
    assert len(methods) > 70  # every kind's List/Get/Apply/Delete plus the run methods
    wrong: list[str] = []
    for method in methods:
        request = _request(method, ns)
        for token in (None, "not-a-token"):
            code, details = await _call(api, method, request, token)
            if code != grpc.StatusCode.UNAUTHENTICATED:
                wrong.append(f"{method.name} token={token!r}: {code.name} {details}")
        code, details = await _call(api, method, request, api.nobody)
        if method.name == "GetServerInfo":  # names and versions: any authenticated caller
            if code != grpc.StatusCode.OK:
                wrong.append(f"{method.name} authenticated: {code.name} {details}")
        elif code != grpc.StatusCode.PERMISSION_DENIED or f"system:serviceaccount:{ns}:nobody" not in details:
            wrong.append(f"{method.name} without rights: {code.name} {details}")
        code, details = await _call(api, method, request, api.writer)
        if code in NO_AUTH:
            wrong.append(f"{method.name} with rights: {code.name} {details}")
    assert not wrong, "\n".join(wrong)


async def test_grpc_secret_binding_and_secret_use_are_capped_by_the_callers_reads(api: Api) -> None:
    ns = api.namespace
    methods = {m.name: m for m in _methods()}

    def binding(name: str, secret: str) -> pb.ApplyRequest:
        manifest = {
            "apiVersion": SECRETBINDINGS.api_version,
            "kind": "SecretBinding",
            "metadata": {"name": name},
            "spec": {"allowedSecrets": [secret], "subjects": [{"kind": "Agent", "name": "a"}]},
        }
        return pb.ApplyRequest(namespace=ns, manifest_yaml=yaml.safe_dump(manifest))

    code, details = await _call(api, methods["ApplySecretBinding"], binding("steal", "forbidden"), api.writer)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert 'cannot get resource "secrets" "forbidden"' in details
    code, _ = await _call(api, methods["ApplyResource"], binding("steal", "forbidden"), api.writer)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    try:
        await api.admin.get(SECRETBINDINGS, "steal", ns)
        raise AssertionError("the refused SecretBinding was written")
    except NotFoundError:
        pass
    code, details = await _call(api, methods["ApplySecretBinding"], binding("fine", "readable"), api.writer)
    assert code == grpc.StatusCode.OK, details
    assert (await api.admin.get(SECRETBINDINGS, "fine", ns))["spec"]["allowedSecrets"] == ["readable"]

    submit = _request(methods["SubmitAgentRun"], ns)
    submit.secrets.append("forbidden")
    code, details = await _call(api, methods["SubmitAgentRun"], submit, api.writer)
    assert code == grpc.StatusCode.PERMISSION_DENIED and '"secrets" "forbidden"' in details
    run = {
        "apiVersion": AGENTRUNS.api_version,
        "kind": "AgentRun",
        "metadata": {"name": "escalate"},
        "spec": {"agentRef": {"name": "a"}, "secrets": ["forbidden"]},
    }
    apply_run = pb.ApplyRequest(namespace=ns, manifest_yaml=json.dumps(run))
    code, details = await _call(api, methods["ApplyAgentRun"], apply_run, api.writer)
    assert code == grpc.StatusCode.PERMISSION_DENIED and '"secrets" "forbidden"' in details


async def test_the_shared_token_is_an_identity_rbac_decides_for(api: Api) -> None:
    ns = api.namespace
    method = next(m for m in _methods() if m.name == "ListAgentRuns")
    request = _request(method, ns)
    code, details = await _call(api, method, request, SHARED)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert f'user "{SHARED_TOKEN_USER}" cannot list resource "agentruns"' in details
    # ... and not accepted on HTTP (it is gRPC's credential only).
    status, _, _ = await _http(api, "GET", f"/v1/agent-runs?namespace={ns}", None, SHARED)
    assert status == 401
    await grant(
        api.admin,
        ns,
        "shared-token-reader",
        [{"apiGroups": [groups.AGENTS], "resources": ["agentruns"], "verbs": ["list", "get"]}],
        user=SHARED_TOKEN_USER,
    )

    async def allowed() -> bool:
        code, _ = await _call(api, method, request, SHARED)
        return code == grpc.StatusCode.OK

    await eventually(allowed, timeout=30, what="the RoleBinding for the shared token to take effect")


async def test_agentctl_sends_the_kubeconfig_users_token(api: Api, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "writer", "user": {"token": api.writer}}],
                "contexts": [{"name": "w", "context": {"cluster": "c", "user": "writer"}}],
                "current-context": "w",
            }
        )
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AGENTCTL_", "JANGAR_GRPC_", "KUBECONFIG"))
    }

    def agentctl(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "jangar.agentctl",
                "--kubeconfig",
                str(kubeconfig),
                "--server",
                api.address,
                "-n",
                api.namespace,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**env, **(extra or {})},
        )

    listed = await asyncio.to_thread(agentctl, "run", "list")
    assert listed.returncode == 0, listed.stderr  # the kubeconfig's token
    denied = await asyncio.to_thread(agentctl, "run", "list", extra={"AGENTCTL_TOKEN": api.nobody})
    assert denied.returncode == 1 and "permission_denied" in denied.stderr  # the environment comes first
    flagged = await asyncio.to_thread(
        agentctl, "--token", api.writer, "run", "list", extra={"AGENTCTL_TOKEN": api.nobody}
    )
    assert flagged.returncode == 0, flagged.stderr  # and --token before it
    with contextlib.suppress(FileNotFoundError):
        kubeconfig.unlink()

"""The agentctl gRPC API against a real API server: jangar's manager with grpc.enabled, as `jangar serve`
builds it, and `agentctl --server` as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import grpc
import pytest
import pytest_asyncio

from jangar.api.contract import ANNOTATION_CANCEL
from jangar.api.refs import AGENTRUNS
from jangar.app import Options, build_manager
from jangar.controllers.kinds import AGENTS
from jangar.dev.cluster import LocalCluster
from jangar.dev.processes import free_port
from jangar.grpc.client import AgentctlClient
from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb
from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2_grpc as pb_grpc
from jangar.grpc.server import GrpcRunnable
from jangar.runtime import Client, Manager, NotFoundError
from jangar.runtime.resources import JOBS, PODS
from tests.envtest.auth_support import shared_token_is_admin
from tests.envtest.controllers_fixtures import apply_basics, settings_for
from tests.support.waiting import eventually

TOKEN = "s3cret-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
CANCEL = ANNOTATION_CANCEL


@dataclass
class Running:
    manager: Manager
    admin: Client
    address: str
    namespace: str
    stub: pb_grpc.AgentctlServiceAsyncStub


@contextlib.asynccontextmanager
async def _serve(
    cluster: LocalCluster, namespace: str, env: dict[str, str], *, controllers: bool
) -> AsyncIterator[Running]:
    """jangar's manager exactly as `jangar serve` builds it, with gRPC on a free port."""
    address = f"127.0.0.1:{free_port()}"
    settings = settings_for(
        namespace,
        JANGAR_LEADER_ELECTION_ENABLED="false",
        JANGAR_GRPC_ENABLED="true",
        JANGAR_GRPC_ADDRESS=address,
        JANGAR_GRPC_TOKEN=TOKEN,
        JANGAR_VERSION="1.2.3-test",
        **env,
    )
    client = await Client.from_kubeconfig(str(cluster.kubeconfig))
    # The shared token's identity is authorized like anyone else (issue 12): these tests use it as an admin.
    await shared_token_is_admin(client, namespace)
    manager, _ = await build_manager(
        settings, client, Options(bind_address="127.0.0.1:0", controllers=controllers)
    )
    runnables = [r for r in manager._other_runnables if isinstance(r, GrpcRunnable)]
    assert len(runnables) == 1, "build_manager must add the gRPC runnable when grpc.enabled"
    task = asyncio.create_task(manager.start())
    channel = grpc.aio.insecure_channel(address)
    try:
        for _ in range(300):
            if runnables[0].port and manager.cache.has_synced():
                break
            await asyncio.sleep(0.05)
        assert runnables[0].port, "gRPC server never started"
        yield Running(manager, client, address, namespace, pb_grpc.AgentctlServiceStub(channel))
    finally:
        await channel.close()
        manager.request_stop()
        await asyncio.wait_for(task, 30)
        await client.close()


@pytest_asyncio.fixture
async def jangar_grpc(envtest_crds: LocalCluster, namespace: str) -> AsyncIterator[Running]:
    """The API alone (no controllers), so runs stay where the test puts them. One run may start at a time
    and two may wait, so the early refusal (the controller's admission decision) refuses a fourth."""
    env = {
        "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE": "1",
        "JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE": "2",
    }
    async with _serve(envtest_crds, namespace, env, controllers=False) as running:
        yield running


def _submit_request(ns: str, key: str = "", **extra: str) -> pb.SubmitAgentRunRequest:
    request = pb.SubmitAgentRunRequest(
        namespace=ns,
        agent_name="codex-agent",
        implementation_name="impl",
        runtime_type="job",
        parameters=[pb.KeyValue(key="issue", value="7")],
        idempotency_key=key,
    )
    for field, value in extra.items():
        setattr(request, field, value)
    return request


async def _wait_cached(running: Running, count: int) -> None:
    await eventually(
        lambda: len(running.manager.cache.list(AGENTRUNS, running.namespace)) >= count,
        what=f"{count} runs in the cache",
    )


async def test_server_info_and_token(jangar_grpc: Running) -> None:
    stub = jangar_grpc.stub
    info = await stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=AUTH)
    assert (info.service, info.version) == ("jangar", "1.2.3-test")
    # The raw token in x-jangar-token, and a lower-case bearer prefix, are accepted too.
    await stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=(("x-jangar-token", TOKEN),))
    await stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=(("authorization", f"bearer {TOKEN}"),))
    for metadata in ((), (("authorization", "Bearer wrong"),), (("x-jangar-token", TOKEN[:-1]),)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert err.value.details() == "invalid or missing agentctl token"
    # Streams are guarded as well, not only unary calls.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stub.StreamAgentRunStatus(pb.StreamAgentRunStatusRequest(name="x")):
            pass
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    status = json.loads(
        (await stub.GetControlPlaneStatus(pb.GetControlPlaneStatusRequest(), metadata=AUTH)).json
    )
    assert status["namespaces"][0]["namespace"] == jangar_grpc.namespace
    assert status["grpc"]["enabled"] is True
    # Calls are counted on the manager's /metrics by method and final code.
    url = f"http://127.0.0.1:{jangar_grpc.manager.http_port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        text = await resp.text()
    assert 'jangar_grpc_requests_total{code="OK",method="GetServerInfo"} 3.0' in text
    assert 'jangar_grpc_requests_total{code="UNAUTHENTICATED",method="GetServerInfo"} 3.0' in text
    assert 'jangar_grpc_requests_total{code="UNAUTHENTICATED",method="StreamAgentRunStatus"} 1.0' in text
    assert TOKEN not in text


async def test_submit_is_idempotent_and_queue_limited(jangar_grpc: Running) -> None:
    stub, ns = jangar_grpc.stub, jangar_grpc.namespace
    first = await stub.SubmitAgentRun(_submit_request(ns, "key-1"), metadata=AUTH)
    run = json.loads(first.resource_json)
    assert not first.idempotent
    assert run["spec"]["idempotencyKey"] == "key-1"
    assert run["spec"]["parameters"] == {"issue": "7"}
    again = await stub.SubmitAgentRun(_submit_request(ns, "key-1"), metadata=AUTH)
    assert again.idempotent
    assert json.loads(again.resource_json)["metadata"]["uid"] == run["metadata"]["uid"]
    # The object really exists in the API server.
    stored = await jangar_grpc.admin.get(AGENTRUNS, run["metadata"]["name"], ns)
    assert stored["metadata"]["uid"] == run["metadata"]["uid"]

    wf = await stub.SubmitAgentRun(
        pb.SubmitAgentRunRequest(
            namespace=ns,
            agent_name="codex-agent",
            implementation_name="impl",
            runtime_type="workflow",
            parameters=[pb.KeyValue(key="stage", value="plan")],
            workload=pb.Workload(image="img:1", cpu="500m", memory="1Gi"),
            vcs_ref="github",
            vcs_policy_mode="read-only",
        ),
        metadata=AUTH,
    )
    spec = json.loads(wf.resource_json)["spec"]
    assert spec["workflow"]["steps"] == [{"name": "plan", "parameters": {"stage": "plan"}}]
    assert spec["workload"] == {"image": "img:1", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
    assert spec["vcsRef"] == {"name": "github"}
    assert spec["vcsPolicy"] == {"required": False, "mode": "read-only"}

    await stub.SubmitAgentRun(_submit_request(ns), metadata=AUTH)
    await _wait_cached(jangar_grpc, 3)
    # No controller runs here: of the three runs admission would start one and queue two (concurrency 1,
    # queue 2), so a fourth is refused, with the controller's own QueueLimitExceeded message.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitAgentRun(_submit_request(ns), metadata=AUTH)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"namespace {ns} reached its queue limit (2 waiting)" in (err.value.details() or "")
    # A replay of an accepted submission is still answered while the queue is full.
    assert (await stub.SubmitAgentRun(_submit_request(ns, "key-1"), metadata=AUTH)).idempotent

    for request, code in (
        (_submit_request(ns, runtime_type="lambda"), grpc.StatusCode.INVALID_ARGUMENT),
        (_submit_request(ns, agent_name=""), grpc.StatusCode.INVALID_ARGUMENT),
        (_submit_request("elsewhere"), grpc.StatusCode.PERMISSION_DENIED),
        (_submit_request("*"), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SubmitAgentRun(request, metadata=AUTH)
        assert err.value.code() == code, err.value.details()


async def test_list_get_delete_and_apply_only_jangar_kinds(jangar_grpc: Running) -> None:
    stub, ns = jangar_grpc.stub, jangar_grpc.namespace
    submitted = json.loads((await stub.SubmitAgentRun(_submit_request(ns, "k"), metadata=AUTH)).resource_json)
    name = submitted["metadata"]["name"]

    listed = json.loads((await stub.ListAgentRuns(pb.ListAgentRunsRequest(namespace=ns), metadata=AUTH)).json)
    assert listed["kind"] == "AgentRunList"
    assert [i["metadata"]["name"] for i in listed["items"]] == [name]
    for phase, runtime, expected in (
        ("pending", "", 1),
        ("Running", "", 0),
        ("", "workflow", 0),
        ("", "job", 1),
    ):
        request = pb.ListAgentRunsRequest(namespace=ns, phase=phase, runtime=runtime)
        assert len(json.loads((await stub.ListAgentRuns(request, metadata=AUTH)).json)["items"]) == expected
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListAgentRuns(
            pb.ListAgentRunsRequest(namespace=ns, label_selector="a in (b"), metadata=AUTH
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    got = json.loads((await stub.GetAgentRun(pb.GetRequest(name=name, namespace=ns), metadata=AUTH)).json)
    assert got["metadata"]["uid"] == submitted["metadata"]["uid"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetAgentRun(pb.GetRequest(name="missing", namespace=ns), metadata=AUTH)
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.NOT_FOUND, "AgentRun not found")

    config_map = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: evil\n  namespace: {ns}\n"
    agent = (
        "apiVersion: agents.proompteng.ai/v1alpha1\nkind: Agent\n"
        "metadata:\n  name: codex-agent\n  resourceVersion: '1'\n"
        "spec:\n  providerRef:\n    name: codex\n"
    )
    for method, manifest in (
        (stub.ApplyResource, config_map),
        (stub.ApplyAgent, config_map),
        (stub.ApplyResource, agent + "---\n" + config_map),  # one bad document: nothing is applied
        (stub.ApplyAgentRun, agent),  # the per-kind method takes only its kind
        (stub.ApplyResource, agent.replace("v1alpha1", "v9")),
        (stub.ApplyResource, "kind: [unclosed"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await method(pb.ApplyRequest(namespace=ns, manifest_yaml=manifest), metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    with pytest.raises(NotFoundError):
        await jangar_grpc.admin.get(AGENTS, "codex-agent", ns)

    applied = json.loads(
        (await stub.ApplyAgent(pb.ApplyRequest(namespace=ns, manifest_yaml=agent), metadata=AUTH)).json
    )
    assert applied["kind"] == "Agent"
    assert applied["metadata"]["namespace"] == ns
    stored = await jangar_grpc.admin.get(AGENTS, "codex-agent", ns)
    assert stored["spec"]["providerRef"] == {"name": "codex"}
    managers = {m["manager"] for m in stored["metadata"].get("managedFields") or []}
    assert "agentctl" in managers
    # JSON is YAML: the generic method with a JSON manifest updates the same object.
    as_json = json.dumps(
        {
            "apiVersion": "agents.proompteng.ai/v1alpha1",
            "kind": "Agent",
            "metadata": {"name": "codex-agent"},
            "spec": {"providerRef": {"name": "codex-2"}},
        }
    )
    await stub.ApplyResource(pb.ApplyRequest(namespace=ns, manifest_yaml=as_json), metadata=AUTH)
    listed = json.loads(
        (await stub.ListResources(pb.ListRequest(kind="Agent", namespace=ns), metadata=AUTH)).json
    )
    assert [i["spec"]["providerRef"]["name"] for i in listed["items"]] == ["codex-2"]

    impl = json.loads(
        (
            await stub.CreateImplementationSpec(
                pb.CreateImplementationSpecRequest(
                    namespace=ns,
                    text="Fix the flaky test",
                    summary="flaky",
                    source=pb.ImplementationSourceRef(provider="github", external_id="o/r#1"),
                ),
                metadata=AUTH,
            )
        ).json
    )
    assert impl["metadata"]["name"].startswith("impl-")
    assert impl["spec"] == {
        "text": "Fix the flaky test",
        "summary": "flaky",
        "source": {"provider": "github", "externalId": "o/r#1"},
    }
    for bad in (
        pb.CreateImplementationSpecRequest(namespace=ns, text="  "),
        pb.CreateImplementationSpecRequest(
            namespace=ns, text="t", source=pb.ImplementationSourceRef(provider="x")
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CreateImplementationSpec(bad, metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()

    deleted = await stub.DeleteAgent(pb.DeleteRequest(name="codex-agent", namespace=ns), metadata=AUTH)
    assert (deleted.ok, deleted.message) == (True, "deleted")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.DeleteAgent(pb.DeleteRequest(name="codex-agent", namespace=ns), metadata=AUTH)
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.NOT_FOUND, "Agent not found")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetResource(pb.GetRequest(kind="Secret", name="x", namespace=ns), metadata=AUTH)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_and_status_stream(jangar_grpc: Running) -> None:
    stub, ns = jangar_grpc.stub, jangar_grpc.namespace
    run = json.loads((await stub.SubmitAgentRun(_submit_request(ns, "s"), metadata=AUTH)).resource_json)
    name = run["metadata"]["name"]

    stream = stub.StreamAgentRunStatus(pb.StreamAgentRunStatusRequest(name=name, namespace=ns), metadata=AUTH)
    events = aiter(stream)
    first = await asyncio.wait_for(anext(events), 10)
    assert json.loads(first.json)["metadata"]["name"] == name
    assert first.phase == ""

    await jangar_grpc.admin.patch_status(AGENTRUNS, name, {"status": {"phase": "Running"}}, namespace=ns)
    update = await asyncio.wait_for(anext(events), 10)
    assert update.phase == "Running"
    assert json.loads(update.json)["status"]["phase"] == "Running"

    cancelled = await stub.CancelAgentRun(pb.CancelAgentRunRequest(name=name, namespace=ns), metadata=AUTH)
    assert (cancelled.ok, cancelled.message) == (True, "cancel requested")
    stored = await jangar_grpc.admin.get(AGENTRUNS, name, ns)
    assert stored["metadata"]["annotations"][CANCEL] == "true"
    # The annotation write is itself a change the stream reports.
    annotated = await asyncio.wait_for(anext(events), 10)
    assert json.loads(annotated.json)["metadata"]["annotations"][CANCEL] == "true"

    # What the controller does on cancel: the terminal phase ends the stream.
    await jangar_grpc.admin.patch_status(AGENTRUNS, name, {"status": {"phase": "Cancelled"}}, namespace=ns)
    last = await asyncio.wait_for(anext(events), 10)
    assert last.phase == "Cancelled"
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(events), 10)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CancelAgentRun(pb.CancelAgentRunRequest(name="missing", namespace=ns), metadata=AUTH)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # A finished run's stream is one event long.
    finished = [e.phase async for e in stub.StreamAgentRunStatus(
        pb.StreamAgentRunStatusRequest(name=name, namespace=ns), metadata=AUTH
    )]  # fmt: skip
    assert finished == ["Cancelled"]


async def test_client_watch_ends_on_delete(jangar_grpc: Running) -> None:
    ns = jangar_grpc.namespace
    async with AgentctlClient(jangar_grpc.address, TOKEN) as client:
        run, _ = await client.submit(namespace=ns, agent="codex-agent", implementation="impl", runtime="job")
        name = run["metadata"]["name"]
        seen: list[str] = []

        async def follow() -> None:
            async for phase, _obj in client.watch_run(name, ns):
                seen.append(phase)

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.5)
        await jangar_grpc.admin.delete(AGENTRUNS, name, ns)
        await asyncio.wait_for(task, 10)
        assert seen == [""]


def _agentctl(address: str, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTCTL_", "JANGAR_GRPC_"))}
    if token:
        env["AGENTCTL_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "jangar.agentctl", "--server", address, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


async def test_agentctl_over_grpc(jangar_grpc: Running) -> None:
    address, ns = jangar_grpc.address, jangar_grpc.namespace

    def run(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
        return _agentctl(address, "-n", ns, *args, token=token)

    submit = ("run", "submit", "--agent", "codex-agent", "--impl", "impl", "--idempotency-key", "cli-1")
    created = await asyncio.to_thread(run, *submit)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().endswith(" created")
    name = created.stdout.split()[0].split("/")[1]
    again = await asyncio.to_thread(run, *submit)
    assert again.returncode == 0, again.stderr
    assert f"/{name} unchanged" in again.stdout

    got = await asyncio.to_thread(run, "run", "get", name)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["spec"]["idempotencyKey"] == "cli-1"
    listed = await asyncio.to_thread(run, "run", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"{name}\tPending\t"]

    cancelled = await asyncio.to_thread(run, "run", "cancel", name)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancel requested" in cancelled.stdout
    stored = await jangar_grpc.admin.get(AGENTRUNS, name, ns)
    assert stored["metadata"]["annotations"][CANCEL] == "true"

    missing = await asyncio.to_thread(run, "run", "get", "nope")
    assert missing.returncode == 1
    assert "not_found: AgentRun not found" in missing.stderr
    denied = await asyncio.to_thread(run, "run", "list", token="wrong")
    assert denied.returncode == 1
    assert "unauthenticated" in denied.stderr
    assert "wrong" not in denied.stderr

    # wait follows the status stream to the terminal phase; Succeeded exits 0.
    await jangar_grpc.admin.patch_status(AGENTRUNS, name, {"status": {"phase": "Succeeded"}}, namespace=ns)
    waited = await asyncio.to_thread(run, "run", "wait", name, "--timeout", "20")
    assert waited.returncode == 0, waited.stderr
    assert f"{name}\tSucceeded" in waited.stdout


async def test_logs_need_a_pod(jangar_grpc: Running) -> None:
    stub, ns = jangar_grpc.stub, jangar_grpc.namespace
    run = json.loads((await stub.SubmitAgentRun(_submit_request(ns, "logs"), metadata=AUTH)).resource_json)
    name = run["metadata"]["name"]
    request = pb.StreamAgentRunLogsRequest(name=name, namespace=ns)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stub.StreamAgentRunLogs(request, metadata=AUTH):
            pass
    assert (err.value.code(), err.value.details()) == (
        grpc.StatusCode.NOT_FOUND,
        f"no pods for AgentRun {name}",
    )
    # A labelled pod is found by the run label; with no node yet (envtest has no kubelet) the API server
    # answers an empty log, so the stream ends without lines instead of failing.
    pod = {
        "metadata": {"name": f"{name}-pod", "labels": {"agents.proompteng.ai/agent-run": name}},
        "spec": {"containers": [{"name": "runner", "image": "busybox"}]},
    }
    await jangar_grpc.admin.create(PODS, pod, namespace=ns)
    assert [e async for e in stub.StreamAgentRunLogs(request, metadata=AUTH)] == []
    # An explicit pod that does not exist is NOT_FOUND, with the API server's reason.
    missing = pb.StreamAgentRunLogsRequest(name=name, namespace=ns, pod="nope")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stub.StreamAgentRunLogs(missing, metadata=AUTH):
            pass
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value.details()
    assert "pod nope" in (err.value.details() or "")


async def test_cancel_ends_the_run_as_cancelled_with_the_controller(
    envtest_crds: LocalCluster, namespace: str
) -> None:
    """Weak point 12 end to end: the reference's CancelAgentRun left the run Running; here the controller
    (started by build_manager, as in `jangar serve`) ends it as Cancelled and the status stream says so."""
    async with _serve(envtest_crds, namespace, {}, controllers=True) as running:
        stub, ns = running.stub, namespace
        await apply_basics(running.admin, ns)
        request = pb.SubmitAgentRunRequest(
            namespace=ns,
            agent_name="coder",
            implementation_name="task",
            runtime_type="job",
            idempotency_key="c",
        )
        name = json.loads((await stub.SubmitAgentRun(request, metadata=AUTH)).resource_json)["metadata"][
            "name"
        ]
        events = aiter(
            stub.StreamAgentRunStatus(pb.StreamAgentRunStatusRequest(name=name, namespace=ns), metadata=AUTH)
        )
        phase = ""
        async with asyncio.timeout(30):
            while phase != "Running":
                phase = (await anext(events)).phase
        job = (await running.admin.get(AGENTRUNS, name, ns))["status"]["jobRef"]["name"]
        await running.admin.get(JOBS, job, ns)

        await stub.CancelAgentRun(pb.CancelAgentRunRequest(name=name, namespace=ns), metadata=AUTH)
        async with asyncio.timeout(30):
            async for event in events:
                phase = event.phase
        assert phase == "Cancelled"  # the stream ended on the terminal phase
        assert (await running.admin.get(AGENTRUNS, name, ns))["status"]["finishedAt"]

        async def job_gone() -> bool:
            try:
                found = await running.admin.get(JOBS, job, ns)
            except NotFoundError:
                return True
            return bool(found["metadata"].get("deletionTimestamp"))

        async with asyncio.timeout(30):
            while not await job_gone():
                await asyncio.sleep(0.2)


# The orchestration kinds' per-kind methods (the reference's List/Get/Apply/Delete for each), end to end.
_ORCHESTRATION_KINDS = (
    ("Tool", "Tools", "tools.proompteng.ai", {"image": "busybox:1.36", "command": ["true"]}),
    ("ToolRun", "ToolRuns", "tools.proompteng.ai", {"toolRef": {"name": "t"}}),
    (
        "Orchestration",
        "Orchestrations",
        "orchestration.proompteng.ai",
        {"steps": [{"name": "a", "kind": "Checkpoint"}]},
    ),
    (
        "OrchestrationRun",
        "OrchestrationRuns",
        "orchestration.proompteng.ai",
        {"orchestrationRef": {"name": "o"}},
    ),
    ("ApprovalPolicy", "ApprovalPolicies", "approvals.proompteng.ai", {"mode": "manual"}),
    ("Budget", "Budgets", "budgets.proompteng.ai", {"limits": {"cpu": "10"}}),
    ("Signal", "Signals", "signals.proompteng.ai", {"channel": "deploys"}),
    ("SignalDelivery", "SignalDeliveries", "signals.proompteng.ai", {"signalRef": {"name": "s"}}),
)


async def test_the_orchestration_kinds_list_get_apply_and_delete(jangar_grpc: Running) -> None:
    stub, ns = jangar_grpc.stub, jangar_grpc.namespace
    for kind, plural, group, spec in _ORCHESTRATION_KINDS:
        name = f"{kind.lower()}-1"
        manifest = json.dumps(
            {"apiVersion": f"{group}/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
        )
        applied = json.loads(
            (
                await getattr(stub, f"Apply{kind}")(
                    pb.ApplyRequest(namespace=ns, manifest_yaml=manifest), metadata=AUTH
                )
            ).json
        )
        assert (applied["kind"], applied["metadata"]["namespace"]) == (kind, ns)
        listed = json.loads(
            (await getattr(stub, f"List{plural}")(pb.ListRequest(namespace=ns), metadata=AUTH)).json
        )
        assert [i["metadata"]["name"] for i in listed["items"]] == [name], kind
        got = json.loads(
            (await getattr(stub, f"Get{kind}")(pb.GetRequest(name=name, namespace=ns), metadata=AUTH)).json
        )
        assert got["spec"] == applied["spec"], kind
        deleted = await getattr(stub, f"Delete{kind}")(
            pb.DeleteRequest(name=name, namespace=ns), metadata=AUTH
        )
        assert (deleted.ok, deleted.message) == (True, "deleted"), kind
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await getattr(stub, f"Get{kind}")(pb.GetRequest(name=name, namespace=ns), metadata=AUTH)
        assert (err.value.code(), err.value.details()) == (grpc.StatusCode.NOT_FOUND, f"{kind} not found")


async def test_orchestration_runs_are_submitted_decided_and_cancelled_over_grpc(
    envtest_crds: LocalCluster, namespace: str
) -> None:
    """SubmitOrchestrationRun (idempotent by delivery id), ApproveStep/RejectStep (first decision wins) and
    CancelOrchestrationRun, with the controllers running the gates."""
    from jangar.api.refs import APPROVALPOLICIES, ORCHESTRATIONRUNS, ORCHESTRATIONS

    async with _serve(envtest_crds, namespace, {}, controllers=True) as running:
        stub, ns, admin = running.stub, running.namespace, running.admin
        await admin.create(
            APPROVALPOLICIES, {"metadata": {"name": "leads", "namespace": ns}, "spec": {"mode": "manual"}}
        )
        steps = [
            {"name": "gate", "kind": "ApprovalGate", "policyRef": "leads"},
            {"name": "done", "kind": "Checkpoint", "dependsOn": ["gate"]},
        ]
        await admin.create(
            ORCHESTRATIONS, {"metadata": {"name": "ship", "namespace": ns}, "spec": {"steps": steps}}
        )

        def submit(delivery: str) -> pb.SubmitOrchestrationRunRequest:
            return pb.SubmitOrchestrationRunRequest(
                namespace=ns,
                orchestration_name="ship",
                delivery_id=delivery,
                parameters=[pb.KeyValue(key="k", value="v")],
            )

        first = await stub.SubmitOrchestrationRun(submit("d-1"), metadata=AUTH)
        again = await stub.SubmitOrchestrationRun(submit("d-1"), metadata=AUTH)
        assert (first.idempotent, again.idempotent) == (False, True)
        name = json.loads(first.resource_json)["metadata"]["name"]
        assert json.loads(again.resource_json)["metadata"]["name"] == name
        rejected_run = json.loads(
            (await stub.SubmitOrchestrationRun(submit("d-2"), metadata=AUTH)).resource_json
        )
        cancelled_run = json.loads(
            (await stub.SubmitOrchestrationRun(submit("d-3"), metadata=AUTH)).resource_json
        )

        async def waiting(run: str) -> bool:
            obj = await admin.get(ORCHESTRATIONRUNS, run, ns)
            gate = next(
                (s for s in (obj.get("status") or {}).get("stepStatuses") or () if s["name"] == "gate"), {}
            )
            return gate.get("reason") == "AwaitingApproval"

        async def phase(run: str) -> str:
            return str(((await admin.get(ORCHESTRATIONRUNS, run, ns)).get("status") or {}).get("phase") or "")

        for run in (name, rejected_run["metadata"]["name"]):
            await eventually(lambda run=run: waiting(run), timeout=60, what=f"{run} waiting at its gate")
        decision = pb.ApprovalDecisionRequest(
            namespace=ns, run_name=name, step="gate", decided_by="lead@example.com"
        )
        delivery = json.loads((await stub.ApproveStep(decision, metadata=AUTH)).json)
        assert delivery["spec"]["payload"]["decision"] == "approved"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.RejectStep(decision, metadata=AUTH)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
        await eventually(lambda: _is(phase(name), "Succeeded"), timeout=60, what="the approved run Succeeded")

        reject = pb.ApprovalDecisionRequest(
            namespace=ns, run_name=rejected_run["metadata"]["name"], step="gate", reason="not now"
        )
        await stub.RejectStep(reject, metadata=AUTH)
        await eventually(
            lambda: _is(phase(rejected_run["metadata"]["name"]), "Failed"),
            timeout=60,
            what="the rejected run Failed",
        )

        cancel = pb.CancelOrchestrationRunRequest(namespace=ns, name=cancelled_run["metadata"]["name"])
        assert (await stub.CancelOrchestrationRun(cancel, metadata=AUTH)).message == "cancel requested"
        await eventually(
            lambda: _is(phase(cancelled_run["metadata"]["name"]), "Cancelled"),
            timeout=60,
            what="the run Cancelled",
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SubmitOrchestrationRun(
                pb.SubmitOrchestrationRunRequest(namespace=ns, orchestration_name="missing"), metadata=AUTH
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value.details()


async def _is(value: object, expected: str) -> bool:
    return await value == expected  # type: ignore[misc]

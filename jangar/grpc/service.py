"""The `AgentctlService` methods, over the runtime client (writes, reads that must see them) and cache.

Every jangar kind gets `List<Kinds>`, `Get<Kind>`, `Apply<Kind>` and `Delete<Kind>`, as in the reference;
they are registered from `jangar.api.registry` through one generic handler table instead of 76 hand-written
servicer methods, and `ListResources`/`GetResource`/`ApplyResource`/`DeleteResource` take the kind as a
field. Reads go to the API server, not the cache: agentctl submits and then immediately reads, and a
lagging cache would answer "not found".

The AgentRun methods (`SubmitAgentRun`, `CancelAgentRun`, `ListAgentRuns`, `GetAgentRun`) only translate
protocol: the rules are `jangar.services.RunsService`'s, shared with the HTTP API (namespace scope, manifest,
early queue refusal by the controller's own admission decision, idempotency, cancel), and every method's
namespace goes through the same `NamespaceScope`. Service errors map to INVALID_ARGUMENT,
PERMISSION_DENIED, NOT_FOUND, ALREADY_EXISTS and RESOURCE_EXHAUSTED.

Deliberate differences from the reference (docs/grpc.md):

* `CancelAgentRun` sets the `agents.proompteng.ai/cancel` annotation; the AgentRun controller deletes the
  Job and ends the run as Cancelled (the reference deleted the Job and left the run Running, weak point 12).
* `Apply*` accepts only jangar's kinds (weak point 16) and uses server-side apply (field manager agentctl).
* Every call needs a bearer token (TokenReview, or the shared token as `jangar:grpc-shared-token`) and every
  method a SubjectAccessReview for what the caller asks jangar to do (issue 12): an `Apply*` needs `patch`
  (and `create` for a new object) on each document and `get` on every Secret it names, before anything is written.
* A full submission queue is RESOURCE_EXHAUSTED (the reference said FAILED_PRECONDITION for every
  submission failure): it is the code clients treat as "retry later", which is what a full queue means.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf.message import Message
from prometheus_client import CollectorRegistry, Counter, Histogram

from jangar.access import (
    Access,
    AccessError,
    AccessUnavailable,
    Attributes,
    KubeAccess,
    PermissionDenied,
    SharedTokenAccess,
    Unauthenticated,
    UserInfo,
    listing,
    on,
    referenced_secrets,
    secret_reads,
    service_account_rights,
)
from jangar.api import registry
from jangar.api.contract import Phase, is_terminal
from jangar.api.refs import (
    AGENTPROVIDERS,
    AGENTRUNS,
    IMPLEMENTATIONSPECS,
    ORCHESTRATIONRUNS,
    SIGNALDELIVERIES,
)
from jangar.grpc import auth
from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb
from jangar.grpc.manifests import ManifestError, parse_manifest, resolve_kind, to_json
from jangar.runtime import (
    AlreadyExistsError,
    ApiError,
    CacheReader,
    Client,
    ConflictError,
    GoneError,
    InvalidError,
    NotFoundError,
    ResourceRef,
    strip_managed_fields,
)
from jangar.runtime.cache import InformerNotRegistered
from jangar.runtime.errors import WatchStalledError
from jangar.runtime.resources import EVENTS, PODS
from jangar.services import (
    AlreadyExists,
    Caller,
    Conflict,
    Forbidden,
    InvalidRequest,
    NamespaceNotManaged,
    NotFound,
    OrchestrationService,
    QueueFull,
    RunsService,
    ServiceError,
    Submission,
)
from jangar.services.logs import LogUnavailable, PodNotFound, choose_pod, stream_run_logs
from jangar.services.orchestration import OrchestrationSubmission
from jangar.services.related import child_refs, list_related, step_pods
from jangar.settings import Settings

log = structlog.get_logger("jangar.grpc")

SERVICE_NAME = "proompteng.jangar.v1.AgentctlService"
SERVICE_NAME_AGENTS = "proompteng.agents.v1.AgentctlService"
"""issue 13 item 1: the 0.9.29 package's name of the same service (its proto differs only in the package, so
the messages are the same bytes on the wire): the same handlers are registered under both names."""
SERVICE_NAMES = (SERVICE_NAME, SERVICE_NAME_AGENTS)
FIELD_MANAGER = "agentctl"
WATCH_TIMEOUT_SECONDS = 240
"""Each status watch is re-opened this often, so a dead connection cannot hold a stream for ever."""

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


class RpcFailure(Exception):
    """End the call with this status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def list_method(kind: str) -> str:
    """`ListAgents`, `ListMemories`, `ListApprovalPolicies`: the reference's per-kind list names."""
    if kind.endswith("y") and kind[-2:-1] not in ("a", "e", "i", "o", "u"):
        return f"List{kind[:-1]}ies"
    return f"List{kind}s"


def phase_of(obj: Mapping[str, Any]) -> str:
    """The phase shown to clients: status.phase, else state or result, else the Ready condition status."""
    status = obj.get("status") or {}
    for key in ("phase", "state", "result"):
        value = status.get(key)
        if isinstance(value, str) and value:
            return value
    for cond in status.get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return str(cond.get("status") or "")
    return ""


def _status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Map an exception from a method body to the status the caller sees."""
    if isinstance(exc, RpcFailure):
        return exc.code, exc.message
    if isinstance(exc, PermissionDenied):
        return grpc.StatusCode.PERMISSION_DENIED, exc.message
    if isinstance(exc, AccessUnavailable):
        return grpc.StatusCode.UNAVAILABLE, exc.message
    if isinstance(exc, AccessError):
        return grpc.StatusCode.UNAUTHENTICATED, exc.message
    if isinstance(exc, ServiceError):
        return _service_status(exc), _service_message(exc)
    if isinstance(exc, ManifestError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, InvalidError):
        return grpc.StatusCode.INVALID_ARGUMENT, exc.message or str(exc)
    if isinstance(exc, NotFoundError):
        return grpc.StatusCode.NOT_FOUND, exc.message or str(exc)
    if isinstance(exc, AlreadyExistsError):
        return grpc.StatusCode.ALREADY_EXISTS, exc.message or str(exc)
    if isinstance(exc, ConflictError):
        return grpc.StatusCode.ABORTED, exc.message or str(exc)
    if isinstance(exc, ApiError):
        if exc.status == 400:  # e.g. a malformed label selector
            return grpc.StatusCode.INVALID_ARGUMENT, exc.message or str(exc)
        if exc.status == 403:
            return grpc.StatusCode.PERMISSION_DENIED, exc.message or str(exc)
        if exc.status == 429:
            return grpc.StatusCode.RESOURCE_EXHAUSTED, exc.message or str(exc)
        if exc.status == 0:
            return grpc.StatusCode.UNAVAILABLE, str(exc)
    return grpc.StatusCode.INTERNAL, str(exc) or type(exc).__name__


_SERVICE_CODES: tuple[tuple[type[ServiceError], grpc.StatusCode], ...] = (
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (NamespaceNotManaged, grpc.StatusCode.PERMISSION_DENIED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (QueueFull, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (Forbidden, grpc.StatusCode.PERMISSION_DENIED),
    (PodNotFound, grpc.StatusCode.NOT_FOUND),
    (LogUnavailable, grpc.StatusCode.FAILED_PRECONDITION),
)


def _service_status(exc: ServiceError) -> grpc.StatusCode:
    return next((code for t, code in _SERVICE_CODES if isinstance(exc, t)), grpc.StatusCode.INVALID_ARGUMENT)


def _service_message(exc: ServiceError) -> str:
    # "<Kind> not found", as every other Get/Delete of this API answers (the reference's wording).
    return f"{exc.kind} not found" if isinstance(exc, NotFound) else exc.message


class AgentctlService:
    """The method implementations; `handler()` turns them into a gRPC generic handler."""

    def __init__(
        self,
        settings: Settings,
        client: Client,
        cache: CacheReader,
        registry: CollectorRegistry | None = None,
        runs: RunsService | None = None,
        access: Access | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.cache = cache
        self.runs = runs or RunsService(client, cache, settings)
        self.orchestrations = OrchestrationService.from_settings(client, cache, settings)
        self.access: Access = SharedTokenAccess(
            access or KubeAccess.from_settings(client, settings), settings.grpc.token
        )
        self.calls = Counter(
            "jangar_grpc_requests_total",
            "agentctl gRPC calls by method and final status code (streams are counted when they end).",
            ["method", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "jangar_grpc_request_duration_seconds",
            "Duration of unary agentctl gRPC calls.",
            ["method"],
            registry=registry,
        )

    # -- scope -----------------------------------------------------------------------------------

    def _namespace(self, requested: str) -> str:
        """The request's namespace by the runs service's one rule (`NamespaceScope`): the first managed
        namespace by default, `*` and unmanaged namespaces refused — so the token grants no more than the
        controller manages."""
        return self.runs.namespace(requested)

    # -- generic per-kind methods ----------------------------------------------------------------

    async def _list(
        self,
        user: UserInfo,
        ref: ResourceRef,
        namespace: str,
        label_selector: str,
        *,
        all_namespaces: bool = False,
    ) -> pb.ListResponse:
        """One namespace's objects, or with `all_namespaces` (`agentctl get -A`) those of every namespace
        the server manages (one cluster-wide list when it manages all, which needs a cluster-wide `list`)."""
        selector = label_selector.strip() or None
        scopes: tuple[str | None, ...]
        if all_namespaces:
            managed = self.runs.scope.managed()
            scopes = (None,) if managed is None else managed
        else:
            scopes = (self._namespace(namespace),)
        await self.access.require(user, *(on(ref, "list", ns or "") for ns in scopes))
        items: list[dict[str, Any]] = []
        version = ""
        for ns in scopes:
            result = await self.client.list(ref, ns, label_selector=selector)
            items += [strip_managed_fields(o) for o in result.items]
            version = result.resource_version
        items.sort(key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))
        body = {
            "apiVersion": ref.api_version,
            "kind": f"{ref.kind}List",
            # one namespace: the list's resourceVersion; several: the last list's (a hint, not a snapshot)
            "metadata": {"resourceVersion": version},
            "items": items,
        }
        return pb.ListResponse(json=to_json(body))

    async def _describe(
        self, user: UserInfo, ref: ResourceRef, name: str, namespace: str
    ) -> pb.DescribeResponse:
        """`agentctl describe` over gRPC: the object and `jangar.services.related` of it, listed with the
        server's client once the caller may `get` it and `list` Events and each child kind in its namespace
        (as `kubectl describe` would need)."""
        obj = await self._get_object(user, ref, name, namespace)
        ns = str(obj["metadata"].get("namespace") or "")
        await self.access.require(
            user, on(EVENTS, "list", ns), *(on(child, "list", ns) for child in child_refs(ref.kind))
        )
        obj.setdefault("apiVersion", ref.api_version)
        obj.setdefault("kind", ref.kind)
        related = await list_related(self.client, obj)
        return pb.DescribeResponse(json=to_json(obj), related_json=to_json(related.to_json()))

    async def _get_object(
        self, user: UserInfo, ref: ResourceRef, name: str, namespace: str
    ) -> dict[str, Any]:
        if not name:
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "name is required")
        ns = self._namespace(namespace)
        await self.access.require(user, on(ref, "get", ns, name))
        try:
            return strip_managed_fields(await self.client.get(ref, name, ns))
        except NotFoundError:
            raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"{ref.kind} not found") from None

    async def _get(self, user: UserInfo, ref: ResourceRef, name: str, namespace: str) -> pb.GetResponse:
        return pb.GetResponse(json=to_json(await self._get_object(user, ref, name, namespace)))

    async def _write_rights(
        self, ref: ResourceRef, obj: Mapping[str, Any], namespace: str, name: str
    ) -> list[Attributes]:
        """What applying `obj` needs from the caller, as for `kubectl apply --server-side`: `patch`, and
        `create` too when the object does not exist yet (asked second, so a caller without rights learns
        nothing about which names exist); then `get` on every Secret it names (binding or using a Secret
        must not exceed reading it)."""
        needed = [on(ref, "patch", namespace, name)]
        try:
            await self.client.get(ref, name, namespace)
        except NotFoundError:
            needed.append(on(ref, "create", namespace, name))
        runtime = ((obj.get("spec") or {}).get("runtime") or {}) if ref == AGENTRUNS else {}
        config = runtime.get("config") if isinstance(runtime, Mapping) else None
        if ref == AGENTPROVIDERS:  # a provider's workload ServiceAccount is lent to every run using it
            config = (obj.get("spec") or {}).get("workload")
        return [
            *needed,
            *secret_reads(namespace, referenced_secrets(obj)),
            *service_account_rights(namespace, config),
        ]

    async def _apply(
        self, user: UserInfo, manifest: str, namespace: str, only_kind: str | None
    ) -> pb.ApplyResponse:
        default_ns = self._namespace(namespace)
        docs = parse_manifest(manifest, default_ns, only_kind)
        for doc in docs:  # check every namespace and every permission before writing anything
            self._namespace(doc.namespace)
        for doc in docs:
            await self.access.require(
                user, *await self._write_rights(doc.ref, doc.obj, doc.namespace, doc.name)
            )
        applied = []
        for doc in docs:
            obj = await self.client.apply(doc.ref, doc.obj, field_manager=FIELD_MANAGER, force=True)
            log.info("grpc.applied", kind=doc.ref.kind, namespace=doc.namespace, name=doc.name)
            applied.append(strip_managed_fields(obj))
        body: Any = (
            applied[0] if len(applied) == 1 else {"apiVersion": "v1", "kind": "List", "items": applied}
        )
        return pb.ApplyResponse(json=to_json(body))

    async def _delete(self, user: UserInfo, ref: ResourceRef, name: str, namespace: str) -> pb.DeleteResponse:
        if not name:
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "name is required")
        ns = self._namespace(namespace)
        await self.access.require(user, on(ref, "delete", ns, name))
        try:
            result = await self.client.delete(ref, name, ns)
        except NotFoundError:
            raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"{ref.kind} not found") from None
        log.info("grpc.deleted", kind=ref.kind, namespace=ns, name=name)
        return pb.DeleteResponse(ok=True, message="deleted", json=to_json(strip_managed_fields(result or {})))

    def _kind(self, kind: str) -> ResourceRef:
        if not kind:
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "kind is required")
        return resolve_kind(kind)

    # -- server info and status ------------------------------------------------------------------

    async def get_server_info(self, _: pb.GetServerInfoRequest, user: UserInfo) -> pb.GetServerInfoResponse:
        """Any authenticated caller (like the API server's /version): names and versions only."""
        s = self.settings
        return pb.GetServerInfoResponse(
            version=s.version, build_sha=s.build_sha, build_time=s.build_time, service="jangar"
        )

    async def get_control_plane_status(
        self, request: pb.GetControlPlaneStatusRequest, user: UserInfo
    ) -> pb.GetControlPlaneStatusResponse:
        """What this replica can see: settings, cache sync and the namespace's runs by phase.

        Which replica holds the controller lease is not visible here; /health and /ready on each replica
        and the Lease object say that.
        """
        ns = self._namespace(request.namespace)
        await self.access.require(user, on(AGENTRUNS, "list", ns))
        s = self.settings
        phases: dict[str, int] = {}
        degraded: list[str] = []
        try:
            for run in self.cache.list(AGENTRUNS, ns, copy=False):
                phase = phase_of(run) or Phase.PENDING
                phases[phase] = phases.get(phase, 0) + 1
        except InformerNotRegistered:
            degraded.append("cache")
        controller = "healthy" if s.agents_controller.enabled else "disabled"
        if controller != "healthy":
            degraded.append("agents-controller")
        body = {
            "service": "jangar",
            "version": s.version,
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "controllers": [
                {"name": "agents-controller", "enabled": s.agents_controller.enabled, "status": controller}
            ],
            "database": {
                "configured": bool(s.database.url),
                "status": "configured" if s.database.url else "disabled",
            },
            "grpc": {"enabled": True, "status": "healthy", "address": s.grpc.bind_address},
            "namespaces": [{"namespace": ns, "degraded_components": degraded, "agent_runs": phases}],
        }
        return pb.GetControlPlaneStatusResponse(json=to_json(body))

    # -- ImplementationSpec -----------------------------------------------------------------------

    async def create_implementation_spec(
        self, request: pb.CreateImplementationSpecRequest, user: UserInfo
    ) -> pb.CreateImplementationSpecResponse:
        """A new ImplementationSpec named `impl-<random>`: for callers that have a task text, not a name."""
        ns = self._namespace(request.namespace)
        await self.access.require(user, on(IMPLEMENTATIONSPECS, "create", ns))
        if not request.text.strip():
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "text is required")
        spec: dict[str, Any] = {"text": request.text}
        if request.summary:
            spec["summary"] = request.summary
        if request.HasField("source") and request.source.provider:
            source = {"provider": request.source.provider}
            if request.source.external_id:
                source["externalId"] = request.source.external_id
            if request.source.url:
                source["url"] = request.source.url
            spec["source"] = source
        ref = resolve_kind("ImplementationSpec")
        manifest = {"metadata": {"generateName": "impl-", "namespace": ns}, "spec": spec}
        created = await self.client.create(ref, manifest, namespace=ns, field_manager=FIELD_MANAGER)
        log.info("grpc.implementation_created", namespace=ns, name=created["metadata"]["name"])
        return pb.CreateImplementationSpecResponse(json=to_json(strip_managed_fields(created)))

    # -- AgentRun ---------------------------------------------------------------------------------

    async def submit_agent_run(
        self, request: pb.SubmitAgentRunRequest, user: UserInfo
    ) -> pb.SubmitAgentRunResponse:
        for field, value in (
            ("agent_name", request.agent_name),
            ("implementation_name", request.implementation_name),
            ("runtime_type", request.runtime_type),
        ):
            if not value:
                raise InvalidRequest(f"{field} is required")
        ns = self._namespace(request.namespace)
        runtime_config = {kv.key: kv.value for kv in request.runtime_config}
        await self.access.require(
            user,
            on(AGENTRUNS, "create", ns),
            *secret_reads(ns, request.secrets),
            *service_account_rights(ns, runtime_config),
        )
        workload = request.workload
        result = await self.runs.submit(
            Submission(
                agent=request.agent_name,
                namespace=request.namespace,
                implementation_spec=request.implementation_name,
                runtime=request.runtime_type,
                runtime_config=runtime_config,
                parameters={kv.key: kv.value for kv in request.parameters},
                workload_image=workload.image or None,
                resource_requests={
                    k: v for k, v in (("cpu", workload.cpu), ("memory", workload.memory)) if v
                },
                name=request.name or None,
                idempotency_key=request.idempotency_key or None,
                secrets=list(request.secrets),
                memory_ref=request.memory_ref or None,
                vcs_ref=request.vcs_ref or None,
                vcs_policy_mode=request.vcs_policy_mode or None,
                vcs_policy_required=request.vcs_policy_required,
            ),
            actor=user.username,
        )
        return pb.SubmitAgentRunResponse(
            resource_json=to_json(result.run), record_json="{}", idempotent=result.replayed
        )

    async def cancel_agent_run(
        self, request: pb.CancelAgentRunRequest, user: UserInfo
    ) -> pb.CancelAgentRunResponse:
        """Ask the controller to cancel: it deletes the Job (or workflow step Jobs) and sets Cancelled."""
        if not request.name:
            raise InvalidRequest("name is required")
        await self.access.require(
            user, on(AGENTRUNS, "patch", self._namespace(request.namespace), request.name)
        )
        run = await self.runs.cancel(request.namespace, request.name)
        phase = phase_of(run)
        message = f"already {phase}" if is_terminal(phase) else "cancel requested"
        return pb.CancelAgentRunResponse(ok=True, message=message, json=to_json(run))

    # -- OrchestrationRun (jangar) ------------------------------------------------------------------

    async def submit_orchestration_run(
        self, request: pb.SubmitOrchestrationRunRequest, user: UserInfo
    ) -> pb.SubmitOrchestrationRunResponse:
        if not request.orchestration_name:
            raise InvalidRequest("orchestration_name is required")
        await self.access.require(user, on(ORCHESTRATIONRUNS, "create", self._namespace(request.namespace)))
        result = await self.orchestrations.submit(
            OrchestrationSubmission(
                request.orchestration_name,
                namespace=request.namespace,
                parameters={kv.key: kv.value for kv in request.parameters},
                delivery_id=request.delivery_id or None,
                name=request.name or None,
            )
        )
        return pb.SubmitOrchestrationRunResponse(
            resource_json=to_json(result.run), idempotent=result.replayed
        )

    async def cancel_orchestration_run(
        self, request: pb.CancelOrchestrationRunRequest, user: UserInfo
    ) -> pb.CancelOrchestrationRunResponse:
        if not request.name:
            raise InvalidRequest("name is required")
        ns = self._namespace(request.namespace)
        await self.access.require(user, on(ORCHESTRATIONRUNS, "patch", ns, request.name))
        run = await self.orchestrations.cancel(request.namespace, request.name)
        phase = phase_of(run)
        message = f"already {phase}" if is_terminal(phase) else "cancel requested"
        return pb.CancelOrchestrationRunResponse(ok=True, message=message, json=to_json(run))

    async def _decide(
        self, request: pb.ApprovalDecisionRequest, user: UserInfo, decision: str
    ) -> pb.ApprovalDecisionResponse:
        """A decision is a SignalDelivery (`create signaldeliveries`), decided by the authenticated caller
        (the request's `decided_by` is ignored) whom the ApprovalPolicy's `subjects` must name."""
        await self.access.require(user, on(SIGNALDELIVERIES, "create", self._namespace(request.namespace)))
        delivery = await self.orchestrations.decide(
            request.namespace,
            request.run_name,
            request.step,
            decision,
            caller=Caller(user=user.username, groups=user.groups),
            reason=request.reason or None,
        )
        return pb.ApprovalDecisionResponse(json=to_json(delivery))

    async def approve_step(
        self, request: pb.ApprovalDecisionRequest, user: UserInfo
    ) -> pb.ApprovalDecisionResponse:
        return await self._decide(request, user, "approved")

    async def reject_step(
        self, request: pb.ApprovalDecisionRequest, user: UserInfo
    ) -> pb.ApprovalDecisionResponse:
        return await self._decide(request, user, "rejected")

    async def list_agent_runs(self, request: pb.ListAgentRunsRequest, user: UserInfo) -> pb.ListResponse:
        await self.access.require(user, *listing(AGENTRUNS, self.runs.scope, request.namespace))
        listed = await self.runs.list(
            request.namespace,
            label_selector=request.label_selector,
            phase=request.phase,
            runtime=request.runtime,
        )
        body = {
            "apiVersion": AGENTRUNS.api_version,
            "kind": f"{AGENTRUNS.kind}List",
            "metadata": {"resourceVersion": listed.resource_version},
            "items": listed.items,
        }
        return pb.ListResponse(json=to_json(body))

    async def get_agent_run(self, request: pb.GetRequest, user: UserInfo) -> pb.GetResponse:
        if not request.name:
            raise InvalidRequest("name is required")
        await self.access.require(
            user, on(AGENTRUNS, "get", self._namespace(request.namespace), request.name)
        )
        return pb.GetResponse(json=to_json(await self.runs.get(request.namespace, request.name)))

    async def stream_agent_run_status(
        self, request: pb.StreamAgentRunStatusRequest, user: UserInfo
    ) -> AsyncIterator[pb.AgentRunStatusEvent]:
        """The current object, then every change, until a terminal phase or deletion.

        Watches by name from the read's resourceVersion, so no update between the read and the watch is
        missed; a compacted resourceVersion (410) re-reads the object and carries on. Needs `get` and
        `watch` on the run (what `kubectl get -w` needs).
        """
        ns = self._namespace(request.namespace)
        await self.access.require(
            user, on(AGENTRUNS, "get", ns, request.name), on(AGENTRUNS, "watch", ns, request.name)
        )
        obj = await self.runs.get(request.namespace, request.name)
        ns = obj["metadata"]["namespace"]
        rv = str(obj["metadata"].get("resourceVersion") or "")
        phase = phase_of(obj)
        yield pb.AgentRunStatusEvent(json=to_json(obj), phase=phase)
        if is_terminal(phase):
            return
        while True:
            try:
                stream = self.client.watch(
                    AGENTRUNS,
                    ns,
                    resource_version=rv,
                    field_selector={"metadata.name": request.name},
                    timeout_seconds=WATCH_TIMEOUT_SECONDS,
                    idle_timeout=WATCH_TIMEOUT_SECONDS + 60,
                )
                async with contextlib.aclosing(stream):
                    async for event in stream:
                        new_rv = str((event.object.get("metadata") or {}).get("resourceVersion") or rv)
                        if event.type == "BOOKMARK":
                            rv = new_rv
                            continue
                        if event.type == "DELETED":
                            return
                        if new_rv == rv:
                            continue
                        rv = new_rv
                        phase = phase_of(event.object)
                        yield pb.AgentRunStatusEvent(
                            json=to_json(strip_managed_fields(event.object)), phase=phase
                        )
                        if is_terminal(phase):
                            return
            except GoneError:
                try:
                    obj = strip_managed_fields(await self.client.get(AGENTRUNS, request.name, ns))
                except NotFoundError:
                    return
                new_rv = str(obj["metadata"].get("resourceVersion") or "")
                if new_rv != rv:
                    rv = new_rv
                    phase = phase_of(obj)
                    yield pb.AgentRunStatusEvent(json=to_json(obj), phase=phase)
                    if is_terminal(phase):
                        return
            except WatchStalledError:
                continue

    async def stream_agent_run_logs(
        self, request: pb.StreamAgentRunLogsRequest, user: UserInfo
    ) -> AsyncIterator[pb.AgentRunLogEntry]:
        """Lines of one of the run's pods (found by the agent-run label), optionally followed. Needs `get`
        on the run and `get pods/log` in its namespace (what `kubectl logs` needs)."""
        ns = self._namespace(request.namespace)
        await self.access.require(
            user, on(AGENTRUNS, "get", ns, request.name), on(PODS, "get", ns, subresource="log")
        )
        run = await self.runs.get(request.namespace, request.name)
        pod = request.pod
        if not pod and request.step:  # `agentctl logs --step`: that step's pod (the Running one first)
            await self.access.require(user, on(PODS, "list", ns))
            pod = (
                choose_pod(await step_pods(self.client, AGENTRUNS.kind, request.name, ns, request.step)) or ""
            )
            if not pod:
                raise PodNotFound(f"no pods for step {request.step!r} of AgentRun {request.name}")
        lines = stream_run_logs(
            self.client,
            run["metadata"]["namespace"],
            request.name,
            pod=pod,
            container=request.container,
            follow=request.follow,
            tail_lines=request.tail_lines,
        )
        async for line in lines:
            yield pb.AgentRunLogEntry(stream="stdout", message=line.text, pod=line.pod)

    # -- dispatch ----------------------------------------------------------------------------------

    async def _authenticate(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> UserInfo:
        """The caller's identity; aborts with UNAUTHENTICATED (no token, or one neither TokenReview nor the
        shared token accepts) or UNAVAILABLE (TokenReview could not be asked). Tokens are never logged."""
        tokens = auth.presented_tokens(context.invocation_metadata())
        try:
            # Each presented token in order (`authorization`, `x-jangar-token`, `x-agents-token`): a proxy's own
            # `authorization` header does not hide the caller's `x-jangar-token`.
            # An earlier token that TokenReview could not judge (UNAVAILABLE) does not stop a later one
            # (the shared token needs no TokenReview); it is reported only when no later token is accepted.
            unavailable: AccessUnavailable | None = None
            for token in tokens[:-1]:
                try:
                    return await self.access.authenticate(token)
                except Unauthenticated:
                    continue
                except AccessUnavailable as exc:
                    unavailable = unavailable or exc
            try:
                return await self.access.authenticate(tokens[-1] if tokens else None)
            except Unauthenticated:
                if unavailable is not None:
                    raise unavailable from None
                raise
        except AccessError as exc:
            code, message = _status_for(exc)
            if code == grpc.StatusCode.UNAUTHENTICATED:
                message = auth.UNAUTHENTICATED_MESSAGE
            log.warning("grpc.unauthenticated", method=method, peer=context.peer(), code=code.name)
            self.calls.labels(method, code.name).inc()
            await context.abort(code, message)
            raise AssertionError("abort returned") from None  # pragma: no cover

    def _unary(
        self, method: str, fn: Callable[[Req, UserInfo], Awaitable[Resp]], request_type: type[Req]
    ) -> grpc.RpcMethodHandler[Req, Resp]:
        async def behaviour(request: Req, context: grpc.aio.ServicerContext[Req, Resp]) -> Resp:
            user = await self._authenticate(method, context)
            started = time.monotonic()
            try:
                response = await fn(request, user)
            except Exception as exc:
                code, message = _status_for(exc)
                self._log_failure(method, code, exc)
            else:
                seconds = time.monotonic() - started
                self.calls.labels(method, "OK").inc()
                self.duration.labels(method).observe(seconds)
                log.debug("grpc.call", method=method, seconds=round(seconds, 4))
                return response
            self.calls.labels(method, code.name).inc()
            self.duration.labels(method).observe(time.monotonic() - started)
            await context.abort(code, message)
            raise AssertionError("abort returned")  # pragma: no cover (abort always raises)

        return grpc.unary_unary_rpc_method_handler(
            behaviour,  # grpc.aio accepts coroutine behaviours
            request_deserializer=request_type.FromString,
            response_serializer=lambda m: m.SerializeToString(),
        )

    def _stream(
        self, method: str, fn: Callable[[Req, UserInfo], AsyncIterator[Resp]], request_type: type[Req]
    ) -> grpc.RpcMethodHandler[Req, Resp]:
        async def behaviour(
            request: Req, context: grpc.aio.ServicerContext[Req, Resp]
        ) -> AsyncIterator[Resp]:
            user = await self._authenticate(method, context)
            failure: tuple[grpc.StatusCode, str] | None = None
            try:
                async for item in fn(request, user):
                    yield item
            except Exception as exc:
                failure = _status_for(exc)
                self._log_failure(method, failure[0], exc)
            except asyncio.CancelledError:
                self.calls.labels(method, "CANCELLED").inc()
                raise
            self.calls.labels(method, failure[0].name if failure else "OK").inc()
            if failure is not None:
                await context.abort(*failure)

        return grpc.unary_stream_rpc_method_handler(
            behaviour,  # grpc.aio accepts async-generator behaviours
            request_deserializer=request_type.FromString,
            response_serializer=lambda m: m.SerializeToString(),
        )

    @staticmethod
    def _log_failure(method: str, code: grpc.StatusCode, exc: BaseException) -> None:
        if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
            log.warning("grpc.failed", method=method, code=code.name, error=repr(exc))
        else:
            log.info("grpc.refused", method=method, code=code.name, error=str(exc))

    def method_handlers(self) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """Every method of the service, by name (a unit test checks this against the proto)."""
        h: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "GetServerInfo": self._unary("GetServerInfo", self.get_server_info, pb.GetServerInfoRequest),
            "GetControlPlaneStatus": self._unary(
                "GetControlPlaneStatus", self.get_control_plane_status, pb.GetControlPlaneStatusRequest
            ),
            "CreateImplementationSpec": self._unary(
                "CreateImplementationSpec",
                self.create_implementation_spec,
                pb.CreateImplementationSpecRequest,
            ),
            "SubmitAgentRun": self._unary("SubmitAgentRun", self.submit_agent_run, pb.SubmitAgentRunRequest),
            "CancelAgentRun": self._unary("CancelAgentRun", self.cancel_agent_run, pb.CancelAgentRunRequest),
            "SubmitOrchestrationRun": self._unary(
                "SubmitOrchestrationRun", self.submit_orchestration_run, pb.SubmitOrchestrationRunRequest
            ),
            "CancelOrchestrationRun": self._unary(
                "CancelOrchestrationRun", self.cancel_orchestration_run, pb.CancelOrchestrationRunRequest
            ),
            "ApproveStep": self._unary("ApproveStep", self.approve_step, pb.ApprovalDecisionRequest),
            "RejectStep": self._unary("RejectStep", self.reject_step, pb.ApprovalDecisionRequest),
            "StreamAgentRunStatus": self._stream(
                "StreamAgentRunStatus", self.stream_agent_run_status, pb.StreamAgentRunStatusRequest
            ),
            "StreamAgentRunLogs": self._stream(
                "StreamAgentRunLogs", self.stream_agent_run_logs, pb.StreamAgentRunLogsRequest
            ),
        }

        async def list_any(r: pb.ListRequest, u: UserInfo) -> pb.ListResponse:
            return await self._list(
                u, self._kind(r.kind), r.namespace, r.label_selector, all_namespaces=r.all_namespaces
            )

        async def describe_any(r: pb.GetRequest, u: UserInfo) -> pb.DescribeResponse:
            return await self._describe(u, self._kind(r.kind), r.name, r.namespace)

        async def get_any(r: pb.GetRequest, u: UserInfo) -> pb.GetResponse:
            return await self._get(u, self._kind(r.kind), r.name, r.namespace)

        async def apply_any(r: pb.ApplyRequest, u: UserInfo) -> pb.ApplyResponse:
            if r.kind:
                self._kind(r.kind)
            return await self._apply(u, r.manifest_yaml, r.namespace, r.kind or None)

        async def delete_any(r: pb.DeleteRequest, u: UserInfo) -> pb.DeleteResponse:
            return await self._delete(u, self._kind(r.kind), r.name, r.namespace)

        h["ListResources"] = self._unary("ListResources", list_any, pb.ListRequest)
        h["GetResource"] = self._unary("GetResource", get_any, pb.GetRequest)
        h["ApplyResource"] = self._unary("ApplyResource", apply_any, pb.ApplyRequest)
        h["DeleteResource"] = self._unary("DeleteResource", delete_any, pb.DeleteRequest)
        h["DescribeResource"] = self._unary("DescribeResource", describe_any, pb.GetRequest)
        for info in registry.KINDS:
            h.update(self._per_kind(info.kind))
        return h

    def _per_kind(self, kind: str) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        ref = resolve_kind(kind)
        name_list = list_method(kind)

        async def get_one(r: pb.GetRequest, u: UserInfo) -> pb.GetResponse:
            return await self._get(u, ref, r.name, r.namespace)

        async def apply_one(r: pb.ApplyRequest, u: UserInfo) -> pb.ApplyResponse:
            return await self._apply(u, r.manifest_yaml, r.namespace, kind)

        async def delete_one(r: pb.DeleteRequest, u: UserInfo) -> pb.DeleteResponse:
            return await self._delete(u, ref, r.name, r.namespace)

        out: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            f"Get{kind}": self._unary(f"Get{kind}", get_one, pb.GetRequest),
            f"Apply{kind}": self._unary(f"Apply{kind}", apply_one, pb.ApplyRequest),
            f"Delete{kind}": self._unary(f"Delete{kind}", delete_one, pb.DeleteRequest),
        }
        if kind == AGENTRUNS.kind:  # list and get through the runs service (filters, one namespace rule)
            out[name_list] = self._unary(name_list, self.list_agent_runs, pb.ListAgentRunsRequest)
            out[f"Get{kind}"] = self._unary(f"Get{kind}", self.get_agent_run, pb.GetRequest)
        else:

            async def list_kind(r: pb.ListRequest, u: UserInfo) -> pb.ListResponse:
                return await self._list(
                    u, ref, r.namespace, r.label_selector, all_namespaces=r.all_namespaces
                )

            out[name_list] = self._unary(name_list, list_kind, pb.ListRequest)
        return out

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE_NAME, self.method_handlers())

    def handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        """The service under each of `SERVICE_NAMES` (0.9.1's and 0.9.29's package), one set of handlers."""
        methods = self.method_handlers()
        return tuple(grpc.method_handlers_generic_handler(name, methods) for name in SERVICE_NAMES)


__all__ = [
    "SERVICE_NAME",
    "SERVICE_NAMES",
    "SERVICE_NAME_AGENTS",
    "AgentctlService",
    "RpcFailure",
    "list_method",
    "phase_of",
]

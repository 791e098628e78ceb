"""The two modes behind one interface: `KubeBackend` (the Kubernetes API with the kubeconfig, the
default) and `GrpcBackend` (jangar's agentctl gRPC API, `--server`). The verbs call only this, so both
modes print the same; what one mode cannot do (the gRPC API has no Events, Jobs or Pods) raises
`BadInput` saying so, or returns `None` for the optional parts of `describe`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from jangar.api.contract import LABEL_ORCHESTRATION_RUN, LABEL_RUN, LABEL_STEP, LABEL_TOOL_RUN
from jangar.api.refs import ref_for
from jangar.api.registry import KindInfo
from jangar.ctl.errors import BadInput, CtlError
from jangar.runtime import ApiError, Client, NotFoundError, ResourceRef, strip_managed_fields
from jangar.runtime.resources import EVENTS, JOBS, PODS

__all__ = ["Backend", "Children", "GrpcBackend", "KubeBackend"]

# (title, header, rows): one table of `describe`'s children section
Children = list[tuple[str, list[str], list[list[str]]]]


def not_found(info: KindInfo, name: str) -> CtlError:
    return CtlError(f'{info.plural}.{info.group} "{name}" not found')


def _typed(info: KindInfo, obj: dict[str, Any]) -> dict[str, Any]:
    obj = strip_managed_fields(obj)
    obj.setdefault("apiVersion", info.api_version)
    obj.setdefault("kind", info.kind)
    return obj


class Backend(Protocol):
    mode: str

    async def get(self, info: KindInfo, name: str, namespace: str) -> dict[str, Any]: ...
    async def find(
        self, info: KindInfo, namespace: str | None, selector: str | None
    ) -> list[dict[str, Any]]: ...
    async def create(self, info: KindInfo, manifest: dict[str, Any]) -> dict[str, Any]: ...
    async def delete(self, info: KindInfo, name: str, namespace: str) -> None: ...
    async def cancel(self, info: KindInfo, name: str, namespace: str) -> str: ...
    async def events(self, obj: dict[str, Any]) -> list[dict[str, Any]] | None: ...
    async def children(self, info: KindInfo, obj: dict[str, Any]) -> Children | None: ...
    def logs(
        self,
        info: KindInfo,
        name: str,
        namespace: str,
        *,
        step: str,
        container: str,
        follow: bool,
        tail: int,
    ) -> AsyncIterator[str]: ...
    async def close(self) -> None: ...


def _exit_codes(pod: dict[str, Any]) -> str:
    out = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        state = cs.get("state") or {}
        if "terminated" in state:
            out.append(f"{cs.get('name')}={state['terminated'].get('exitCode')}")
        elif "waiting" in state:
            out.append(f"{cs.get('name')}:{state['waiting'].get('reason') or 'Waiting'}")
        elif "running" in state:
            out.append(f"{cs.get('name')}:Running")
    return ",".join(out) or "<none>"


def _job_status(job: dict[str, Any]) -> str:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed", "SuccessCriteriaMet"):
            return str(cond["type"])
    return "Running" if (job.get("status") or {}).get("active") else "Pending"


class KubeBackend:
    mode = "kube"

    def __init__(self, client: Client) -> None:
        self.client = client

    @classmethod
    async def connect(cls, kubeconfig: str | None, context: str | None) -> KubeBackend:
        return cls(await Client.from_kubeconfig(kubeconfig, context=context, field_manager="agentctl"))

    async def close(self) -> None:
        await self.client.close()

    async def get(self, info: KindInfo, name: str, namespace: str) -> dict[str, Any]:
        try:
            return _typed(info, await self.client.get(ref_for(info.kind), name, namespace))
        except NotFoundError:
            raise not_found(info, name) from None
        except ApiError as err:
            raise CtlError(str(err)) from None

    async def find(self, info: KindInfo, namespace: str | None, selector: str | None) -> list[dict[str, Any]]:
        try:
            listed = await self.client.list(ref_for(info.kind), namespace, label_selector=selector)
        except ApiError as err:
            raise CtlError(str(err), 2 if err.status == 400 else 1) from None
        return [_typed(info, o) for o in listed.items]

    async def create(self, info: KindInfo, manifest: dict[str, Any]) -> dict[str, Any]:
        try:
            return _typed(info, await self.client.create(ref_for(info.kind), manifest))
        except ApiError as err:
            raise CtlError(str(err), 2 if err.status in (400, 422) else 1) from None

    async def delete(self, info: KindInfo, name: str, namespace: str) -> None:
        from jangar.runtime import PropagationPolicy

        try:
            await self.client.delete(
                ref_for(info.kind), name, namespace, propagation_policy=PropagationPolicy.BACKGROUND
            )
        except NotFoundError:
            raise not_found(info, name) from None
        except ApiError as err:
            raise CtlError(str(err)) from None

    async def cancel(self, info: KindInfo, name: str, namespace: str) -> str:
        from jangar.services.cancel import request_cancel
        from jangar.services.errors import ServiceError

        await self.get(info, name, namespace)  # not found: exit 1 with kubectl's message
        try:
            await request_cancel(self.client, namespace, name, ref_for(info.kind))
        except ServiceError as err:
            raise CtlError(err.message) from None
        return "cancel requested"

    async def events(self, obj: dict[str, Any]) -> list[dict[str, Any]] | None:
        meta = obj["metadata"]
        selector = {"involvedObject.name": meta["name"], "involvedObject.kind": obj["kind"]}
        try:
            items = (await self.client.list(EVENTS, meta.get("namespace"), field_selector=selector)).items
        except ApiError:
            return None
        return sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))

    async def _owned(self, ref: ResourceRef, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        items = (await self.client.list(ref, namespace, label_selector=labels)).items
        return sorted(
            items, key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"])
        )

    async def children(self, info: KindInfo, obj: dict[str, Any]) -> Children | None:
        from jangar.api.printing import age
        from jangar.scheduler.naming import label_value

        name, ns = obj["metadata"]["name"], obj["metadata"].get("namespace") or ""
        out: Children = []
        try:
            if info.kind in ("AgentRun", "ToolRun"):
                label = LABEL_RUN if info.kind == "AgentRun" else LABEL_TOOL_RUN
                sel = {label: label_value(name)}
                jobs = await self._owned(JOBS, ns, sel)
                out.append(
                    (
                        "Jobs",
                        ["NAME", "STEP", "STATUS", "SUCCEEDED", "FAILED"],
                        [
                            [
                                j["metadata"]["name"],
                                (j["metadata"].get("labels") or {}).get(LABEL_STEP, ""),
                                _job_status(j),
                                str((j.get("status") or {}).get("succeeded") or 0),
                                str((j.get("status") or {}).get("failed") or 0),
                            ]
                            for j in jobs
                        ],
                    )
                )
                pods = await self._owned(PODS, ns, sel)
                out.append(
                    (
                        "Pods",
                        ["NAME", "PHASE", "NODE", "EXIT CODES"],
                        [
                            [
                                p["metadata"]["name"],
                                str((p.get("status") or {}).get("phase") or ""),
                                str((p.get("spec") or {}).get("nodeName") or "<none>"),
                                _exit_codes(p),
                            ]
                            for p in pods
                        ],
                    )
                )
            elif info.kind == "OrchestrationRun":
                from datetime import UTC, datetime

                now = datetime.now(UTC)
                sel = {LABEL_ORCHESTRATION_RUN: label_value(name)}
                rows = []
                for kind in RUN_CHILD_KINDS:
                    for child in await self._owned(ref_for(kind), ns, sel):
                        rows.append(
                            [
                                kind,
                                child["metadata"]["name"],
                                str((child.get("status") or {}).get("phase") or "Pending"),
                                age(child["metadata"].get("creationTimestamp", ""), now),
                            ]
                        )
                out.append(("Step runs", ["KIND", "NAME", "PHASE", "AGE"], rows))
        except ApiError:
            return None
        return out

    async def logs(
        self,
        info: KindInfo,
        name: str,
        namespace: str,
        *,
        step: str,
        container: str,
        follow: bool,
        tail: int,
    ) -> AsyncIterator[str]:
        from jangar.scheduler.naming import label_value
        from jangar.services.errors import ServiceError
        from jangar.services.logs import choose_pod, stream_run_logs

        await self.get(info, name, namespace)  # a missing run is "not found", not "no pods"
        label = LABEL_TOOL_RUN if info.kind == "ToolRun" else LABEL_RUN
        pod = ""
        if step:
            sel = {label: label_value(name), LABEL_STEP: label_value(step)}
            pod = choose_pod((await self.client.list(PODS, namespace, label_selector=sel)).items) or ""
            if not pod:
                raise CtlError(f"no pods for step {step!r} of {info.kind} {name}")
        try:
            async for line in stream_run_logs(
                self.client,
                namespace,
                name,
                pod=pod,
                container=container,
                follow=follow,
                tail_lines=tail,
                label=label,
                kind=info.kind,
            ):
                yield line.text
        except ServiceError as err:
            raise CtlError(err.message) from None


RUN_CHILD_KINDS = ("AgentRun", "ToolRun", "OrchestrationRun", "SignalDelivery")


class GrpcBackend:
    """The same verbs through `ListResources`/`GetResource`/`ApplyResource`/`DeleteResource`, the cancel
    methods and `StreamAgentRunLogs`. The server scopes namespaces (its managed ones); it has no Events,
    Jobs or Pods, so `describe` shows the object alone and `logs --step` is refused."""

    mode = "grpc"

    def __init__(self, address: str, token: str | None) -> None:
        from jangar.grpc.client import AgentctlClient

        self.client = AgentctlClient(address, token)
        self.stub = self.client.stub
        self.metadata = self.client._metadata
        self.timeout = self.client.timeout

    async def close(self) -> None:
        await self.client.close()

    def _fail(self, err: Any, info: KindInfo | None = None, name: str = "") -> CtlError:
        import grpc

        code = err.code()
        if code == grpc.StatusCode.NOT_FOUND and info is not None:
            return not_found(info, name)
        message = f"{code.name.lower()}: {err.details()}"
        return BadInput(message) if code == grpc.StatusCode.INVALID_ARGUMENT else CtlError(message)

    async def _call(self, method: str, request: Any, info: KindInfo | None = None, name: str = "") -> Any:
        import grpc

        try:
            return await getattr(self.stub, method)(request, metadata=self.metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            raise self._fail(err, info, name) from None

    async def get(self, info: KindInfo, name: str, namespace: str) -> dict[str, Any]:
        from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb

        response = await self._call(
            "GetResource", pb.GetRequest(name=name, namespace=namespace, kind=info.kind), info, name
        )
        return _typed(info, json.loads(response.json))

    async def find(self, info: KindInfo, namespace: str | None, selector: str | None) -> list[dict[str, Any]]:
        from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb

        if namespace is None:
            raise BadInput(
                "-A/--all-namespaces is not available with --server: the server lists one namespace"
            )
        response = await self._call(
            "ListResources",
            pb.ListRequest(namespace=namespace, label_selector=selector or "", kind=info.kind),
        )
        return [_typed(info, o) for o in json.loads(response.json).get("items") or ()]

    async def create(self, info: KindInfo, manifest: dict[str, Any]) -> dict[str, Any]:
        from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb

        response = await self._call(
            "ApplyResource",
            pb.ApplyRequest(
                namespace=manifest["metadata"].get("namespace") or "",
                manifest_yaml=json.dumps(manifest),
                kind=info.kind,
            ),
        )
        return _typed(info, json.loads(response.json))

    async def delete(self, info: KindInfo, name: str, namespace: str) -> None:
        from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb

        await self._call(
            "DeleteResource", pb.DeleteRequest(name=name, namespace=namespace, kind=info.kind), info, name
        )

    async def cancel(self, info: KindInfo, name: str, namespace: str) -> str:
        from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb

        await self.get(info, name, namespace)
        if info.kind == "AgentRun":
            req: Any = pb.CancelAgentRunRequest(name=name, namespace=namespace)
            await self._call("CancelAgentRun", req, info, name)
        elif info.kind == "OrchestrationRun":
            req = pb.CancelOrchestrationRunRequest(name=name, namespace=namespace)
            await self._call("CancelOrchestrationRun", req, info, name)
        else:
            raise BadInput(f"cancel of a {info.kind} is not available with --server (the gRPC API has none)")
        return "cancel requested"

    async def events(self, obj: dict[str, Any]) -> list[dict[str, Any]] | None:
        return None

    async def children(self, info: KindInfo, obj: dict[str, Any]) -> Children | None:
        return None

    async def logs(
        self,
        info: KindInfo,
        name: str,
        namespace: str,
        *,
        step: str,
        container: str,
        follow: bool,
        tail: int,
    ) -> AsyncIterator[str]:
        import grpc

        if info.kind != "AgentRun":
            raise BadInput(f"logs of a {info.kind} are not available with --server (only AgentRuns)")
        if step:
            raise BadInput("--step is not available with --server (the gRPC API cannot list a step's pods)")
        await self.get(info, name, namespace)
        try:
            async for _, line in self.client.run_logs(
                name, namespace, follow=follow, container=container, tail_lines=tail
            ):
                yield line
        except grpc.aio.AioRpcError as err:
            raise self._fail(err, info, name) from None

"""The two modes behind one interface: `KubeBackend` (the Kubernetes API with the kubeconfig, the
default) and `GrpcBackend` (jangar's agentctl gRPC API, `--server`). The verbs call only this, so both
modes print the same; what one mode cannot do (the gRPC API cancels only AgentRuns and
OrchestrationRuns, and streams only AgentRun logs) raises `BadInput` saying so."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from jangar.api.refs import ref_for
from jangar.api.registry import KindInfo
from jangar.ctl.errors import BadInput, CtlError
from jangar.runtime import ApiError, Client, NotFoundError, strip_managed_fields
from jangar.services.related import Related, list_related, run_label, step_pods

__all__ = ["Backend", "GrpcBackend", "KubeBackend"]


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
    async def related(self, info: KindInfo, obj: dict[str, Any]) -> Related | None: ...
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

    async def related(self, info: KindInfo, obj: dict[str, Any]) -> Related | None:
        try:
            return await list_related(self.client, obj)
        except ApiError:  # the kubeconfig's user may not list Events, Jobs or Pods: the object alone
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
        from jangar.services.errors import ServiceError
        from jangar.services.logs import choose_pod, stream_run_logs

        await self.get(info, name, namespace)  # a missing run is "not found", not "no pods"
        label = run_label(info.kind)
        pod = ""
        if step:
            pod = choose_pod(await step_pods(self.client, info.kind, name, namespace, step)) or ""
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
        except ApiError as err:  # e.g. 403 on pods/log: a message, not a traceback
            raise CtlError(str(err)) from None


class GrpcBackend:
    """The same verbs through `ListResources`/`GetResource`/`ApplyResource`/`DeleteResource`, the cancel
    methods, `DescribeResource` (Events, Jobs, Pods, step runs) and `StreamAgentRunLogs` (with a step).
    The server scopes namespaces: `-A` lists every namespace it manages."""

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

        response = await self._call(
            "ListResources",
            pb.ListRequest(
                namespace=namespace or "",
                label_selector=selector or "",
                kind=info.kind,
                all_namespaces=namespace is None,  # -A: every namespace the server manages
            ),
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

    async def related(self, info: KindInfo, obj: dict[str, Any]) -> Related | None:
        """None, as in kube mode, when the caller may not list the Events or children (PERMISSION_DENIED)
        or the server has no `DescribeResource` (UNIMPLEMENTED): `describe` then shows the object alone."""
        import grpc

        from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb

        meta = obj["metadata"]
        request = pb.GetRequest(name=meta["name"], namespace=meta.get("namespace") or "", kind=info.kind)
        try:
            response = await self.stub.DescribeResource(request, metadata=self.metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED):
                return None
            raise self._fail(err, info, meta["name"]) from None
        return Related.from_json(json.loads(response.related_json))

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
        await self.get(info, name, namespace)
        try:
            async for _, line in self.client.run_logs(
                name, namespace, follow=follow, container=container, tail_lines=tail, step=step
            ):
                yield line
        except grpc.aio.AioRpcError as err:  # the run exists (checked above): NOT_FOUND is its pod
            raise self._fail(err) from None

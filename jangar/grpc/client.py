"""A small async client for `AgentctlService`, used by `agentctl --server` (and the tests).

It hides the channel, the token metadata and the JSON decoding; gRPC errors surface as
`grpc.aio.AioRpcError` so the caller decides how each status code maps to an exit code.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc

from jangar.grpc.auth import bearer_metadata
from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2 as pb
from jangar.grpc.gen.proompteng.jangar.v1 import agentctl_pb2_grpc as pb_grpc

DEFAULT_TIMEOUT = 30.0
CHANNEL_OPTIONS = (
    # A namespace's AgentRun list easily passes gRPC's default 4 MiB receive limit.
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
)


def _kvs(values: Mapping[str, str]) -> list[pb.KeyValue]:
    return [pb.KeyValue(key=k, value=v) for k, v in values.items()]


class AgentctlClient:
    """One channel to a jangar gRPC server; use as `async with AgentctlClient(address, token) as c`."""

    def __init__(self, address: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        self._metadata = bearer_metadata(token)
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = pb_grpc.AgentctlServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AgentctlClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def server_info(self) -> pb.GetServerInfoResponse:
        return await self.stub.GetServerInfo(
            pb.GetServerInfoRequest(), metadata=self._metadata, timeout=self.timeout
        )

    async def submit(
        self,
        *,
        namespace: str,
        agent: str,
        implementation: str,
        runtime: str,
        parameters: Mapping[str, str] | None = None,
        runtime_config: Mapping[str, str] | None = None,
        workload_image: str | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
        secrets: Sequence[str] = (),
    ) -> tuple[dict[str, Any], bool]:
        """Submit a run; returns the AgentRun and whether it already existed (same idempotency key)."""
        response = await self.stub.SubmitAgentRun(
            pb.SubmitAgentRunRequest(
                namespace=namespace,
                agent_name=agent,
                implementation_name=implementation,
                runtime_type=runtime,
                parameters=_kvs(parameters or {}),
                runtime_config=_kvs(runtime_config or {}),
                workload=pb.Workload(image=workload_image or ""),
                name=name or "",
                idempotency_key=idempotency_key or "",
                secrets=list(secrets),
            ),
            metadata=self._metadata,
            timeout=self.timeout,
        )
        return json.loads(response.resource_json), response.idempotent

    async def get_run(self, name: str, namespace: str) -> dict[str, Any]:
        response = await self.stub.GetAgentRun(
            pb.GetRequest(name=name, namespace=namespace), metadata=self._metadata, timeout=self.timeout
        )
        run: dict[str, Any] = json.loads(response.json)
        return run

    async def list_runs(self, namespace: str, *, phase: str = "", runtime: str = "") -> list[dict[str, Any]]:
        response = await self.stub.ListAgentRuns(
            pb.ListAgentRunsRequest(namespace=namespace, phase=phase, runtime=runtime),
            metadata=self._metadata,
            timeout=self.timeout,
        )
        items: list[dict[str, Any]] = json.loads(response.json)["items"]
        return items

    async def cancel_run(self, name: str, namespace: str) -> pb.CancelAgentRunResponse:
        return await self.stub.CancelAgentRun(
            pb.CancelAgentRunRequest(name=name, namespace=namespace),
            metadata=self._metadata,
            timeout=self.timeout,
        )

    async def watch_run(
        self, name: str, namespace: str, *, timeout: float | None = None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(phase, AgentRun) now and on every change, until the run ends or is deleted."""
        call = self.stub.StreamAgentRunStatus(
            pb.StreamAgentRunStatusRequest(name=name, namespace=namespace),
            metadata=self._metadata,
            timeout=timeout,
        )
        async for event in call:
            yield event.phase, json.loads(event.json)

    async def run_logs(
        self,
        name: str,
        namespace: str,
        *,
        follow: bool = False,
        container: str = "",
        tail_lines: int = 0,
        step: str = "",
    ) -> AsyncIterator[tuple[str, str]]:
        """(pod, line) of the run's pod log (of a workflow `step`'s pod when given); `follow` keeps
        streaming until the container ends."""
        call = self.stub.StreamAgentRunLogs(
            pb.StreamAgentRunLogsRequest(
                name=name,
                namespace=namespace,
                follow=follow,
                container=container,
                tail_lines=tail_lines,
                step=step,
            ),
            metadata=self._metadata,
            timeout=None if follow else self.timeout,
        )
        async for entry in call:
            yield entry.pod, entry.message

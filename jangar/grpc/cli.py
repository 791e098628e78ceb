"""`agentctl --server HOST:PORT run ...`: the run verbs over the gRPC API instead of the Kubernetes API.

Useful where the caller has network access to jangar but no kubeconfig (CI runners, laptops through a
port-forward): jangar's ServiceAccount does the writes, after a SubjectAccessReview showed the caller
(identified by its bearer token) may do each of them itself (docs/security.md).
Exit codes match kube mode: 0 done, 1 API error or a run that did not succeed, 2 input the server rejected
as INVALID_ARGUMENT (agentctl already rejects what it can check locally with 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import grpc

from jangar.api.contract import Phase, is_terminal
from jangar.grpc.client import AgentctlClient


async def _wait(
    client: AgentctlClient,
    namespace: str,
    name: str,
    timeout: float,
    summary: Callable[[dict[str, Any]], str],
) -> int:
    last: str | None = None
    phase = ""
    try:
        async with asyncio.timeout(timeout):
            async for phase, run in client.watch_run(name, namespace):
                shown = phase or Phase.PENDING
                if shown != last:
                    print(summary(run), flush=True)
                    last = shown
    except TimeoutError:
        print(f"agentctl: timed out after {timeout:.0f}s waiting for {namespace}/{name}", file=sys.stderr)
        return 1
    if not is_terminal(phase):
        print(f"agentctl: {namespace}/{name} was deleted before it finished", file=sys.stderr)
        return 1
    return 0 if phase == Phase.SUCCEEDED else 1


async def run_grpc(
    args: argparse.Namespace, server: str, token: str | None, *, summary: Callable[[dict[str, Any]], str]
) -> int:
    ns = args.namespace
    async with AgentctlClient(server, token) as client:
        try:
            if args.verb == "submit":
                run, idempotent = await client.submit(
                    namespace=ns,
                    agent=args.agent,
                    implementation=args.impl,
                    runtime=args.runtime,
                    parameters=dict(args.param),
                    workload_image=args.workload_image,
                    name=args.name,
                    idempotency_key=args.idempotency_key,
                    secrets=args.secret,
                )
                name = run["metadata"]["name"]
                verb = "unchanged (same idempotency key)" if idempotent else "created"
                print(f"agentrun.agents.proompteng.ai/{name} {verb}", flush=True)
                return await _wait(client, ns, name, args.timeout, summary) if args.wait else 0
            if args.verb == "get":
                print(json.dumps(await client.get_run(args.name, ns), indent=2))
                return 0
            if args.verb == "list":
                for run in await client.list_runs(ns):
                    print(summary(run))
                return 0
            if args.verb == "wait":
                return await _wait(client, ns, args.name, args.timeout, summary)
            if args.verb == "logs":
                async for _, line in client.run_logs(
                    args.name, ns, follow=args.follow, container=args.container or "", tail_lines=args.tail
                ):
                    print(line, flush=True)
                return 0
            response = await client.cancel_run(args.name, ns)
            print(f"agentrun.agents.proompteng.ai/{args.name} {response.message}")
            return 0
        except grpc.aio.AioRpcError as err:
            print(f"agentctl: {err.code().name.lower()}: {err.details()}", file=sys.stderr)
            return 2 if err.code() == grpc.StatusCode.INVALID_ARGUMENT else 1

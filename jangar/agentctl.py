"""`agentctl`: submit and follow AgentRuns from a shell.

    agentctl run submit --agent codex-agent --impl codex-impl-sample --runtime workflow \\
        --workload-image registry.example/codex-universal:latest
    agentctl run get <name>      agentctl run list      agentctl run wait <name>      agentctl run cancel <name>
    agentctl run logs <name> [-f] [-c CONTAINER] [--tail N]
    agentctl run render -f run.yaml [--offline -f deps.yaml]   (what the controller would create)
    agentctl orchestration run|get|list|wait|cancel ...   agentctl toolrun run|get|list|wait|cancel|logs ...
    agentctl approve RUN STEP [--reason TEXT]             agentctl reject RUN STEP [--reason TEXT]
    agentctl schedule get <name>   agentctl schedule list   agentctl schedule fire <name> --now
    agentctl get KIND [NAME] [-o json|yaml|wide|name] [-l SELECTOR] [-A]   (any of jangar's 19 kinds)
    agentctl describe|watch|wait|cancel|delete KIND NAME   agentctl logs|retry|resubmit RUN   (docs/agentctl.md)

Two modes: kube mode talks to the Kubernetes API with the kubeconfig, with the manifest builder, the
idempotency rule (the same key again returns the existing run) and the cancel annotation of
`jangar.services`, as jangar's own surfaces; gRPC mode (`--server HOST:PORT`, or
`AGENTCTL_SERVER` / `AGENTCTL_ADDRESS` / `JANGAR_GRPC_ADDRESS` / 0.9.29's `AGENTS_GRPC_ADDRESS`) talks to
jangar's agentctl gRPC API with a bearer token, the first of: `--token` (visible in `ps`: prefer the
environment), `AGENTCTL_TOKEN`, `JANGAR_GRPC_TOKEN`, 0.9.29's `AGENTS_GRPC_TOKEN`, the kubeconfig's current
user token (`token`/`tokenFile`, or an exec plugin's).
jangar verifies it with TokenReview (or matches the shared token) and authorizes each call with a
SubjectAccessReview (docs/security.md). Bad input exits
2 with a message (argparse's convention), also when the server rejects it as INVALID_ARGUMENT; API errors
exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from jangar.api.contract import Phase, is_terminal
from jangar.api.refs import AGENTRUNS
from jangar.ctl import VERBS as CTL_VERBS
from jangar.ctl import add_parsers as add_ctl_parsers
from jangar.ctl import dispatch as ctl_dispatch
from jangar.rendercli import add_arguments as add_render_arguments
from jangar.rendercli import render_command
from jangar.runtime import ApiError, Client, NotFoundError
from jangar.services.cancel import request_cancel
from jangar.services.errors import ServiceError
from jangar.services.idempotency import create_or_replay
from jangar.services.logs import stream_run_logs
from jangar.services.submission import RUNTIME_TYPES, Submission, SubmissionError, build_agent_run

SERVER_ENV = ("AGENTCTL_SERVER", "AGENTCTL_ADDRESS", "JANGAR_GRPC_ADDRESS", "AGENTS_GRPC_ADDRESS")
TOKEN_ENV = ("AGENTCTL_TOKEN", "JANGAR_GRPC_TOKEN", "AGENTS_GRPC_TOKEN")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentctl",
        description="Submit and follow AgentRuns, OrchestrationRuns and ToolRuns; decide approvals.",
    )
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--context", default=None)
    parser.add_argument("-n", "--namespace", default="agents")
    parser.add_argument(
        "--server",
        default=None,
        metavar="HOST:PORT",
        help=f"use jangar's gRPC API instead of the Kubernetes API (default: ${SERVER_ENV[0]}, ...)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"bearer token for --server (default: ${TOKEN_ENV[0]}, ${TOKEN_ENV[1]}, then the kubeconfig's "
        "user token); a flag shows up in `ps`, so prefer the environment",
    )
    sub = parser.add_subparsers(dest="noun", required=True)
    run = sub.add_parser("run", help="AgentRuns")
    verbs = run.add_subparsers(dest="verb", required=True)

    submit = verbs.add_parser("submit", help="create an AgentRun")
    submit.add_argument("--agent", required=True)
    submit.add_argument("--impl", required=True, help="ImplementationSpec name")
    submit.add_argument("--runtime", default="job", choices=RUNTIME_TYPES)
    submit.add_argument("--workload-image", default=None)
    submit.add_argument("--param", action="append", type=_key_value, default=[], metavar="KEY=VALUE")
    submit.add_argument("--name", default=None)
    submit.add_argument("--idempotency-key", default=None)
    submit.add_argument("--secret", action="append", default=[], help="a secret the run may use")
    submit.add_argument("--wait", action="store_true", help="wait until the run finishes")
    submit.add_argument("--timeout", type=float, default=600.0)
    submit.add_argument("--dry-run", action="store_true", help="print the manifest instead of creating it")

    for verb in ("get", "wait", "cancel"):
        p = verbs.add_parser(verb, help=f"{verb} an AgentRun")
        p.add_argument("name")
        if verb == "wait":
            p.add_argument("--timeout", type=float, default=600.0)
    verbs.add_parser("list", help="list AgentRuns")
    logs = verbs.add_parser("logs", help="print the agent's log (its pod's container log)")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep streaming until the container ends")
    logs.add_argument("-c", "--container", default=None)
    logs.add_argument("--tail", type=int, default=0, help="only the last N lines")
    render = verbs.add_parser(
        "render", help="print the Job and ConfigMaps the controller would create (creates nothing)"
    )
    add_render_arguments(render, kube_flags=False)
    add_orchestration_parsers(sub)
    _add_object_nouns(sub)
    _add_schedule_parser(sub)
    add_ctl_parsers(sub)
    return parser


# -- issue 11: `agentctl workspace|artifact get|list` (kube mode) ---------------------------------------

_OBJECT_NOUNS = {"workspace": "Workspace", "artifact": "Artifact"}


def _add_object_nouns(sub: Any) -> None:
    for noun, kind in _OBJECT_NOUNS.items():
        verbs = sub.add_parser(noun, help=f"{kind}s").add_subparsers(dest="verb", required=True)
        verbs.add_parser("get", help=f"print a {kind} as JSON").add_argument("name")
        listing = verbs.add_parser("list", help=f"list {kind}s: name, phase, reason, location")
        listing.add_argument("-l", "--selector", default=None, help="label selector")


def _object_summary(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    where = status.get("uri") or status.get("claimName") or ""
    return (
        f"{obj['metadata']['name']}\t{status.get('phase') or 'Pending'}\t{ready.get('reason') or ''}\t{where}"
    )


async def _objects(args: argparse.Namespace) -> int:
    from jangar.api.refs import ref_for

    ref = ref_for(_OBJECT_NOUNS[args.noun])
    client = await Client.from_kubeconfig(args.kubeconfig, context=args.context, field_manager="agentctl")
    try:
        if args.verb == "get":
            print(json.dumps(await client.get(ref, args.name, args.namespace), indent=2))
            return 0
        for obj in (await client.list(ref, namespace=args.namespace, label_selector=args.selector)).items:
            print(_object_summary(obj))
        return 0
    except NotFoundError as err:
        print(f"agentctl: not found: {err}", file=sys.stderr)
        return 1
    except ApiError as err:
        print(f"agentctl: {err}", file=sys.stderr)
        return 1
    finally:
        await client.close()


# -- schedules (issue 11): `agentctl schedule get|list|fire --now` (kube mode) ------------------------


def _add_schedule_parser(sub: Any) -> None:
    schedule = sub.add_parser("schedule", help="Schedules")
    verbs = schedule.add_subparsers(dest="verb", required=True)
    verbs.add_parser("get", help="print a Schedule").add_argument("name")
    verbs.add_parser("list", help="list Schedules (phase, next run, last run)")
    fire = verbs.add_parser("fire", help="create the run of the current minute from the Schedule's template")
    fire.add_argument("name")
    fire.add_argument("--now", action="store_true", required=True, help="fire now (also when suspended)")


def _schedule_summary(obj: dict[str, Any]) -> str:
    st = obj.get("status") or {}
    last = (st.get("lastRun") or {}).get("name") or "-"
    return f"{obj['metadata']['name']}\t{st.get('phase') or '-'}\t{st.get('nextRunTime') or '-'}\t{last}"


async def _schedule(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from jangar.api.refs import SCHEDULES
    from jangar.scheduler.schedules import truncate_to_minute
    from jangar.services.schedules import describe, fire_schedule

    client = await Client.from_kubeconfig(args.kubeconfig, context=args.context, field_manager="agentctl")
    try:
        ns = args.namespace
        if args.verb == "get":
            print(json.dumps(await client.get(SCHEDULES, args.name, ns), indent=2))
        elif args.verb == "list":
            for obj in (await client.list(SCHEDULES, namespace=ns)).items:
                print(_schedule_summary(obj))
        else:
            tick = truncate_to_minute(datetime.now(UTC))
            result = await fire_schedule(client, ns, args.name, tick=tick, force=True)
            print(describe(ns, args.name, result), flush=True)
        return 0
    except ServiceError as err:
        print(f"agentctl: {err.message}", file=sys.stderr)
        return 1
    except NotFoundError as err:
        print(f"agentctl: not found: {err}", file=sys.stderr)
        return 1
    except ApiError as err:
        print(f"agentctl: {err}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def _summary(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    reason = next(
        (c.get("reason") for c in status.get("conditions") or [] if c.get("type") in {"Succeeded", "Ready"}),
        "",
    )
    return f"{obj['metadata']['name']}\t{status.get('phase') or Phase.PENDING}\t{reason or ''}"


async def _wait(client: Client, namespace: str, name: str, timeout: float) -> int:
    last = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        obj = await client.get(AGENTRUNS, name, namespace)
        phase = (obj.get("status") or {}).get("phase") or Phase.PENDING
        if phase != last:
            print(_summary(obj), flush=True)
            last = phase
        if is_terminal(phase):
            return 0 if phase == Phase.SUCCEEDED else 1
        await asyncio.sleep(1.0)
    print(f"agentctl: timed out after {timeout:.0f}s waiting for {namespace}/{name}", file=sys.stderr)
    return 1


async def _run(args: argparse.Namespace, manifest: dict[str, Any] | None) -> int:
    client = await Client.from_kubeconfig(args.kubeconfig, context=args.context, field_manager="agentctl")
    try:
        ns = args.namespace
        if args.verb == "submit":
            assert manifest is not None
            result = await create_or_replay(client, manifest)
            name = result.run["metadata"]["name"]
            verb = "unchanged (same idempotency key)" if result.replayed else "created"
            print(f"agentrun.agents.proompteng.ai/{name} {verb}", flush=True)
            return await _wait(client, ns, name, args.timeout) if args.wait else 0
        if args.verb == "get":
            print(json.dumps(await client.get(AGENTRUNS, args.name, ns), indent=2))
            return 0
        if args.verb == "list":
            for obj in (await client.list(AGENTRUNS, namespace=ns)).items:
                print(_summary(obj))
            return 0
        if args.verb == "wait":
            return await _wait(client, ns, args.name, args.timeout)
        if args.verb == "logs":
            await client.get(AGENTRUNS, args.name, ns)  # a missing run is "not found", not "no pods"
            lines = stream_run_logs(
                client,
                ns,
                args.name,
                container=args.container or "",
                follow=args.follow,
                tail_lines=args.tail,
            )
            async for line in lines:
                print(line.text, flush=True)
            return 0
        await request_cancel(client, ns, args.name)
        print(f"agentrun.agents.proompteng.ai/{args.name} cancel requested")
        return 0
    except ServiceError as err:  # a name taken by another submission, a missing run to cancel
        print(f"agentctl: {err.message}", file=sys.stderr)
        return 1
    except NotFoundError as err:
        print(f"agentctl: not found: {err}", file=sys.stderr)
        return 1
    except ApiError as err:
        print(f"agentctl: {err}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def _env_first(names: Sequence[str]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def _kubeconfig_present(path: str | None) -> bool:
    candidates = [path] if path else os.environ.get("KUBECONFIG", "").split(os.pathsep)
    if not path and not any(candidates):
        candidates = [os.path.expanduser("~/.kube/config")]
    return any(c and os.path.isfile(c) for c in candidates)


async def kubeconfig_token(path: str | None, context: str | None) -> str | None:
    """The bearer token the kubeconfig's (current or `context`) user would send, else None (client
    certificates are not a token; no kubeconfig is not an error)."""
    from kubernetes_asyncio import config as k8s_config
    from kubernetes_asyncio.client import Configuration

    if not _kubeconfig_present(path):
        return None
    cfg = Configuration()
    try:
        await k8s_config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
    except (k8s_config.ConfigException, OSError, TypeError, ValueError):
        return None
    value = str((cfg.api_key or {}).get("BearerToken") or (cfg.api_key or {}).get("authorization") or "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def grpc_token(args: argparse.Namespace) -> str | None:
    """`--token`, else `AGENTCTL_TOKEN`, else `JANGAR_GRPC_TOKEN`, else the kubeconfig user's token."""
    explicit = getattr(args, "token", None)
    if explicit:
        return str(explicit)
    return _env_first(TOKEN_ENV) or await kubeconfig_token(
        getattr(args, "kubeconfig", None), getattr(args, "context", None)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.noun in ORCH_NOUNS:
        if args.server or _env_first(SERVER_ENV):
            parser.error(
                f"{args.noun} talks to the Kubernetes API; --server (gRPC) is not supported for it yet"
            )
        if getattr(args, "verb", None) == "run":  # bad input exits 2 before anything is contacted
            from jangar.services.orchestration import (
                OrchestrationSubmission,
                ToolRunSubmission,
                build_orchestration_run,
                build_tool_run,
            )

            fields = {"namespace": args.namespace, "parameters": dict(args.param), "name": args.name}
            try:
                if args.noun == "orchestration":
                    build_orchestration_run(
                        OrchestrationSubmission(args.orchestration, delivery_id=args.delivery_id, **fields)
                    )
                else:
                    build_tool_run(ToolRunSubmission(args.tool, delivery_id=args.delivery_id, **fields))
            except SubmissionError as err:
                parser.error(str(err))
        return asyncio.run(_run_orchestration(args))
    if args.noun in _OBJECT_NOUNS:
        return asyncio.run(_objects(args))
    if args.noun == "schedule":
        if args.server:
            parser.error(
                "schedule commands use the Kubernetes API (the kubeconfig); --server is not supported"
            )
        return asyncio.run(_schedule(args))
    if args.noun in CTL_VERBS:
        ctl_server = args.server or _env_first(SERVER_ENV)
        ctl_token = asyncio.run(grpc_token(args)) if ctl_server else None
        return ctl_dispatch(parser, args, server=ctl_server, token=ctl_token)
    if args.verb == "render":
        if args.server:
            parser.error(
                "render reads the cluster with the kubeconfig (or --offline); --server is not supported"
            )
        return render_command(args)
    server = args.server or _env_first(SERVER_ENV)
    manifest = None
    if args.verb == "submit":
        try:
            manifest = build_agent_run(
                Submission(
                    agent=args.agent,
                    namespace=args.namespace,
                    implementation_spec=args.impl,
                    runtime=args.runtime,
                    parameters=dict(args.param),
                    workload_image=args.workload_image,
                    name=args.name,
                    idempotency_key=args.idempotency_key,
                    secrets=args.secret,
                )
            )
        except SubmissionError as err:
            parser.error(str(err))  # exits 2
        if args.dry_run:
            print(json.dumps(manifest, indent=2))
            return 0
    if server:
        from jangar.grpc.cli import run_grpc

        token = asyncio.run(grpc_token(args))
        return asyncio.run(run_grpc(args, server, token, summary=_summary))
    return asyncio.run(_run(args, manifest))


# -- orchestration, toolrun, approve, reject (issue 10) ---------------------------------------------------
#
#   agentctl orchestration run ORCHESTRATION [--param K=V] [--delivery-id ID] [--name N] [--wait] [--timeout S]
#   agentctl orchestration get|wait|cancel RUN      agentctl orchestration list     (-o json|yaml|wide)
#   agentctl toolrun run TOOL ...                   agentctl toolrun get|list|wait|cancel|logs RUN
#   agentctl approve RUN STEP [--reason TEXT]       agentctl reject RUN STEP [--reason TEXT]
#
# Kube mode only: the rules are `jangar.services.OrchestrationService` / `ToolRunService` (idempotency by
# deliveryId, the decision SignalDelivery, the policy subjects checked against the kubeconfig's identity
# from a SelfSubjectReview). With --server these verbs exit 2 (the gRPC API has no such methods yet).

ORCH_NOUNS = ("orchestration", "toolrun", "approve", "reject")
OUTPUTS = ("json", "yaml", "wide")


def add_orchestration_parsers(sub: Any) -> None:
    for noun, target, what in (
        ("orchestration", "orchestration", "OrchestrationRuns"),
        ("toolrun", "tool", "ToolRuns"),
    ):
        parser = sub.add_parser(noun, help=what)
        verbs = parser.add_subparsers(dest="verb", required=True)
        run = verbs.add_parser("run", help=f"create a run of a {target}")
        run.add_argument(target, metavar=target.upper())
        run.add_argument("--param", action="append", type=_key_value, default=[], metavar="KEY=VALUE")
        run.add_argument(
            "--delivery-id", default=None, help="idempotency key: the same id returns the same run"
        )
        run.add_argument("--name", default=None)
        run.add_argument("--wait", action="store_true", help="wait until the run finishes")
        run.add_argument("--timeout", type=float, default=600.0)
        run.add_argument("-o", "--output", choices=OUTPUTS, default=None)
        for verb in ("get", "wait", "cancel") + (("logs",) if noun == "toolrun" else ()):
            p = verbs.add_parser(verb, help=f"{verb} a run")
            p.add_argument("name")
            if verb == "get":
                p.add_argument("-o", "--output", choices=OUTPUTS, default=None)
            if verb == "wait":
                p.add_argument("--timeout", type=float, default=600.0)
            if verb == "logs":
                p.add_argument("-f", "--follow", action="store_true")
                p.add_argument("-c", "--container", default=None)
                p.add_argument("--tail", type=int, default=0)
        listing = verbs.add_parser("list", help="list runs")
        listing.add_argument("-o", "--output", choices=OUTPUTS, default=None)
        listing.add_argument("-l", "--selector", default=None)
    for noun in ("approve", "reject"):
        p = sub.add_parser(noun, help=f"{noun} a waiting ApprovalGate step of an OrchestrationRun")
        p.add_argument("run")
        p.add_argument("step")
        p.add_argument("--reason", default=None)
        p.add_argument("-o", "--output", choices=("json", "yaml"), default=None)


def _phase_of(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or Phase.PENDING)


def _reason_of(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    for type_ in ("Failed", "Succeeded", "Waiting", "InvalidSpec", "Warning"):
        for cond in status.get("conditions") or ():
            if cond.get("type") == type_ and cond.get("status") == "True":
                return str(cond.get("reason") or "")
    return ""


def _target_of(obj: dict[str, Any]) -> str:
    spec = obj.get("spec") or {}
    ref = spec.get("orchestrationRef") or spec.get("toolRef") or {}
    return str(ref.get("name") if isinstance(ref, dict) else ref or "")


def _row(obj: dict[str, Any], wide: bool) -> list[str]:
    status = obj.get("status") or {}
    row = [obj["metadata"]["name"], _phase_of(obj), _reason_of(obj)]
    if wide:
        row += [_target_of(obj), str(status.get("startedAt") or ""), str(status.get("finishedAt") or "")]
    return row


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )


def _print_objects(objs: list[dict[str, Any]], output: str | None, *, single: bool, kind: str) -> None:
    if output in ("json", "yaml"):
        doc: Any = objs[0] if single else {"apiVersion": "v1", "kind": "List", "items": objs}
        if output == "json":
            print(json.dumps(doc, indent=2))
        else:
            import yaml

            print(yaml.safe_dump(doc, sort_keys=False).rstrip())
        return
    wide = output == "wide"
    header = ["NAME", "PHASE", "REASON"] + (["TARGET", "STARTED", "FINISHED"] if wide else [])
    print(_table([_row(o, wide) for o in objs], header))
    if single and kind == "OrchestrationRun":
        steps = [
            [
                str(s.get("name")),
                str(s.get("kind") or ""),
                str(s.get("phase") or ""),
                str(s.get("reason") or ""),
                str(s.get("attempt") or ""),
            ]
            for s in (objs[0].get("status") or {}).get("stepStatuses") or ()
        ]
        if steps:
            print()
            print(_table(steps, ["STEP", "KIND", "PHASE", "REASON", "ATTEMPT"]))


class _NoCache:
    """Kube mode has no informer cache: the budget refusal is left to the controller (which holds)."""

    def get(self, *_: Any, **__: Any) -> Any:
        from jangar.runtime import InformerNotRegistered

        raise InformerNotRegistered("agentctl has no cache")

    def list(self, *_: Any, **__: Any) -> Any:
        from jangar.runtime import InformerNotRegistered

        raise InformerNotRegistered("agentctl has no cache")


async def _whoami(client: Client) -> Any:
    """The kubeconfig's identity (a SelfSubjectReview), for the ApprovalPolicy subjects; unknown if the API
    server cannot tell."""
    from jangar.runtime import ResourceRef
    from jangar.services import Caller

    ref = ResourceRef(
        "authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", namespaced=False
    )
    try:
        review = await client.create(
            ref, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    except ApiError:
        return Caller()
    info = (review.get("status") or {}).get("userInfo") or {}
    return Caller(
        user=str(info.get("username") or ""), groups=tuple(str(g) for g in info.get("groups") or ())
    )


async def _wait_kind(client: Client, ref: Any, namespace: str, name: str, timeout: float) -> int:
    last = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        obj = await client.get(ref, name, namespace)
        phase = _phase_of(obj)
        if phase != last:
            print("\t".join(_row(obj, False)), flush=True)
            last = phase
        if is_terminal(phase):
            return 0 if phase == Phase.SUCCEEDED else 1
        await asyncio.sleep(1.0)
    print(f"agentctl: timed out after {timeout:.0f}s waiting for {namespace}/{name}", file=sys.stderr)
    return 1


async def _run_orchestration(args: argparse.Namespace) -> int:
    import logging

    import structlog

    from jangar.api.contract import LABEL_TOOL_RUN
    from jangar.api.refs import ORCHESTRATIONRUNS, TOOLRUNS
    from jangar.services import (
        NamespaceScope,
        OrchestrationService,
        OrchestrationSubmission,
        ToolRunService,
        ToolRunSubmission,
    )

    # stdout is the command's output: the services' info logs would garble it; warnings go to stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    client = await Client.from_kubeconfig(args.kubeconfig, context=args.context, field_manager="agentctl")
    try:
        ns = args.namespace
        scope = NamespaceScope(("*",))
        orch = OrchestrationService(client, _NoCache(), scope)
        tools = ToolRunService(client, _NoCache(), scope)
        if args.noun in ("approve", "reject"):
            delivery = await orch.decide(
                ns, args.run, args.step, args.noun, caller=await _whoami(client), reason=args.reason
            )
            if args.output:
                _print_objects([delivery], args.output, single=True, kind="SignalDelivery")
            else:
                verb = "approved" if args.noun == "approve" else "rejected"
                print(f"signaldelivery.signals.proompteng.ai/{delivery['metadata']['name']} created ({verb})")
            return 0
        service, ref, kind, plural = (
            (orch, ORCHESTRATIONRUNS, "OrchestrationRun", "orchestrationrun.orchestration.proompteng.ai")
            if args.noun == "orchestration"
            else (tools, TOOLRUNS, "ToolRun", "toolrun.tools.proompteng.ai")
        )
        if args.verb == "run":
            common = {
                "namespace": ns,
                "parameters": dict(args.param),
                "delivery_id": args.delivery_id,
                "name": args.name,
            }
            result = await (
                orch.submit(OrchestrationSubmission(args.orchestration, **common))
                if args.noun == "orchestration"
                else tools.submit(ToolRunSubmission(args.tool, **common))
            )
            name = result.run["metadata"]["name"]
            if args.output:
                _print_objects([result.run], args.output, single=True, kind=kind)
            else:
                verb = "unchanged (same delivery id)" if result.replayed else "created"
                print(f"{plural}/{name} {verb}", flush=True)
            return await _wait_kind(client, ref, ns, name, args.timeout) if args.wait else 0
        if args.verb == "get":
            _print_objects([await service.get(ns, args.name)], args.output, single=True, kind=kind)
            return 0
        if args.verb == "list":
            listed = await service.list(ns, label_selector=args.selector)
            _print_objects(listed.items, args.output, single=False, kind=kind)
            return 0
        if args.verb == "wait":
            return await _wait_kind(client, ref, ns, args.name, args.timeout)
        if args.verb == "logs":
            await service.get(ns, args.name)
            lines = stream_run_logs(
                client,
                ns,
                args.name,
                container=args.container or "",
                follow=args.follow,
                tail_lines=args.tail,
                label=LABEL_TOOL_RUN,
                kind="ToolRun",
            )
            async for line in lines:
                print(line.text, flush=True)
            return 0
        run = await service.cancel(ns, args.name)
        already = _phase_of(run)
        print(
            f"{plural}/{args.name} " + (f"already {already}" if is_terminal(already) else "cancel requested")
        )
        return 0
    except ServiceError as err:
        from jangar.services import InvalidRequest

        print(f"agentctl: {err.message}", file=sys.stderr)
        return 2 if isinstance(err, InvalidRequest) else 1
    except ApiError as err:
        print(f"agentctl: {err}", file=sys.stderr)
        return 1
    finally:
        await client.close()


# -- issue 13 item 4: kubectl-style verbs over every kind, both modes (`jangar.ctl`) ------------------------
#
#   agentctl get|list|describe|watch|wait|cancel|delete KIND ...    agentctl logs|retry|resubmit RUN ...
#   agentctl completion bash|zsh        (the `get` of issue 11 lives there too, now with --server)


if __name__ == "__main__":
    sys.exit(main())

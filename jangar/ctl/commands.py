"""The verbs: parsers (`add_parsers`) and the one dispatcher (`dispatch`) for both modes.

Exit codes: 0 done; 1 API error, not found, a wait that timed out, a run that is not retryable; 2 bad input
(unknown kind, with the closest name; bad `-o`; bad selector, `--for` or `--timeout`; a verb the mode or
the kind does not have).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from jangar.api.contract import ANNOTATION_RETRY_VERB, LABEL_RETRY_OF, Phase, is_terminal
from jangar.api.registry import KindInfo
from jangar.ctl.backend import Backend, GrpcBackend, KubeBackend
from jangar.ctl.errors import BadInput, CtlError
from jangar.ctl.parsing import (
    OUTPUTS,
    RUN_KINDS,
    WaitFor,
    check_selector,
    kind_of,
    parse_duration,
    parse_for,
    retry_name,
)
from jangar.ctl.printing import children_tables, describe_text, format_objects

__all__ = ["VERBS", "add_parsers", "dispatch", "resubmit_manifest"]

VERBS = (
    "get",
    "list",
    "describe",
    "watch",
    "wait",
    "logs",
    "cancel",
    "delete",
    "retry",
    "resubmit",
    "completion",
)
KIND_HELP = "kind, plural, singular or short name (any case); `agentctl get kinds` lists them"


def _ns(p: argparse.ArgumentParser) -> None:
    # kubectl's habit (`get KIND -n NS`) as well as agentctl's (`-n NS get KIND`)
    p.add_argument("-n", "--namespace", default=argparse.SUPPRESS)


def add_parsers(sub: Any) -> None:
    for verb, what in (("get", "print objects of any jangar kind"), ("list", "list objects of a kind")):
        p = sub.add_parser(verb, help=f"{what}, kubectl-style")
        p.add_argument("kind", metavar="KIND", help=KIND_HELP + " ('kinds' lists them)")
        if verb == "get":
            p.add_argument("names", metavar="NAME", nargs="*")
        else:
            p.set_defaults(names=[])
        p.add_argument("-o", "--output", choices=OUTPUTS, default=None)
        p.add_argument("-l", "--selector", default=None, help="label selector")
        p.add_argument("-A", "--all-namespaces", action="store_true")
        _ns(p)
    p = sub.add_parser("describe", help="spec, status, conditions, children and events of an object")
    p.add_argument("kind", metavar="KIND", help=KIND_HELP)
    p.add_argument("names", metavar="NAME", nargs="+")
    _ns(p)
    p = sub.add_parser("watch", help="the table, then a row on every change (like `kubectl get -w`)")
    p.add_argument("kind", metavar="KIND", help=KIND_HELP)
    p.add_argument("names", metavar="NAME", nargs="*")
    p.add_argument("-o", "--output", choices=("wide", "name"), default=None)
    p.add_argument("-l", "--selector", default=None)
    p.add_argument("--timeout", default=None, help="stop after this long (30s, 5m); default: until ^C")
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    _ns(p)
    p = sub.add_parser("wait", help="wait for a condition, a phase or the deletion (kubectl wait)")
    p.add_argument("kind", metavar="KIND", help=KIND_HELP)
    p.add_argument("names", metavar="NAME", nargs="+")
    p.add_argument("--for", dest="wait_for", required=True, metavar="condition=T[=S]|phase=P|delete")
    p.add_argument("--timeout", default="30s", help="kubectl's default: 30s; exit 1 when it passes")
    _ns(p)
    p = sub.add_parser("logs", help="a run's container log (AgentRun by default; toolrun/NAME for a ToolRun)")
    p.add_argument("run", metavar="[KIND/]RUN")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--step", default="", help="a workflow step's pod")
    p.add_argument("-c", "--container", default="")
    p.add_argument("--tail", type=int, default=0)
    _ns(p)
    p = sub.add_parser("cancel", help="cancel runs (AgentRun, OrchestrationRun, ToolRun)")
    p.add_argument("kind", metavar="KIND", help=KIND_HELP)
    p.add_argument("names", metavar="NAME", nargs="+")
    _ns(p)
    p = sub.add_parser("delete", help="delete objects of any jangar kind")
    p.add_argument("kind", metavar="KIND", help=KIND_HELP)
    p.add_argument("names", metavar="NAME", nargs="+")
    _ns(p)
    for verb, what in (
        ("retry", "a new AgentRun from the spec of one that failed or was cancelled"),
        ("resubmit", "a new AgentRun from the spec of any run"),
    ):
        p = sub.add_parser(verb, help=what)
        p.add_argument("run", metavar="RUN")
        p.add_argument("--name", default=None, help="the new run's name (default: RUN-r<random>)")
        p.add_argument("-o", "--output", choices=OUTPUTS, default=None)
        _ns(p)
    p = sub.add_parser(
        "completion", help="print a shell completion script: source <(agentctl completion bash)"
    )
    p.add_argument("shell", choices=("bash", "zsh"))


def dispatch(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *, server: str | None, token: str | None
) -> int:
    """Run one of `VERBS`; exit 2 through `parser.error` for bad input found before contacting anything."""
    if args.noun == "completion":
        from jangar.ctl.completion import script

        print(script(parser, args.shell))
        return 0
    if args.noun in ("get", "list") and args.kind.lower() in ("kinds", "api-resources"):
        print(_kinds_table())
        return 0
    try:
        verb = _VERBS[args.noun]
        _precheck(args)
    except BadInput as err:
        parser.error(err.message)
    return asyncio.run(_with_backend(verb, args, server, token))


def _precheck(args: argparse.Namespace) -> None:
    if hasattr(args, "kind"):
        args.info = kind_of(args.kind)
    if getattr(args, "selector", None):
        check_selector(args.selector)
    if args.noun in ("get", "list") and args.names and (args.selector or args.all_namespaces):
        raise BadInput("NAME cannot be combined with -l or -A")
    if args.noun == "wait":
        args.for_ = parse_for(args.wait_for)
        args.timeout_s = parse_duration(args.timeout)
    if args.noun == "watch":
        args.timeout_s = parse_duration(args.timeout) if args.timeout else None
    if args.noun in ("cancel",) and args.info.kind not in RUN_KINDS:
        raise BadInput(f"cancel applies to runs ({', '.join(RUN_KINDS)}), not to a {args.info.kind}")
    if args.noun == "logs":
        kind, sep, name = args.run.rpartition("/")
        args.info = kind_of(kind) if sep else kind_of("AgentRun")
        args.run = name
        if args.info.kind not in ("AgentRun", "ToolRun"):
            raise BadInput(f"logs are a run's (AgentRun, ToolRun), not a {args.info.kind}'s")


async def _with_backend(
    verb: Callable[[Backend, argparse.Namespace], Coroutine[Any, Any, int]],
    args: argparse.Namespace,
    server: str | None,
    token: str | None,
) -> int:
    backend: Backend = (
        GrpcBackend(server, token) if server else await KubeBackend.connect(args.kubeconfig, args.context)
    )
    try:
        return await verb(backend, args)
    except CtlError as err:
        print(f"agentctl: {err.message}", file=sys.stderr)
        return err.code
    finally:
        await backend.close()


def _kinds_table() -> str:
    from jangar.api.registry import KINDS
    from jangar.ctl.printing import table

    rows = [[i.plural, ",".join(i.short_names), i.api_version, i.kind] for i in KINDS]
    return table(rows, ["NAME", "SHORTNAMES", "APIVERSION", "KIND"])


def _ref(info: KindInfo, name: str) -> str:
    return f"{info.singular}.{info.group}/{name}"


# -- get / list -------------------------------------------------------------------------------------------


async def _get(backend: Backend, args: argparse.Namespace) -> int:
    info: KindInfo = args.info
    status = 0
    objs: list[dict[str, Any]] = []
    if args.names:
        for name in args.names:
            try:
                objs.append(await backend.get(info, name, args.namespace))
            except CtlError as err:
                print(f"agentctl: {err.message}", file=sys.stderr)
                status = err.code
    else:
        namespace = None if args.all_namespaces else args.namespace
        objs = await backend.find(info, namespace, args.selector)
        objs.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
    single = len(args.names) == 1
    if not objs and (single or args.output not in ("json", "yaml")):
        if not args.names:
            where = "any namespace" if args.all_namespaces else f"namespace {args.namespace}"
            print(f"No {info.plural} found in {where}.", file=sys.stderr)
        return status
    print(format_objects(info, objs, args.output, single=single, namespaces=args.all_namespaces))
    return status


# -- describe ---------------------------------------------------------------------------------------------


async def _describe(backend: Backend, args: argparse.Namespace) -> int:
    info: KindInfo = args.info
    texts = []
    for name in args.names:
        obj = await backend.get(info, name, args.namespace)
        related = await backend.related(info, obj)
        children = None if related is None else children_tables(info.kind, related)
        events = None if related is None else related.events
        texts.append(describe_text(info, obj, children=children, events=events))
    print("\n\n".join(texts))
    return 0


# -- watch ------------------------------------------------------------------------------------------------


async def _watch(backend: Backend, args: argparse.Namespace) -> int:
    """The table once, then one row per object whose resourceVersion changed (polling the API the mode
    has, so both modes print the same); a deleted object is not printed, as in `kubectl get -w`."""
    info: KindInfo = args.info
    seen: dict[str, str] = {}
    first = True
    loop = asyncio.get_running_loop()
    deadline = None if args.timeout_s is None else loop.time() + args.timeout_s
    while True:
        if args.names:
            objs = []
            for name in args.names:
                try:
                    objs.append(await backend.get(info, name, args.namespace))
                except CtlError:
                    if first:
                        raise
        else:
            objs = await backend.find(info, args.namespace, args.selector)
        objs.sort(key=lambda o: o["metadata"]["name"])
        changed = [o for o in objs if seen.get(o["metadata"]["name"]) != o["metadata"].get("resourceVersion")]
        if changed or first:
            text = format_objects(info, changed, args.output, single=False, namespaces=False, headers=first)
            if text:
                print(text, flush=True)
        seen = {o["metadata"]["name"]: str(o["metadata"].get("resourceVersion")) for o in objs}
        first = False
        if deadline is not None and loop.time() >= deadline:
            return 0
        await asyncio.sleep(args.interval)


# -- wait -------------------------------------------------------------------------------------------------


def met(obj: dict[str, Any] | None, wait_for: WaitFor) -> bool:
    if wait_for.what == "delete":
        return obj is None
    if obj is None:
        return False
    status = obj.get("status") or {}
    if wait_for.what == "phase":
        return str(status.get("phase") or Phase.PENDING).lower() == wait_for.name.lower()
    return any(
        str(c.get("type")).lower() == wait_for.name.lower()
        and str(c.get("status")).lower() == wait_for.value.lower()
        for c in status.get("conditions") or ()
    )


async def _wait(backend: Backend, args: argparse.Namespace) -> int:
    """kubectl wait: every NAME must meet `--for` before `--timeout`; a missing object is an error (exit 1)
    unless waiting for its deletion; the timeout exits 1 naming the objects still waited for."""
    info: KindInfo = args.info
    wait_for: WaitFor = args.for_
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout_s
    pending = list(args.names)
    while True:
        for name in list(pending):
            try:
                obj: dict[str, Any] | None = await backend.get(info, name, args.namespace)
            except CtlError as err:
                if wait_for.what != "delete" or "not found" not in err.message:
                    raise
                obj = None
            if met(obj, wait_for):
                print(
                    f"{_ref(info, name)} {'deleted' if wait_for.what == 'delete' else 'condition met'}",
                    flush=True,
                )
                pending.remove(name)
        if not pending:
            return 0
        if loop.time() >= deadline:
            for name in pending:
                print(
                    f"agentctl: timed out waiting for the {wait_for.describe()} on {info.plural}/{name}",
                    file=sys.stderr,
                )
            return 1
        await asyncio.sleep(min(1.0, max(0.0, deadline - loop.time())))


# -- logs, cancel, delete ---------------------------------------------------------------------------------


async def _logs(backend: Backend, args: argparse.Namespace) -> int:
    async for line in backend.logs(
        args.info,
        args.run,
        args.namespace,
        step=args.step,
        container=args.container,
        follow=args.follow,
        tail=args.tail,
    ):
        print(line, flush=True)
    return 0


async def _cancel(backend: Backend, args: argparse.Namespace) -> int:
    status = 0
    for name in args.names:
        try:
            obj = await backend.get(args.info, name, args.namespace)
            phase = str((obj.get("status") or {}).get("phase") or "")
            if is_terminal(phase):
                print(f"{_ref(args.info, name)} already {phase}")
                continue
            print(f"{_ref(args.info, name)} {await backend.cancel(args.info, name, args.namespace)}")
        except CtlError as err:
            print(f"agentctl: {err.message}", file=sys.stderr)
            status = max(status, err.code)
    return status


async def _delete(backend: Backend, args: argparse.Namespace) -> int:
    status = 0
    for name in args.names:
        try:
            await backend.delete(args.info, name, args.namespace)
            print(f'{args.info.singular}.{args.info.group} "{name}" deleted')
        except CtlError as err:
            print(f"agentctl: {err.message}", file=sys.stderr)
            status = max(status, err.code)
    return status


# -- retry / resubmit -------------------------------------------------------------------------------------

# Metadata of the old run that must not be copied: its identity, the controller's and the cancel marks.
_OWNED_PREFIXES = ("jangar.proompteng.ai/", "agents.proompteng.ai/", "kubectl.kubernetes.io/")


def resubmit_manifest(old: dict[str, Any], verb: str, name: str) -> dict[str, Any]:
    """The new AgentRun: the old spec without its idempotency key (the key names the old run), the user's
    labels and annotations (not jangar's or kubectl's), labelled with the run it comes from."""
    meta = old.get("metadata") or {}
    spec = {k: v for k, v in (old.get("spec") or {}).items() if k != "idempotencyKey"}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if not k.startswith(_OWNED_PREFIXES)}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(_OWNED_PREFIXES)
    }
    from jangar.scheduler.naming import label_value

    labels[LABEL_RETRY_OF] = label_value(str(meta.get("name", "")))
    annotations[ANNOTATION_RETRY_VERB] = verb
    return {
        "apiVersion": old.get("apiVersion", "agents.proompteng.ai/v1alpha1"),
        "kind": "AgentRun",
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace"),
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


async def _resubmit(backend: Backend, args: argparse.Namespace) -> int:
    info = kind_of("AgentRun")
    old = await backend.get(info, args.run, args.namespace)
    phase = str((old.get("status") or {}).get("phase") or Phase.PENDING)
    if args.noun == "retry" and (not is_terminal(phase) or phase == Phase.SUCCEEDED):
        raise CtlError(
            f"{_ref(info, args.run)} is {phase}: retry is for a run that failed or was cancelled "
            "(resubmit copies any run)"
        )
    created = await backend.create(info, resubmit_manifest(old, args.noun, args.name or retry_name(args.run)))
    if args.output:
        print(format_objects(info, [created], args.output, single=True, namespaces=False))
    else:
        print(f"{_ref(info, created['metadata']['name'])} created ({args.noun} of {args.run})")
    return 0


_VERBS: dict[str, Callable[[Backend, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "get": _get,
    "list": _get,
    "describe": _describe,
    "watch": _watch,
    "wait": _wait,
    "logs": _logs,
    "cancel": _cancel,
    "delete": _delete,
    "retry": _resubmit,
    "resubmit": _resubmit,
}

"""`agentctl run render` and `jangar render`: print the Job and ConfigMaps an AgentRun would get.

    agentctl run render -f run.yaml                      # against the cluster's current objects
    agentctl run render -f run.yaml -f agent.yaml        # ...with a changed Agent, before applying it
    agentctl run render --offline -f run.yaml -f deps.yaml -o json

Nothing is created. In cluster mode the Agent, AgentProvider, ImplementationSpec, Memory,
VersionControlProvider and SecretBinding objects of the run's namespace are read with the kubeconfig (objects
given in files win), the key names (never the values) of the Secrets its VCS provider uses, and the other
unfinished AgentRuns (a head branch one of them uses gets the controller's conflict suffix). With
`--offline` only the files are used and every Secret key counts as present. The controller's settings come
from the environment (`JANGAR_AGENT_RUNNER_IMAGE`, ...), as `jangar serve` reads them.

Exit codes: 0 rendered, 1 the controller would not create a Job (the reason is printed), 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from jangar.api.refs import AGENTRUNS, ref_for
from jangar.controllers.agentrun.prompt_read import PromptRead, read_system_prompt
from jangar.controllers.agentrun.snapshot import unfinished_others
from jangar.controllers.credentials import KeyNames, read_provider_keys
from jangar.runtime import ApiError, Client
from jangar.services.render import Rendered, RenderError, render_run
from jangar.settings import Settings, SettingsError
from jangar.validation import ObjectLookup, resolve_run

__all__ = ["add_arguments", "main", "render_command"]

#: The kinds an AgentRun's preparation reads from its namespace.
REFERENCED_KINDS = (
    "Agent",
    "AgentProvider",
    "ImplementationSpec",
    "Memory",
    "VersionControlProvider",
    "SecretBinding",
)


class UsageError(Exception):
    """Bad input: exit 2."""


def add_arguments(parser: argparse.ArgumentParser, *, kube_flags: bool) -> None:
    """The render flags; `kube_flags` adds --kubeconfig/--context/-n (agentctl has them globally)."""
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="YAML/JSON manifests ('-': stdin)",
    )
    parser.add_argument("--offline", action="store_true", help="use only the files, not the cluster")
    parser.add_argument("--step", default=None, help="render only this workflow step")
    parser.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    if kube_flags:
        parser.add_argument("--kubeconfig", default=None)
        parser.add_argument("--context", default=None)
        parser.add_argument(
            "-n", "--namespace", default="agents", help="for a run without metadata.namespace"
        )


def _load(paths: Sequence[str]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as err:
            raise UsageError(f"cannot read {path}: {err.strerror}") from None
        try:
            loaded = list(yaml.safe_load_all(text))
        except yaml.YAMLError as err:
            raise UsageError(f"{path} is not valid YAML: {err}") from None
        for doc in loaded:
            if doc is None:
                continue
            if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
                docs.extend(d for d in doc["items"] if isinstance(d, dict))
            elif isinstance(doc, dict):
                docs.append(doc)
            else:
                raise UsageError(f"{path}: every document must be a mapping, got {type(doc).__name__}")
    return docs


def _split(docs: list[dict[str, Any]], namespace: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    runs = [d for d in docs if d.get("kind") == "AgentRun"]
    if len(runs) != 1:
        raise UsageError(f"the files must hold exactly one AgentRun, found {len(runs)}")
    run = runs[0]
    run.setdefault("metadata", {}).setdefault("namespace", namespace)
    ns = run["metadata"]["namespace"]
    others = [d for d in docs if d is not run and (d.get("metadata") or {}).get("namespace", ns) == ns]
    return run, others


@dataclass
class ClusterView:
    """What `render` reads from the cluster: the referenced objects, VCS key names, other active runs."""

    lookup: ObjectLookup
    keys: tuple[KeyNames, KeyNames] | None = None
    active_runs: list[Mapping[str, Any]] = field(default_factory=list)
    #: the Agent's system prompt as the controller reads it (None offline: from the files)
    system_prompt: PromptRead | None = None


async def _from_cluster(
    args: argparse.Namespace, run: Mapping[str, Any], files: list[dict[str, Any]]
) -> ClusterView:
    ns = str(run["metadata"]["namespace"])
    client = await Client.from_kubeconfig(args.kubeconfig, context=getattr(args, "context", None))
    try:
        view = ClusterView(ObjectLookup())
        for kind in REFERENCED_KINDS:
            for obj in (await client.list(ref_for(kind), ns)).items:
                view.lookup.add(obj)
        for obj in files:
            view.lookup.add(obj)
        resolution = resolve_run(run, view.lookup)
        view.system_prompt = await read_system_prompt(client, view.lookup, resolution.agent_ref, ns)
        vcs_ref = resolution.vcs_ref
        provider = view.lookup.get("VersionControlProvider", vcs_ref) if vcs_ref else None
        if provider is None:
            return view
        view.active_runs = unfinished_others(
            (await client.list(AGENTRUNS, ns)).items, run["metadata"]["name"]
        )
        try:
            view.keys = await read_provider_keys(client, ns, provider)
        except ApiError as err:
            print(
                f"# cannot read the VCS credentials' key names ({err.status}): assuming they exist",
                file=sys.stderr,
            )
        return view
    finally:
        await client.close()


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (run.json, agent-runner.json) as literal blocks, as kubectl shows them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _print(rendered: Rendered, output: str) -> None:
    for secret in rendered.minted_secrets:
        print(
            f"# the controller mints the GitHub App token Secret {secret} before creating the Job",
            file=sys.stderr,
        )
    if output == "json":
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": rendered.objects}, indent=2))
    else:
        print(yaml.dump_all(rendered.objects, Dumper=_Dumper, sort_keys=False), end="")


def render_command(args: argparse.Namespace) -> int:
    """Run `render` for parsed arguments; returns the exit code."""
    prog = "render"
    try:
        try:
            settings = Settings.from_env(os.environ)
        except SettingsError as err:
            raise UsageError(f"invalid controller setting {err}") from None
        run, files = _split(_load(args.filename), args.namespace)
        view = (
            ClusterView(ObjectLookup(files)) if args.offline else asyncio.run(_from_cluster(args, run, files))
        )
        rendered = render_run(
            run,
            view.lookup,
            settings,
            now=datetime.now(UTC),
            step=args.step,
            keys=view.keys,
            active_runs=view.active_runs,
            system_prompt=view.system_prompt,
        )
    except (UsageError, RenderError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    except ApiError as err:
        print(f"{prog}: cannot read the cluster: {err}", file=sys.stderr)
        return 1
    if not rendered.ok:
        print(
            f"{prog}: the controller would not create a Job: {rendered.reason}: {rendered.message}",
            file=sys.stderr,
        )
        return 1
    _print(rendered, args.output)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`jangar render ...` as a standalone parser (tests and `python -m jangar.rendercli`)."""
    parser = argparse.ArgumentParser(prog="jangar render", description=__doc__)
    add_arguments(parser, kube_flags=True)
    return render_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

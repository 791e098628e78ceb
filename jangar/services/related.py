"""What `describe` shows around an object: its Events, and for a run its Jobs and Pods (AgentRun, ToolRun)
or its step runs (OrchestrationRun). One implementation for both of agentctl's modes: kube mode calls it
with the user's client, the gRPC `DescribeResource` method with the server's (after checking the caller
may list each), and both print the result with `jangar.ctl.printing.children_tables`.

A Job or Pod belongs to a run by the run label jangar puts on both (`LABEL_RUN` / `LABEL_TOOL_RUN`); a step
run belongs to an OrchestrationRun by `LABEL_ORCHESTRATION_RUN`. Lists are sorted oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jangar.api.contract import LABEL_ORCHESTRATION_RUN, LABEL_RUN, LABEL_STEP, LABEL_TOOL_RUN
from jangar.api.refs import ref_for
from jangar.runtime import Client, ResourceRef, strip_managed_fields
from jangar.runtime.resources import EVENTS, JOBS, PODS
from jangar.scheduler.naming import label_value

__all__ = [
    "RUN_CHILD_KINDS",
    "Related",
    "child_refs",
    "list_related",
    "run_label",
    "step_pods",
]

RUN_CHILD_KINDS = ("AgentRun", "ToolRun", "OrchestrationRun", "SignalDelivery")
"""The kinds an OrchestrationRun's steps create."""


def run_label(kind: str) -> str:
    """The label naming a run on its Jobs and Pods."""
    return LABEL_TOOL_RUN if kind == "ToolRun" else LABEL_RUN


@dataclass
class Related:
    events: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    """An OrchestrationRun's step runs (each with its `kind`)."""

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "jobs": self.jobs, "pods": self.pods, "runs": self.runs}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Related:
        return cls(
            events=list(doc.get("events") or ()),
            jobs=list(doc.get("jobs") or ()),
            pods=list(doc.get("pods") or ()),
            runs=list(doc.get("runs") or ()),
        )


def child_refs(kind: str) -> tuple[ResourceRef, ...]:
    """What `list_related` lists for an object of `kind` besides its Events (for the access checks)."""
    if kind in ("AgentRun", "ToolRun"):
        return (JOBS, PODS)
    if kind == "OrchestrationRun":
        return tuple(ref_for(k) for k in RUN_CHILD_KINDS)
    return ()


def _oldest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        (strip_managed_fields(o) for o in items),
        key=lambda o: (o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]),
    )


async def list_related(client: Client, obj: Mapping[str, Any]) -> Related:
    """The Events of `obj` (apiVersion/kind set) and, for a run, its children."""
    meta = obj["metadata"]
    name, ns, kind = str(meta["name"]), str(meta.get("namespace") or ""), str(obj["kind"])
    selector = {"involvedObject.name": name, "involvedObject.kind": kind}
    events = (await client.list(EVENTS, ns, field_selector=selector)).items
    out = Related(
        events=sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    )
    if kind in ("AgentRun", "ToolRun"):
        sel = {run_label(kind): label_value(name)}
        out.jobs = _oldest_first((await client.list(JOBS, ns, label_selector=sel)).items)
        out.pods = _oldest_first((await client.list(PODS, ns, label_selector=sel)).items)
    elif kind == "OrchestrationRun":
        sel = {LABEL_ORCHESTRATION_RUN: label_value(name)}
        for child_kind in RUN_CHILD_KINDS:
            for child in _oldest_first(
                (await client.list(ref_for(child_kind), ns, label_selector=sel)).items
            ):
                child.setdefault("kind", child_kind)
                out.runs.append(child)
    return out


async def step_pods(client: Client, kind: str, run: str, namespace: str, step: str) -> list[dict[str, Any]]:
    """The pods of one workflow step of a run (`LABEL_STEP`), for `logs --step`."""
    sel = {run_label(kind): label_value(run), LABEL_STEP: label_value(step)}
    return (await client.list(PODS, namespace, label_selector=sel)).items

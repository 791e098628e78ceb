"""Every kind jangar serves, with the facts needed to talk to the API server and to generate its CRD.

Controllers use this to find a kind's group, version and plural (`registry.for_model(AgentRun).plural`);
the CRD generator uses the names, short names, categories and printer columns. The model classes carry
the group and kind themselves, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jangar.api import agents as agents_group
from jangar.api import (
    approvals,
    artifacts,
    budgets,
    orchestration,
    schedules,
    security,
    signals,
    tools,
    workspaces,
)
from jangar.api.meta import Resource

CATEGORY = "proompteng"
"""Every kind is in this category, so `kubectl get proompteng` lists all jangar objects."""


@dataclass(frozen=True)
class PrinterColumn:
    """An `additionalPrinterColumns` entry shown by `kubectl get`."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""

    def to_crd(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        if self.format:
            out["format"] = self.format
        return out


@dataclass(frozen=True)
class KindInfo:
    """One kind: its model and its API names."""

    model: type[Resource[Any, Any]]
    plural: str
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    categories: tuple[str, ...] = field(default=(CATEGORY,))

    @property
    def kind(self) -> str:
        return self.model.KIND

    @property
    def group(self) -> str:
        return self.model.GROUP

    @property
    def version(self) -> str:
        return self.model.VERSION

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def file_name(self) -> str:
        """The CRD's file under charts/agents/crds."""
        return f"{self.group}_{self.plural}.yaml"

    @property
    def namespaced(self) -> bool:
        return True


def _condition(name: str, condition_type: str, attribute: str, priority: int = 0) -> PrinterColumn:
    return PrinterColumn(
        name,
        "string",
        f'.status.conditions[?(@.type=="{condition_type}")].{attribute}',
        priority=priority,
    )


PHASE = PrinterColumn("Phase", "string", ".status.phase")
READY = _condition("Ready", "Ready", "status")
READY_REASON = _condition("Reason", "Ready", "reason")
SUCCEEDED_REASON = _condition("Reason", "Succeeded", "reason")
AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")

A = agents_group
KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        A.Agent,
        "agents",
        ("agt",),
        (READY, PrinterColumn("Provider", "string", ".spec.providerRef.name"), READY_REASON, AGE),
    ),
    KindInfo(
        A.AgentRun,
        "agentruns",
        ("ar",),
        (
            PHASE,
            PrinterColumn("Agent", "string", ".spec.agentRef.name"),
            _condition("Succeeded", "Succeeded", "status"),
            SUCCEEDED_REASON,
            PrinterColumn("StartTime", "date", ".status.startedAt"),
            PrinterColumn("CompletionTime", "date", ".status.finishedAt"),
            PrinterColumn("Runtime", "string", ".spec.runtime.type"),
            AGE,
        ),
    ),
    KindInfo(A.AgentProvider, "agentproviders", ("ap",), (READY, READY_REASON, AGE)),
    KindInfo(
        A.ImplementationSpec,
        "implementationspecs",
        ("impl", "implspec"),
        (
            READY,
            PrinterColumn("Source", "string", ".spec.source.provider"),
            PrinterColumn("Updated", "date", ".status.syncedAt"),
            READY_REASON,
            AGE,
        ),
    ),
    KindInfo(
        A.ImplementationSource,
        "implementationsources",
        ("implsrc",),
        (
            READY,
            PrinterColumn("Provider", "string", ".spec.provider"),
            PrinterColumn("LastSync", "date", ".status.lastSyncedAt"),
            READY_REASON,
            AGE,
        ),
    ),
    KindInfo(
        A.VersionControlProvider,
        "versioncontrolproviders",
        ("vcp",),
        (READY, PrinterColumn("Provider", "string", ".spec.provider"), READY_REASON, AGE),
    ),
    KindInfo(
        A.Memory,
        "memories",
        ("mem",),
        (
            READY,
            PrinterColumn("Type", "string", ".spec.type"),
            PrinterColumn("Default", "boolean", ".spec.default"),
            READY_REASON,
            AGE,
        ),
    ),
    KindInfo(
        orchestration.Orchestration,
        "orchestrations",
        ("orch",),
        (PHASE, PrinterColumn("Entrypoint", "string", ".spec.entrypoint"), READY_REASON, AGE),
    ),
    KindInfo(
        orchestration.OrchestrationRun,
        "orchestrationruns",
        ("orchrun",),
        (
            PHASE,
            PrinterColumn("Orchestration", "string", ".spec.orchestrationRef.name"),
            PrinterColumn("RunId", "string", ".status.runId"),
            SUCCEEDED_REASON,
            AGE,
        ),
    ),
    KindInfo(
        tools.Tool, "tools", (), (PHASE, PrinterColumn("Image", "string", ".spec.image"), READY_REASON, AGE)
    ),
    KindInfo(
        tools.ToolRun,
        "toolruns",
        ("tr",),
        (PHASE, PrinterColumn("Tool", "string", ".spec.toolRef.name"), SUCCEEDED_REASON, AGE),
    ),
    KindInfo(signals.Signal, "signals", ("sig",), (PHASE, READY_REASON, AGE)),
    KindInfo(
        signals.SignalDelivery,
        "signaldeliveries",
        ("sigd",),
        (PHASE, PrinterColumn("Signal", "string", ".spec.signalRef.name"), READY_REASON, AGE),
    ),
    KindInfo(
        schedules.Schedule,
        "schedules",
        ("sched",),
        (PHASE, PrinterColumn("Cron", "string", ".spec.cron"), READY_REASON, AGE),
    ),
    KindInfo(
        artifacts.Artifact,
        "artifacts",
        ("art",),
        (PHASE, PrinterColumn("URI", "string", ".status.uri"), READY_REASON, AGE),
    ),
    KindInfo(
        workspaces.Workspace,
        "workspaces",
        ("ws",),
        (PHASE, PrinterColumn("Volume", "string", ".status.volumeName"), READY_REASON, AGE),
    ),
    KindInfo(
        approvals.ApprovalPolicy,
        "approvalpolicies",
        ("apol",),
        (PHASE, PrinterColumn("Mode", "string", ".spec.mode"), READY_REASON, AGE),
    ),
    KindInfo(budgets.Budget, "budgets", (), (PHASE, READY_REASON, AGE)),
    KindInfo(security.SecretBinding, "secretbindings", ("sb",), (PHASE, READY_REASON, AGE)),
)

_BY_KIND = {info.kind: info for info in KINDS}
_BY_MODEL = {info.model: info for info in KINDS}
_BY_RESOURCE = {(info.group, info.plural): info for info in KINDS}


def by_kind(kind: str) -> KindInfo:
    """The kind named `kind` (e.g. "AgentRun"); KeyError when jangar does not serve it."""
    return _BY_KIND[kind]


def for_model(model: type[Resource[Any, Any]]) -> KindInfo:
    """The registry entry of a model class, e.g. `for_model(AgentRun).plural == "agentruns"`."""
    return _BY_MODEL[model]


def by_resource(group: str, plural: str) -> KindInfo:
    """The kind served at `group`/`plural`, e.g. ("agents.proompteng.ai", "agentruns")."""
    return _BY_RESOURCE[(group, plural)]


def for_object(obj: dict[str, Any]) -> KindInfo:
    """The registry entry of a manifest, checked against its apiVersion."""
    info = by_kind(str(obj.get("kind", "")))
    if obj.get("apiVersion") != info.api_version:
        raise KeyError(f"{info.kind} is served as {info.api_version}, not {obj.get('apiVersion')}")
    return info


def parse(obj: dict[str, Any]) -> Resource[Any, Any]:
    """Parse any jangar manifest into its model."""
    return for_object(obj).model.model_validate(obj)

"""Owner references and labels shared by a run's Job and ConfigMaps.

Controller owner references (`controller: true`, `blockOwnerDeletion: true`) let garbage collection remove
the children with the run and let the runtime's `owns()` map a Job event back to its AgentRun without
label lookups. Label values go through `label_value`, so a 200-character run name still yields a valid,
stable selector value (`label_value(run_name)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jangar.api.refs import AGENTRUNS
from jangar.runtime import controllerutil
from jangar.scheduler.context import RunContext
from jangar.scheduler.naming import label_value

__all__ = [
    "LABEL_AGENT",
    "LABEL_IMPLEMENTATION",
    "LABEL_MANAGED_BY",
    "LABEL_PROVIDER",
    "LABEL_RUN",
    "LABEL_STEP",
    "LABEL_STEP_INDEX",
    "owner_reference",
    "run_labels",
    "run_selector",
]

from jangar.api.contract import (
    LABEL_AGENT,
    LABEL_IMPLEMENTATION,
    LABEL_MANAGED_BY,
    LABEL_PROVIDER,
    LABEL_RUN,
    LABEL_STEP,
    LABEL_STEP_INDEX,
    MANAGED_BY,
)


def owner_reference(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The controller owner reference to an AgentRun, or `None` when it has no uid yet (never persisted)."""
    if not (run.get("metadata") or {}).get("uid"):
        return None
    return controllerutil.owner_reference(dict(run), AGENTRUNS)


def run_selector(run_name: str) -> str:
    """Label selector for every child of a run (all workflow steps included)."""
    return f"{LABEL_RUN}={label_value(run_name)}"


def run_labels(ctx: RunContext) -> dict[str, str]:
    labels = {
        LABEL_RUN: label_value(ctx.name),
        LABEL_AGENT: label_value(ctx.agent_name),
        LABEL_PROVIDER: label_value(ctx.provider_name),
        LABEL_MANAGED_BY: MANAGED_BY,
    }
    impl_ref = ctx.spec.get("implementationSpecRef")
    impl_name = ctx.implementation_name or (impl_ref.get("name") if isinstance(impl_ref, Mapping) else None)
    if ctx.step is not None:
        step_ref = ctx.step.spec.get("implementationSpecRef")
        if isinstance(step_ref, Mapping) and step_ref.get("name"):
            impl_name = str(step_ref["name"])
    labels[LABEL_IMPLEMENTATION] = label_value(impl_name or "inline")
    if ctx.step is not None:
        labels[LABEL_STEP] = label_value(ctx.step.name)
        labels[LABEL_STEP_INDEX] = str(ctx.step.index)
    return labels

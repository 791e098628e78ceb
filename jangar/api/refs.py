"""`ResourceRef`s for jangar's kinds, derived from the registry only (group, version, plural never drift).

`ref_for("AgentRun")` is what every client call, informer and watch uses; the constants name the kinds the
controllers and surfaces touch today.
"""

from __future__ import annotations

import functools

from jangar.api import registry
from jangar.runtime import ResourceRef

__all__ = [
    "AGENTPROVIDERS",
    "AGENTRUNS",
    "AGENTS",
    "IMPLEMENTATIONSOURCES",
    "IMPLEMENTATIONSPECS",
    "MEMORIES",
    "SECRETBINDINGS",
    "TOOLRUNS",
    "TOOLS",
    "VCSPROVIDERS",
    "ref_for",
]
__all__ += [
    "APPROVALPOLICIES",
    "BUDGETS",
    "ORCHESTRATIONRUNS",
    "ORCHESTRATIONS",
    "SIGNALDELIVERIES",
    "SIGNALS",
    "TOOLRUNS",
    "TOOLS",
]


@functools.cache
def ref_for(kind: str) -> ResourceRef:
    """The runtime's `ResourceRef` for one of jangar's kinds; KeyError for a kind jangar does not serve."""
    info = registry.by_kind(kind)
    return ResourceRef(info.group, info.version, info.kind, info.plural, namespaced=info.namespaced)


AGENTRUNS = ref_for("AgentRun")
AGENTS = ref_for("Agent")
AGENTPROVIDERS = ref_for("AgentProvider")
IMPLEMENTATIONSPECS = ref_for("ImplementationSpec")
IMPLEMENTATIONSOURCES = ref_for("ImplementationSource")
MEMORIES = ref_for("Memory")
VCSPROVIDERS = ref_for("VersionControlProvider")
SECRETBINDINGS = ref_for("SecretBinding")

# -- orchestration kinds (issue 10)
ORCHESTRATIONS = ref_for("Orchestration")
ORCHESTRATIONRUNS = ref_for("OrchestrationRun")
TOOLS = ref_for("Tool")
TOOLRUNS = ref_for("ToolRun")
APPROVALPOLICIES = ref_for("ApprovalPolicy")
SIGNALS = ref_for("Signal")
SIGNALDELIVERIES = ref_for("SignalDelivery")
BUDGETS = ref_for("Budget")

# -- workspaces and artifacts (issue 11)
WORKSPACES = ref_for("Workspace")
ARTIFACTS = ref_for("Artifact")
__all__ += ["ARTIFACTS", "WORKSPACES"]
# -- schedules (issue 11)
SCHEDULES = ref_for("Schedule")
__all__ += ["SCHEDULES"]

# -- issue 12: the reviews jangar.access asks the API server for (cluster-scoped, create-only)
TOKENREVIEWS = ResourceRef("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", namespaced=False)
SUBJECTACCESSREVIEWS = ResourceRef(
    "authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", namespaced=False
)
__all__ += ["SUBJECTACCESSREVIEWS", "TOKENREVIEWS"]

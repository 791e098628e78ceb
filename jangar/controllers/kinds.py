"""Resource references for every kind the agents controllers read or write, and their shared names.

The refs come from `jangar.api.registry`, so group, version and plural can never drift from the CRDs.
"""

from __future__ import annotations

import functools

from jangar.api import registry
from jangar.runtime import ResourceRef
from jangar.runtime.resources import CONFIGMAPS, EVENTS, JOBS, PODS, SECRETS

__all__ = [
    "AGENTPROVIDERS",
    "AGENTRUNS",
    "AGENTS",
    "ANNOTATION_CANCEL",
    "CONFIGMAPS",
    "EVENTS",
    "FINALIZER",
    "IMPLEMENTATIONSOURCES",
    "IMPLEMENTATIONSPECS",
    "JOBS",
    "MEMORIES",
    "PODS",
    "SECRETBINDINGS",
    "SECRETS",
    "VCSPROVIDERS",
    "ref_for",
]


@functools.cache
def ref_for(kind: str) -> ResourceRef:
    """The runtime's `ResourceRef` for one of jangar's kinds."""
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

#: The reference's finalizer name (§3.2): held until the run's runtime is cancelled and its outcome recorded.
FINALIZER = "agents.proompteng.ai/runtime-cleanup"
#: Explicit cancellation (the CRD has no cancel field): `kubectl annotate agentrun X agents.proompteng.ai/cancel=true`.
ANNOTATION_CANCEL = "agents.proompteng.ai/cancel"

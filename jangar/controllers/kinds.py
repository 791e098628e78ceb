"""Resource references the agents controllers read or write (jangar's kinds from `jangar.api.refs`, the
core kinds from `jangar.runtime.resources`), in one import for the controller modules."""

from __future__ import annotations

from jangar.api.refs import (
    AGENTPROVIDERS,
    AGENTRUNS,
    AGENTS,
    IMPLEMENTATIONSOURCES,
    IMPLEMENTATIONSPECS,
    MEMORIES,
    SECRETBINDINGS,
    VCSPROVIDERS,
    ref_for,
)
from jangar.runtime.resources import CONFIGMAPS, EVENTS, JOBS, PODS, SECRETS

__all__ = [
    "AGENTPROVIDERS",
    "AGENTRUNS",
    "AGENTS",
    "CONFIGMAPS",
    "EVENTS",
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

# -- issue 11: workspaces and artifacts
from jangar.api.refs import ARTIFACTS, WORKSPACES
from jangar.runtime import ResourceRef

PVCS = ResourceRef("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
__all__ += ["ARTIFACTS", "PVCS", "WORKSPACES"]

# -- issue 12: the runner ServiceAccount ensured in a run's namespace (controllers/runner_sa.py)
from jangar.runtime.resources import SERVICE_ACCOUNTS as SERVICEACCOUNTS  # noqa: E402

ROLEBINDINGS = ResourceRef("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings")
__all__ += ["ROLEBINDINGS", "SERVICEACCOUNTS"]

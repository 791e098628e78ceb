"""The runner ServiceAccount a run's Job pods use: checked before the Job is created, created when managed.

A Job whose pod names a ServiceAccount that does not exist in its namespace never gets a pod: the Job
controller retries quietly and the run only failed after the scheduling grace as `PodsNotCreated` (issue 12).
Now, before a run is submitted, its ServiceAccount is looked up in the informer cache:

* present: nothing to do;
* missing, and it is the managed runner ServiceAccount (`JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE=true`, the
  chart's ``runnerServiceAccount.create``, and the run uses the default
  ``JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT``): the controller creates it in the run's namespace right before the
  Job, so ``controller.namespaces=["*"]`` works in every namespace. It is labelled
  (`LABEL_RUNNER_SERVICE_ACCOUNT`), not owned by the run: the runs of a namespace share it, and it outlives them;
* missing otherwise (a name the run or the default workload gives): the run is held Pending at once with
  ``MissingServiceAccount`` (a missing reference: it waits the reference grace for the ServiceAccount, then
  fails with that reason).

A run that names no ServiceAccount at all uses ``default``, which Kubernetes creates in every namespace: it
is not checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from jangar.controllers.kinds import AGENTPROVIDERS, AGENTS, ROLEBINDINGS, SERVICEACCOUNTS
from jangar.runtime import (
    AlreadyExistsError,
    CacheReader,
    Client,
    JsonObject,
    Manager,
    ResourceCacheOptions,
)
from jangar.runtime.cache import InformerNotRegistered
from jangar.scheduler.workload import effective_service_account
from jangar.settings import Settings
from jangar.validation import Problem

log = structlog.get_logger("jangar.controllers.agentrun")

__all__ = [
    "LABEL_RUNNER_SERVICE_ACCOUNT",
    "MISSING_SERVICE_ACCOUNT",
    "ServiceAccountCheck",
    "ensure_service_account",
    "missing_service_account",
    "read_service_account_check",
    "role_binding_manifest",
    "scope_service_account_cache",
    "service_account_manifest",
]

#: Marks the runner ServiceAccounts jangar created (value ``"true"``).
LABEL_RUNNER_SERVICE_ACCOUNT = "agents.proompteng.ai/runner-service-account"
#: The condition reason of a run whose ServiceAccount does not exist.
MISSING_SERVICE_ACCOUNT = "MissingServiceAccount"


@dataclass(frozen=True)
class ServiceAccountCheck:
    """The run's ServiceAccount as the cache sees it."""

    name: str
    exists: bool
    #: the controller creates it when missing (the managed runner ServiceAccount)
    managed: bool

    @property
    def to_create(self) -> str | None:
        return self.name if not self.exists and self.managed else None

    @property
    def blocks(self) -> bool:
        """Missing and nobody but the user can create it: the run cannot start."""
        return not self.exists and not self.managed


def run_service_account(
    run: Mapping[str, Any], settings: Settings, provider: Mapping[str, Any] | None = None
) -> str | None:
    """The ServiceAccount the run's pods get (`runtime.config`, else its AgentProvider's
    `spec.workload.serviceAccountName`, else the default workload's)."""
    spec = run.get("spec") or {}
    config = (spec.get("runtime") or {}).get("config") or {}
    return effective_service_account(config if isinstance(config, Mapping) else {}, settings, provider)


def _run_provider(cache: CacheReader, run: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The run's AgentProvider through its Agent, from the cache (None when either is missing)."""
    ns = str(run["metadata"]["namespace"])
    agent_ref = (run.get("spec") or {}).get("agentRef") or {}
    agent_name = agent_ref.get("name") if isinstance(agent_ref, Mapping) else None
    try:
        agent = cache.get(AGENTS, str(agent_name), ns, copy=False) if agent_name else None
        provider_ref = ((agent or {}).get("spec") or {}).get("providerRef") or {}
        name = provider_ref.get("name") if isinstance(provider_ref, Mapping) else None
        return cache.get(AGENTPROVIDERS, str(name), ns, copy=False) if name else None
    except InformerNotRegistered:
        return None


def read_service_account_check(
    cache: CacheReader, run: Mapping[str, Any], settings: Settings
) -> ServiceAccountCheck | None:
    """None when the run names no ServiceAccount (``default``) or ServiceAccounts are not watched."""
    name = run_service_account(run, settings, _run_provider(cache, run))
    if not name or name == "default":
        return None
    ns = str(run["metadata"]["namespace"])
    try:
        exists = cache.get(SERVICEACCOUNTS, name, ns, copy=False) is not None
    except InformerNotRegistered:
        return None  # ServiceAccounts are not watched (a controller set up without them): not checked
    managed = settings.runner_service_account.create and name == (
        settings.runner.default_workload.service_account_name
    )
    return ServiceAccountCheck(name=name, exists=exists, managed=managed)


def missing_service_account(check: ServiceAccountCheck, namespace: str) -> Problem:
    return Problem(
        MISSING_SERVICE_ACCOUNT,
        f"serviceaccount {check.name!r} not found in namespace {namespace!r} (the run's pods could not be "
        "created); create it, or set runnerServiceAccount.create=true for the runner ServiceAccount",
        field="spec.runtime.config.serviceAccount",
    )


def service_account_manifest(name: str, namespace: str, settings: Settings | None) -> JsonObject:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {
            "app.kubernetes.io/managed-by": "jangar",
            "app.kubernetes.io/component": "runner",
            LABEL_RUNNER_SERVICE_ACCOUNT: "true",
        },
    }
    annotations = dict(settings.runner_service_account.annotations) if settings is not None else {}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}


def role_binding_manifest(name: str, namespace: str, cluster_role: str) -> JsonObject:
    """Binds the runner ClusterRole to the runner ServiceAccount in one namespace (same name as the SA)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "jangar",
                "app.kubernetes.io/component": "runner",
                LABEL_RUNNER_SERVICE_ACCOUNT: "true",
            },
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }


async def ensure_service_account(
    client: Client, name: str, namespace: str, settings: Settings | None
) -> None:
    """Create the runner ServiceAccount; one that appeared meanwhile (another run, a user) is kept as is.

    With `JANGAR_AGENT_RUNNER_CLUSTER_ROLE`, the RoleBinding giving it the runner rules is created FIRST: the
    ServiceAccount's existence is what later passes check, so once it exists its binding does too, whatever
    crash came between the two writes."""
    cluster_role = settings.runner_service_account.cluster_role if settings is not None else None
    if cluster_role:
        try:
            await client.create(ROLEBINDINGS, role_binding_manifest(name, namespace, cluster_role))
            log.info("runner rolebinding created", kind="RoleBinding", namespace=namespace, name=name)
        except AlreadyExistsError:
            pass
    try:
        await client.create(SERVICEACCOUNTS, service_account_manifest(name, namespace, settings))
    except AlreadyExistsError:
        return
    log.info("runner serviceaccount created", kind="ServiceAccount", namespace=namespace, name=name)


def scope_service_account_cache(manager: Manager, settings: Settings) -> None:
    """ServiceAccounts are watched in the AgentRun controller's namespaces only (before any informer)."""
    namespaces = (
        None if settings.agents_controller.all_namespaces else list(settings.agents_controller.namespaces)
    )
    options = manager.cache.options
    by_resource = dict(options.by_resource)
    by_resource.setdefault(SERVICEACCOUNTS, ResourceCacheOptions(namespaces=namespaces))
    manager.cache.options = dataclasses.replace(options, by_resource=by_resource)

"""Informer transforms that keep only what the reconcilers read from cached Jobs and Pods (issue 14 §4).

A cached Job or Pod is read by: the AgentRun and ToolRun decisions and `jangar.scheduler.outcome` /
`termination` (metadata, the whole `status`, `spec.ttlSecondsAfterFinished`, `spec.activeDeadlineSeconds`),
the Budget controller (`jangar.scheduler.budget`: containers' and init containers' `resources`, the pod
`overhead`, from a Pod's `spec` or a Job's `spec.template.spec`), the admission snapshot and the mappers
(metadata: labels, owner references, uid). Nothing reads a container's env, command, args, mounts or
probes, nor the pod's tolerations, affinity or security context, nor any volume but a Secret's name (the
token refresher asks whether a Job mounts a run's token Secret): those are the bulk of a runner
Job, and each is stored once for the Job and once again per Pod. Reads that need the full object (the log
service, the schedule service) go to the API server. `tests/unit/controllers/test_lean_cache.py` lists every
field a reader uses and checks that it survives.

Kept: all of `metadata` except `managedFields` and kubectl's last-applied annotation; all of `status`; every
top-level `spec` field except the pod template / pod spec lists named below and a Job's `selector`; per
container `name`, `image`, `resources`; Secret volumes as `{name, secret: {secretName}}`. A Job's
`spec.selector` and its template's `metadata` are dropped: nothing reads them from the cache (a Job's Pods are
found by the `job-name` label index, its run by owner reference), and the API server copies the Job's uid
into both (`controller-uid` labels and the selector), which made them a quarter of a lean Job's bytes
(measured: `scripts/bench/cache_bench.py --breakdown`). The transforms mutate the decoded
object in place (the informer owns it) and are idempotent.

Strings that repeat across every cached Job and Pod (a condition's type, status, reason and message; the
namespace; the image; scalar spec fields such as `restartPolicy`; resource quantities) are interned
(`sys.intern`): the JSON decoder shares only the keys of one response, so without it each cached object holds
its own copy of each value, about 50 to 90 bytes apiece. Only values from these low-cardinality fields are interned
(interning a unique value, a uid or a timestamp, would only add an entry to the interpreter's table); values
are unchanged, so no reader can tell.
"""

from __future__ import annotations

from sys import intern
from typing import Any, Protocol

from jangar.api.contract import LABEL_JOB_NAME
from jangar.controllers.kinds import PODS
from jangar.runtime import CacheReader, JsonObject, ResourceRef, strip_managed_fields
from jangar.runtime.store import IndexFunc, index_by_label

__all__ = [
    "CONDITION_SHARED_KEYS",
    "CONTAINER_KEYS",
    "JOB_SPEC_DROPPED",
    "JOB_SPEC_SHARED_KEYS",
    "POD_JOB_INDEX",
    "POD_SPEC_KEYS",
    "install_pod_index",
    "lean_job",
    "lean_pod",
    "lean_pod_spec",
    "pods_of_job",
]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

CONTAINER_KEYS = ("name", "image", "resources")
"""What survives of each container: its name (status matching), image, and requests/limits (budget)."""

POD_SPEC_KEYS = (
    "nodeName",
    "restartPolicy",
    "overhead",
    "priority",
    "priorityClassName",
    "schedulerName",
    "serviceAccountName",
    "activeDeadlineSeconds",
    "terminationGracePeriodSeconds",
)
"""Scalar pod-spec fields kept beside the (trimmed) container lists."""

_CONTAINER_LISTS = ("containers", "initContainers")

CONDITION_SHARED_KEYS = ("type", "status", "reason", "message")
"""Condition fields whose values repeat across objects (interned); the timestamps do not."""

JOB_SPEC_SHARED_KEYS = ("completionMode", "podReplacementPolicy")
"""Scalar Job spec fields set to one of a few values by the API server's defaults (interned)."""


def _intern_values(node: Any, keys: tuple[str, ...]) -> None:
    """Replace the string values of `keys` in `node` by their interned copy (equal values, one object)."""
    if not isinstance(node, dict):
        return
    for key in keys:
        value = node.get(key)
        if type(value) is str:
            node[key] = intern(value)


def _intern_quantities(resources: Any) -> None:
    if isinstance(resources, dict):
        for amounts in resources.values():
            if isinstance(amounts, dict):
                _intern_values(amounts, tuple(amounts))


def _intern_conditions(status: Any) -> None:
    if isinstance(status, dict):
        for condition in status.get("conditions") or ():
            _intern_values(condition, CONDITION_SHARED_KEYS)


def _lean_containers(containers: Any) -> Any:
    if not isinstance(containers, list):
        return containers
    lean = [{k: c[k] for k in CONTAINER_KEYS if k in c} if isinstance(c, dict) else c for c in containers]
    for container in lean:
        _intern_values(container, ("name", "image"))
        if isinstance(container, dict):
            _intern_quantities(container.get("resources"))
    return lean


def _lean_volumes(volumes: Any) -> Any:
    """Only the Secret volumes, as `{name, secret: {secretName}}`: the GitHub App token refresher
    (`app_token_refresh.token_secret_in_use`) asks whether a Job still mounts a run's token Secret."""
    if not isinstance(volumes, list):
        return volumes
    kept = []
    for v in volumes:
        secret = v.get("secret") if isinstance(v, dict) else None
        if isinstance(secret, dict):
            kept.append({"name": v.get("name"), "secret": {"secretName": secret.get("secretName")}})
    return kept


def lean_pod_spec(spec: Any) -> Any:
    """A pod spec reduced to `POD_SPEC_KEYS`, the containers' `CONTAINER_KEYS` and its Secret volumes."""
    if not isinstance(spec, dict):
        return spec
    out: dict[str, Any] = {k: spec[k] for k in POD_SPEC_KEYS if k in spec}
    _intern_values(out, POD_SPEC_KEYS)
    _intern_quantities(out.get("overhead"))
    for key in _CONTAINER_LISTS:
        if key in spec:
            out[key] = _lean_containers(spec[key])
    if "volumes" in spec:
        out["volumes"] = _lean_volumes(spec["volumes"])
    return out


def _lean_metadata(obj: JsonObject) -> None:
    strip_managed_fields(obj)
    _intern_values(obj, ("apiVersion", "kind"))
    _intern_conditions(obj.get("status"))
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        _intern_values(meta, ("namespace",))
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and LAST_APPLIED in annotations:
            annotations.pop(LAST_APPLIED)


def lean_pod(obj: JsonObject) -> JsonObject:
    """The Pod transform."""
    _lean_metadata(obj)
    if "spec" in obj:
        obj["spec"] = lean_pod_spec(obj["spec"])
    return obj


JOB_SPEC_DROPPED = ("selector",)
"""Top-level Job spec fields no reader takes from the cache (the selector repeats the Job's uid)."""


def lean_job(obj: JsonObject) -> JsonObject:
    """The Job transform: the pod template reduced to its spec, trimmed like a Pod's; no selector."""
    _lean_metadata(obj)
    spec = obj.get("spec")
    if isinstance(spec, dict):
        for key in JOB_SPEC_DROPPED:
            spec.pop(key, None)
        _intern_values(spec, JOB_SPEC_SHARED_KEYS)
        template = spec.get("template")
        if isinstance(template, dict):
            lean: dict[str, Any] = {}
            if "spec" in template:
                lean["spec"] = lean_pod_spec(template["spec"])
            spec["template"] = lean
    return obj


# -- the Pods of a Job, by index (issue 14 §2) -----------------------------------------------------------

POD_JOB_INDEX = "pod-job-name"
"""Pods by their `job-name` label: the reconcilers' per-Job Pod lookup without scanning the namespace."""


class _Indexable(Protocol):
    def add_index(self, ref: ResourceRef, name: str, func: IndexFunc) -> None: ...


def install_pod_index(cache: _Indexable) -> None:
    cache.add_index(PODS, POD_JOB_INDEX, index_by_label(LABEL_JOB_NAME))


def pods_of_job(cache: CacheReader, namespace: str, job: str) -> list[JsonObject]:
    """The cached Pods of Job `job` (shared objects: read only). A label scan of the namespace's Pods made
    every reconcile O(Pods in the namespace) (quadratic over a burst); a cache without the index (a unit
    test's fake) still gets the scan."""
    try:
        return cache.list(PODS, namespace, index=(POD_JOB_INDEX, job), copy=False)
    except KeyError:
        return cache.list(PODS, namespace, labels={LABEL_JOB_NAME: job}, copy=False)

"""Pod-level choices for a run: image, service account, scheduling fields and workload volumes.

`controller.defaultWorkload.*` (settings) gives defaults; a key present in `spec.runtime.config` replaces the
default wholesale, even when empty (an empty per-run value is how a run opts out of a default nodeSelector).
Empty objects and arrays are then left out of the pod spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jangar.api.shape import as_list, as_map
from jangar.scheduler.provider_workload import provider_image, provider_service_account
from jangar.settings import DefaultWorkloadSettings, Settings

__all__ = [
    "effective_service_account",
    "requested_service_account",
    "resolve_image",
    "scheduling_fields",
    "workload_volumes",
]


def resolve_image(
    workload: Mapping[str, Any], settings: Settings, provider: Mapping[str, Any] | None = None
) -> str | None:
    """`workload.image`, else the AgentProvider's `spec.workload.image`, else JANGAR_AGENT_RUNNER_IMAGE,
    else JANGAR_AGENT_IMAGE."""
    image = as_map(workload).get("image")
    if isinstance(image, str) and image.strip():
        return image.strip()
    return provider_image(provider) or settings.runner.default_image


def requested_service_account(runtime_config: object) -> str | None:
    """`runtime.config.serviceAccount` (or `serviceAccountName`) when the run names one."""
    for key in ("serviceAccount", "serviceAccountName"):
        value = as_map(runtime_config).get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def effective_service_account(
    runtime_config: Mapping[str, Any], settings: Settings, provider: Mapping[str, Any] | None = None
) -> str | None:
    """The run's requested ServiceAccount, else the AgentProvider's `spec.workload.serviceAccountName`,
    else the controller default."""
    return (
        requested_service_account(runtime_config)
        or provider_service_account(provider)
        or settings.runner.default_workload.service_account_name
    )


def _pull_secrets(value: Any) -> list[dict[str, str]]:
    result: list[dict[str, str]] = []
    for item in value if isinstance(value, list | tuple) else ():
        name = item if isinstance(item, str) else item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and name.strip():
            result.append({"name": name.strip()})
    return result


def _defaults(d: DefaultWorkloadSettings) -> dict[str, Any]:
    return {
        "nodeSelector": dict(d.node_selector),
        "tolerations": [dict(t) for t in d.tolerations],
        "topologySpreadConstraints": [dict(t) for t in d.topology_spread_constraints],
        "affinity": dict(d.affinity),
        "podSecurityContext": dict(d.pod_security_context),
        "imagePullSecrets": list(d.image_pull_secrets),
        "priorityClassName": d.priority_class_name,
        "schedulerName": d.scheduler_name,
    }


#: runtime.config key → pod spec field.
_POD_FIELDS = {
    "nodeSelector": "nodeSelector",
    "tolerations": "tolerations",
    "topologySpreadConstraints": "topologySpreadConstraints",
    "affinity": "affinity",
    "podSecurityContext": "securityContext",
    "imagePullSecrets": "imagePullSecrets",
    "priorityClassName": "priorityClassName",
    "schedulerName": "schedulerName",
}


def scheduling_fields(runtime_config: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """Pod spec fields from the defaults, each replaced by `runtime.config` when the key is present."""
    defaults = _defaults(settings.runner.default_workload)
    fields: dict[str, Any] = {}
    for key, pod_field in _POD_FIELDS.items():
        value = runtime_config[key] if key in runtime_config else defaults[key]
        if key == "imagePullSecrets":
            value = _pull_secrets(value)
        if value in (None, "", [], {}):
            continue
        fields[pod_field] = value
    return fields


def workload_volumes(workload: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) for `workload.volumes[]` of type emptyDir, pvc or secret."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for entry in as_list(as_map(workload).get("volumes")):
        name, mount_path, kind = entry.get("name"), entry.get("mountPath"), entry.get("type")
        if not name or not mount_path:
            continue
        read_only = bool(entry.get("readOnly", False))
        if kind == "emptyDir":
            source: dict[str, Any] = {}
            if entry.get("medium"):
                source["medium"] = entry["medium"]
            if entry.get("sizeLimit"):
                source["sizeLimit"] = entry["sizeLimit"]
            volumes.append({"name": name, "emptyDir": source})
        elif kind == "pvc":
            claim: dict[str, Any] = {"claimName": entry.get("claimName") or name}
            if read_only:
                claim["readOnly"] = True
            volumes.append({"name": name, "persistentVolumeClaim": claim})
        elif kind == "secret":
            volumes.append({"name": name, "secret": {"secretName": entry.get("secretName") or name}})
        else:
            continue
        mounts.append({"name": name, "mountPath": mount_path, "readOnly": read_only})
    return volumes, mounts

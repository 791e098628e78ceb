"""Resource identity and object keys.

The runtime handles every kind the same way, core and custom alike, so a resource is
described by the few facts needed to build its REST path rather than by a generated model
class. Objects themselves are plain JSON dicts, exactly as the API server sends them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JsonObject = dict[str, Any]
"""A Kubernetes object as decoded JSON. The runtime never converts it into a model."""


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """Identifies one resource type: enough to build its REST paths.

    ``group`` is ``""`` for the core API. ``plural`` is the URL segment (``"configmaps"``).
    ``namespaced`` decides between ``/namespaces/{ns}/{plural}`` and ``/{plural}``.
    """

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` field value: ``v1`` for core, else ``group/version``."""
        return self.version if not self.group else f"{self.group}/{self.version}"

    @property
    def group_kind(self) -> tuple[str, str]:
        """Group and kind: what owner references are matched on (version is ignored)."""
        return (self.group, self.kind)

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The REST path for a collection, an object or an object's subresource.

        A namespaced resource without a namespace gives the all-namespaces collection path.
        """
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            if not name:
                raise ValueError(f"empty name for {self.kind}")
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        elif subresource:
            raise ValueError("a subresource needs an object name")
        return base

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


# Well-known resources the runtime itself and most controllers need.
NAMESPACES = ResourceRef("", "v1", "Namespace", "namespaces", namespaced=False)
CONFIGMAPS = ResourceRef("", "v1", "ConfigMap", "configmaps")
SECRETS = ResourceRef("", "v1", "Secret", "secrets")
PODS = ResourceRef("", "v1", "Pod", "pods")
SERVICES = ResourceRef("", "v1", "Service", "services")
SERVICE_ACCOUNTS = ResourceRef("", "v1", "ServiceAccount", "serviceaccounts")
EVENTS = ResourceRef("", "v1", "Event", "events")
JOBS = ResourceRef("batch", "v1", "Job", "jobs")
DEPLOYMENTS = ResourceRef("apps", "v1", "Deployment", "deployments")
LEASES = ResourceRef("coordination.k8s.io", "v1", "Lease", "leases")
CUSTOM_RESOURCE_DEFINITIONS = ResourceRef(
    "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False
)


def object_key(obj: JsonObject) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go MetaNamespaceKeyFunc)."""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise ValueError("object has no metadata.name")
    ns = meta.get("namespace")
    return f"{ns}/{name}" if ns else str(name)


def make_key(namespace: str | None, name: str) -> str:
    """Build a store key from its parts."""
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str | None, str]:
    """Inverse of :func:`object_key`: ``(namespace or None, name)``."""
    ns, sep, name = key.partition("/")
    if not sep:
        return None, key
    if "/" in name or not ns or not name:
        raise ValueError(f"malformed key {key!r}")
    return ns, name


def resource_version(obj: JsonObject) -> str:
    """``metadata.resourceVersion``, or ``""`` when absent."""
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")

"""The Secrets and ConfigMaps a VersionControlProvider's auth refers to, and their key names.

Secrets are never cached (their values are not the controller's business); what a run's preparation and the
provider's status need is only whether each object exists and which keys it has, read on demand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jangar.runtime import Client, NotFoundError, ResourceRef

__all__ = ["read_keys", "referenced_objects"]


def _name(ref: Any) -> str | None:
    if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"].strip():
        return str(ref["name"]).strip()
    return None


def referenced_objects(provider: Mapping[str, Any] | None) -> tuple[set[str], set[str]]:
    """(Secret names, ConfigMap names) a VersionControlProvider's auth refers to."""
    auth = ((provider or {}).get("spec") or {}).get("auth") or {}
    secrets = {
        n
        for n in (
            _name((auth.get("token") or {}).get("secretRef")),
            _name((auth.get("app") or {}).get("privateKeySecretRef")),
            _name((auth.get("ssh") or {}).get("privateKeySecretRef")),
        )
        if n
    }
    configmaps = {n for n in (_name((auth.get("ssh") or {}).get("knownHostsConfigMapRef")),) if n}
    return secrets, configmaps


async def read_keys(
    client: Client, ref: ResourceRef, namespace: str, names: set[str]
) -> dict[str, frozenset[str] | None]:
    """Key names of each object (values are never kept); None for a missing object."""
    out: dict[str, frozenset[str] | None] = {}
    for name in sorted(names):
        try:
            obj = await client.get(ref, name, namespace)
        except NotFoundError:
            out[name] = None
            continue
        out[name] = (
            frozenset(obj.get("data") or {})
            | frozenset(obj.get("stringData") or {})
            | frozenset(obj.get("binaryData") or {})
        )
    return out

"""The Secrets and ConfigMaps a VersionControlProvider's auth refers to, and their key names.

Secrets are never cached (their values are not the controller's business); what a run's preparation and the
provider's status need is only whether each object exists and which keys it has, read on demand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jangar.api.shape import as_map
from jangar.runtime import Client, NotFoundError, ResourceRef
from jangar.runtime.resources import CONFIGMAPS, SECRETS

__all__ = ["KeyNames", "read_keys", "read_provider_keys", "referenced_objects"]

KeyNames = dict[str, frozenset[str] | None]
"""Object name → its key names (None: the object is missing)."""


def _name(ref: Any) -> str | None:
    if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"].strip():
        return str(ref["name"]).strip()
    return None


def referenced_objects(provider: Mapping[str, Any] | None) -> tuple[set[str], set[str]]:
    """(Secret names, ConfigMap names) a VersionControlProvider's auth refers to."""
    auth = as_map(as_map((provider or {}).get("spec")).get("auth"))
    secrets = {
        n
        for n in (
            _name(as_map(auth.get("token")).get("secretRef")),
            _name(as_map(auth.get("app")).get("privateKeySecretRef")),
            _name(as_map(auth.get("ssh")).get("privateKeySecretRef")),
        )
        if n
    }
    configmaps = {n for n in (_name(as_map(auth.get("ssh")).get("knownHostsConfigMapRef")),) if n}
    return secrets, configmaps


async def read_keys(client: Client, ref: ResourceRef, namespace: str, names: set[str]) -> KeyNames:
    """Key names of each object (values are never kept); None for a missing object."""
    out: KeyNames = {}
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


async def read_provider_keys(
    client: Client, namespace: str, provider: Mapping[str, Any]
) -> tuple[KeyNames, KeyNames]:
    """(Secret key names, ConfigMap key names) of everything the provider's auth refers to."""
    secret_names, configmap_names = referenced_objects(provider)
    return (
        await read_keys(client, SECRETS, namespace, secret_names),
        await read_keys(client, CONFIGMAPS, namespace, configmap_names),
    )

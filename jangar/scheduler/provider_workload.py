"""What an AgentProvider adds to its runs' pods (chart 0.9.29, drift rows 9 and 22).

* `spec.workload` gives provider-level defaults. Each field is chosen in one order, the reference's:
  the run (its step's, then its own `spec.workload` / `spec.runtime.config`), then the provider, then the
  controller default (`JANGAR_AGENT_RUNNER_IMAGE`, `JANGAR_AGENT_RUNNER_RESOURCES`,
  `JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT`). Resources are taken whole from the first level that sets any,
  never merged key by key (a limit without its request would change the pod's QoS class behind the user).
* `spec.workload.serviceAccountToken` is a projected ServiceAccount token (audience, expirationSeconds,
  path): the kubelet writes and rotates it, so no token is ever stored in a Secret or the Job.
* `spec.secretEnv[]` becomes env entries with `valueFrom.secretKeyRef`, never a literal value.
* `spec.adapter` names the runner contract the binary speaks; it reaches the binary as
  `AGENT_PROVIDER_ADAPTER`. 0.9.29 knows one adapter, `codex-app-server`; others are passed on as well
  (the binary decides) and the provider shows an `UnknownAdapter` Warning.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from jangar.api.shape import as_list, as_map
from jangar.scheduler.naming import dns_label

__all__ = [
    "ADAPTER_ENV",
    "KNOWN_ADAPTERS",
    "adapter_of",
    "effective_resources",
    "provider_image",
    "provider_secret_env",
    "provider_service_account",
    "provider_workload",
    "secret_env_secrets",
    "token_volume",
]

ADAPTER_ENV = "AGENT_PROVIDER_ADAPTER"
KNOWN_ADAPTERS = frozenset({"codex-app-server"})


def provider_workload(provider: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """`provider.spec.workload`, or an empty mapping."""
    return as_map(as_map(as_map(provider).get("spec")).get("workload"))


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def provider_image(provider: Mapping[str, Any] | None) -> str | None:
    return _text(provider_workload(provider).get("image"))


def provider_service_account(provider: Mapping[str, Any] | None) -> str | None:
    return _text(provider_workload(provider).get("serviceAccountName"))


def _cleaned_resources(resources: Any) -> dict[str, dict[str, Any]]:
    return {
        k: dict(v)
        for k, v in as_map(resources).items()
        if k in ("requests", "limits") and isinstance(v, Mapping) and v
    }


def effective_resources(
    run_workload: Mapping[str, Any],
    provider: Mapping[str, Any] | None,
    default: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """The container's resources: the run's, else the provider's, else the controller default (whole)."""
    for candidate in (run_workload.get("resources"), provider_workload(provider).get("resources"), default):
        cleaned = _cleaned_resources(candidate)
        if cleaned:
            return cleaned
    return {}


def adapter_of(provider: Mapping[str, Any] | None) -> str | None:
    return _text(as_map(as_map(provider).get("spec")).get("adapter"))


def provider_secret_env(provider: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """`spec.secretEnv[]` as EnvVar dicts with `valueFrom.secretKeyRef` (the key defaults to the name)."""
    env: list[dict[str, Any]] = []
    for entry in as_list(as_map(as_map(provider).get("spec")).get("secretEnv")):
        ref = as_map(as_map(entry).get("secretKeyRef"))
        name, secret = _text(as_map(entry).get("name")), _text(ref.get("name"))
        if name is None or secret is None:
            continue
        key = _text(ref.get("key")) or name
        env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return env


def secret_env_secrets(provider: Mapping[str, Any] | None) -> list[str]:
    """The Secret names `spec.secretEnv` reads (for the Agent's allowedSecrets check)."""
    names = (e["valueFrom"]["secretKeyRef"]["name"] for e in provider_secret_env(provider))
    return list(dict.fromkeys(names))


def token_volume(
    provider: Mapping[str, Any] | None, run_name: str, step: tuple[int, int] | None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(volume, volumeMount) of the projected ServiceAccount token, or None when the provider asks none.

    The file is projected into a directory of its own (the mount is the path's parent, read-only), so the
    token does not hide anything else the image has there."""
    token = as_map(provider_workload(provider).get("serviceAccountToken"))
    path = _text(token.get("path"))
    if path is None or not path.startswith("/") or path.endswith("/"):
        return None
    directory, filename = posixpath.split(posixpath.normpath(path))
    source: dict[str, Any] = {"path": filename}
    audience = _text(token.get("audience"))
    if audience is not None:
        source["audience"] = audience
    expiry = token.get("expirationSeconds")
    if isinstance(expiry, int) and not isinstance(expiry, bool) and expiry >= 600:
        source["expirationSeconds"] = expiry
    name = dns_label(run_name, "sa-token", *(map(str, step) if step else ()))
    volume = {"name": name, "projected": {"sources": [{"serviceAccountToken": source}]}}
    mount = {"name": name, "mountPath": directory or "/", "readOnly": True}
    return volume, mount

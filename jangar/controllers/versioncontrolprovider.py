"""VersionControlProvider: provider, auth method and token type per provider, and the auth material.

Reference §5.1: the method is explicit or inferred (token, app, ssh, none); each provider allows some methods
and token types and has a default token type; deprecated token types (`controller.vcsProviders.
deprecatedTokenTypes`, default github: pat) give `Warning=True/DeprecatedAuth` but still work. Secrets and the
known-hosts ConfigMap are read directly and re-checked on a timer when missing. `lastValidatedAt` is not
stamped on every pass (the reference's reconcile storm, §12.5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jangar.controllers.kinds import CONFIGMAPS
from jangar.controllers.status import Cond
from jangar.controllers.supporting import CheckEnv, Verdict, invalid, read_secret_key, ready, unreachable
from jangar.runtime import JsonObject, NotFoundError

__all__ = ["ADAPTERS", "check_vcs_provider", "infer_method", "normalize_token_type"]


@dataclass(frozen=True)
class Adapter:
    methods: frozenset[str]
    token_types: frozenset[str]
    default_token_type: str | None
    default_username: str


_ALL_TYPES = frozenset({"pat", "fine_grained", "api_token", "access_token"})
ADAPTERS: dict[str, Adapter] = {
    "github": Adapter(
        frozenset({"token", "app", "ssh", "none"}),
        frozenset({"pat", "fine_grained", "access_token"}),
        "fine_grained",
        "x-access-token",
    ),
    "gitlab": Adapter(
        frozenset({"token", "ssh", "none"}), frozenset({"pat", "access_token"}), "access_token", "oauth2"
    ),
    "bitbucket": Adapter(
        frozenset({"token", "ssh", "none"}), frozenset({"access_token"}), "access_token", "x-token-auth"
    ),
    "gitea": Adapter(
        frozenset({"token", "ssh", "none"}), frozenset({"api_token", "access_token"}), "api_token", "git"
    ),
    "generic": Adapter(frozenset({"token", "ssh", "none"}), _ALL_TYPES, None, "git"),
}
_ALIASES = {
    "personal_access_token": "pat",
    "fine-grained": "fine_grained",
    "finegrained": "fine_grained",
    "api": "api_token",
    "access": "access_token",
}


def normalize_token_type(value: str | None) -> str | None:
    if not value:
        return None
    lowered = value.strip().lower()
    aliased = _ALIASES.get(lowered) or _ALIASES.get(lowered.replace("-", "_"))
    return aliased or lowered.replace("-", "_")


def infer_method(auth: Mapping[str, Any]) -> str:
    if auth.get("method"):
        return str(auth["method"])
    if ((auth.get("token") or {}).get("secretRef") or {}).get("name"):
        return "token"
    if ((auth.get("app") or {}).get("privateKeySecretRef") or {}).get("name"):
        return "app"
    if ((auth.get("ssh") or {}).get("privateKeySecretRef") or {}).get("name"):
        return "ssh"
    return "none"


async def _configmap_key(env: CheckEnv, ns: str, name: str, key: str) -> Verdict | None:
    try:
        cm = await env.client.get(CONFIGMAPS, name, ns)
    except NotFoundError:
        return unreachable("ConfigMapNotFound", f"configmap {name!r} not found in namespace {ns!r}")
    if key not in (cm.get("data") or {}):
        return invalid("ConfigMapKeyMissing", f"configmap {name!r} has no key {key!r}", requeue_after=60.0)
    return None


async def check_vcs_provider(obj: JsonObject, env: CheckEnv) -> Verdict:
    ns = obj["metadata"]["namespace"]
    spec = obj.get("spec") or {}
    provider = spec.get("provider")
    if not provider:
        return invalid("MissingProvider", "spec.provider is required")
    adapter = ADAPTERS.get(str(provider))
    if adapter is None:
        return invalid("UnsupportedProvider", f"provider {provider!r} is not one of {', '.join(ADAPTERS)}")
    auth = spec.get("auth") or {}
    method = infer_method(auth)
    if method not in adapter.methods:
        return invalid("UnsupportedAuth", f"auth method {method!r} is not supported for {provider} providers")
    warnings: list[str] = []
    if method == "token":
        token = auth.get("token") or {}
        token_type = normalize_token_type(token.get("type")) or adapter.default_token_type
        if token_type is not None and token_type not in adapter.token_types:
            return invalid(
                "UnsupportedAuth", f"auth.token.type={token_type} is not supported for {provider} providers"
            )
        deprecated = env.settings.vcs.deprecated_token_types.get(str(provider), ())
        if token_type in deprecated:
            warnings.append(f"auth.token.type={token_type} is deprecated for {provider} providers")
        ref = token.get("secretRef") or {}
        if not ref.get("name"):
            return invalid("MissingSecretRef", "auth.token.secretRef.name is required for token auth")
        problem = await read_secret_key(env.client, ns, str(ref["name"]), str(ref.get("key") or "token"))
    elif method == "app":
        app = auth.get("app") or {}
        ref = app.get("privateKeySecretRef") or {}
        if not app.get("appId") or not app.get("installationId") or not ref.get("name"):
            return invalid(
                "MissingAppAuth", "app auth needs auth.app.appId, installationId and privateKeySecretRef"
            )
        problem = await read_secret_key(env.client, ns, str(ref["name"]), str(ref.get("key") or "privateKey"))
    elif method == "ssh":
        ssh = auth.get("ssh") or {}
        ref = ssh.get("privateKeySecretRef") or {}
        if not ref.get("name"):
            return invalid("MissingSecretRef", "auth.ssh.privateKeySecretRef.name is required for ssh auth")
        problem = await read_secret_key(env.client, ns, str(ref["name"]), str(ref.get("key") or "privateKey"))
        known = ssh.get("knownHostsConfigMapRef") or {}
        if problem is None and known.get("name"):
            problem = await _configmap_key(
                env, ns, str(known["name"]), str(known.get("key") or "known_hosts")
            )
    else:
        problem = None
    warning = (
        Cond("Warning", True, "DeprecatedAuth", "; ".join(warnings))
        if warnings
        else Cond("Warning", False, "None")
    )
    if problem is not None:
        return dataclasses.replace(problem, conditions=(warning,))
    if method == "none":
        return ready("NoAuth", "no credentials configured", conditions=(warning,))
    return ready("AuthReady", f"{method} auth ready", conditions=(warning,))

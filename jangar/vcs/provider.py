"""What the VersionControlProvider reconciler writes: Ready/InvalidSpec/Unreachable/Warning (reference §5.1).

Returns condition values, not timestamps: the reference stamped `lastValidatedAt` on every pass, which woke
its own watch and looped (§12.5). The reconciler should write status only when these change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jangar.api.shape import as_map
from jangar.settings import Settings
from jangar.vcs.adapters import ADAPTERS, check_auth

__all__ = ["ProviderCheck", "check_provider"]

KeyLookup = Callable[[str, str], bool | None]  # True: key present; False: key missing; None: object missing


@dataclass(frozen=True)
class ProviderCheck:
    """`conditions`: type → (status, reason, message), each type always given a definitive value."""

    conditions: dict[str, tuple[bool, str, str]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.conditions["Ready"][0]


def _ref(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, Mapping):
        return None, None
    name = value.get("name") if isinstance(value.get("name"), str) and value["name"].strip() else None
    key = value.get("key") if isinstance(value.get("key"), str) and value["key"].strip() else None
    return name, key


def _result(
    ready: tuple[bool, str, str],
    invalid: tuple[bool, str, str],
    unreachable: tuple[bool, str, str],
    warning: tuple[bool, str, str],
) -> ProviderCheck:
    return ProviderCheck(
        {"Ready": ready, "InvalidSpec": invalid, "Unreachable": unreachable, "Warning": warning}
    )


def check_provider(
    provider: Mapping[str, Any],
    settings: Settings,
    *,
    secret_key: KeyLookup,
    configmap_key: KeyLookup,
) -> ProviderCheck:
    spec = as_map(provider.get("spec"))
    ok = (False, "Reconciled", "")
    kind = spec.get("provider")
    if not isinstance(kind, str) or not kind.strip():
        msg = "spec.provider is required"
        return _result(
            (False, "MissingProvider", msg), (True, "MissingProvider", msg), ok, (False, "None", "")
        )
    if kind.strip().lower() not in ADAPTERS:
        msg = f"provider {kind!r} is not supported (github, gitlab, bitbucket, gitea, generic)"
        return _result(
            (False, "UnsupportedProvider", msg), (True, "UnsupportedProvider", msg), ok, (False, "None", "")
        )
    auth_check = check_auth(spec, settings)
    warning = (
        (True, auth_check.warnings[0].reason, "; ".join(w.message for w in auth_check.warnings))
        if auth_check.warnings
        else (False, "None", "")
    )
    if auth_check.problems:
        msg = "; ".join(p.message for p in auth_check.problems)
        return _result((False, "UnsupportedAuth", msg), (True, "UnsupportedAuth", msg), ok, warning)
    auth = as_map(spec.get("auth"))
    method = auth_check.method
    checks: list[tuple[str, str | None, str, str]] = []  # (kind, name, key, what)
    if method == "token":
        name, key = _ref(as_map(auth.get("token")).get("secretRef"))
        checks.append(("Secret", name, key or "token", "auth.token.secretRef"))
    elif method == "app":
        app = as_map(auth.get("app"))
        name, key = _ref(app.get("privateKeySecretRef"))
        if not app.get("appId") or not app.get("installationId") or not name:
            msg = "auth.app needs appId, installationId and privateKeySecretRef.name"
            return _result((False, "MissingAppAuth", msg), (True, "MissingAppAuth", msg), ok, warning)
        checks.append(("Secret", name, key or "privateKey", "auth.app.privateKeySecretRef"))
    elif method == "ssh":
        ssh = as_map(auth.get("ssh"))
        name, key = _ref(ssh.get("privateKeySecretRef"))
        checks.append(("Secret", name, key or "privateKey", "auth.ssh.privateKeySecretRef"))
        kh_name, kh_key = _ref(ssh.get("knownHostsConfigMapRef"))
        if kh_name:
            checks.append(("ConfigMap", kh_name, kh_key or "known_hosts", "auth.ssh.knownHostsConfigMapRef"))
    else:
        return _result((True, "NoAuth", "no authentication configured"), ok, ok, warning)
    for object_kind, name, key, what in checks:
        if not name:
            msg = f"{what}.name is required for auth.method={method}"
            return _result((False, "MissingSecretRef", msg), (True, "MissingSecretRef", msg), ok, warning)
        present = (secret_key if object_kind == "Secret" else configmap_key)(name, key)
        if present is None:
            reason = "SecretNotFound" if object_kind == "Secret" else "ConfigMapNotFound"
            msg = f"{object_kind} {name!r} ({what}) not found"
            return _result((False, reason, msg), ok, (True, reason, msg), warning)
        if not present:
            reason = "SecretKeyMissing" if object_kind == "Secret" else "ConfigMapKeyMissing"
            msg = f"{object_kind} {name!r} has no key {key!r} ({what})"
            return _result((False, reason, msg), (True, reason, msg), ok, warning)
    return _result((True, "AuthReady", f"{method} authentication is configured"), ok, ok, warning)

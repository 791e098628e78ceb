"""Per-provider auth rules for VersionControlProviders (reference §5.1).

Each provider allows some auth methods and token types, has a default token type and username, and may
deprecate token types (`controller.vcsProviders.deprecatedTokenTypes` replaces the built-in list). Used both by
the VersionControlProvider reconciler (conditions on the provider) and by run resolution (warnings on runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jangar.api.shape import as_map
from jangar.settings import Settings
from jangar.validation.problems import Problem

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AuthCheck",
    "adapter_for",
    "check_auth",
    "infer_auth_method",
    "normalize_token_type",
]

ALL_TOKEN_TYPES = ("pat", "fine_grained", "api_token", "access_token")


@dataclass(frozen=True)
class Adapter:
    name: str
    methods: frozenset[str]
    token_types: tuple[str, ...]
    default_token_type: str | None
    deprecated: tuple[str, ...]
    username: str
    api_base_url: str | None = None


ADAPTERS: dict[str, Adapter] = {
    "github": Adapter(
        "github",
        frozenset({"token", "app", "ssh", "none"}),
        ("pat", "fine_grained", "access_token"),
        "fine_grained",
        ("pat",),
        "x-access-token",
        "https://api.github.com",
    ),
    "gitlab": Adapter(
        "gitlab", frozenset({"token", "ssh", "none"}), ("pat", "access_token"), "access_token", (), "oauth2"
    ),
    "bitbucket": Adapter(
        "bitbucket",
        frozenset({"token", "ssh", "none"}),
        ("access_token",),
        "access_token",
        (),
        "x-token-auth",
    ),
    "gitea": Adapter(
        "gitea", frozenset({"token", "ssh", "none"}), ("api_token", "access_token"), "api_token", (), "git"
    ),
    "generic": Adapter("generic", frozenset({"token", "ssh", "none"}), ALL_TOKEN_TYPES, None, (), "git"),
}

_ALIASES = {
    "personal_access_token": "pat",
    "fine-grained": "fine_grained",
    "finegrained": "fine_grained",
    "api": "api_token",
    "access": "access_token",
}


def adapter_for(provider: str | None) -> Adapter:
    """The adapter for a provider type; unknown providers get `generic`'s rules."""
    name = provider if isinstance(provider, str) else ""
    return ADAPTERS.get(name.strip().lower(), ADAPTERS["generic"])


def normalize_token_type(value: str | None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    lowered = value.strip().lower()
    lowered = _ALIASES.get(lowered, lowered)
    lowered = lowered.replace("-", "_")
    return _ALIASES.get(lowered, lowered)


def _name(ref: Any) -> str | None:
    if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"].strip():
        return str(ref["name"]).strip()
    return None


def infer_auth_method(auth: Mapping[str, Any]) -> str:
    """The explicit `auth.method`, else token → app → ssh by which secret ref is set, else `none`."""
    method = auth.get("method")
    if isinstance(method, str) and method.strip():
        return method.strip().lower()
    if _name(as_map(auth.get("token")).get("secretRef")):
        return "token"
    if _name(as_map(auth.get("app")).get("privateKeySecretRef")):
        return "app"
    if _name(as_map(auth.get("ssh")).get("privateKeySecretRef")):
        return "ssh"
    return "none"


@dataclass(frozen=True)
class AuthCheck:
    method: str
    token_type: str | None
    problems: list[Problem] = field(default_factory=list)  # UnsupportedAuth-style, for the provider
    warnings: list[Problem] = field(default_factory=list)  # DeprecatedAuth


def check_auth(spec: Mapping[str, Any], settings: Settings) -> AuthCheck:
    """Validate a provider's auth method and token type against its adapter."""
    provider = str(spec.get("provider") or "")
    adapter = adapter_for(provider)
    auth = as_map(spec.get("auth"))
    method = infer_auth_method(auth)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if method not in adapter.methods:
        problems.append(
            Problem(
                "UnsupportedAuth",
                f"auth.method={method} is not supported for {adapter.name} providers "
                f"(supported: {', '.join(sorted(adapter.methods))})",
                "spec.auth.method",
            )
        )
    token_type: str | None = None
    if method == "token":
        token_type = normalize_token_type(as_map(auth.get("token")).get("type")) or adapter.default_token_type
        if token_type is not None and token_type not in adapter.token_types:
            problems.append(
                Problem(
                    "UnsupportedAuth",
                    f"auth.token.type={token_type} is not supported for {adapter.name} providers "
                    f"(supported: {', '.join(adapter.token_types)})",
                    "spec.auth.token.type",
                )
            )
        deprecated = settings.vcs.deprecated_token_types.get(adapter.name, adapter.deprecated)
        if token_type is not None and token_type in deprecated:
            warnings.append(
                Problem(
                    "DeprecatedAuth",
                    f"auth.token.type={token_type} is deprecated for {adapter.name} providers",
                    "spec.auth.token.type",
                )
            )
    return AuthCheck(method, token_type, problems, warnings)

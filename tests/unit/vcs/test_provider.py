from __future__ import annotations

from typing import Any

from jangar.settings import Settings
from jangar.vcs import check_provider

SECRETS = {"gh": {"token"}, "app": {"privateKey"}}
CONFIGMAPS = {"hosts": {"known_hosts"}}


def secret_key(name: str, key: str) -> bool | None:
    return None if name not in SECRETS else key in SECRETS[name]


def configmap_key(name: str, key: str) -> bool | None:
    return None if name not in CONFIGMAPS else key in CONFIGMAPS[name]


def check(spec: dict[str, Any]) -> dict[str, tuple[bool, str, str]]:
    return check_provider(
        {"spec": spec}, Settings(), secret_key=secret_key, configmap_key=configmap_key
    ).conditions


def test_ready_with_token_and_deprecation_warning() -> None:
    ok = check({"provider": "github", "auth": {"method": "token", "token": {"secretRef": {"name": "gh"}}}})
    assert ok["Ready"][:2] == (True, "AuthReady")
    assert ok["InvalidSpec"][0] is False and ok["Unreachable"][0] is False
    assert ok["Warning"] == (False, "None", "")
    pat = check({"provider": "github", "auth": {"token": {"secretRef": {"name": "gh"}, "type": "pat"}}})
    assert pat["Warning"][:2] == (True, "DeprecatedAuth")


def test_failures() -> None:
    assert check({})["InvalidSpec"][:2] == (True, "MissingProvider")
    assert check({"provider": "svn"})["InvalidSpec"][:2] == (True, "UnsupportedProvider")
    assert check({"provider": "gitlab", "auth": {"method": "app"}})["InvalidSpec"][:2] == (
        True,
        "UnsupportedAuth",
    )
    missing = check(
        {"provider": "github", "auth": {"method": "token", "token": {"secretRef": {"name": "nope"}}}}
    )
    assert missing["Unreachable"][:2] == (True, "SecretNotFound")
    assert missing["Ready"][0] is False
    nokey = check(
        {
            "provider": "github",
            "auth": {"method": "token", "token": {"secretRef": {"name": "gh", "key": "x"}}},
        }
    )
    assert nokey["InvalidSpec"][:2] == (True, "SecretKeyMissing")
    app = check(
        {"provider": "github", "auth": {"method": "app", "app": {"privateKeySecretRef": {"name": "app"}}}}
    )
    assert app["InvalidSpec"][:2] == (True, "MissingAppAuth")
    ssh = {
        "method": "ssh",
        "ssh": {
            "privateKeySecretRef": {"name": "gh", "key": "token"},
            "knownHostsConfigMapRef": {"name": "other"},
        },
    }
    assert check({"provider": "gitea", "auth": ssh})["Unreachable"][:2] == (True, "ConfigMapNotFound")
    assert check({"provider": "generic", "auth": {"method": "none"}})["Ready"][:2] == (True, "NoAuth")

"""jangar.access: bearer parsing, the bounded TTL cache, TokenReview/SubjectAccessReview answers and their
caching (denials shorter), the shared gRPC token's identity, and the Secrets an object names."""

from __future__ import annotations

from typing import Any

import pytest

from jangar.access import (
    SHARED_TOKEN_GROUPS,
    SHARED_TOKEN_USER,
    AccessUnavailable,
    Attributes,
    KubeAccess,
    PermissionDenied,
    SharedTokenAccess,
    TTLCache,
    Unauthenticated,
    UserInfo,
    bearer_token,
    referenced_secrets,
    secret_reads,
)
from jangar.access.review import REVIEWS_IN_FLIGHT
from jangar.runtime import ApiError
from jangar.settings import Settings, SettingsError

CREATE_RUNS = Attributes("create", "agents.proompteng.ai", "agentruns", "team-a")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ReviewClient:
    """Answers TokenReview from `tokens` and SubjectAccessReview from `grants`; counts what it was asked."""

    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {
            "good": {"username": "system:serviceaccount:team-a:bot", "uid": "u1", "groups": ["g1"]}
        }
        self.grants: set[tuple[str, str, str, str]] = {
            ("system:serviceaccount:team-a:bot", "create", "agentruns", "team-a")
        }
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: ApiError | None = None

    async def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> Any:
        assert method == "POST"
        self.calls.append((path, body))
        if self.fail is not None:
            raise self.fail
        spec = body["spec"]
        if path.endswith("/tokenreviews"):
            user = self.tokens.get(spec["token"])
            return {"status": {"authenticated": True, "user": user} if user else {"authenticated": False}}
        assert path.endswith("/subjectaccessreviews")
        attrs = spec["resourceAttributes"]
        key = (spec["user"], attrs["verb"], attrs["resource"], attrs.get("namespace", ""))
        return {"status": {"allowed": key in self.grants, "reason": "" if key in self.grants else "no RBAC"}}

    def count(self, suffix: str) -> int:
        return sum(1 for path, _ in self.calls if path.endswith(suffix))


def _access(client: ReviewClient, clock: Clock, **kwargs: Any) -> KubeAccess:
    return KubeAccess(client, clock=clock, authn_ttl=120, authz_ttl=120, denied_ttl=30, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer", None),
        ("Bearer    ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("abc", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_header_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_ttl_cache_expires_bounds_and_evicts_least_recent() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(2, clock=clock)
    cache.put("a", 1, 10)
    cache.put("b", 2, 100)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3, 100)  # evicts b, the least recently used
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2
    clock.now += 10
    assert cache.get("a") is None  # expired exactly at its TTL
    assert cache.get("c") == 3
    cache.put("c", 4, 0)  # a TTL of 0 stores nothing (and forgets the old value)
    assert cache.get("c") is None
    with pytest.raises(ValueError):
        TTLCache(0)


def test_permission_message_is_kubectl_style() -> None:
    assert CREATE_RUNS.describe("x") == (
        'user "x" cannot create resource "agentruns" in API group "agents.proompteng.ai" in the namespace "team-a"'
    )
    logs = Attributes("get", "", "pods", "ns", subresource="log")
    assert (
        logs.describe("y") == 'user "y" cannot get resource "pods/log" in API group "" in the namespace "ns"'
    )
    cluster = Attributes("list", "agents.proompteng.ai", "agentruns")
    assert cluster.describe("z").endswith('in API group "agents.proompteng.ai" at the cluster scope')
    denied = PermissionDenied(UserInfo("x"), CREATE_RUNS, "no RBAC")
    assert denied.message == CREATE_RUNS.describe("x") + ": no RBAC"


async def test_tokenreview_identity_is_cached_and_never_stored_in_clear() -> None:
    client, clock = ReviewClient(), Clock()
    access = _access(client, clock)
    user = await access.authenticate("good")
    assert user == UserInfo("system:serviceaccount:team-a:bot", "u1", ("g1",))
    assert await access.authenticate("good") == user
    assert client.count("/tokenreviews") == 1
    assert "good" not in repr(access._tokens._entries)  # cached under its digest
    clock.now += 121
    await access.authenticate("good")
    assert client.count("/tokenreviews") == 2


async def test_refused_tokens_are_cached_shorter_and_missing_tokens_never_asked() -> None:
    client, clock = ReviewClient(), Clock()
    access = _access(client, clock)
    for token in (None, ""):
        with pytest.raises(Unauthenticated):
            await access.authenticate(token)
    assert client.calls == []
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await access.authenticate("bad")
    assert client.count("/tokenreviews") == 1
    client.tokens["bad"] = {"username": "late"}  # e.g. a token that was not yet valid
    clock.now += 31
    assert (await access.authenticate("bad")).username == "late"


async def test_api_errors_are_unavailable_and_not_cached() -> None:
    client, clock = ReviewClient(), Clock()
    access = _access(client, clock)
    client.fail = ApiError(503, "ServiceUnavailable", "etcd")
    with pytest.raises(AccessUnavailable, match="TokenReview failed"):
        await access.authenticate("good")
    user = UserInfo("system:serviceaccount:team-a:bot")
    with pytest.raises(AccessUnavailable, match="SubjectAccessReview failed"):
        await access.require(user, CREATE_RUNS)
    client.fail = None
    assert (await access.authenticate("good")).uid == "u1"
    await access.require(user, CREATE_RUNS)


async def test_subjectaccessreview_grants_and_denials_with_their_ttls() -> None:
    client, clock = ReviewClient(), Clock()
    access = _access(client, clock)
    bot = UserInfo("system:serviceaccount:team-a:bot", "u1", ("g1",), (("scopes", ("a",)),))
    await access.require(bot, CREATE_RUNS)
    await access.require(bot, CREATE_RUNS)
    assert client.count("/subjectaccessreviews") == 1
    spec = client.calls[-1][1]["spec"]
    assert spec == {
        "user": bot.username,
        "uid": "u1",
        "groups": ["g1"],
        "extra": {"scopes": ["a"]},
        "resourceAttributes": {
            "verb": "create",
            "group": "agents.proompteng.ai",
            "resource": "agentruns",
            "namespace": "team-a",
        },
    }
    delete = Attributes("delete", "agents.proompteng.ai", "agentruns", "team-a", "r1")
    with pytest.raises(PermissionDenied) as denied:
        await access.require(bot, CREATE_RUNS, delete)
    assert denied.value.attributes == delete
    assert 'cannot delete resource "agentruns" "r1"' in denied.value.message
    # A new RoleBinding is seen once the denial expires (30 s), a removed one once the grant expires (120 s).
    client.grants.add((bot.username, "delete", "agentruns", "team-a"))
    clock.now += 29
    with pytest.raises(PermissionDenied):
        await access.require(bot, delete)
    clock.now += 2
    await access.require(bot, delete)
    client.grants.clear()
    clock.now += 60
    await access.require(bot, CREATE_RUNS)  # granted 91 s ago: still cached
    clock.now += 30
    with pytest.raises(PermissionDenied):
        await access.require(bot, CREATE_RUNS)


async def test_shared_token_is_a_documented_identity_authorized_like_anyone() -> None:
    client, clock = ReviewClient(), Clock()
    access = SharedTokenAccess(_access(client, clock), "s3cret-token")
    shared = await access.authenticate("s3cret-token")
    assert shared == UserInfo(SHARED_TOKEN_USER, groups=SHARED_TOKEN_GROUPS)
    assert shared.username == "jangar:grpc-shared-token"
    assert client.count("/tokenreviews") == 0  # never sent to the API server
    with pytest.raises(PermissionDenied, match='user "jangar:grpc-shared-token" cannot create'):
        await access.require(shared, CREATE_RUNS)
    client.grants.add((SHARED_TOKEN_USER, "create", "agentruns", "team-a"))
    clock.now += 31
    await access.require(shared, CREATE_RUNS)
    assert (await access.authenticate("good")).uid == "u1"  # other tokens still go to TokenReview
    with pytest.raises(Unauthenticated):
        await SharedTokenAccess(_access(client, clock, token_review=False), "s3cret-token").authenticate(
            "good"
        )


def test_referenced_secrets_and_the_reads_they_need() -> None:
    obj = {
        "spec": {
            "allowedSecrets": ["a", "b"],
            "secrets": ["c", {"name": "d"}],
            "auth": {"secretRef": {"name": "e", "key": "token"}, "tokenSecretRef": "f"},
            "steps": [{"env": {"secretName": "g"}}, {"webhookSecretName": "h"}],
            "secretKey": "not-a-secret-name",
            "text": "secrets: nope",
        },
        "metadata": {"name": "x", "annotations": {"secrets": "ignored"}},
    }
    assert referenced_secrets(obj) == ["a", "b", "c", "d", "e", "f", "g", "h"]
    assert referenced_secrets({"spec": {}}) == [] == referenced_secrets({})
    # a workload volume mounting a Secret by its name, and image pull Secrets
    workload = {
        "spec": {
            "workload": {
                "volumes": [
                    {"type": "secret", "name": "mounted", "mountPath": "/s"},
                    {"type": "secret", "name": "vol", "secretName": "named"},
                    {"type": "emptyDir", "name": "scratch"},
                ],
                "imagePullSecrets": [{"name": "pull"}],
            }
        }
    }
    assert referenced_secrets(workload) == ["mounted", "named", "pull"]
    assert secret_reads("ns", ["b", "a", "a"]) == [
        Attributes("get", "", "secrets", "ns", "a"),
        Attributes("get", "", "secrets", "ns", "b"),
    ]


def test_grpc_without_any_way_to_authenticate_is_a_settings_error() -> None:
    base = {"JANGAR_GRPC_ENABLED": "true", "JANGAR_AUTH_TOKEN_REVIEW": "false"}
    with pytest.raises(SettingsError) as err:
        Settings.from_env(base)
    assert err.value.name == "JANGAR_GRPC_TOKEN"
    assert Settings.from_env({**base, "JANGAR_GRPC_TOKEN": "t"}).grpc.token == "t"
    assert Settings.from_env({"JANGAR_GRPC_ENABLED": "true"}).auth.token_review is True
    assert Settings.from_env({"JANGAR_AUTH_TOKEN_REVIEW": "false"}).grpc.enabled is False


def test_jangar_serve_exits_2_naming_the_grpc_token_when_nobody_could_authenticate() -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "jangar.cli", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "JANGAR_GRPC_ENABLED": "true",
            "JANGAR_AUTH_TOKEN_REVIEW": "false",
        },
    )
    assert result.returncode == 2
    assert "JANGAR_GRPC_TOKEN" in result.stderr


async def test_a_flood_of_unknown_tokens_neither_evicts_real_callers_nor_fans_out_reviews() -> None:
    """Refused tokens have their own cache (random tokens cannot push a real caller's identity out), the
    same token asked concurrently is reviewed once, and reviews in flight are capped."""
    import asyncio

    client, clock = ReviewClient(), Clock()
    access = _access(client, clock, max_size=8)
    user = await access.authenticate("good")
    for i in range(100):
        with pytest.raises(Unauthenticated):
            await access.authenticate(f"random-{i}")
    before = client.count("/tokenreviews")
    assert await access.authenticate("good") == user
    assert client.count("/tokenreviews") == before  # still cached

    in_flight, peak = 0, 0
    release = asyncio.Event()
    original = client.request

    async def slow(method: str, path: str, **kw: Any) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await release.wait()
        in_flight -= 1
        return await original(method, path, **kw)

    client.request = slow  # type: ignore[method-assign]
    same = [asyncio.create_task(access.authenticate("good-2")) for _ in range(20)]
    others = [asyncio.create_task(access.authenticate(f"x-{i}")) for i in range(40)]
    await asyncio.sleep(0.05)
    assert peak <= REVIEWS_IN_FLIGHT
    release.set()
    await asyncio.gather(*same, *others, return_exceptions=True)
    reviews_of_same = [
        b for p, b in client.calls if p.endswith("/tokenreviews") and b["spec"]["token"] == "good-2"
    ]
    assert len(reviews_of_same) == 1


def test_naming_the_pods_service_account_needs_create_pods() -> None:
    """kubectl lets a pod creator run as any ServiceAccount of the namespace, so that is what picking one
    through a run costs: a caller who may only create AgentRuns cannot borrow a stronger token."""
    from jangar.access import service_account_rights

    assert service_account_rights("team-a", {}) == [] == service_account_rights("team-a", None)
    assert service_account_rights("team-a", {"serviceAccount": "  "}) == []
    for key in ("serviceAccount", "serviceAccountName"):
        assert service_account_rights("team-a", {key: "jangar"}) == [
            Attributes("create", "", "pods", "team-a")
        ]


def test_a_provider_secret_env_and_workload_service_account_need_their_rights() -> None:
    """An AgentProvider's `secretEnv[].secretKeyRef` is a Secret it names (applying it needs `get` on it);
    its `workload.serviceAccountName` is lent to every run using it (applying it needs `create pods`)."""
    from jangar.access import referenced_secrets, service_account_rights

    spec = {
        "binary": "codex",
        "secretEnv": [{"name": "OPENAI_API_KEY", "secretKeyRef": {"name": "openai", "key": "k"}}],
        "workload": {"serviceAccountName": "codex-runner"},
    }
    assert referenced_secrets({"spec": spec}) == ["openai"]
    assert service_account_rights("team-a", spec["workload"]) == [Attributes("create", "", "pods", "team-a")]

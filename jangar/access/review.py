"""`KubeAccess`: TokenReview authentication and SubjectAccessReview authorization, cached briefly.

The cache follows kube-rbac-proxy: an authenticated token is remembered for `authn_ttl` (2 min by default)
and an unknown one for `denied_ttl`; an allowed SubjectAccessReview for `authz_ttl` (5 min) and a denial
for `denied_ttl` (30 s), so a new RoleBinding takes effect within half a minute and a removed one within
five. Tokens are cached under their SHA-256, never in clear. An API-server error is `AccessUnavailable`
(503 / UNAVAILABLE) and is not cached: an outage never turns into a grant or a lasting denial.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import structlog

from jangar.access.cache import TTLCache
from jangar.access.identity import (
    SHARED_TOKEN_GROUPS,
    SHARED_TOKEN_USER,
    AccessUnavailable,
    Attributes,
    PermissionDenied,
    Unauthenticated,
    UserInfo,
)
from jangar.api.refs import SUBJECTACCESSREVIEWS, TOKENREVIEWS
from jangar.runtime import ApiError, Client
from jangar.runtime.resources import SECRETS
from jangar.scheduler.workload import requested_service_account
from jangar.settings import Settings

__all__ = [
    "Access",
    "KubeAccess",
    "SharedTokenAccess",
    "referenced_secrets",
    "secret_reads",
    "service_account_rights",
]

log = structlog.get_logger("jangar.access")

AUTHN_TTL_SECONDS = 120.0
AUTHZ_TTL_SECONDS = 300.0
DENIED_TTL_SECONDS = 30.0
CACHE_SIZE = 4096
REVIEWS_IN_FLIGHT = 16
"""TokenReviews sent at once (the rest wait): a flood of unknown tokens cannot fan out API requests."""


class Access:
    """What the surfaces ask: who is this token, and may this identity do that. Subclasses answer."""

    async def authenticate(self, token: str | None) -> UserInfo:
        raise NotImplementedError

    async def allowed(self, user: UserInfo, attributes: Attributes) -> tuple[bool, str]:
        """(allowed, reason) for one action."""
        raise NotImplementedError

    async def require(self, user: UserInfo, *attributes: Attributes) -> None:
        """`PermissionDenied` naming the first action of `attributes` the identity may not perform."""
        for attrs in attributes:
            ok, reason = await self.allowed(user, attrs)
            if not ok:
                log.info(
                    "access.denied",
                    user=user.username,
                    verb=attrs.verb,
                    resource=attrs.resource,
                    subresource=attrs.subresource,
                    namespace=attrs.namespace,
                    name=attrs.name,
                )
                raise PermissionDenied(user, attrs, reason)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user_from(status: Mapping[str, Any]) -> UserInfo:
    user = status.get("user") or {}
    extra = user.get("extra") or {}
    return UserInfo(
        username=str(user.get("username") or ""),
        uid=str(user.get("uid") or ""),
        groups=tuple(str(g) for g in user.get("groups") or ()),
        extra=tuple(sorted((str(k), tuple(str(x) for x in v or ())) for k, v in extra.items())),
    )


class KubeAccess(Access):
    """TokenReview + SubjectAccessReview through the controller's own client (it needs `create` on
    `tokenreviews` and `subjectaccessreviews`: the chart's ClusterRole grants both)."""

    def __init__(
        self,
        client: Client,
        *,
        token_review: bool = True,
        audiences: Sequence[str] = (),
        authn_ttl: float = AUTHN_TTL_SECONDS,
        authz_ttl: float = AUTHZ_TTL_SECONDS,
        denied_ttl: float = DENIED_TTL_SECONDS,
        max_size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.token_review = token_review
        self.audiences = list(audiences)
        self.authn_ttl, self.authz_ttl, self.denied_ttl = authn_ttl, authz_ttl, denied_ttl
        # (user,) or (None,) for a token TokenReview refused: a 1-tuple tells "refused" from "not cached".
        # Accepted and refused tokens live in separate caches, so a flood of random tokens (each one a
        # refusal) cannot evict the identities of real callers.
        self._tokens: TTLCache[str, tuple[UserInfo | None]] = TTLCache(max_size, clock=clock)
        self._refused: TTLCache[str, tuple[UserInfo | None]] = TTLCache(max_size, clock=clock)
        # One TokenReview per token at a time (concurrent requests with one token wait for its answer),
        # and at most REVIEWS_IN_FLIGHT at once: unauthenticated callers cannot fan out API requests.
        self._in_flight: dict[str, asyncio.Future[UserInfo | None]] = {}
        self._reviews = asyncio.Semaphore(REVIEWS_IN_FLIGHT)
        self._decisions: TTLCache[tuple[UserInfo, Attributes], tuple[bool, str]] = TTLCache(
            max_size, clock=clock
        )

    @classmethod
    def from_settings(cls, client: Client, settings: Settings) -> KubeAccess:
        auth = settings.auth
        return cls(
            client,
            token_review=auth.token_review,
            authn_ttl=auth.cache_ttl_seconds,
            authz_ttl=auth.cache_ttl_seconds,
            denied_ttl=auth.denied_cache_ttl_seconds,
        )

    async def authenticate(self, token: str | None) -> UserInfo:
        if not token:
            raise Unauthenticated()
        if not self.token_review:
            raise Unauthenticated()
        key = _digest(token)
        cached = self._tokens.get(key) or self._refused.get(key)
        if cached is not None:
            user = cached[0]
        elif (pending := self._in_flight.get(key)) is not None:
            user = await asyncio.shield(pending)
        else:
            future: asyncio.Future[UserInfo | None] = asyncio.get_running_loop().create_future()
            self._in_flight[key] = future
            try:
                async with self._reviews:
                    user = await self._review_token(token, key)
                future.set_result(user)
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning when nobody else waits
                raise
            finally:
                self._in_flight.pop(key, None)
        if user is None:
            raise Unauthenticated()
        return user

    async def _review_token(self, token: str, key: str) -> UserInfo | None:
        spec: dict[str, Any] = {"token": token}
        if self.audiences:
            spec["audiences"] = self.audiences
        body = {"apiVersion": TOKENREVIEWS.api_version, "kind": TOKENREVIEWS.kind, "spec": spec}
        try:
            answer = await self.client.request("POST", TOKENREVIEWS.path(), body=body, idempotent=True)
        except ApiError as err:
            log.warning("access.tokenreview_failed", status=err.status, error=str(err))
            raise AccessUnavailable(f"cannot verify the token (TokenReview failed: {err})") from None
        status = (answer or {}).get("status") or {}
        user = _user_from(status) if status.get("authenticated") else None
        if user is not None and not user.username:
            user = None
        if user is not None:
            self._tokens.put(key, (user,), self.authn_ttl)
        else:
            self._refused.put(key, (None,), self.denied_ttl)
        return user

    async def allowed(self, user: UserInfo, attributes: Attributes) -> tuple[bool, str]:
        key = (user, attributes)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        resource = {
            "verb": attributes.verb,
            "group": attributes.group,
            "resource": attributes.resource,
        }
        for field, value in (
            ("namespace", attributes.namespace),
            ("name", attributes.name),
            ("subresource", attributes.subresource),
        ):
            if value:
                resource[field] = value
        spec: dict[str, Any] = {"user": user.username, "resourceAttributes": resource}
        if user.uid:
            spec["uid"] = user.uid
        if user.groups:
            spec["groups"] = list(user.groups)
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra}
        body = {
            "apiVersion": SUBJECTACCESSREVIEWS.api_version,
            "kind": SUBJECTACCESSREVIEWS.kind,
            "spec": spec,
        }
        try:
            answer = await self.client.request(
                "POST", SUBJECTACCESSREVIEWS.path(), body=body, idempotent=True
            )
        except ApiError as err:
            log.warning("access.subjectaccessreview_failed", status=err.status, error=str(err))
            raise AccessUnavailable(
                f"cannot authorize the request (SubjectAccessReview failed: {err})"
            ) from None
        status = (answer or {}).get("status") or {}
        decision = (bool(status.get("allowed")) and not status.get("denied"), str(status.get("reason") or ""))
        self._decisions.put(key, decision, self.authz_ttl if decision[0] else self.denied_ttl)
        return decision


class SharedTokenAccess(Access):
    """gRPC's access: `JANGAR_GRPC_TOKEN` (compared in constant time) is the documented identity
    `SHARED_TOKEN_USER`, authorized like anyone else; every other token goes to `inner` (TokenReview)."""

    def __init__(self, inner: Access, shared_token: str | None) -> None:
        self.inner = inner
        self.shared_token = shared_token or None

    async def authenticate(self, token: str | None) -> UserInfo:
        shared = self.shared_token
        if token and shared is not None and hmac.compare_digest(shared.encode(), token.encode()):
            return UserInfo(SHARED_TOKEN_USER, groups=SHARED_TOKEN_GROUPS)
        return await self.inner.authenticate(token)

    async def allowed(self, user: UserInfo, attributes: Attributes) -> tuple[bool, str]:
        return await self.inner.allowed(user, attributes)


# -- Secrets an object names ----------------------------------------------------------------------

_SECRET_LISTS = frozenset({"secrets", "allowedSecrets", "imagePullSecrets"})


def _names(value: object) -> Iterator[str]:
    if isinstance(value, str):
        if value:
            yield value
    elif isinstance(value, Mapping):
        name = value.get("name")
        if isinstance(name, str) and name:
            yield name
    elif isinstance(value, list):
        for item in value:
            yield from _names(item)


def _walk(node: object) -> Iterator[str]:
    if isinstance(node, Mapping):
        # a workload volume `{type: secret, name: X}` mounts Secret X when it names no `secretName`
        if node.get("type") == "secret" and not node.get("secretName"):
            yield from _names(node.get("name"))
        for key, value in node.items():
            k = str(key)
            if k in _SECRET_LISTS or k.endswith(
                ("secretRef", "SecretRef", "secretKeyRef", "SecretKeyRef", "secretName", "SecretName")
            ):
                yield from _names(value)
            else:
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def referenced_secrets(obj: Mapping[str, Any]) -> list[str]:
    """The Secret names an object's spec refers to (`secrets`, `allowedSecrets`, `imagePullSecrets`,
    `secretRef`, `*SecretRef`, `secretName`, `*SecretName`, and a workload volume of `type: secret` by its
    `name`), sorted and unique. Over-inclusive on purpose: a false
    match only asks the caller for one more `get`."""
    return sorted(set(_walk(obj.get("spec") or {})))


def secret_reads(namespace: str, names: Iterable[str]) -> list[Attributes]:
    """`get secrets <name>` in `namespace` for each name: what binding or using a Secret requires."""
    return [Attributes("get", SECRETS.group, SECRETS.plural, namespace, name) for name in sorted(set(names))]


def service_account_rights(namespace: str, runtime_config: object) -> list[Attributes]:
    """`create pods` in `namespace` when the run names its pods' ServiceAccount: what kubectl needs to
    run a pod as that ServiceAccount (any pod creator may pick any ServiceAccount of its namespace), so a
    caller who may only create AgentRuns cannot borrow a more powerful ServiceAccount's token."""
    if requested_service_account(runtime_config) is None:
        return []
    return [Attributes("create", "", "pods", namespace)]

"""Who the caller is (`UserInfo`), what they ask to do (`Attributes`), and the errors the surfaces map."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SHARED_TOKEN_GROUPS",
    "SHARED_TOKEN_USER",
    "AccessError",
    "AccessUnavailable",
    "Attributes",
    "PermissionDenied",
    "Unauthenticated",
    "UserInfo",
    "bearer_token",
]

SHARED_TOKEN_USER = "jangar:grpc-shared-token"
"""The identity of a gRPC caller presenting `JANGAR_GRPC_TOKEN` (grant it rights with a RoleBinding whose
subject is `{kind: User, name: jangar:grpc-shared-token}` or the group below)."""
SHARED_TOKEN_GROUPS = ("jangar:grpc-clients", "system:authenticated")

UNAUTHENTICATED_MESSAGE = "a valid bearer token is required (Authorization: Bearer <token>)"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity, as TokenReview returns it (and SubjectAccessReview takes it)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Attributes:
    """One SubjectAccessReview `resourceAttributes`: the verb and resource kubectl would need."""

    verb: str
    group: str
    resource: str
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    def describe(self, username: str) -> str:
        """kubectl's wording: `user "x" cannot create resource "agentruns" in API group "g" in the namespace
        "y"` (the resource shown as `resource/subresource` when there is one)."""
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f' in the namespace "{self.namespace}"' if self.namespace else " at the cluster scope"
        named = f' "{self.name}"' if self.name else ""
        return (
            f'user "{username}" cannot {self.verb} resource "{resource}"{named} '
            f'in API group "{self.group}"{where}'
        )


class AccessError(Exception):
    """Base of the three answers a surface maps (401, 403, 503)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(AccessError):
    """No bearer token, or one neither TokenReview nor the shared token accepts (HTTP 401)."""

    def __init__(self, message: str = UNAUTHENTICATED_MESSAGE) -> None:
        super().__init__(message)


class PermissionDenied(AccessError):
    """The identity lacks the permission (HTTP 403); the message names it, kubectl-style."""

    def __init__(self, user: UserInfo, attributes: Attributes, reason: str = "") -> None:
        message = attributes.describe(user.username)
        super().__init__(f"{message}: {reason}" if reason else message)
        self.user = user
        self.attributes = attributes


class AccessUnavailable(AccessError):
    """TokenReview or SubjectAccessReview could not be asked (HTTP 503): never treated as an answer."""


_BEARER = "bearer"


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme in any case), else None."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != _BEARER:
        return None
    token = credentials.strip()
    return token or None

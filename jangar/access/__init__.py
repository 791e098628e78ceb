"""Kubernetes-native authentication and authorization of the network surfaces (HTTP API, gRPC).

A caller presents a bearer token; `KubeAccess.authenticate` verifies it with a TokenReview (on gRPC,
`SharedTokenAccess` also accepts `JANGAR_GRPC_TOKEN` as the documented `SHARED_TOKEN_USER`), and `KubeAccess.require` asks a
SubjectAccessReview whether that identity may perform the action: the same verb, group, resource,
subresource, namespace and name the caller would need to do it with kubectl. Both answers are cached
briefly in bounded TTL caches, denials shorter than grants (as kube-rbac-proxy does). docs/security.md has
the threat model and the verb each route and method needs.

This layer sits between the surfaces (`server | grpc`) and `services`; it imports only the runtime client
and the kinds' refs.
"""

from jangar.access.cache import TTLCache
from jangar.access.identity import (
    SHARED_TOKEN_GROUPS,
    SHARED_TOKEN_USER,
    AccessError,
    AccessUnavailable,
    Attributes,
    PermissionDenied,
    Unauthenticated,
    UserInfo,
    bearer_token,
)
from jangar.access.review import (
    Access,
    KubeAccess,
    SharedTokenAccess,
    referenced_secrets,
    secret_reads,
    service_account_rights,
)
from jangar.access.rules import listing, on

__all__ = [
    "SHARED_TOKEN_GROUPS",
    "SHARED_TOKEN_USER",
    "Access",
    "AccessError",
    "AccessUnavailable",
    "Attributes",
    "KubeAccess",
    "PermissionDenied",
    "SharedTokenAccess",
    "TTLCache",
    "Unauthenticated",
    "UserInfo",
    "bearer_token",
    "listing",
    "on",
    "referenced_secrets",
    "secret_reads",
    "service_account_rights",
]

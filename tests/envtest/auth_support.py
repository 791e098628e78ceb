"""Real identities for the surfaces' envtest: ServiceAccounts, their TokenRequest tokens, Roles and bindings,
and waiting until the API server's RBAC authorizer has seen a binding (it reads RBAC from an informer)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from jangar.access import SHARED_TOKEN_USER
from jangar.runtime import AlreadyExistsError, Client, ResourceRef
from tests.support.waiting import eventually

SERVICEACCOUNTS = ResourceRef("", "v1", "ServiceAccount", "serviceaccounts")
NAMESPACES = ResourceRef("", "v1", "Namespace", "namespaces", namespaced=False)
ROLES = ResourceRef("rbac.authorization.k8s.io", "v1", "Role", "roles")
ROLEBINDINGS = ResourceRef("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings")
CLUSTERROLEBINDINGS = ResourceRef(
    "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False
)
RBAC = "rbac.authorization.k8s.io"
ADMIN_NAMESPACE = "jangar-test-auth"
ADMIN_SA = "admin"
ADMIN_USER = f"system:serviceaccount:{ADMIN_NAMESPACE}:{ADMIN_SA}"


async def _create(
    client: Client, ref: ResourceRef, obj: dict[str, Any], namespace: str | None = None
) -> None:
    with contextlib.suppress(AlreadyExistsError):
        await client.create(ref, obj, namespace=namespace)


async def service_account(client: Client, namespace: str, name: str) -> str:
    """Create the ServiceAccount (if missing); its username."""
    await _create(client, SERVICEACCOUNTS, {"metadata": {"name": name}}, namespace)
    return f"system:serviceaccount:{namespace}:{name}"


async def token_for(client: Client, namespace: str, name: str, seconds: int = 3600) -> str:
    """A bound token of the ServiceAccount from the TokenRequest API (what `kubectl create token` does)."""
    await service_account(client, namespace, name)
    answer = await client.request(
        "POST",
        SERVICEACCOUNTS.path(namespace, name, "token"),
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        },
    )
    return str(answer["status"]["token"])


async def may(
    client: Client, user: str, verb: str, group: str, resource: str, namespace: str = "", **extra: str
) -> bool:
    attrs = {"verb": verb, "group": group, "resource": resource, **extra}
    if namespace:
        attrs["namespace"] = namespace
    answer = await client.request(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": ["system:authenticated"], "resourceAttributes": attrs},
        },
    )
    return bool(answer["status"].get("allowed"))


async def grant(
    client: Client,
    namespace: str,
    name: str,
    rules: Sequence[dict[str, Any]],
    *,
    user: str | None = None,
    service_account: tuple[str, str] | None = None,
) -> None:
    """A Role with `rules` bound to `user` or `service_account` (namespace, name), then wait until the
    authorizer grants the first rule's first verb."""
    await _create(client, ROLES, {"metadata": {"name": name}, "rules": list(rules)}, namespace)
    if service_account is not None:
        subject = {"kind": "ServiceAccount", "name": service_account[1], "namespace": service_account[0]}
        username = f"system:serviceaccount:{service_account[0]}:{service_account[1]}"
    else:
        assert user is not None
        subject = {"kind": "User", "name": user, "apiGroup": RBAC}
        username = user
    await _create(
        client,
        ROLEBINDINGS,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
            "subjects": [subject],
        },
        namespace,
    )
    first = rules[0]
    await eventually(
        lambda: may(
            client, username, first["verbs"][0], first["apiGroups"][0], first["resources"][0], namespace
        ),
        timeout=60,
        what=f"RBAC granting {username} {first['verbs'][0]} {first['resources'][0]} in {namespace}",
    )


async def cluster_admin(client: Client, user: str, binding: str) -> None:
    """Bind `user` to cluster-admin and wait until the authorizer agrees."""
    await _create(
        client,
        CLUSTERROLEBINDINGS,
        {
            "metadata": {"name": binding},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "User", "name": user, "apiGroup": RBAC}],
        },
    )
    await eventually(
        lambda: may(client, user, "create", "agents.proompteng.ai", "agentruns", "default"),
        timeout=60,
        what=f"cluster-admin for {user}",
    )


async def admin_token(client: Client) -> str:
    """A token of a ServiceAccount bound to cluster-admin: what the surfaces' existing tests call with."""
    await _create(client, NAMESPACES, {"metadata": {"name": ADMIN_NAMESPACE}})
    user = await service_account(client, ADMIN_NAMESPACE, ADMIN_SA)
    await cluster_admin(client, user, "jangar-test-admin")
    return await token_for(client, ADMIN_NAMESPACE, ADMIN_SA)


async def shared_token_is_admin(client: Client, namespace: str) -> None:
    """Grant the shared gRPC token's identity cluster-admin in `namespace` only (a RoleBinding), for the
    tests that exercise everything with it; other namespaces keep it unprivileged."""
    await _create(
        client,
        ROLEBINDINGS,
        {
            "metadata": {"name": "grpc-shared-token-admin"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "User", "name": SHARED_TOKEN_USER, "apiGroup": RBAC}],
        },
        namespace,
    )
    await eventually(
        lambda: may(client, SHARED_TOKEN_USER, "create", "agents.proompteng.ai", "agentruns", namespace),
        timeout=60,
        what=f"admin in {namespace} for {SHARED_TOKEN_USER}",
    )

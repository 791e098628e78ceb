"""The `Attributes` an action needs, from a kind's `ResourceRef`: one place for the verb mapping."""

from __future__ import annotations

from jangar.access.identity import Attributes
from jangar.runtime import ResourceRef
from jangar.services.scope import NamespaceScope

__all__ = ["listing", "on"]


def on(ref: ResourceRef, verb: str, namespace: str = "", name: str = "", subresource: str = "") -> Attributes:
    """`verb` on `ref`'s resource (`group`/`plural`) in `namespace` (cluster scope when empty)."""
    return Attributes(verb, ref.group, ref.plural, namespace if ref.namespaced else "", name, subresource)


def listing(
    ref: ResourceRef, scope: NamespaceScope, namespace: str | None, verb: str = "list"
) -> list[Attributes]:
    """What a list needs: `list` in the one namespace asked for, else in every managed namespace, else (the
    controller watches all namespaces) at the cluster scope, as `kubectl get -A` would."""
    if namespace is not None:
        return [on(ref, verb, scope.resolve(namespace))]
    managed = scope.managed()
    if managed is None:
        return [on(ref, verb)]
    return [on(ref, verb, ns) for ns in managed]

"""Helpers every controller needs: owner references and finalizers (controller-runtime's controllerutil).

They work on plain object dicts and only change the dict; the caller writes it back (an update,
a merge patch, or an apply), so the helpers compose with any write strategy.
"""

from __future__ import annotations

from typing import Any

from jangar.runtime.resources import JsonObject, ResourceRef


class AlreadyOwnedError(ValueError):
    """The object already has a different controller owner reference."""


def owner_reference(owner: JsonObject, ref: ResourceRef, *, controller: bool = True) -> dict[str, Any]:
    """An owner reference to ``owner`` (``blockOwnerDeletion`` set, as controller-runtime does)."""
    meta = owner.get("metadata") or {}
    if not meta.get("uid") or not meta.get("name"):
        raise ValueError("owner needs metadata.name and metadata.uid (read it from the API first)")
    return {
        "apiVersion": ref.api_version,
        "kind": ref.kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def set_controller_reference(owner: JsonObject, obj: JsonObject, ref: ResourceRef) -> bool:
    """Make ``owner`` the controller of ``obj``; return whether ``obj`` changed.

    Fails with :class:`AlreadyOwnedError` if another controller owns ``obj``, and with
    :class:`ValueError` for cross-namespace ownership or a namespaced owner of a cluster-scoped
    object (which the garbage collector would treat as absent). References are compared by
    group, kind and name; the version is ignored.
    """
    owner_meta = owner.get("metadata") or {}
    obj_meta = obj.setdefault("metadata", {})
    owner_ns = owner_meta.get("namespace")
    if ref.namespaced:
        if not obj_meta.get("namespace"):
            raise ValueError("a cluster-scoped object cannot have a namespaced owner")
        if owner_ns and owner_ns != obj_meta.get("namespace"):
            raise ValueError("cross-namespace owner references are not allowed")
    new = owner_reference(owner, ref)
    refs: list[dict[str, Any]] = list(obj_meta.get("ownerReferences") or [])
    for existing in refs:
        if existing.get("controller") and not _same_owner(existing, new):
            raise AlreadyOwnedError(
                f"{obj_meta.get('name')} is already controlled by {existing.get('kind')} {existing.get('name')}"
            )
    for i, existing in enumerate(refs):
        if _same_owner(existing, new):
            if existing == new:
                return False
            refs[i] = new
            obj_meta["ownerReferences"] = refs
            return True
    refs.append(new)
    obj_meta["ownerReferences"] = refs
    return True


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _same_owner(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (
        _group(str(a.get("apiVersion") or "")) == _group(str(b.get("apiVersion") or ""))
        and a.get("kind") == b.get("kind")
        and a.get("name") == b.get("name")
    )


def is_controlled_by(obj: JsonObject, owner: JsonObject) -> bool:
    """True if ``obj``'s controller reference points at ``owner`` (by uid)."""
    uid = (owner.get("metadata") or {}).get("uid")
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == uid for r in refs)


def has_finalizer(obj: JsonObject, finalizer: str) -> bool:
    return finalizer in ((obj.get("metadata") or {}).get("finalizers") or [])


def add_finalizer(obj: JsonObject, finalizer: str) -> bool:
    """Add ``finalizer`` if missing; return whether ``obj`` changed."""
    meta = obj.setdefault("metadata", {})
    finalizers = list(meta.get("finalizers") or [])
    if finalizer in finalizers:
        return False
    meta["finalizers"] = [*finalizers, finalizer]
    return True


def remove_finalizer(obj: JsonObject, finalizer: str) -> bool:
    """Remove ``finalizer`` if present; return whether ``obj`` changed."""
    meta = obj.setdefault("metadata", {})
    finalizers = list(meta.get("finalizers") or [])
    if finalizer not in finalizers:
        return False
    meta["finalizers"] = [f for f in finalizers if f != finalizer]
    return True


def is_being_deleted(obj: JsonObject) -> bool:
    """``metadata.deletionTimestamp`` is set: finalizers are running."""
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))

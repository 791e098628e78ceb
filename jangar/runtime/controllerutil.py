"""Helpers every controller needs: owner references and finalizers (controller-runtime's controllerutil).

The plain helpers work on object dicts and only change the dict; the caller writes it back (an
update, a merge patch, or an apply), so they compose with any write strategy. The ``async``
ones (:func:`ensure_finalizer`, :func:`remove_finalizer_and_patch`) also write: a merge patch
of ``metadata.finalizers`` conditional on the object's ``resourceVersion`` (409
:class:`~jangar.runtime.errors.ConflictError` if the object changed since it was read, which
the controller retries quietly), and no request at all when nothing would change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jangar.runtime.client import Client
from jangar.runtime.errors import NotFoundError
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
    return is_controlled_by_uid(obj, (owner.get("metadata") or {}).get("uid"))


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of ``obj``'s controller owner reference (``controller: true``), or ``None``."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("uid"):
            return str(ref["uid"])
    return None


def is_controlled_by_uid(obj: Mapping[str, Any], uid: str | None) -> bool:
    """True if ``obj``'s controller owner reference has ``uid`` (never for an empty ``uid``)."""
    return bool(uid) and controller_uid(obj) == uid


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


async def ensure_finalizer(client: Client, ref: ResourceRef, obj: JsonObject, finalizer: str) -> JsonObject:
    """Add ``finalizer`` to ``obj`` on the server and return the updated object.

    A merge patch of ``metadata.finalizers`` with ``obj``'s resourceVersion as precondition
    (raises :class:`~jangar.runtime.errors.ConflictError` if it is stale). Returns ``obj``
    itself, without a request, if the finalizer is already there. ``obj`` is not modified.
    """
    finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
    if finalizer in finalizers:
        return obj
    return await _patch_finalizers(client, ref, obj, [*finalizers, finalizer])


async def remove_finalizer_and_patch(
    client: Client, ref: ResourceRef, obj: JsonObject, finalizer: str, *, ignore_not_found: bool = True
) -> JsonObject:
    """Remove ``finalizer`` from ``obj`` on the server and return the updated object.

    Conditional on ``obj``'s resourceVersion like :func:`ensure_finalizer`; no request if the
    finalizer is absent. Removing the last finalizer of an object being deleted lets the API
    server delete it (the returned object is its last state). If the object is already gone
    (404) and ``ignore_not_found``, returns a copy of ``obj`` without the finalizer.
    ``obj`` is not modified.
    """
    finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
    if finalizer not in finalizers:
        return obj
    remaining = [f for f in finalizers if f != finalizer]
    try:
        return await _patch_finalizers(client, ref, obj, remaining)
    except NotFoundError:
        if not ignore_not_found:
            raise
        return {**obj, "metadata": {**(obj.get("metadata") or {}), "finalizers": remaining}}


async def _patch_finalizers(
    client: Client, ref: ResourceRef, obj: JsonObject, finalizers: list[str]
) -> JsonObject:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise ValueError("object has no metadata.name")
    rv = meta.get("resourceVersion")
    if not rv:
        raise ValueError("object has no metadata.resourceVersion (read it from the cache or the API first)")
    return await client.patch(
        ref,
        name,
        {"metadata": {"finalizers": finalizers}},
        namespace=meta.get("namespace") if ref.namespaced else None,
        resource_version=rv,
    )

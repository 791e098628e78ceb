import pytest

from jangar.runtime.client import Client
from jangar.runtime.controllerutil import (
    AlreadyOwnedError,
    add_finalizer,
    controller_uid,
    ensure_finalizer,
    has_finalizer,
    is_being_deleted,
    is_controlled_by,
    is_controlled_by_uid,
    remove_finalizer,
    remove_finalizer_and_patch,
    set_controller_reference,
)
from jangar.runtime.errors import ConflictError, NotFoundError
from jangar.runtime.resources import ResourceRef
from tests.fakes.apiserver import FakeApiServer

WIDGETS = ResourceRef("example.com", "v1", "Widget", "widgets")
NODES = ResourceRef("", "v1", "Node", "nodes", namespaced=False)


def owner(name: str = "w", uid: str = "u1", ns: str = "ns") -> dict:
    return {"metadata": {"name": name, "uid": uid, "namespace": ns}}


def test_set_controller_reference_adds_updates_and_refuses_a_second_controller() -> None:
    child: dict = {"metadata": {"name": "c", "namespace": "ns"}}
    assert set_controller_reference(owner(), child, WIDGETS) is True
    assert child["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "name": "w",
            "uid": "u1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert is_controlled_by(child, owner())
    assert set_controller_reference(owner(), child, WIDGETS) is False  # idempotent
    # Same owner under another version: the reference is replaced, not duplicated.
    assert set_controller_reference(
        owner(), child, WIDGETS.__class__("example.com", "v2", "Widget", "widgets")
    )
    assert len(child["metadata"]["ownerReferences"]) == 1
    with pytest.raises(AlreadyOwnedError):
        set_controller_reference(owner("other", "u2"), child, WIDGETS)


def test_owner_validation() -> None:
    with pytest.raises(ValueError, match="cross-namespace"):
        set_controller_reference(owner(ns="a"), {"metadata": {"name": "c", "namespace": "b"}}, WIDGETS)
    with pytest.raises(ValueError, match="cluster-scoped"):
        set_controller_reference(owner(), {"metadata": {"name": "c"}}, WIDGETS)
    with pytest.raises(ValueError, match="uid"):
        set_controller_reference(
            {"metadata": {"name": "w"}}, {"metadata": {"name": "c", "namespace": "ns"}}, WIDGETS
        )
    # A cluster-scoped owner may own a namespaced object.
    child = {"metadata": {"name": "c", "namespace": "ns"}}
    assert set_controller_reference({"metadata": {"name": "n1", "uid": "n"}}, child, NODES)


def test_finalizers() -> None:
    obj: dict = {"metadata": {"name": "x"}}
    assert not has_finalizer(obj, "f")
    assert add_finalizer(obj, "f") is True
    assert add_finalizer(obj, "f") is False
    assert obj["metadata"]["finalizers"] == ["f"]
    assert remove_finalizer(obj, "g") is False
    assert remove_finalizer(obj, "f") is True
    assert obj["metadata"]["finalizers"] == []
    assert not is_being_deleted(obj)
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert is_being_deleted(obj)


def test_controller_uid_and_is_controlled_by_uid() -> None:
    child = {"metadata": {"name": "c", "namespace": "ns"}}
    assert controller_uid(child) is None
    assert not is_controlled_by_uid(child, None)
    child["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "not-controller"},
        {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "u1", "controller": True},
    ]
    assert controller_uid(child) == "u1"
    assert is_controlled_by_uid(child, "u1")
    assert not is_controlled_by_uid(child, "not-controller")
    assert not is_controlled_by_uid(child, "")


WIDGETS_COLL = "example.com/v1/widgets"


def _writes(fake: FakeApiServer) -> list[str]:
    return [m for m, *_ in fake.requests if m != "GET"]


async def test_ensure_finalizer_patches_with_a_precondition_once(client: Client, fake: FakeApiServer) -> None:
    fake.put(WIDGETS_COLL, {"metadata": {"name": "w", "namespace": "ns", "finalizers": ["other"]}})
    obj = await client.get(WIDGETS, "w", "ns")
    updated = await ensure_finalizer(client, WIDGETS, obj, "example.com/cleanup")
    assert updated["metadata"]["finalizers"] == ["other", "example.com/cleanup"]
    assert updated["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]
    assert obj["metadata"]["finalizers"] == ["other"]  # the input is not modified
    assert _writes(fake) == ["PATCH"]
    again = await ensure_finalizer(client, WIDGETS, updated, "example.com/cleanup")
    assert again is updated and _writes(fake) == ["PATCH"]  # nothing to change: no request
    with pytest.raises(ConflictError):  # a stale object (e.g. from a lagging cache) is refused
        await ensure_finalizer(client, WIDGETS, obj, "example.com/second")
    with pytest.raises(ValueError):
        await ensure_finalizer(client, WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}}, "f")


async def test_remove_finalizer_and_patch(client: Client, fake: FakeApiServer) -> None:
    fake.put(WIDGETS_COLL, {"metadata": {"name": "w", "namespace": "ns", "finalizers": ["a", "b"]}})
    obj = await client.get(WIDGETS, "w", "ns")
    assert await remove_finalizer_and_patch(client, WIDGETS, obj, "absent") is obj
    assert _writes(fake) == []
    updated = await remove_finalizer_and_patch(client, WIDGETS, obj, "a")
    assert updated["metadata"]["finalizers"] == ["b"]
    assert fake.objects[(WIDGETS_COLL, "ns", "w")]["metadata"]["finalizers"] == ["b"]
    with pytest.raises(ConflictError):
        await remove_finalizer_and_patch(client, WIDGETS, obj, "b")  # stale resourceVersion
    last = await remove_finalizer_and_patch(client, WIDGETS, updated, "b")
    assert last["metadata"]["finalizers"] == []
    fake.remove(WIDGETS_COLL, "ns", "w")
    gone = await remove_finalizer_and_patch(client, WIDGETS, updated, "b")  # already deleted: done
    assert gone["metadata"]["finalizers"] == [] and updated["metadata"]["finalizers"] == ["b"]
    with pytest.raises(NotFoundError):
        await remove_finalizer_and_patch(client, WIDGETS, updated, "b", ignore_not_found=False)

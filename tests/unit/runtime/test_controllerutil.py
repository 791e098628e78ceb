import pytest

from jangar.runtime.controllerutil import (
    AlreadyOwnedError,
    add_finalizer,
    has_finalizer,
    is_being_deleted,
    is_controlled_by,
    remove_finalizer,
    set_controller_reference,
)
from jangar.runtime.resources import ResourceRef

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

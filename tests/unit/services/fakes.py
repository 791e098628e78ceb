"""An in-memory stand-in for the runtime `Client` (create/get/patch/list of AgentRuns) for service tests."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from jangar.runtime import AlreadyExistsError, NotFoundError, ObjectList, ResourceRef


class FakeClient:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str | None, str]] = []  # verb, namespace, name
        self._ids = itertools.count(1)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{next(self._ids)}")
        self.objects[(meta["namespace"], meta["name"])] = obj
        return obj

    async def create(
        self, ref: ResourceRef, obj: dict[str, Any], *, namespace: str | None = None, **_: Any
    ) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        ns = namespace or meta["namespace"]
        if not meta.get("name"):
            meta["name"] = f"{meta.pop('generateName')}{next(self._ids):05d}"
        self.calls.append(("create", ns, meta["name"]))
        if (ns, meta["name"]) in self.objects:
            raise AlreadyExistsError(409, "AlreadyExists", f"{meta['name']} already exists")
        meta["creationTimestamp"] = f"2026-01-01T00:00:{len(self.objects):02d}Z"
        return copy.deepcopy(self.put(obj))

    async def get(self, ref: ResourceRef, name: str, namespace: str | None = None) -> dict[str, Any]:
        self.calls.append(("get", namespace, name))
        try:
            return copy.deepcopy(self.objects[(str(namespace), name)])
        except KeyError:
            raise NotFoundError(404, "NotFound", f"{name} not found") from None

    async def patch(
        self, ref: ResourceRef, name: str, patch: Any, *, namespace: str | None = None, **_: Any
    ) -> dict[str, Any]:
        self.calls.append(("patch", namespace, name))
        obj = self.objects.get((str(namespace), name))
        if obj is None:
            raise NotFoundError(404, "NotFound", f"{name} not found")
        annotations = obj["metadata"].setdefault("annotations", {})
        annotations.update(patch["metadata"]["annotations"])
        return copy.deepcopy(obj)

    async def list(self, ref: ResourceRef, namespace: str | None = None, **_: Any) -> ObjectList:
        self.calls.append(("list", namespace, ""))
        items = [copy.deepcopy(o) for (ns, _), o in self.objects.items() if namespace in (None, ns)]
        return ObjectList(items, resource_version=f"rv-{namespace}")

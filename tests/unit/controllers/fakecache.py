"""An in-memory CacheReader for unit tests, with the same index functions the real cache would run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jangar.runtime import JsonObject, ResourceRef
from jangar.runtime.store import DEFAULT_INDEXERS


class FakeCache:
    def __init__(self) -> None:
        self.objects: dict[ResourceRef, dict[tuple[str | None, str], JsonObject]] = {}
        self.indexers: dict[tuple[ResourceRef, str], Callable[[JsonObject], Any]] = {}

    def add(self, ref: ResourceRef, obj: JsonObject) -> JsonObject:
        meta = obj["metadata"]
        self.objects.setdefault(ref, {})[(meta.get("namespace"), meta["name"])] = obj
        return obj

    def remove(self, ref: ResourceRef, ns: str, name: str) -> None:
        self.objects.get(ref, {}).pop((ns, name), None)

    def add_index(self, ref: ResourceRef, name: str, func: Callable[[JsonObject], Any]) -> None:
        self.indexers[(ref, name)] = func

    def get(
        self, ref: ResourceRef, name: str, namespace: str | None = None, *, copy: bool = True
    ) -> JsonObject | None:
        return self.objects.get(ref, {}).get((namespace, name))

    def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        index: tuple[str, str] | None = None,
        copy: bool = True,
    ) -> list[JsonObject]:
        out = []
        for (ns, _), obj in sorted(self.objects.get(ref, {}).items()):
            if namespace is not None and ns != namespace:
                continue
            if index is not None:
                func = self.indexers.get((ref, index[0])) or DEFAULT_INDEXERS[index[0]]
                if index[1] not in func(obj):
                    continue
            have = obj["metadata"].get("labels") or {}
            if labels and any(have.get(k) != v for k, v in labels.items()):
                continue
            out.append(obj)
        return out

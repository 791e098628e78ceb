"""Event filters for controllers, with controller-runtime's semantics.

A predicate sees create, update and delete events and says whether they should enqueue a
request. The built-ins only filter updates (creates and deletes always pass).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from jangar.runtime.resources import JsonObject


class Predicate(Protocol):
    def create(self, obj: JsonObject) -> bool: ...

    def update(self, old: JsonObject, new: JsonObject) -> bool: ...

    def delete(self, obj: JsonObject) -> bool: ...


def _meta(obj: JsonObject, field: str) -> Any:
    return (obj.get("metadata") or {}).get(field)


class _UpdateOnly:
    def create(self, obj: JsonObject) -> bool:
        return True

    def delete(self, obj: JsonObject) -> bool:
        return True

    def update(self, old: JsonObject, new: JsonObject) -> bool:
        raise NotImplementedError


class GenerationChanged(_UpdateOnly):
    """Updates pass only if ``metadata.generation`` changed: ignores status-only and metadata-only writes."""

    def update(self, old: JsonObject, new: JsonObject) -> bool:
        return bool(_meta(old, "generation") != _meta(new, "generation"))


class ResourceVersionChanged(_UpdateOnly):
    """Drops resync no-ops (old and new are the same version)."""

    def update(self, old: JsonObject, new: JsonObject) -> bool:
        return bool(_meta(old, "resourceVersion") != _meta(new, "resourceVersion"))


class LabelsChanged(_UpdateOnly):
    def update(self, old: JsonObject, new: JsonObject) -> bool:
        return bool((_meta(old, "labels") or {}) != (_meta(new, "labels") or {}))


class AnnotationsChanged(_UpdateOnly):
    def update(self, old: JsonObject, new: JsonObject) -> bool:
        return bool((_meta(old, "annotations") or {}) != (_meta(new, "annotations") or {}))


@dataclass(frozen=True)
class ObjectFilter:
    """Passes every event whose object satisfies ``func`` (for updates: the new object)."""

    func: Callable[[JsonObject], bool]

    def create(self, obj: JsonObject) -> bool:
        return self.func(obj)

    def update(self, old: JsonObject, new: JsonObject) -> bool:
        return self.func(new)

    def delete(self, obj: JsonObject) -> bool:
        return self.func(obj)


def label_selector(match_labels: Mapping[str, str]) -> ObjectFilter:
    """Only objects carrying all these labels."""
    wanted = dict(match_labels)
    return ObjectFilter(lambda o: all(((_meta(o, "labels") or {}).get(k) == v) for k, v in wanted.items()))


@dataclass(frozen=True)
class And:
    predicates: tuple[Predicate, ...]

    def create(self, obj: JsonObject) -> bool:
        return all(p.create(obj) for p in self.predicates)

    def update(self, old: JsonObject, new: JsonObject) -> bool:
        return all(p.update(old, new) for p in self.predicates)

    def delete(self, obj: JsonObject) -> bool:
        return all(p.delete(obj) for p in self.predicates)


@dataclass(frozen=True)
class Or:
    predicates: tuple[Predicate, ...]

    def create(self, obj: JsonObject) -> bool:
        return any(p.create(obj) for p in self.predicates)

    def update(self, old: JsonObject, new: JsonObject) -> bool:
        return any(p.update(old, new) for p in self.predicates)

    def delete(self, obj: JsonObject) -> bool:
        return any(p.delete(obj) for p in self.predicates)


@dataclass(frozen=True)
class Not:
    predicate: Predicate

    def create(self, obj: JsonObject) -> bool:
        return not self.predicate.create(obj)

    def update(self, old: JsonObject, new: JsonObject) -> bool:
        return not self.predicate.update(old, new)

    def delete(self, obj: JsonObject) -> bool:
        return not self.predicate.delete(obj)

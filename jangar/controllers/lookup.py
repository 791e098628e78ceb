"""The cache seen through `jangar.validation.Lookup`: one namespace, kinds by name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jangar.controllers.kinds import ref_for
from jangar.runtime import CacheReader

__all__ = ["NamespaceLookup"]


class NamespaceLookup:
    def __init__(self, cache: CacheReader, namespace: str) -> None:
        self._cache = cache
        self._namespace = namespace

    def get(self, kind: str, name: str) -> Mapping[str, Any] | None:
        return self._cache.get(ref_for(kind), name, self._namespace, copy=False)

    def list(self, kind: str) -> Iterable[Mapping[str, Any]]:
        return self._cache.list(ref_for(kind), self._namespace, copy=False)

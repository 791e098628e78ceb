"""The informer's in-memory object store with secondary indexes.

Plain dicts keyed by ``namespace/name``; every index maps an index value to the set of keys
whose object produces that value. Object and indexes are updated together in one
synchronous call, so a reader (running on the same event loop) never sees one without the
other. Stored objects are shared: the cache reader hands out copies (see :mod:`.cache`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from jangar.runtime.resources import JsonObject, object_key

IndexFunc = Callable[[JsonObject], Iterable[str]]
"""Returns the index values of an object (zero, one or many)."""

NAMESPACE_INDEX = "namespace"
OWNER_UID_INDEX = "owner-uid"
CONTROLLER_UID_INDEX = "controller-uid"


def index_by_namespace(obj: JsonObject) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def index_by_owner_uid(obj: JsonObject) -> list[str]:
    """Every owner reference's uid."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r["uid"] for r in refs if r.get("uid")]


def index_by_controller_uid(obj: JsonObject) -> list[str]:
    """The uid of the owner reference marked ``controller: true``, if any."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r["uid"] for r in refs if r.get("controller") and r.get("uid")]


def index_by_label(label: str) -> IndexFunc:
    """An index on the value of one label."""

    def index(obj: JsonObject) -> list[str]:
        value = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
        return [value] if value is not None else []

    return index


def index_by_field(*path: str) -> IndexFunc:
    """An index on a scalar field, e.g. ``index_by_field("spec", "nodeName")``."""

    def index(obj: JsonObject) -> list[str]:
        value: object = obj
        for part in path:
            if not isinstance(value, dict):
                return []
            value = value.get(part)
        return [str(value)] if value is not None and not isinstance(value, dict | list) else []

    return index


DEFAULT_INDEXERS: dict[str, IndexFunc] = {
    NAMESPACE_INDEX: index_by_namespace,
    OWNER_UID_INDEX: index_by_owner_uid,
    CONTROLLER_UID_INDEX: index_by_controller_uid,
}


class Store:
    """Objects by key plus named indexes. Not thread-safe; meant for one event loop."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, JsonObject] = {}
        self._indexers: dict[str, IndexFunc] = dict(DEFAULT_INDEXERS if indexers is None else indexers)
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        # Reverse map: key -> index name -> values, so updates remove exactly the old entries.
        self._values: dict[str, dict[str, list[str]]] = {}

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        """Add an index; existing objects are indexed immediately."""
        if name in self._indexers:
            raise ValueError(f"index {name!r} already exists")
        self._indexers[name] = func
        self._indices[name] = {}
        for key, obj in self._items.items():
            values = list(func(obj))
            self._values.setdefault(key, {})[name] = values
            for v in values:
                self._indices[name].setdefault(v, set()).add(key)

    @property
    def index_names(self) -> list[str]:
        return list(self._indexers)

    def upsert(self, obj: JsonObject) -> JsonObject | None:
        """Store ``obj`` under its key; return the previous object, if any."""
        key = object_key(obj)
        old = self._items.get(key)
        self._unindex(key)
        self._items[key] = obj
        self._index(key, obj)
        return old

    def delete_key(self, key: str) -> JsonObject | None:
        """Remove the object at ``key``; return it, if it was there."""
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key)
        return old

    def get(self, key: str) -> JsonObject | None:
        return self._items.get(key)

    def keys(self) -> list[str]:
        return list(self._items)

    def values(self) -> list[JsonObject]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        """Iterate over a snapshot of the keys (safe while the store changes)."""
        return iter(list(self._items))

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def by_index(self, name: str, value: str) -> list[JsonObject]:
        """Objects whose index ``name`` produced ``value``."""
        return [self._items[k] for k in self.index_keys(name, value)]

    def index_keys(self, name: str, value: str) -> list[str]:
        if name not in self._indices:
            raise KeyError(f"no index named {name!r}")
        return sorted(self._indices[name].get(value, ()))

    def index_values(self, name: str) -> list[str]:
        """All values currently present in index ``name``."""
        return list(self._indices[name])

    def _index(self, key: str, obj: JsonObject) -> None:
        per_key: dict[str, list[str]] = {}
        for name, func in self._indexers.items():
            values = list(func(obj))
            if values:
                per_key[name] = values
                idx = self._indices[name]
                for v in values:
                    idx.setdefault(v, set()).add(key)
        if per_key:
            self._values[key] = per_key

    def _unindex(self, key: str) -> None:
        per_key = self._values.pop(key, None)
        if not per_key:
            return
        for name, values in per_key.items():
            idx = self._indices[name]
            for v in values:
                keys = idx.get(v)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del idx[v]

"""Which namespaces a surface may touch: exactly the ones the controller manages, one rule for all surfaces.

* no namespace given → the first managed namespace; when the controller watches all namespaces (`*`) there
  is no sensible default, so a namespace is required;
* `*` is not a namespace: refused (it would mean "everywhere" to a list and nothing to a write);
* a namespace outside the managed set → `NamespaceNotManaged`, so an API token grants no more than the
  controller manages (and a run there would never be reconciled).
"""

from __future__ import annotations

from dataclasses import dataclass

from jangar.services.errors import InvalidRequest, NamespaceNotManaged
from jangar.settings import Settings

__all__ = ["NamespaceScope"]

_ALL = "*"


@dataclass(frozen=True)
class NamespaceScope:
    namespaces: tuple[str, ...]
    """The managed namespaces, in configured order; `("*",)` means all."""

    @classmethod
    def from_settings(cls, settings: Settings) -> NamespaceScope:
        return cls(tuple(settings.agents_controller.namespaces))

    @property
    def all_namespaces(self) -> bool:
        return _ALL in self.namespaces

    @property
    def default(self) -> str | None:
        """The namespace used when a request names none (None: the controller watches all namespaces)."""
        return next((ns for ns in self.namespaces if ns != _ALL), None)

    def manages(self, namespace: str) -> bool:
        return namespace != _ALL and (self.all_namespaces or namespace in self.namespaces)

    def resolve(self, requested: str | None) -> str:
        """The request's namespace, defaulted and checked (`InvalidRequest`, `NamespaceNotManaged`)."""
        namespace = (requested or "").strip()
        if not namespace:
            default = self.default
            if default is None:
                raise InvalidRequest("namespace is required: this controller watches all namespaces")
            return default
        if namespace == _ALL:
            raise InvalidRequest("namespace '*' is not a namespace: name one")
        if not self.manages(namespace):
            raise NamespaceNotManaged(namespace)
        return namespace

    def managed(self) -> tuple[str, ...] | None:
        """The namespaces a request for "every managed namespace" covers (None: all namespaces)."""
        return None if self.all_namespaces else tuple(self.namespaces)

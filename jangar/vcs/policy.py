"""Repository allow/deny policy of a VersionControlProvider: globs, deny wins (reference §5.2 steps 4 and 5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jangar.api.shape import as_list, as_map
from jangar.validation.patterns import matches_any

__all__ = ["repository_denial"]


def repository_denial(provider_spec: Mapping[str, Any], repository: str) -> str | None:
    """Why `repository` is not allowed, or `None`. Matching is case-sensitive, like the reference's."""
    policy = as_map(provider_spec.get("repositoryPolicy"))
    deny = [p for p in as_list(policy.get("deny")) if isinstance(p, str)]
    allow = [p for p in as_list(policy.get("allow")) if isinstance(p, str)]
    if matches_any(deny, repository):
        return f"repository {repository} is denied by policy"
    if allow and not matches_any(allow, repository):
        return f"repository {repository} is not in the allow list"
    return None

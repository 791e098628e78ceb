"""Read a field of a custom resource without trusting its shape.

The CRD schemas reject most wrong types, but not under `x-kubernetes-preserve-unknown-fields`, not on an
object written before a schema change, and not through a client that skips validation. The controllers read
specs with these helpers wherever a wrong type would otherwise raise (found by `tests/unit/fuzz`): a field
of the wrong type reads as absent, and validation reports what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["allow_list", "as_list", "as_map", "maps"]


def as_map(value: Any) -> Mapping[str, Any]:
    """`value` if it is an object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """`value` if it is an array (a list or tuple), else an empty one (a string is not a list of its
    characters)."""
    if isinstance(value, list):
        return value
    return list(value) if isinstance(value, tuple) else []


def maps(value: Any) -> list[Mapping[str, Any]]:
    """The objects of the array `value` (other items and non-arrays are skipped)."""
    return [v for v in as_list(value) if isinstance(v, Mapping)]


def allow_list(value: Any) -> list[str] | None:
    """An allow-list field: None when unset or empty (no restriction), else its strings. A value of the wrong
    type restricts to nothing (fails closed), so garbage never widens what is allowed."""
    if not value:
        return None
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []

"""A checker for the Kubernetes rules on structural CRD schemas.

The API server refuses a CRD whose schema is not structural, but only when it is installed; checking at
generation time turns that into an immediate, readable error and lets unit tests cover it without a
cluster. The rules checked are the ones our emitter could plausibly break: a type at every node (unless
the node is int-or-string or preserves unknown fields), no `$ref` or type-choosing combinators, no
`additionalProperties` beside `properties`, and list-map keys that exist and are required.
"""

from __future__ import annotations

from typing import Any

_FORBIDDEN = ("$ref", "definitions", "oneOf", "allOf", "not", "nullable-without-type")
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def violations(schema: dict[str, Any], path: str = "") -> list[str]:
    """Every structural-schema violation under `schema`, each prefixed with its path."""
    found: list[str] = []
    _check(schema, path or "<root>", found)
    return found


def _check(node: dict[str, Any], path: str, found: list[str]) -> None:
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get(_PRESERVE) is True
    if "type" not in node and not (int_or_string or preserve):
        found.append(f"{path}: no type (and neither int-or-string nor preserve-unknown-fields)")
    for key in _FORBIDDEN:
        if key in node:
            found.append(f"{path}: {key} is not allowed")
    if "anyOf" in node and not (int_or_string and node["anyOf"] == _INT_OR_STRING):
        found.append(f"{path}: anyOf is only allowed as the int-or-string pair")
    if _PRESERVE in node and node[_PRESERVE] is not True:
        found.append(f"{path}: {_PRESERVE} must be true when present")
    kind = node.get("type")
    if "properties" in node and "additionalProperties" in node:
        found.append(f"{path}: properties and additionalProperties together")
    if node.get("additionalProperties") is False:
        found.append(f"{path}: additionalProperties: false is not allowed")
    if ("properties" in node or "additionalProperties" in node) and kind != "object":
        found.append(f"{path}: properties on a non-object")
    for name in node.get("required", []):
        if name not in node.get("properties", {}):
            found.append(f"{path}: required field {name!r} is not a property")
    for name, child in node.get("properties", {}).items():
        _check(child, f"{path}.{name}", found)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        _check(extra, f"{path}.<value>", found)
    if kind == "array":
        items = node.get("items")
        if not isinstance(items, dict):
            found.append(f"{path}: array without items")
        else:
            _check(items, f"{path}[]", found)
            _check_list_map(node, items, path, found)
    elif "items" in node:
        found.append(f"{path}: items on a non-array")


def _check_list_map(node: dict[str, Any], items: dict[str, Any], path: str, found: list[str]) -> None:
    keys = node.get("x-kubernetes-list-map-keys")
    if node.get("x-kubernetes-list-type") != "map":
        if keys:
            found.append(f"{path}: list-map-keys without list-type map")
        return
    if not keys:
        found.append(f"{path}: list-type map without list-map-keys")
        return
    for key in keys:
        if key not in items.get("properties", {}):
            found.append(f"{path}: list-map key {key!r} is not an item property")
        elif key not in items.get("required", []) and "default" not in items["properties"][key]:
            found.append(f"{path}: list-map key {key!r} must be required or defaulted")

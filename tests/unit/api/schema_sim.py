"""A small model of what the API server does with a structural schema: prune unknown fields and check
JSON types. It lets unit tests show that every field a model can hold survives a write, without a
cluster (the envtest tier checks the same against a real API server)."""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

PRESERVE = "x-kubernetes-preserve-unknown-fields"
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def prune(schema: dict[str, Any], value: Any, path: str = "") -> Any:
    """The value as stored: unknown keys dropped unless preserved; raises TypeError on a type mismatch."""
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise TypeError(f"{path}: {value!r} is neither int nor string")
        return value
    expected = schema.get("type")
    if expected is not None:
        ok = isinstance(value, _JSON_TYPES[expected]) and not (
            expected in ("integer", "number") and isinstance(value, bool)
        )
        if not ok:
            raise TypeError(f"{path}: {value!r} is not a {expected}")
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if properties is not None:
            out = {}
            for key, item in value.items():
                if key in properties:
                    out[key] = prune(properties[key], item, f"{path}.{key}")
                elif schema.get(PRESERVE):
                    out[key] = item
            return out
        if isinstance(extra, dict):
            return {key: prune(extra, item, f"{path}.{key}") for key, item in value.items()}
        return value if schema.get(PRESERVE) else {}
    if isinstance(value, list):
        return [prune(schema.get("items", {}), item, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


NOW = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)


def populated(model: type[BaseModel]) -> dict[str, Any]:
    """Wire-form input that sets every field of `model`, recursively, with a plausible value."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        out[info.alias or name] = _value(info.annotation)
    return out


def _value(tp: Any) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is typing.Annotated:
        return _value(args[0])
    if origin in (typing.Union, __import__("types").UnionType):
        members = [a for a in args if a is not type(None)]
        return _value(members[0])
    if origin is Literal:
        return args[-1]
    if origin is list:
        return [_value(args[0])]
    if origin is dict:
        if args[1] is Any:
            return {"free": {"form": [1, "two", {"three": True}]}}
        return {"key": _value(args[1])}
    if tp is Any:
        return {"any": 1}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return populated(tp)
    if tp is bool:
        return True
    if tp is int:
        return 7
    if tp is float:
        return 0.5
    if tp is str:
        return "Value1"
    if tp is datetime:
        return NOW.isoformat()
    raise TypeError(f"no sample value for {tp!r}")

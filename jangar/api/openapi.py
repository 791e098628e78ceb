"""Turns the pydantic models into structural OpenAPI v3 schemas for CRDs.

This walks the model fields itself instead of converting pydantic's JSON schema: CRD schemas must be
structural (a type at every level, no `$ref`, no `anyOf` choosing between types), and the Kubernetes
extensions (`x-kubernetes-*`) come from markers pydantic does not know. Every constraint a model carries
is emitted or rejected: an unknown constraint raises, so a bound can never silently go missing.
"""

from __future__ import annotations

import inspect
import types
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from jangar.api.meta import Resource
from jangar.api.schema import Format, IntOrString, ListMap, PreserveUnknown, Rule

Schema = dict[str, Any]
PRESERVE = "x-kubernetes-preserve-unknown-fields"


class SchemaError(TypeError):
    """A model uses a type or constraint that has no structural schema equivalent."""


def describe(text: str | None) -> str | None:
    """Docstrings become single-line descriptions, so the YAML stays stable and readable."""
    if not text:
        return None
    return " ".join(inspect.cleandoc(text).split())


def root_schema(model: type[Resource[Any, Any]]) -> Schema:
    """The `openAPIV3Schema` of a kind: apiVersion, kind, metadata, spec and status."""
    spec_field = model.model_fields["spec"]
    status_field = model.model_fields["status"]
    schema: Schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": field_schema(spec_field),
            "status": field_schema(status_field),
        },
    }
    doc = describe(model.__dict__.get("__doc__"))
    if doc:
        schema["description"] = doc
    if spec_field.is_required():
        schema["required"] = ["spec"]
    return schema


def model_schema(model: type[BaseModel]) -> Schema:
    properties: Schema = {}
    required: list[str] = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        properties[key] = field_schema(info)
        if info.is_required():
            required.append(key)
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = sorted(required)
    if model.model_config.get("extra") == "allow":
        schema[PRESERVE] = True
    rules: tuple[Rule, ...] = getattr(model, "cel_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [_rule(r) for r in rules]
    return schema


def field_schema(info: FieldInfo) -> Schema:
    schema = type_schema(info.annotation, tuple(info.metadata))
    description = describe(info.description)
    if description:
        schema["description"] = description
    default = info.default
    if default is not PydanticUndefined and default is not None:
        if not isinstance(default, bool | int | float | str):
            raise SchemaError(f"only scalar defaults can be expressed in a CRD, got {default!r}")
        schema["default"] = default
    return schema


def type_schema(tp: Any, metadata: tuple[Any, ...] = ()) -> Schema:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extra = get_args(tp)
        return type_schema(base, (*extra, *metadata))
    if any(isinstance(m, IntOrString) for m in metadata):
        return {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if len(members) != 1:
            raise SchemaError(f"unions other than Optional[T] or IntOrStr are not structural: {tp!r}")
        return type_schema(members[0], metadata)
    schema = _base_schema(tp, origin)
    _apply_metadata(schema, metadata)
    return schema


def _base_schema(tp: Any, origin: Any) -> Schema:
    if tp is Any:
        return {PRESERVE: True}
    if origin is Literal:
        values = list(get_args(tp))
        if not all(isinstance(v, str) for v in values):
            raise SchemaError(f"only string enums are supported: {tp!r}")
        return {"type": "string", "enum": values}
    if origin is list:
        (item,) = get_args(tp)
        return {"type": "array", "items": type_schema(item)}
    if origin is dict:
        key, value = get_args(tp)
        if key is not str:
            raise SchemaError(f"map keys must be strings: {tp!r}")
        if value is Any:
            return {"type": "object", PRESERVE: True}
        return {"type": "object", "additionalProperties": type_schema(value)}
    if isinstance(tp, type):
        if issubclass(tp, BaseModel):
            schema = model_schema(tp)
            doc = describe(tp.__dict__.get("__doc__"))
            if doc:
                schema["description"] = doc
            return schema
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is float:
            return {"type": "number"}
        if tp is str:
            return {"type": "string"}
        if tp is datetime:
            return {"type": "string", "format": "date-time"}
    raise SchemaError(f"no structural schema for {tp!r}")


_LENGTH_KEYS = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems")}
_LENGTH_KEYS["object"] = ("minProperties", "maxProperties")


def _apply_metadata(schema: Schema, metadata: tuple[Any, ...]) -> None:
    kind = schema.get("type", "")
    for m in metadata:
        if isinstance(m, FieldInfo):
            raise SchemaError("use annotated_types bounds, not Field(), inside Annotated aliases")
        if isinstance(m, Format):
            schema["format"] = m.name
        elif isinstance(m, PreserveUnknown):
            schema[PRESERVE] = True
        elif isinstance(m, ListMap):
            if kind != "array":
                raise SchemaError("ListMap applies to lists only")
            schema["x-kubernetes-list-type"] = "map"
            schema["x-kubernetes-list-map-keys"] = list(m.keys)
        elif isinstance(m, at.MinLen | at.MaxLen):
            if kind not in _LENGTH_KEYS:
                raise SchemaError(f"length bound on a {kind or 'typeless'} schema")
            low, high = _LENGTH_KEYS[kind]
            if isinstance(m, at.MinLen):
                schema[low] = m.min_length
            else:
                schema[high] = m.max_length
        elif isinstance(m, at.Ge):
            schema["minimum"] = m.ge
        elif isinstance(m, at.Le):
            schema["maximum"] = m.le
        elif isinstance(m, at.Gt):
            schema["minimum"] = m.gt
            schema["exclusiveMinimum"] = True
        elif isinstance(m, at.Lt):
            schema["maximum"] = m.lt
            schema["exclusiveMaximum"] = True
        elif getattr(m, "pattern", None) is not None:
            if kind != "string":
                raise SchemaError("pattern applies to strings only")
            schema["pattern"] = m.pattern
        elif isinstance(m, at.BaseMetadata):
            raise SchemaError(f"unsupported constraint {m!r}")
        # Anything else (serializers, plain strings) only affects Python behaviour.


def _rule(rule: Rule) -> Schema:
    out: Schema = {"rule": rule.rule, "message": rule.message}
    if rule.field_path:
        out["fieldPath"] = rule.field_path
    if rule.reason:
        out["reason"] = rule.reason
    return out

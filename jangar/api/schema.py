"""Markers that carry Kubernetes OpenAPI facts a pydantic type cannot express by itself.

The CRD schemas are generated from the models (`jangar.api.openapi`), so everything the API server must
enforce has to be visible on the model. Plain Python types give the JSON type; pydantic's `Field` bounds
(`max_length`, `ge`, ...) give the limits; the markers here add the rest: integer formats, free-form
objects, int-or-string, list semantics and CEL rules. They are inert for pydantic validation except where
noted, so the models stay ordinary pydantic models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import PlainSerializer


@dataclass(frozen=True)
class Format:
    """An OpenAPI `format` such as `int32`, `int64`, `uri` or `date-time`."""

    name: str


@dataclass(frozen=True)
class PreserveUnknown:
    """`x-kubernetes-preserve-unknown-fields: true`: the API server keeps keys the schema does not name.

    Used only where the reference keeps a free-form object, because everywhere else pruning is what makes
    a typo in a manifest visible.
    """


@dataclass(frozen=True)
class IntOrString:
    """`x-kubernetes-int-or-string: true`, the only structural way to accept either JSON type."""


@dataclass(frozen=True)
class ListMap:
    """`x-kubernetes-list-type: map` keyed by required item fields: the API server rejects duplicate keys
    and server-side apply merges items by key instead of replacing the whole list."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """A CEL `x-kubernetes-validations` entry. `message` is what a user sees when the rule fails, so it
    names the fields to fix."""

    rule: str
    message: str
    field_path: str | None = None
    reason: str | None = None


def _rfc3339(value: datetime) -> str:
    """Kubernetes writes RFC 3339 in UTC with a `Z`; fractions only when present, so times round-trip."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


Int32 = Annotated[int, Format("int32")]
"""A Kubernetes int32 (ttl seconds, retries, attempts)."""

Int64 = Annotated[int, Format("int64")]
"""A Kubernetes int64 (generations)."""

Timestamp = Annotated[
    datetime, Format("date-time"), PlainSerializer(_rfc3339, return_type=str, when_used="json")
]
"""An RFC 3339 time; a naive value is taken as UTC."""

Url = Annotated[str, Format("uri")]
"""A string the API server checks as a URI."""

FreeForm = Annotated[dict[str, Any], PreserveUnknown()]
"""A JSON object whose keys the schema does not constrain (for example `spec.runtime.config`)."""

IntOrStr = Annotated[int | str, IntOrString()]
"""Accepts 12345 and "12345" alike (GitHub App ids)."""

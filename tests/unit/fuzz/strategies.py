"""Hypothesis strategies for the specs of jangar's 19 kinds.

Two families:

* `valid_spec(kind)`: structurally valid specs, generated from the kind's CRD schema
  (`charts/agents/crds/`, itself generated from the pydantic models), merged key by key with the kind's
  sample (`tests/unit/api/samples.py`) so that references often resolve and the decision goes deep;
* `garbage_spec(kind)`: the sample (or a valid spec) with 1-4 subtrees replaced by garbage (wrong types,
  None, huge strings, unicode, huge integers, nested junk) or deleted, or the whole spec replaced.

The schema walker understands what the generated CRDs use: `type`, `properties`, `required`,
`additionalProperties`, `items`, `enum`, `pattern`, `format`, `minLength`/`maxLength`, `minimum`/`maximum`,
`minItems`/`maxItems`, `anyOf`, `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields` and
list-map keys (kept unique). CEL rules (`x-kubernetes-validations`) are not modelled.
"""

from __future__ import annotations

import copy
import functools
import re
from datetime import UTC
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from jangar.api import registry
from tests.unit.api.samples import sample

__all__ = [
    "KINDS",
    "NAMES",
    "base_spec",
    "crd_spec_schema",
    "from_schema",
    "garbage_spec",
    "garbage_value",
    "valid_spec",
]

KINDS: tuple[str, ...] = tuple(sorted(info.kind for info in registry.KINDS))
CRDS = Path(__file__).resolve().parents[3] / "charts" / "agents" / "crds"


def base_spec(kind: str) -> dict[str, Any]:
    """The sample's spec, made coherent with the other samples so that the sample AgentRun really starts a
    Job (its Agent allows its Secrets and ServiceAccount, the memory Secret is listed)."""
    spec = sample(kind)["spec"]
    if kind == "Agent":
        spec["security"] = {
            "allowedSecrets": [
                "codex-github-token",
                "memory-postgres",
                "github-token",
                "codex-github-app-key",
            ],
            "allowedServiceAccounts": ["default", "runner"],
        }
    elif kind == "AgentRun":
        spec["secrets"] = ["codex-github-token", "memory-postgres"]
    elif kind == "SecretBinding":
        spec["allowedSecrets"] = [
            "codex-github-token",
            "memory-postgres",
            "github-token",
            "codex-github-app-key",
        ]
    elif kind == "ApprovalPolicy":
        spec["subjects"] = [{"kind": "Group", "name": "ops"}]
    elif kind == "Orchestration":
        spec["entrypoint"] = "implement"
    elif kind == "ToolRun":
        spec["parameters"] = {"message": "hello"}
    return spec


#: names that make the samples refer to each other (the sample AgentRun's vcsRef is `github`)
NAMES = {"VersionControlProvider": "github"}


# JSON as the API server can hand it back (no NaN/Infinity).
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
_NAMEISH = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
_HUGE = st.builds(
    lambda c, n: c * n,
    st.sampled_from(["x", "é", "🦀", "\u202e", "\x00", "{{", "a-"]),
    st.integers(1_000, 70_000),
)
_UNICODE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)


def _json(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    return st.recursive(
        _SCALARS,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=max_leaves,
    )


def garbage_value() -> st.SearchStrategy[Any]:
    """A value of the wrong type, None, a huge or odd string, a huge number, or nested junk."""
    return st.one_of(
        _SCALARS,
        _HUGE,
        _UNICODE,
        st.integers(min_value=2**63, max_value=2**80),
        st.sampled_from(["", " ", "-1", "0", "1e309", "true", "null", "{{parameters.x}}", "../..", "a" * 64]),
        _json(),
    )


@functools.cache
def crd_spec_schema(kind: str) -> dict[str, Any]:
    info = registry.by_kind(kind)
    crd = yaml.safe_load((CRDS / info.file_name).read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"])


def _string(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    lo = int(schema.get("minLength", 0))
    hi = int(schema.get("maxLength", 40))
    hi = max(lo, min(hi, 40))
    fmt = schema.get("format")
    if fmt == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except re.error:  # pragma: no cover - every generated pattern compiles today
            pass
        else:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: lo <= len(s) <= max(hi, lo)
            )
    return st.one_of(_NAMEISH.filter(lambda s: lo <= len(s) <= hi), st.text(min_size=lo, max_size=hi))


def _int_or_string() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(min_value=0, max_value=10**6),
        st.from_regex(r"[0-9]{1,4}(m|Mi|Gi|%)?", fullmatch=True),
    )


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the structural schema `schema` accepts (CEL rules aside)."""
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    if "anyOf" in schema:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return st.one_of([from_schema({**rest, **alt}) for alt in schema["anyOf"]])
    if schema.get("x-kubernetes-int-or-string"):
        return _int_or_string()
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props: dict[str, Any] = schema.get("properties") or {}
        if not props and schema.get("x-kubernetes-preserve-unknown-fields"):
            return st.dictionaries(st.text(max_size=10), _json(4), max_size=3)
        required = set(schema.get("required") or ())
        fixed = st.fixed_dictionaries(
            {k: from_schema(v) for k, v in props.items() if k in required},
            optional={k: from_schema(v) for k, v in props.items() if k not in required},
        )
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not props:
            return st.dictionaries(_NAMEISH, from_schema(extra), max_size=3)
        return fixed
    if kind == "array":
        items = from_schema(schema.get("items") or {})
        lo = int(schema.get("minItems", 0))
        hi = max(lo, min(int(schema.get("maxItems", 3)), 3))
        keys = schema.get("x-kubernetes-list-map-keys")
        if keys:
            return st.lists(
                items, min_size=lo, max_size=hi, unique_by=lambda d: tuple(str(d.get(k)) for k in keys)
            )
        if schema.get("x-kubernetes-list-type") == "set":
            return st.lists(items, min_size=lo, max_size=hi, unique_by=repr)
        return st.lists(items, min_size=lo, max_size=hi)
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(
            min_value=int(schema.get("minimum", -10)), max_value=int(schema.get("maximum", 10**6))
        )
    if kind == "number":
        return st.floats(
            min_value=float(schema.get("minimum", -1e6)),
            max_value=float(schema.get("maximum", 1e6)),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "boolean":
        return st.booleans()
    return _json(4)  # x-kubernetes-preserve-unknown-fields without a type


@functools.cache
def _generated(kind: str, key: str) -> st.SearchStrategy[Any]:
    return from_schema(crd_spec_schema(kind)["properties"][key])


@st.composite
def valid_spec(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A schema-valid spec: per top-level field, the base's value, a generated one, or (if optional) none."""
    base = base_spec(kind)
    schema = crd_spec_schema(kind)
    props = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    out: dict[str, Any] = {}
    for key in sorted(set(base) | set(props)):
        choices = [c for c, ok in (("base", key in base), ("generated", key in props)) if ok]
        if key not in required:
            choices.append("drop")
        choice = draw(st.sampled_from(choices))
        if choice == "base":
            out[key] = copy.deepcopy(base[key])
        elif choice == "generated":
            out[key] = draw(_generated(kind, key))
    return out


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _set(root: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return root


@st.composite
def garbage_spec(draw: st.DrawFn, kind: str) -> Any:
    """A spec with 1-4 subtrees replaced by garbage or deleted. The spec itself stays an object (sometimes
    one of junk keys): the API server's structural schema enforces `spec: {type: object}` even where the
    kind preserves unknown fields, so nothing else ever reaches a controller."""
    start = draw(st.sampled_from(("sample", "valid")))
    spec: Any = base_spec(kind) if start == "sample" else draw(valid_spec(kind))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(spec)
        path = draw(st.sampled_from(paths))
        if not path:  # the whole spec: an object of junk
            spec = draw(st.dictionaries(st.text(max_size=12), garbage_value(), max_size=4))
            continue
        delete = bool(path) and draw(st.booleans())
        spec = _set(spec, path, None if delete else draw(garbage_value()), delete)
    return spec

"""Typed process settings, read once from the environment.

The reference reads its `JANGAR_*` variables ad hoc, in every module, with three different truthiness rules,
two default namespace lists and "garbage means the default" number parsing (reference §1.3, §4.1, §12.15).
Here every setting is declared once, as a field of a frozen dataclass that carries its environment variable,
its default, its parser and a one-line doc (``per_namespace: int = integer("JANGAR_...", 10, "...")``).
One generic reader walks the fields and builds `Settings`; `describe()` walks the same fields to list every
variable (``python -m jangar.settings`` prints the table in docs/settings.md). One rule for each kind of value:

* booleans: ``1/true/yes/y/on`` and ``0/false/no/n/off`` (case-insensitive); empty means the default;
  anything else is an error naming the variable.
* integers: a plain integer, or a float that is integral (Helm renders 2592000 as ``2.592e+06``, chart
  quirk Q3); negative or garbage values are errors.
* seconds: a number > 0, optionally with a Go-style ``s`` suffix (``15`` or ``15s``).
* lists: a JSON array of strings or a comma-separated string; entries trimmed, empties dropped.
* JSON objects: must parse and be objects of the expected shape.

`Settings.from_env()` raises `SettingsError` on the first invalid variable; the message always names it.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from jangar.runtime.leaderelection import timing_problem

__all__ = [
    "DEFAULT_NAMESPACES",
    "AdmissionPolicySettings",
    "AgentCommsSettings",
    "ArtifactSettings",
    "AuditSettings",
    "AuthSecretSettings",
    "AuthSettings",
    "ConcurrencySettings",
    "ControllerSettings",
    "ControllerTuning",
    "DatabaseSettings",
    "DefaultWorkloadSettings",
    "GrpcSettings",
    "IdempotencySettings",
    "LeaderElectionSettings",
    "NativeWorkflowSettings",
    "QueueSettings",
    "RateSettings",
    "RepoConcurrencySettings",
    "RetentionSettings",
    "RunSpecPolicySettings",
    "RunnerServiceAccountSettings",
    "RunnerSettings",
    "RuntimeDebrisSettings",
    "SettingDoc",
    "Settings",
    "SettingsError",
    "VcsSettings",
    "WebhookSettings",
    "describe",
    "env_table_markdown",
]

#: The one default namespace list. The reference used `agents` for controllers and `jangar` for the REST
#: handlers and the primitives reconciler (§1.3); every list here falls back to the agents-controller list,
#: which falls back to this.
DEFAULT_NAMESPACES: tuple[str, ...] = ("agents",)

_TRUE = frozenset({"1", "true", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "no", "n", "off"})
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TOKEN_TYPES = frozenset({"pat", "fine_grained", "api_token", "access_token"})

_AC = "JANGAR_AGENTS_CONTROLLER_"
_RUNNER = "JANGAR_AGENT_RUNNER_"
_LE = "JANGAR_LEADER_ELECTION_"

Env = Mapping[str, str]
_T = TypeVar("_T")


class SettingsError(ValueError):
    """An environment variable has a value jangar cannot use. The message names the variable."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


# ----------------------------------------------------------------------------------------------------
# Primitive parsers. Each takes the variable name so errors can name it.


def _raw(env: Env, name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def parse_bool(env: Env, name: str, default: bool) -> bool:
    """One truthiness rule for every flag (the reference had three)."""
    value = _raw(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(name, f"expected a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")


def parse_int(env: Env, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    """Parse a non-negative integer; integral floats such as ``2.592e+06`` are accepted (chart quirk Q3)."""
    value = _raw(env, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        try:
            as_float = float(value)
        except ValueError:
            raise SettingsError(name, f"expected an integer, got {value!r}") from None
        if not math.isfinite(as_float) or as_float != int(as_float):
            raise SettingsError(name, f"expected an integer, got {value!r}") from None
        number = int(as_float)
    if number < minimum:
        raise SettingsError(name, f"must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise SettingsError(name, f"must be <= {maximum}, got {number}")
    return number


def parse_seconds(env: Env, name: str, default: float) -> float:
    """A duration in seconds > 0; Go-style ``15s`` is accepted as well as bare ``15`` or ``0.5``."""
    value = _raw(env, name)
    if value is None:
        return default
    text = value[:-1] if value.endswith("s") else value
    try:
        number = float(text)
    except ValueError:
        raise SettingsError(name, f"expected seconds (e.g. 15 or 15s), got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise SettingsError(name, f"must be > 0, got {value!r}")
    return number


def parse_str(env: Env, name: str, default: str | None = None) -> str | None:
    value = _raw(env, name)
    return default if value is None else value


def parse_list(env: Env, name: str) -> tuple[str, ...]:
    """A JSON array of strings or a comma-separated string (reference §3.9)."""
    value = _raw(env, name)
    if value is None:
        return ()
    if value.startswith("["):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SettingsError(name, f"invalid JSON array: {exc.msg}") from None
        if not isinstance(decoded, list) or not all(isinstance(item, str) for item in decoded):
            raise SettingsError(name, "expected a JSON array of strings")
        items = [item.strip() for item in decoded]
    else:
        items = [item.strip() for item in value.split(",")]
    return tuple(item for item in items if item)


def parse_json(env: Env, name: str, expected: type[dict[str, Any]] | type[list[Any]]) -> Any:
    """A JSON object or array; ``None`` when unset. Wrong JSON or the wrong top-level type is an error."""
    value = _raw(env, name)
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError as exc:
        raise SettingsError(name, f"invalid JSON: {exc.msg}") from None
    if not isinstance(decoded, expected):
        kind = "object" if expected is dict else "array"
        raise SettingsError(name, f"expected a JSON {kind}")
    return decoded


def parse_namespaces(
    env: Env, name: str, *, fallback: tuple[str, ...], cluster_scoped: bool
) -> tuple[str, ...]:
    """A CSV namespace list. ``*`` means all namespaces and needs ``JANGAR_RBAC_CLUSTER_SCOPED``."""
    items = parse_list(env, name)
    if not items:
        return fallback
    if "*" in items:
        if len(items) > 1:
            raise SettingsError(name, "'*' cannot be combined with other namespaces")
        if not cluster_scoped:
            raise SettingsError(
                name,
                "wildcard namespaces require rbac.clusterScoped=true (JANGAR_RBAC_CLUSTER_SCOPED=true)",
            )
        return ("*",)
    for item in items:
        if len(item) > 63 or not _NAMESPACE_RE.match(item):
            raise SettingsError(name, f"{item!r} is not a valid namespace name")
    # Keep the order the user gave, without duplicates.
    return tuple(dict.fromkeys(items))


# ----------------------------------------------------------------------------------------------------
# Declarations. Each helper returns a dataclass `field` whose metadata holds the variable(s), the parser
# and the doc; the default given to the helper is both the field's default and the parser's.

_SPEC = "jangar.setting"

#: Reads one field: (environment, values of the fields already read in the same group) -> value.
Reader = Callable[[Env, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class _Var:
    env: str
    default: str  # as shown in the docs
    doc: str


@dataclass(frozen=True)
class _Spec:
    read: Reader
    vars: tuple[_Var, ...] = ()
    group: type[Any] | None = None  # a nested settings group (its own fields are listed)


@dataclass(frozen=True)
class SettingDoc:
    """One row of the settings table: the `Settings` attribute path, the variable, its default, its doc."""

    path: str
    env: str
    default: str
    doc: str


def _show(value: Any) -> str:
    """A default as the docs show it (the form the variable would be written in)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"), default=list) if value else ""
    return str(value)


def _declare(default: Any, read: Reader, *vars: _Var, group: type[Any] | None = None) -> Any:
    metadata = {_SPEC: _Spec(read, vars, group)}
    if default is MISSING:
        return field(metadata=metadata)
    if group is not None and default is not None:
        return field(default_factory=group, metadata=metadata)
    if isinstance(default, dict | list):
        template = copy.deepcopy(default)
        return field(default_factory=lambda: copy.deepcopy(template), metadata=metadata)
    return field(default=default, metadata=metadata)


def flag(name: str, default: bool, doc: str, *, inverted: bool = False) -> Any:
    """A boolean. ``inverted``: the variable says the opposite of the field (``..._DISABLED``)."""
    env_default = default != inverted

    def read(env: Env, _: Mapping[str, Any]) -> bool:
        return parse_bool(env, name, env_default) != inverted

    return _declare(default, read, _Var(name, _show(env_default), doc))


def integer(name: str, default: int, doc: str, *, minimum: int = 0, maximum: int | None = None) -> Any:
    """An integer >= ``minimum`` (0 unless stated) and <= ``maximum``."""
    return _declare(
        default,
        lambda env, _: parse_int(env, name, default, minimum=minimum, maximum=maximum),
        _Var(name, _show(default), doc),
    )


def seconds(name: str, default: float, doc: str) -> Any:
    """A duration in seconds > 0 (``15`` or ``15s``)."""
    return _declare(
        default, lambda env, _: parse_seconds(env, name, default), _Var(name, _show(default), doc)
    )


def text(
    name: str,
    default: str | None,
    doc: str,
    *,
    fallbacks: Sequence[str] = (),
    check: Callable[[str, str], str] | None = None,
    also: Sequence[_Var] = (),
) -> Any:
    """A string; unset or blank means the first set ``fallbacks`` variable, else ``default``.
    ``check(name, value)`` validates (and may normalize) a value given in ``name``; ``also`` documents
    fallback variables that are no setting of their own."""

    def read(env: Env, _: Mapping[str, Any]) -> str | None:
        value = parse_str(env, name)
        if value is not None and check is not None:
            value = check(name, value)
        for other in fallbacks:
            if value is not None:
                break
            value = parse_str(env, other)
        return default if value is None else value

    shown = " or ".join([*(f"${v}" for v in fallbacks), *([_show(default)] if default else [])])
    return _declare(default, read, _Var(name, shown, doc), *also)


def required_text(name: str, doc: str) -> Any:
    """A string without a default; its group is absent (`optional_group`) while it is unset."""
    return _declare(MISSING, lambda env, _: parse_str(env, name), _Var(name, "", doc))


def strings(name: str, doc: str) -> Any:
    """A list of strings (JSON array or comma-separated); unset means empty."""
    return _declare((), lambda env, _: parse_list(env, name), _Var(name, "", doc))


def json_object(name: str, doc: str, *, string_values: bool = False) -> Any:
    """A JSON object; unset means ``{}``. ``string_values``: every value must be a string."""

    def read(env: Env, _: Mapping[str, Any]) -> dict[str, Any]:
        decoded: dict[str, Any] = parse_json(env, name, dict) or {}
        if string_values and not all(isinstance(v, str) for v in decoded.values()):
            raise SettingsError(name, "values must be strings")
        return decoded

    return _declare({}, read, _Var(name, "", doc))


def json_objects(name: str, doc: str) -> Any:
    """A JSON array of objects; unset means empty."""

    def read(env: Env, _: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
        decoded = parse_json(env, name, list)
        if decoded is None:
            return ()
        if not all(isinstance(item, dict) for item in decoded):
            raise SettingsError(name, "expected a JSON array of objects")
        return tuple(decoded)

    return _declare((), read, _Var(name, "", doc))


def choice(
    name: str,
    default: str | None,
    doc: str,
    choices: Sequence[str],
    *,
    aliases: Mapping[str, str] | None = None,
) -> Any:
    """One of ``choices``, compared case-insensitively; ``aliases`` map other spellings to a choice."""
    expected = ", ".join(choices[:-1]) + f" or {choices[-1]}"
    aliases = aliases or {}

    def read(env: Env, _: Mapping[str, Any]) -> str | None:
        value = _raw(env, name)
        if value is None:
            return default
        lowered = aliases.get(value.lower(), value.lower())
        for option in choices:
            if lowered == option.lower():
                return option
        raise SettingsError(name, f"expected {expected}, got {value!r}")

    return _declare(default, read, _Var(name, _show(default), f"{doc} ({'/'.join(choices)})"))


def custom(
    name: str,
    default: Any,
    doc: str,
    parse: Callable[[Env, str], Any],
    *,
    also: Sequence[_Var] = (),
) -> Any:
    """A value with its own parser: ``parse(env, name)`` returns the value, or ``None`` when unset."""

    def read(env: Env, _: Mapping[str, Any]) -> Any:
        value = parse(env, name)
        return copy.deepcopy(default) if value is None else value

    return _declare(default, read, _Var(name, _show(default), doc), *also)


def group(cls: type[Any]) -> Any:
    """A nested settings group, read field by field."""
    return _declare(cls, lambda env, _: _read(cls, env), group=cls)


def optional_group(cls: type[Any], *, when: str) -> Any:
    """A nested group that is ``None`` unless its ``when`` field's variable is set."""
    key = _spec_of(next(f for f in fields(cls) if f.name == when))

    def read(env: Env, _: Mapping[str, Any]) -> Any:
        return None if key.read(env, {}) is None else _read(cls, env)

    return _declare(None, read, group=cls)


def controller(
    flag_var: str,
    namespaces_var: str,
    doc: str,
    *,
    enabled: bool,
    inherit: tuple[str, str] | None = None,
) -> Any:
    """A `ControllerSettings`: an on/off variable and a namespace list that falls back to the list of
    ``inherit`` = (sibling field, its variable), else `DEFAULT_NAMESPACES`. ``*`` needs cluster scope."""

    def read(env: Env, done: Mapping[str, Any]) -> ControllerSettings:
        fallback = done[inherit[0]].namespaces if inherit else DEFAULT_NAMESPACES
        return ControllerSettings(
            enabled=parse_bool(env, flag_var, enabled),
            namespaces=parse_namespaces(
                env, namespaces_var, fallback=fallback, cluster_scoped=done["rbac_cluster_scoped"]
            ),
        )

    inherited = f"${inherit[1]}" if inherit else ",".join(DEFAULT_NAMESPACES)
    return _declare(
        ControllerSettings(enabled, DEFAULT_NAMESPACES),
        read,
        _Var(flag_var, "1" if enabled else "0", f"run the {doc}"),
        _Var(namespaces_var, inherited, f"namespaces watched by the {doc} (`*` = all)"),
    )


def _spec_of(f: Field[Any]) -> _Spec:
    return cast(_Spec, f.metadata[_SPEC])


def _read(cls: type[Any], env: Env) -> Any:
    """Build ``cls`` from ``env``: each declared field in order, then the group's cross-field checks."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        if _SPEC in f.metadata:
            values[f.name] = _spec_of(f).read(env, values)
    built = cls(**values)
    check = _GROUP_CHECKS.get(cls)
    if check is not None:
        check(built)
    return built


# ----------------------------------------------------------------------------------------------------
# Custom parsers for the settings whose shape is more than one primitive.


def _dns_label(name: str, value: str) -> str:
    if len(value) > 63 or not _NAMESPACE_RE.match(value):
        raise SettingsError(name, f"{value!r} is not a valid DNS-1123 label")
    return value


def _absolute_path(name: str, value: str) -> str:
    if not value.startswith("/"):
        raise SettingsError(name, f"must be an absolute path, got {value!r}")
    return value.rstrip("/") or "/"


#: Paths the probe server already answers (the metrics path must not shadow or collide with them).
_RESERVED_PATHS = ("/health", "/ready", "/healthz", "/readyz", "/v1")


def _metrics_path(name: str, value: str) -> str:
    path = _absolute_path(name, value)
    for reserved in _RESERVED_PATHS:
        if path in ("/", reserved) or path.startswith(f"{reserved}/"):
            raise SettingsError(name, f"{path!r} is taken by the probes or the API; use e.g. /metrics")
    return path


def _repo_overrides(env: Env, name: str) -> dict[str, int] | None:
    decoded = parse_json(env, name, dict)
    if decoded is None:
        return None
    overrides: dict[str, int] = {}
    for key, value in decoded.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 0:
            raise SettingsError(name, f"limit for {key!r} must be an integer >= 0, got {value!r}")
        repo = str(key).strip().lower()
        if repo:
            overrides[repo] = int(value)
    return overrides


def _deprecated_token_types(env: Env, name: str) -> dict[str, tuple[str, ...]] | None:
    decoded = parse_json(env, name, dict)
    if decoded is None:
        return None
    result: dict[str, tuple[str, ...]] = {}
    for provider, types in decoded.items():
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise SettingsError(name, f"value for {provider!r} must be a list of token types")
        normalized = tuple(t.strip().lower().replace("-", "_") for t in types if t.strip())
        unknown = [t for t in normalized if t not in _TOKEN_TYPES]
        if unknown:
            raise SettingsError(name, f"unknown token type(s) {unknown} for {provider!r}")
        result[str(provider).strip().lower()] = normalized
    return result


def _resource_requirements(env: Env, name: str) -> dict[str, dict[str, Any]] | None:
    """A JSON ResourceRequirements: only `requests` and `limits`, each an object of quantities."""
    decoded = parse_json(env, name, dict)
    if decoded is None:
        return None
    unknown = sorted(set(decoded) - {"requests", "limits"})
    if unknown:
        raise SettingsError(name, f"only requests and limits are allowed, got {', '.join(unknown)}")
    result: dict[str, dict[str, Any]] = {}
    for key, value in decoded.items():
        if not isinstance(value, dict) or not all(
            isinstance(q, str | int) and not isinstance(q, bool) for q in value.values()
        ):
            raise SettingsError(name, f"{key} must be an object of quantities (strings or integers)")
        if value:
            result[key] = dict(value)
    return result


def _image_pull_secrets(env: Env, name: str) -> tuple[str, ...] | None:
    value = _raw(env, name)
    if value is None:
        return None
    if not value.startswith("["):
        return parse_list(env, name)
    decoded = parse_json(env, name, list)
    names: list[str] = []
    for item in decoded:
        if isinstance(item, str) and item.strip():
            names.append(item.strip())
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip():
            names.append(item["name"].strip())
        else:
            raise SettingsError(name, f"entries must be names or {{name}} objects, got {item!r}")
    return tuple(names)


def _migrations(env: Env, name: str) -> Literal["auto", "skip"] | None:
    if parse_bool(env, "JANGAR_SKIP_MIGRATIONS", False):
        return "skip"
    value = _raw(env, name)
    if value is None:
        return None
    lowered = value.lower()
    if lowered in {"auto", "on", "true", "1", "enabled"}:
        return "auto"
    if lowered in {"skip", "disabled", "false", "0", "off"}:
        return "skip"
    raise SettingsError(name, f"expected 'auto' or 'skip', got {value!r}")


# ----------------------------------------------------------------------------------------------------
# Settings groups.


@dataclass(frozen=True)
class ControllerSettings:
    """One controller's on/off flag and the namespaces it watches (``("*",)`` means all)."""

    enabled: bool
    namespaces: tuple[str, ...]

    @property
    def all_namespaces(self) -> bool:
        return self.namespaces == ("*",)


@dataclass(frozen=True)
class ControllerTuning:
    """Runtime knobs of the controllers: parallelism, the reconcile timeout and the grace periods."""

    agentrun_workers: int = integer("JANGAR_AGENTRUN_WORKERS", 4, "parallel AgentRun reconciles", minimum=1)
    supporting_workers: int = integer(
        "JANGAR_SUPPORTING_CONTROLLER_WORKERS",
        2,
        "parallel reconciles per supporting kind (Agent, AgentProvider, ...)",
        minimum=1,
    )
    reconcile_timeout_seconds: float = seconds(
        "JANGAR_RECONCILE_TIMEOUT_SECONDS",
        60.0,
        "a reconcile running longer is cancelled and retried with backoff",
    )
    reference_grace_seconds: float = seconds(
        "JANGAR_REFERENCE_GRACE_SECONDS",
        300.0,
        "how long a run waits Pending for a referenced object that does not exist yet",
    )
    image_pull_grace_seconds: float = seconds(
        "JANGAR_IMAGE_PULL_GRACE_SECONDS", 300.0, "ImagePullBackOff tolerated before the run fails"
    )
    scheduling_grace_seconds: float = seconds(
        "JANGAR_SCHEDULING_GRACE_SECONDS",
        600.0,
        "an Unschedulable pod, or a Job without pods, tolerated before the run fails",
    )
    missing_job_grace_seconds: float = seconds(
        "JANGAR_MISSING_JOB_GRACE_SECONDS",
        60.0,
        "a submitted Job absent from the cache this long is recreated",
    )
    #: drift row 10 (jangar.providers.health): how long a provider's capacity/auth failure holds new runs
    provider_health_cooldown_seconds: int = integer(
        "JANGAR_PROVIDER_HEALTH_COOLDOWN_SECONDS",
        600,
        "after a run fails on provider capacity (usage limit, quota, rate limit) or auth (expired token, "
        "invalid grant), new runs of that AgentProvider wait this long (0 = no health gating)",
    )


@dataclass(frozen=True)
class ConcurrencySettings:
    """How many runs may be Running at once. 0 means no limit (the reference could not turn a gate off)."""

    per_namespace: int = integer(
        f"{_AC}CONCURRENCY_NAMESPACE", 10, "Running runs per namespace (0 = no limit)"
    )
    per_agent: int = integer(f"{_AC}CONCURRENCY_AGENT", 5, "Running runs per Agent (0 = no limit)")
    cluster: int = integer(f"{_AC}CONCURRENCY_CLUSTER", 100, "Running runs in total (0 = no limit)")


@dataclass(frozen=True)
class RepoConcurrencySettings:
    enabled: bool = flag(f"{_AC}REPO_CONCURRENCY_ENABLED", False, "limit Running runs per repository")
    default: int = integer(f"{_AC}REPO_CONCURRENCY_DEFAULT", 0, "per-repository limit (0 = no limit)")
    overrides: Mapping[str, int] = custom(
        f"{_AC}REPO_CONCURRENCY_OVERRIDES",
        {},
        "JSON object repository -> limit (keys lower-cased)",
        _repo_overrides,
    )


@dataclass(frozen=True)
class QueueSettings:
    """How many runs may wait. 0 turns a limit off."""

    per_namespace: int = integer(f"{_AC}QUEUE_NAMESPACE", 200, "waiting runs per namespace (0 = no limit)")
    per_repo: int = integer(f"{_AC}QUEUE_REPO", 50, "waiting runs per repository (0 = no limit)")
    cluster: int = integer(f"{_AC}QUEUE_CLUSTER", 1000, "waiting runs in total (0 = no limit)")


@dataclass(frozen=True)
class RateSettings:
    """Admissions per sliding window (see docs/admission.md). 0 turns a limit off."""

    window_seconds: int = integer(f"{_AC}RATE_WINDOW_SECONDS", 60, "the rate window", minimum=1)
    per_namespace: int = integer(f"{_AC}RATE_NAMESPACE", 120, "admissions per window and namespace")
    per_repo: int = integer(f"{_AC}RATE_REPO", 30, "admissions per window and repository")
    cluster: int = integer(f"{_AC}RATE_CLUSTER", 600, "admissions per window in total")


@dataclass(frozen=True)
class WebhookSettings:
    queue_size: int = integer(f"{_AC}WEBHOOK_QUEUE_SIZE", 1000, "webhook deliveries buffered", minimum=1)
    retry_base_delay_seconds: int = integer(
        f"{_AC}WEBHOOK_RETRY_BASE_DELAY_SECONDS", 1, "first webhook retry delay"
    )
    retry_max_delay_seconds: int = integer(f"{_AC}WEBHOOK_RETRY_MAX_DELAY_SECONDS", 60, "webhook retry cap")
    retry_max_attempts: int = integer(
        f"{_AC}WEBHOOK_RETRY_MAX_ATTEMPTS", 5, "webhook delivery attempts", minimum=1
    )


@dataclass(frozen=True)
class AdmissionPolicySettings:
    """Label, image and secret policy checked when a run is validated (reference §3.9)."""

    labels_required: tuple[str, ...] = strings(f"{_AC}LABELS_REQUIRED", "labels every run must carry")
    labels_allowed: tuple[str, ...] = strings(f"{_AC}LABELS_ALLOWED", "the only labels a run may carry")
    labels_denied: tuple[str, ...] = strings(f"{_AC}LABELS_DENIED", "labels a run must not carry")
    images_allowed: tuple[str, ...] = strings(f"{_AC}IMAGES_ALLOWED", "image patterns a run may use")
    images_denied: tuple[str, ...] = strings(f"{_AC}IMAGES_DENIED", "image patterns a run must not use")
    blocked_secrets: tuple[str, ...] = strings(f"{_AC}BLOCKED_SECRETS", "Secrets no run may reference")


@dataclass(frozen=True)
class VcsSettings:
    providers_enabled: bool = flag(f"{_AC}VCS_PROVIDERS_ENABLED", True, "resolve VersionControlProviders")
    #: provider -> deprecated token types; replaces the built-in list per provider (empty list clears it).
    deprecated_token_types: Mapping[str, tuple[str, ...]] = custom(
        f"{_AC}VCS_DEPRECATED_TOKEN_TYPES",
        {"github": ("pat",)},
        "JSON object provider -> deprecated token types (replaces the built-in list)",
        _deprecated_token_types,
    )
    #: provider -> {windowSeconds, maxRequests, backoffSeconds}; passed to runners as VCS_PR_RATE_LIMITS.
    pr_rate_limits: Mapping[str, Any] = json_object(
        f"{_AC}VCS_PR_RATE_LIMITS", "JSON object provider -> PR rate limit, passed to runners"
    )


@dataclass(frozen=True)
class AuthSecretSettings:
    """The Codex auth secret mounted into every runner pod (sets CODEX_HOME and CODEX_AUTH)."""

    name: str = required_text(f"{_AC}AUTH_SECRET_NAME", "Secret with the Codex auth.json (unset: none)")
    key: str = text(f"{_AC}AUTH_SECRET_KEY", "auth.json", "key of auth.json in that Secret")
    mount_path: str = text(
        f"{_AC}AUTH_SECRET_MOUNT_PATH", "/root/.codex", "where runner pods get it", check=_absolute_path
    )


@dataclass(frozen=True)
class DefaultWorkloadSettings:
    """`controller.defaultWorkload.*`: pod-spec defaults a run's `spec.runtime.config` replaces key by key."""

    service_account_name: str | None = text(f"{_RUNNER}SERVICE_ACCOUNT", None, "runner pod ServiceAccount")
    node_selector: Mapping[str, str] = json_object(
        f"{_RUNNER}NODE_SELECTOR", "runner pod nodeSelector (JSON)", string_values=True
    )
    tolerations: tuple[Mapping[str, Any], ...] = json_objects(
        f"{_RUNNER}TOLERATIONS", "runner pod tolerations (JSON)"
    )
    topology_spread_constraints: tuple[Mapping[str, Any], ...] = json_objects(
        f"{_RUNNER}TOPOLOGY_SPREAD_CONSTRAINTS", "runner pod topologySpreadConstraints (JSON)"
    )
    affinity: Mapping[str, Any] = json_object(f"{_RUNNER}AFFINITY", "runner pod affinity (JSON)")
    pod_security_context: Mapping[str, Any] = json_object(
        f"{_RUNNER}POD_SECURITY_CONTEXT", "runner pod securityContext (JSON)"
    )
    image_pull_secrets: tuple[str, ...] = custom(
        f"{_RUNNER}IMAGE_PULL_SECRETS",
        (),
        "runner pod imagePullSecrets: names, CSV or JSON (names or {name} objects)",
        _image_pull_secrets,
    )
    priority_class_name: str | None = text(f"{_RUNNER}PRIORITY_CLASS", None, "runner pod priorityClassName")
    scheduler_name: str | None = text(f"{_RUNNER}SCHEDULER_NAME", None, "runner pod schedulerName")
    #: chart 0.9.29 `controller.defaultWorkload.resources` (drift row 22): after the run's and the provider's
    resources: Mapping[str, Mapping[str, Any]] = custom(
        f"{_RUNNER}RESOURCES",
        {},
        "runner container resources when neither the run nor its AgentProvider sets any (JSON "
        "ResourceRequirements: requests, limits)",
        _resource_requirements,
    )


@dataclass(frozen=True)
class RunnerSettings:
    image: str | None = text(f"{_RUNNER}IMAGE", None, "runner image of runs that name none")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = choice(
        f"{_RUNNER}IMAGE_PULL_POLICY", None, "runner imagePullPolicy", ("Always", "IfNotPresent", "Never")
    )
    fallback_image: str | None = text(
        "JANGAR_AGENT_IMAGE", None, f"runner image when {_RUNNER}IMAGE is unset"
    )
    job_ttl_seconds: int = integer(
        f"{_RUNNER}JOB_TTL_SECONDS", 600, "runner Job TTL after it finishes (0 = none)"
    )
    log_retention_seconds: int = integer(f"{_RUNNER}LOG_RETENTION_SECONDS", 604_800, "runner log retention")
    default_workload: DefaultWorkloadSettings = group(DefaultWorkloadSettings)

    @property
    def default_image(self) -> str | None:
        return self.image or self.fallback_image


@dataclass(frozen=True)
class LeaderElectionSettings:
    """coordination.k8s.io Lease election (absent in the reference, §1.2)."""

    enabled: bool = flag(f"{_LE}ENABLED", True, "run controllers only while holding the Lease")
    lease_name: str = text(f"{_LE}LEASE_NAME", "jangar-controller", "the Lease", check=_dns_label)
    namespace: str | None = text(
        f"{_LE}NAMESPACE",
        None,
        "namespace of the Lease",
        fallbacks=("JANGAR_POD_NAMESPACE",),
        check=_dns_label,
    )
    lease_duration_seconds: float = seconds(f"{_LE}LEASE_DURATION_SECONDS", 15.0, "Lease duration")
    renew_deadline_seconds: float = seconds(
        f"{_LE}RENEW_DEADLINE_SECONDS", 10.0, "leader gives up if not renewed by then (< lease duration)"
    )
    retry_period_seconds: float = seconds(
        f"{_LE}RETRY_PERIOD_SECONDS", 2.0, "retry interval (< renew deadline)"
    )


_LEASE_TIMING_VARS = {
    "lease_duration": f"{_LE}LEASE_DURATION_SECONDS",
    "renew_deadline": f"{_LE}RENEW_DEADLINE_SECONDS",
    "retry_period": f"{_LE}RETRY_PERIOD_SECONDS",
}


def _check_lease_timings(le: LeaderElectionSettings) -> None:
    """The runtime's own rule (`jangar.runtime.leaderelection.timing_problem`), so timings that pass here
    never make `LeaderElectionOptions` raise at start. Checked only when election is on (the chart renders
    the timings either way and checks them under the same condition)."""
    if not le.enabled:
        return
    problem = timing_problem(le.lease_duration_seconds, le.renew_deadline_seconds, le.retry_period_seconds)
    if problem is not None:
        raise SettingsError(_LEASE_TIMING_VARS[problem[0]], problem[1])


@dataclass(frozen=True)
class DatabaseSettings:
    url: str | None = text("DATABASE_URL", None, "Postgres connection string of the run recorder")
    sslmode: str = text("PGSSLMODE", "require", "libpq sslmode")
    sslrootcert: str | None = text("PGSSLROOTCERT", None, "CA bundle path")
    ca_cert: str | None = text("JANGAR_DB_CA_CERT", None, "CA certificate (path or PEM)")
    connect_timeout_ms: int = integer("PGCONNECT_TIMEOUT_MS", 5000, "connect timeout", minimum=1)
    query_timeout_ms: int = integer("PGQUERY_TIMEOUT_MS", 20000, "query timeout", minimum=1)
    migrations: Literal["auto", "skip"] = custom(
        "JANGAR_MIGRATIONS",
        "auto",
        "`auto` migrates at start, `skip` does not",
        _migrations,
        also=(_Var("JANGAR_SKIP_MIGRATIONS", "false", "older spelling: true means JANGAR_MIGRATIONS=skip"),),
    )
    records_buffer_max: int = integer(
        "JANGAR_RECORDS_BUFFER_MAX",
        10000,
        "run records buffered in memory at most; when full, offers are refused and made again later",
        minimum=1,
        maximum=1_000_000,
    )


@dataclass(frozen=True)
class GrpcSettings:
    enabled: bool = flag("JANGAR_GRPC_ENABLED", False, "serve the gRPC API")
    host: str = text("JANGAR_GRPC_HOST", "127.0.0.1", "gRPC listen host")
    port: int = integer("JANGAR_GRPC_PORT", 50051, "gRPC listen port", minimum=1, maximum=65535)
    address: str | None = text("JANGAR_GRPC_ADDRESS", None, "host:port, overrides host and port")
    token: str | None = text("JANGAR_GRPC_TOKEN", None, "bearer token every call must carry")
    proto_path: str | None = text("JANGAR_GRPC_PROTO_PATH", None, "accepted and ignored (compiled in)")

    @property
    def bind_address(self) -> str:
        return self.address or f"{self.host}:{self.port}"


#: Where the native-workflow orchestrations live when their own namespace variable is unset: one fallback
#: chain instead of the reference's `jangar` default.
_WORKFLOW_NAMESPACE_FALLBACKS = (
    "JANGAR_CODEX_WORKFLOW_NAMESPACE",
    "JANGAR_NAMESPACE",
    "JANGAR_POD_NAMESPACE",
)


@dataclass(frozen=True)
class NativeWorkflowSettings:
    """`workflowRuntime.native.*`: the orchestrations used for codex reruns and system improvements."""

    rerun_orchestration: str | None = text(
        "JANGAR_CODEX_RERUN_ORCHESTRATION", None, "codex rerun Orchestration"
    )
    rerun_orchestration_namespace: str = text(
        "JANGAR_CODEX_RERUN_ORCHESTRATION_NAMESPACE",
        DEFAULT_NAMESPACES[0],
        "its namespace",
        fallbacks=_WORKFLOW_NAMESPACE_FALLBACKS,
        also=(
            _Var(
                "JANGAR_CODEX_WORKFLOW_NAMESPACE", "", "namespace of both orchestrations when theirs is unset"
            ),
            _Var("JANGAR_NAMESPACE", "", "the next fallback for that namespace"),
        ),
    )
    system_improvement_orchestration: str | None = text(
        "JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION", None, "system-improvement Orchestration"
    )
    system_improvement_orchestration_namespace: str = text(
        "JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION_NAMESPACE",
        DEFAULT_NAMESPACES[0],
        "its namespace",
        fallbacks=_WORKFLOW_NAMESPACE_FALLBACKS,
    )


@dataclass(frozen=True)
class AgentCommsSettings:
    """The NATS agent-comms subscriber (adjacent to jangar's core; off unless enabled)."""

    enabled: bool = flag(
        "JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED", False, "`false` starts the NATS subscriber", inverted=True
    )
    subjects: tuple[str, ...] = strings("JANGAR_AGENT_COMMS_SUBJECTS", "NATS subjects to subscribe to")


@dataclass(frozen=True)
class ArtifactSettings:
    """Artifact objects recorded for finished AgentRuns (issue 11, docs/workspaces.md)."""

    max_per_run: int = integer(
        "JANGAR_ARTIFACTS_MAX_PER_RUN",
        50,
        "artifacts recorded per AgentRun (status.artifacts and Artifact objects); more: ArtifactsTruncated",
        minimum=0,
        maximum=1000,
    )
    default_ttl_days: int = integer(
        "JANGAR_ARTIFACTS_DEFAULT_TTL_DAYS",
        0,
        "lifecycle.ttlDays of the Artifacts created for runs (0: kept until the run is deleted)",
    )
    strict: bool = flag(
        "JANGAR_AGENTRUN_ARTIFACTS_STRICT",
        False,
        "a run that reports more artifacts than JANGAR_ARTIFACTS_MAX_PER_RUN fails (ArtifactsLimitExceeded) "
        "instead of keeping the first ones (chart 0.9.29 controller.agentRunArtifacts.strict)",
    )


@dataclass(frozen=True)
class RetentionSettings:
    """issue 13: the retention sweep (docs/retention.md): finished AgentRuns past their retention are deleted
    by one leader-only pass every `sweep_interval_seconds`, at most `max_deletes_per_namespace` per
    namespace per pass, so a backlog (a lowered retention, a restart after an outage) drains in steps instead
    of one burst of deletes."""

    max_deletes_per_namespace: int = integer(
        "JANGAR_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE",
        50,
        "expired AgentRuns deleted per namespace per sweep pass (0 = no cap)",
    )
    zero_ttl_max_seconds: int = integer(
        "JANGAR_AGENTRUN_RETENTION_ZERO_TTL_MAX_SECONDS",
        0,
        "safety cap for a retention of 0 (kept for ever): delete such runs this long after they finished "
        "(0 = no cap, the 0.9.1 behaviour)",
    )
    sweep_interval_seconds: float = seconds(
        "JANGAR_RETENTION_SWEEP_INTERVAL_SECONDS",
        30.0,
        "at most this long between two retention / runtime-debris passes (sooner when a run falls due)",
    )


@dataclass(frozen=True)
class RuntimeDebrisSettings:
    """issue 13: runtime debris (docs/retention.md): finished runner Pods (labelled
    `agents.proompteng.ai/agent-run`) whose Job is gone, e.g. after `kubectl delete job --cascade=orphan`."""

    mode: str = choice(
        "JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE",
        "report",
        "what the sweep does with an orphaned runner Pod: nothing, count it and emit an Event, or delete it",
        ("disabled", "report", "delete"),
    )
    min_age_seconds: int = integer(
        "JANGAR_RUNTIME_DEBRIS_CLEANUP_MIN_AGE_SECONDS",
        900,
        "an orphaned runner Pod is debris only once it finished at least this long ago",
    )
    max_deletes_per_namespace: int = integer(
        "JANGAR_RUNTIME_DEBRIS_CLEANUP_MAX_DELETES_PER_NAMESPACE",
        20,
        "orphaned runner Pods deleted per namespace per sweep pass (0 = no cap)",
    )


@dataclass(frozen=True)
class WorkflowLoopSettings:
    """0.9.29 workflow step loops (issue 13, docs/workflows.md): off by default, as in the reference."""

    enabled: bool = flag(
        "JANGAR_AGENTRUN_WORKFLOW_LOOPS_ENABLED",
        False,
        "run workflow steps with `loop` (off: such runs fail with WorkflowLoopsDisabled)",
    )


@dataclass(frozen=True)
class RunnerServiceAccountSettings:
    """`runnerServiceAccount.*` (issue 12): the controller creates the runner ServiceAccount in a run's
    namespace when it is missing (so `controller.namespaces=["*"]` works), see docs/settings.md."""

    create: bool = flag(
        f"{_RUNNER}SERVICE_ACCOUNT_CREATE",
        False,
        f"create {_RUNNER}SERVICE_ACCOUNT in a run's namespace when it is missing",
    )
    annotations: Mapping[str, str] = json_object(
        f"{_RUNNER}SERVICE_ACCOUNT_ANNOTATIONS",
        "annotations of the ServiceAccounts it creates (JSON)",
        string_values=True,
    )
    cluster_role: str | None = text(
        f"{_RUNNER}CLUSTER_ROLE",
        None,
        "ClusterRole bound (RoleBinding in the run's namespace) to the ServiceAccounts it creates",
    )


@dataclass(frozen=True)
class AuthSettings:
    """issue 12: how callers of the HTTP API and gRPC are authenticated (docs/security.md)."""

    token_review: bool = flag(
        "JANGAR_AUTH_TOKEN_REVIEW",
        True,
        "verify callers' bearer tokens with TokenReview (off: only JANGAR_GRPC_TOKEN authenticates)",
    )
    cache_ttl_seconds: float = seconds(
        "JANGAR_AUTH_CACHE_TTL_SECONDS",
        120.0,
        "how long an accepted token and a granted permission are cached",
    )
    denied_cache_ttl_seconds: float = seconds(
        "JANGAR_AUTH_DENIED_CACHE_TTL_SECONDS", 30.0, "how long a refused token and a denial are cached"
    )


_ORIGIN = re.compile(r"^https?://(\*\.)?[^/\s?#*]+$")


def origins(name: str, doc: str) -> Any:
    """issue 13 item 2: browser origins (``scheme://host[:port]``, ``scheme://*.domain[:port]`` for its
    subdomains, or ``*``); a path or a bare host is an error at start-up, since a browser never sends one and
    the entry would silently match nothing."""

    def read(env: Env, _: Mapping[str, Any]) -> tuple[str, ...]:
        items = tuple(item.rstrip("/") for item in parse_list(env, name))
        for item in items:
            if item != "*" and not _ORIGIN.match(item):
                raise SettingsError(
                    name,
                    f"{item!r} is not an origin: write scheme://host[:port] (no path), scheme://*.domain or *",
                )
        return items

    return _declare((), read, _Var(name, "", doc))


@dataclass(frozen=True)
class RunSpecPolicySettings:
    """issue 13 item 3 (0.9.29 rows 5 and 7, docs/agentrun-spec.md): system prompts and spec immutability."""

    system_prompt_required: bool = flag(
        "JANGAR_AGENT_SYSTEM_PROMPT_REQUIRED",
        False,
        "every run's Agent needs a system prompt (else MissingSystemPromptConfiguration), and no run may "
        "pass a `prompt` parameter; off: only runs of Agents that have a prompt follow the 0.9.29 policy",
    )
    spec_immutability_enforced: bool = flag(
        "JANGAR_AGENTRUN_SPEC_IMMUTABILITY_ENFORCED",
        True,
        "an edit of an accepted run's spec stops it (SpecImmutableViolation); false: a Warning only",
    )


@dataclass(frozen=True)
class IdempotencySettings:
    """issue 13: durable AgentRun idempotency keys in Postgres (docs/idempotency.md); needs DATABASE_URL."""

    enabled: bool = flag(
        "JANGAR_AGENTRUN_IDEMPOTENCY_ENABLED",
        True,
        "claim spec.idempotencyKey per (namespace, agent, key) in Postgres; a second run with the key fails",
    )
    retention_days: int = integer(
        "JANGAR_AGENTRUN_IDEMPOTENCY_RETENTION_DAYS",
        30,
        "idempotency keys untouched for this long are pruned (by the leader, hourly)",
        minimum=1,
        maximum=3650,
    )


AUDIT_SINK_TYPES = ("none", "stdout", "http")


@dataclass(frozen=True)
class AuditSettings:
    """issue 13: where audit events (submissions, policy decisions) go (`audit.sink.*`, docs/audit.md)."""

    sink_type: Literal["none", "stdout", "http"] = choice(
        "JANGAR_AUDIT_SINK_TYPE", "none", "audit event sink", AUDIT_SINK_TYPES
    )
    url: str | None = text("JANGAR_AUDIT_SINK_URL", None, "http sink: the URL events are POSTed to (JSON)")
    headers: Mapping[str, str] = json_object(
        "JANGAR_AUDIT_SINK_HEADERS",
        "http sink: extra request headers (JSON object of strings; never logged)",
        string_values=True,
    )
    timeout_ms: int = integer(
        "JANGAR_AUDIT_SINK_TIMEOUT_MS", 2000, "http sink: timeout of one POST", minimum=1, maximum=600_000
    )


def _check_audit(audit: AuditSettings) -> None:
    if audit.sink_type != "http":
        return
    if not audit.url:
        raise SettingsError("JANGAR_AUDIT_SINK_URL", "required when JANGAR_AUDIT_SINK_TYPE=http")
    if not re.match(r"^https?://[^/\s]+", audit.url):
        raise SettingsError("JANGAR_AUDIT_SINK_URL", "expected an http:// or https:// URL")


@dataclass(frozen=True)
class Settings:
    """Everything the jangar process reads from its environment."""

    rbac_cluster_scoped: bool = flag(
        "JANGAR_RBAC_CLUSTER_SCOPED", False, "RBAC is cluster-wide: needed for several namespaces or `*`"
    )
    agents_controller: ControllerSettings = controller(
        f"{_AC}ENABLED", f"{_AC}NAMESPACES", "agents (AgentRun) controller", enabled=True
    )
    orchestration_controller: ControllerSettings = controller(
        "JANGAR_ORCHESTRATION_CONTROLLER_ENABLED",
        "JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES",
        "orchestration controller",
        enabled=True,
        inherit=("agents_controller", f"{_AC}NAMESPACES"),
    )
    supporting_controller: ControllerSettings = controller(
        "JANGAR_SUPPORTING_CONTROLLER_ENABLED",
        "JANGAR_SUPPORTING_CONTROLLER_NAMESPACES",
        "supporting controllers (Agent, AgentProvider, ...)",
        enabled=True,
        inherit=("agents_controller", f"{_AC}NAMESPACES"),
    )
    primitives_reconciler: ControllerSettings = controller(
        "JANGAR_PRIMITIVES_RECONCILER",
        "JANGAR_PRIMITIVES_NAMESPACES",
        "primitives reconciler",
        enabled=True,
        inherit=("agents_controller", f"{_AC}NAMESPACES"),
    )
    control_plane_cache: ControllerSettings = controller(
        "JANGAR_CONTROL_PLANE_CACHE_ENABLED",
        "JANGAR_CONTROL_PLANE_CACHE_NAMESPACES",
        "control-plane cache",
        enabled=False,
        inherit=("primitives_reconciler", "JANGAR_PRIMITIVES_NAMESPACES"),
    )
    control_plane_cache_cluster: str = text(
        "JANGAR_CONTROL_PLANE_CACHE_CLUSTER", "default", "cluster name recorded by the control-plane cache"
    )
    tuning: ControllerTuning = group(ControllerTuning)
    concurrency: ConcurrencySettings = group(ConcurrencySettings)
    repo_concurrency: RepoConcurrencySettings = group(RepoConcurrencySettings)
    queue: QueueSettings = group(QueueSettings)
    rate: RateSettings = group(RateSettings)
    webhook: WebhookSettings = group(WebhookSettings)
    agentrun_retention_seconds: int = integer(
        f"{_AC}AGENTRUN_RETENTION_SECONDS", 2_592_000, "finished AgentRuns are deleted after this (0 = kept)"
    )
    admission_policy: AdmissionPolicySettings = group(AdmissionPolicySettings)
    vcs: VcsSettings = group(VcsSettings)
    auth_secret: AuthSecretSettings | None = optional_group(AuthSecretSettings, when="name")
    runner: RunnerSettings = group(RunnerSettings)
    leader_election: LeaderElectionSettings = group(LeaderElectionSettings)
    database: DatabaseSettings = group(DatabaseSettings)
    grpc: GrpcSettings = group(GrpcSettings)
    native_workflows: NativeWorkflowSettings = group(NativeWorkflowSettings)
    agent_comms: AgentCommsSettings = group(AgentCommsSettings)
    workflow_loops: WorkflowLoopSettings = group(WorkflowLoopSettings)
    metrics_enabled: bool = flag(
        "JANGAR_PROMETHEUS_METRICS_ENABLED",
        True,
        "serve Prometheus metrics (false: the metrics path is a 404)",
    )
    metrics_path: str = text(
        "JANGAR_PROMETHEUS_METRICS_PATH",
        "/metrics",
        "metrics path (absolute; not a probe or API path)",
        check=_metrics_path,
    )
    metrics_agents_names: bool = flag(
        "JANGAR_METRICS_AGENTS_NAMES",
        True,
        "also expose every jangar_* metric as agents_* (chart 0.9.29's names; false: 0.9.1 names only)",
    )
    image: str = text("JANGAR_IMAGE", "ghcr.io/proompteng/jangar:latest", "jangar's own image")
    schedule_runner_image: str | None = text(
        "JANGAR_SCHEDULE_RUNNER_IMAGE", None, "image of Schedule CronJobs"
    )
    schedule_service_account: str | None = text(
        "JANGAR_SCHEDULE_SERVICE_ACCOUNT", None, "ServiceAccount of Schedule CronJobs"
    )
    service_account_name: str | None = text("JANGAR_SERVICE_ACCOUNT_NAME", None, "jangar's ServiceAccount")
    pod_namespace: str | None = text("JANGAR_POD_NAMESPACE", None, "the pod's namespace (downward API)")
    pod_name: str | None = text("JANGAR_POD_NAME", None, "the pod's name (downward API)")
    http_port: int = integer("JANGAR_HTTP_PORT", 8080, "HTTP port", minimum=1, maximum=65535)
    log_level: Literal["debug", "info", "warning", "error"] = choice(
        "JANGAR_LOG_LEVEL",
        "info",
        "log level",
        ("debug", "info", "warning", "error"),
        aliases={"warn": "warning"},
    )
    version: str = text("JANGAR_VERSION", "dev", "reported version")
    build_sha: str = text("JANGAR_BUILD_SHA", "", "reported build commit")
    build_time: str = text("JANGAR_BUILD_TIME", "", "reported build time")
    # -- issue 11: workspaces and artifacts
    artifacts: ArtifactSettings = group(ArtifactSettings)
    # -- issue 12: the runner ServiceAccount in every watched namespace
    runner_service_account: RunnerServiceAccountSettings = group(RunnerServiceAccountSettings)
    # -- issue 12: authentication of the surfaces
    auth: AuthSettings = group(AuthSettings)
    # -- issue 13: the retention sweep and runtime-debris cleanup (docs/retention.md)
    retention: RetentionSettings = group(RetentionSettings)
    runtime_debris: RuntimeDebrisSettings = group(RuntimeDebrisSettings)
    # -- issue 13 item 3: system prompts and spec immutability
    spec_policy: RunSpecPolicySettings = group(RunSpecPolicySettings)
    # -- issue 13: durable idempotency keys and audit events
    idempotency: IdempotencySettings = group(IdempotencySettings)
    audit: AuditSettings = group(AuditSettings)
    # -- issue 13 item 2: CORS of the HTTP API (chart value cors.allowedOrigins)
    cors_allowed_origins: tuple[str, ...] = origins(
        "JANGAR_CORS_ALLOWED_ORIGINS",
        "browser origins allowed to call the HTTP API (comma-separated or JSON; `*` = any); empty: no CORS",
    )

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        """Parse `env` (default ``os.environ``). Raises `SettingsError` naming the first bad variable.
        The 0.9.29 ``AGENTS_*`` names are read as aliases (`ENV_ALIASES`; a set ``JANGAR_*`` wins)."""
        return _from_env_with_aliases(cls, os.environ if env is None else env)


#: Checks across the fields of a group, run after the group is read from the environment.
_GROUP_CHECKS: dict[type[Any], Callable[[Any], None]] = {
    LeaderElectionSettings: _check_lease_timings,
    AuditSettings: _check_audit,
}


def _check_grpc_auth(settings: Settings) -> None:
    """issue 12: gRPC never serves anonymous callers, so it needs a way to authenticate them."""
    if settings.grpc.enabled and not settings.grpc.token and not settings.auth.token_review:
        raise SettingsError(
            "JANGAR_GRPC_TOKEN",
            "gRPC is enabled but no caller can authenticate: set JANGAR_GRPC_TOKEN, or keep "
            "JANGAR_AUTH_TOKEN_REVIEW=true (Kubernetes bearer tokens), or set JANGAR_GRPC_ENABLED=false",
        )


_GROUP_CHECKS[Settings] = _check_grpc_auth


# ----------------------------------------------------------------------------------------------------
# Listing.


def describe(cls: type[Any] = Settings, prefix: str = "") -> Iterator[SettingDoc]:
    """Every variable `Settings.from_env` reads, in declaration order."""
    for f in fields(cls):
        if _SPEC not in f.metadata:
            continue
        spec = _spec_of(f)
        path = f"{prefix}{f.name}"
        if spec.group is not None:
            yield from describe(spec.group, f"{path}.")
        for var in spec.vars:
            yield SettingDoc(path, var.env, var.default, var.doc)


def env_table_markdown() -> str:
    """The markdown table of docs/settings.md."""

    def cell(value: str) -> str:
        return f"`{value}`" if value else "—"

    lines = ["| variable | setting | default | meaning |", "|---|---|---|---|"]
    for row in describe():
        default = " or ".join(cell(part) for part in row.default.split(" or ")) if row.default else "—"
        doc = row.doc.replace("|", "\\|")
        lines.append(f"| `{row.env}` | `{row.path}` | {default} | {doc} |")
    return "\n".join(lines) + "\n"


_BEGIN = "<!-- settings-table:begin (generated by `python -m jangar.settings --write docs/settings.md`) -->\n"
_END = "<!-- settings-table:end -->\n"


def _with_table(document: str) -> str:
    start, end = document.index(_BEGIN) + len(_BEGIN), document.index(_END)
    return document[:start] + env_table_markdown() + document[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jangar.settings", description="list jangar's settings")
    parser.add_argument("--write", metavar="DOC", help="replace the generated table in DOC")
    parser.add_argument("--check", metavar="DOC", help="exit 1 if the generated table in DOC is stale")
    args = parser.parse_args(argv)
    target = args.write or args.check
    if target is None:
        sys.stdout.write(env_table_markdown())
        return 0
    path = Path(target)
    current = path.read_text()
    wanted = _with_table(current)
    if args.write:
        path.write_text(wanted)
        return 0
    if current != wanted:
        print(f"{path}: the settings table is stale; run python -m jangar.settings --write {path}")
        return 1
    return 0


# ----------------------------------------------------------------------------------------------------
# issue 13 item 1: the 0.9.29 names. The reference renamed every variable from `JANGAR_*` to `AGENTS_*`
# (drift-0.9.29.md row 1: a prefix swap, the rest of the name unchanged, e.g. `AGENTS_GRPC_TOKEN`), so each
# declared `JANGAR_<X>` has exactly one 0.9.29 name `AGENTS_<X>`. `ENV_ALIASES` is the one table (derived from
# the declarations, so a new setting gets its alias for free). Precedence: a `JANGAR_*` variable that is set
# (not blank) wins; the `AGENTS_*` one is read only when it is unset or blank. Both set to different values
# is a warning at start-up naming both variables (never their values). `AGENTS_*` names without a
# `JANGAR_*` twin are ignored, as unknown `JANGAR_*` names are. A bad value read from an alias is an error
# naming the alias (the variable the user wrote).

_JANGAR_PREFIX = "JANGAR_"
_AGENTS_PREFIX = "AGENTS_"


def _alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for row in describe():
        if row.env.startswith(_JANGAR_PREFIX):
            table[_AGENTS_PREFIX + row.env[len(_JANGAR_PREFIX) :]] = row.env
    return table


#: 0.9.29 name (`AGENTS_*`) -> jangar name (`JANGAR_*`), one entry per declared variable.
ENV_ALIASES: Mapping[str, str] = _alias_table()
__all__ += ["ENV_ALIASES", "alias_conflicts", "resolve_aliases"]


def resolve_aliases(env: Env) -> tuple[dict[str, str], dict[str, str]]:
    """`env` with each alias copied to its `JANGAR_*` name where that is unset or blank, and the map
    jangar name -> alias for the variables whose value came from an alias."""
    merged = dict(env)
    used: dict[str, str] = {}
    for alias, name in ENV_ALIASES.items():
        if _raw(env, alias) is not None and _raw(env, name) is None:
            merged[name] = env[alias]
            used[name] = alias
    return merged, used


def alias_conflicts(env: Env) -> list[tuple[str, str]]:
    """(jangar name, alias) pairs set to different values (the `JANGAR_*` one is used)."""
    return [
        (name, alias)
        for alias, name in ENV_ALIASES.items()
        if (value := _raw(env, alias)) is not None and (own := _raw(env, name)) is not None and own != value
    ]


def _from_env_with_aliases(cls: type[Settings], env: Env) -> Settings:
    import structlog  # only the start-up path logs

    merged, used = resolve_aliases(env)
    for name, alias in alias_conflicts(env):
        structlog.get_logger("jangar.settings").warning(
            "both the jangar and the 0.9.29 name of a setting are set, to different values; the jangar one is used",
            used=name,
            ignored=alias,
        )
    try:
        return cast(Settings, _read(cls, merged))
    except SettingsError as err:
        given = used.get(err.name)
        if given is None:
            raise
        raise SettingsError(given, f"{err.problem} (the 0.9.29 name of {err.name})") from None


if __name__ == "__main__":
    raise SystemExit(main())

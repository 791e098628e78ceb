"""Typed process settings, read once from the environment.

The reference reads its `JANGAR_*` variables ad hoc, in every module, with three different truthiness rules,
two default namespace lists and "garbage means the default" number parsing (reference §1.3, §4.1, §12.15).
Here every variable is parsed in one place into frozen dataclasses, with one rule for each kind of value:

* booleans: ``1/true/yes/y/on`` and ``0/false/no/n/off`` (case-insensitive); empty means the default;
  anything else is an error naming the variable.
* integers: a plain integer, or a float that is integral (Helm renders 2592000 as ``2.592e+06``, chart
  quirk Q3); negative or garbage values are errors.
* lists: a JSON array of strings or a comma-separated string; entries trimmed, empties dropped.
* JSON objects: must parse and be objects of the expected shape.

`Settings.from_env()` raises `SettingsError` on the first invalid variable; the message always names it.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DEFAULT_NAMESPACES",
    "AdmissionPolicySettings",
    "AgentCommsSettings",
    "AuthSecretSettings",
    "ConcurrencySettings",
    "ControllerSettings",
    "DatabaseSettings",
    "DefaultWorkloadSettings",
    "GrpcSettings",
    "LeaderElectionSettings",
    "NativeWorkflowSettings",
    "QueueSettings",
    "RateSettings",
    "RepoConcurrencySettings",
    "RunnerSettings",
    "Settings",
    "SettingsError",
    "VcsSettings",
    "WebhookSettings",
]

#: The one default namespace list. The reference used `agents` for controllers and `jangar` for the REST
#: handlers and the primitives reconciler (§1.3); every list here falls back to the agents-controller list,
#: which falls back to this.
DEFAULT_NAMESPACES: tuple[str, ...] = ("agents",)

_TRUE = frozenset({"1", "true", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "no", "n", "off"})
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TOKEN_TYPES = frozenset({"pat", "fine_grained", "api_token", "access_token"})

Env = Mapping[str, str]


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
class ConcurrencySettings:
    """How many runs may be Running at once. 0 means no limit (the reference could not turn a gate off)."""

    per_namespace: int = 10
    per_agent: int = 5
    cluster: int = 100


@dataclass(frozen=True)
class RepoConcurrencySettings:
    enabled: bool = False
    default: int = 0  # 0 means no limit
    overrides: Mapping[str, int] = field(default_factory=dict)

    def limit_for(self, repository: str | None) -> int:
        """The concurrency limit for a repository (0 = none). Keys are compared lower-cased."""
        if not self.enabled or not repository:
            return 0
        return self.overrides.get(repository.strip().lower(), self.default)


@dataclass(frozen=True)
class QueueSettings:
    """How many runs may wait. 0 turns a limit off."""

    per_namespace: int = 200
    per_repo: int = 50
    cluster: int = 1000


@dataclass(frozen=True)
class RateSettings:
    """Admissions per sliding window (see docs/admission.md). 0 turns a limit off."""

    window_seconds: int = 60
    per_namespace: int = 120
    per_repo: int = 30
    cluster: int = 600


@dataclass(frozen=True)
class WebhookSettings:
    queue_size: int = 1000
    retry_base_delay_seconds: int = 1
    retry_max_delay_seconds: int = 60
    retry_max_attempts: int = 5


@dataclass(frozen=True)
class AdmissionPolicySettings:
    """Label, image and secret policy checked when a run is validated (reference §3.9)."""

    labels_required: tuple[str, ...] = ()
    labels_allowed: tuple[str, ...] = ()
    labels_denied: tuple[str, ...] = ()
    images_allowed: tuple[str, ...] = ()
    images_denied: tuple[str, ...] = ()
    blocked_secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class VcsSettings:
    providers_enabled: bool = True
    #: provider -> deprecated token types; replaces the built-in list per provider (empty list clears it).
    deprecated_token_types: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"github": ("pat",)}
    )
    #: provider -> {windowSeconds, maxRequests, backoffSeconds}; passed to runners as VCS_PR_RATE_LIMITS.
    pr_rate_limits: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthSecretSettings:
    """The Codex auth secret mounted into every runner pod (sets CODEX_HOME and CODEX_AUTH)."""

    name: str
    key: str = "auth.json"
    mount_path: str = "/root/.codex"


@dataclass(frozen=True)
class DefaultWorkloadSettings:
    """`controller.defaultWorkload.*`: pod-spec defaults a run's `spec.runtime.config` replaces key by key."""

    service_account_name: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    topology_spread_constraints: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] = field(default_factory=dict)
    pod_security_context: Mapping[str, Any] = field(default_factory=dict)
    image_pull_secrets: tuple[str, ...] = ()
    priority_class_name: str | None = None
    scheduler_name: str | None = None


@dataclass(frozen=True)
class RunnerSettings:
    image: str | None = None  # JANGAR_AGENT_RUNNER_IMAGE
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    fallback_image: str | None = None  # JANGAR_AGENT_IMAGE
    job_ttl_seconds: int = 600  # 0 disables the TTL patch
    log_retention_seconds: int = 604_800
    default_workload: DefaultWorkloadSettings = field(default_factory=DefaultWorkloadSettings)

    @property
    def default_image(self) -> str | None:
        return self.image or self.fallback_image


@dataclass(frozen=True)
class LeaderElectionSettings:
    """coordination.k8s.io Lease election (absent in the reference, §1.2)."""

    enabled: bool = True
    lease_name: str = "jangar-controller"
    namespace: str | None = None  # None: the pod's namespace (JANGAR_POD_NAMESPACE)
    lease_duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0


@dataclass(frozen=True)
class DatabaseSettings:
    url: str | None = None
    sslmode: str = "require"
    sslrootcert: str | None = None
    ca_cert: str | None = None
    connect_timeout_ms: int = 5000
    query_timeout_ms: int = 20000
    migrations: Literal["auto", "skip"] = "auto"


@dataclass(frozen=True)
class GrpcSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 50051
    address: str | None = None
    token: str | None = None
    proto_path: str | None = None

    @property
    def bind_address(self) -> str:
        return self.address or f"{self.host}:{self.port}"


@dataclass(frozen=True)
class NativeWorkflowSettings:
    """`workflowRuntime.native.*`: the orchestrations used for codex reruns and system improvements."""

    rerun_orchestration: str | None = None
    rerun_orchestration_namespace: str = DEFAULT_NAMESPACES[0]
    system_improvement_orchestration: str | None = None
    system_improvement_orchestration_namespace: str = DEFAULT_NAMESPACES[0]


@dataclass(frozen=True)
class AgentCommsSettings:
    """The NATS agent-comms subscriber (adjacent to jangar's core; off unless enabled)."""

    enabled: bool = False
    subjects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Everything the jangar process reads from its environment."""

    rbac_cluster_scoped: bool = False
    agents_controller: ControllerSettings = field(
        default_factory=lambda: ControllerSettings(True, DEFAULT_NAMESPACES)
    )
    orchestration_controller: ControllerSettings = field(
        default_factory=lambda: ControllerSettings(True, DEFAULT_NAMESPACES)
    )
    supporting_controller: ControllerSettings = field(
        default_factory=lambda: ControllerSettings(True, DEFAULT_NAMESPACES)
    )
    primitives_reconciler: ControllerSettings = field(
        default_factory=lambda: ControllerSettings(True, DEFAULT_NAMESPACES)
    )
    control_plane_cache: ControllerSettings = field(
        default_factory=lambda: ControllerSettings(False, DEFAULT_NAMESPACES)
    )
    control_plane_cache_cluster: str = "default"
    concurrency: ConcurrencySettings = field(default_factory=ConcurrencySettings)
    repo_concurrency: RepoConcurrencySettings = field(default_factory=RepoConcurrencySettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    rate: RateSettings = field(default_factory=RateSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    agentrun_retention_seconds: int = 2_592_000
    admission_policy: AdmissionPolicySettings = field(default_factory=AdmissionPolicySettings)
    vcs: VcsSettings = field(default_factory=VcsSettings)
    auth_secret: AuthSecretSettings | None = None
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    leader_election: LeaderElectionSettings = field(default_factory=LeaderElectionSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    grpc: GrpcSettings = field(default_factory=GrpcSettings)
    native_workflows: NativeWorkflowSettings = field(default_factory=NativeWorkflowSettings)
    agent_comms: AgentCommsSettings = field(default_factory=AgentCommsSettings)
    metrics_enabled: bool = True
    metrics_path: str = "/metrics"
    image: str = "ghcr.io/proompteng/jangar:latest"  # JANGAR_IMAGE
    schedule_runner_image: str | None = None
    schedule_service_account: str | None = None
    service_account_name: str | None = None
    pod_namespace: str | None = None
    pod_name: str | None = None
    http_port: int = 8080
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    version: str = "dev"
    build_sha: str = ""
    build_time: str = ""

    @classmethod
    def from_env(cls, env: Env | None = None) -> Settings:
        """Parse `env` (default ``os.environ``). Raises `SettingsError` naming the first bad variable."""
        return _from_env(os.environ if env is None else env)


# ----------------------------------------------------------------------------------------------------
# Assembly.

_AC = "JANGAR_AGENTS_CONTROLLER_"
_RUNNER = "JANGAR_AGENT_RUNNER_"
_LE = "JANGAR_LEADER_ELECTION_"


def _controller(
    env: Env, flag: str, ns_var: str, *, default_on: bool, fallback: tuple[str, ...], cluster: bool
) -> ControllerSettings:
    return ControllerSettings(
        enabled=parse_bool(env, flag, default_on),
        namespaces=parse_namespaces(env, ns_var, fallback=fallback, cluster_scoped=cluster),
    )


def _repo_overrides(env: Env) -> dict[str, int]:
    name = f"{_AC}REPO_CONCURRENCY_OVERRIDES"
    decoded = parse_json(env, name, dict) or {}
    overrides: dict[str, int] = {}
    for key, value in decoded.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 0:
            raise SettingsError(name, f"limit for {key!r} must be an integer >= 0, got {value!r}")
        repo = str(key).strip().lower()
        if repo:
            overrides[repo] = int(value)
    return overrides


def _deprecated_token_types(env: Env) -> dict[str, tuple[str, ...]]:
    name = f"{_AC}VCS_DEPRECATED_TOKEN_TYPES"
    decoded = parse_json(env, name, dict)
    if decoded is None:
        return {"github": ("pat",)}
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


def _json_objects(env: Env, name: str) -> tuple[Mapping[str, Any], ...]:
    decoded = parse_json(env, name, list)
    if decoded is None:
        return ()
    if not all(isinstance(item, dict) for item in decoded):
        raise SettingsError(name, "expected a JSON array of objects")
    return tuple(decoded)


def _image_pull_secrets(env: Env) -> tuple[str, ...]:
    name = f"{_RUNNER}IMAGE_PULL_SECRETS"
    value = _raw(env, name)
    if value is None:
        return ()
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


def _default_workload(env: Env) -> DefaultWorkloadSettings:
    node_selector_var = f"{_RUNNER}NODE_SELECTOR"
    node_selector = parse_json(env, node_selector_var, dict) or {}
    if not all(isinstance(v, str) for v in node_selector.values()):
        raise SettingsError(node_selector_var, "node selector values must be strings")
    return DefaultWorkloadSettings(
        service_account_name=parse_str(env, f"{_RUNNER}SERVICE_ACCOUNT"),
        node_selector=node_selector,
        tolerations=_json_objects(env, f"{_RUNNER}TOLERATIONS"),
        topology_spread_constraints=_json_objects(env, f"{_RUNNER}TOPOLOGY_SPREAD_CONSTRAINTS"),
        affinity=parse_json(env, f"{_RUNNER}AFFINITY", dict) or {},
        pod_security_context=parse_json(env, f"{_RUNNER}POD_SECURITY_CONTEXT", dict) or {},
        image_pull_secrets=_image_pull_secrets(env),
        priority_class_name=parse_str(env, f"{_RUNNER}PRIORITY_CLASS"),
        scheduler_name=parse_str(env, f"{_RUNNER}SCHEDULER_NAME"),
    )


def _pull_policy(env: Env) -> Literal["Always", "IfNotPresent", "Never"] | None:
    name = f"{_RUNNER}IMAGE_PULL_POLICY"
    value = _raw(env, name)
    if value is None:
        return None
    for policy in ("Always", "IfNotPresent", "Never"):
        if value.lower() == policy.lower():
            return policy
    raise SettingsError(name, f"expected Always, IfNotPresent or Never, got {value!r}")


def _log_level(env: Env) -> Literal["debug", "info", "warning", "error"]:
    value = (_raw(env, "JANGAR_LOG_LEVEL") or "info").lower()
    value = {"warn": "warning"}.get(value, value)
    if value not in ("debug", "info", "warning", "error"):
        raise SettingsError("JANGAR_LOG_LEVEL", f"expected debug, info, warning or error, got {value!r}")
    return value  # type: ignore[return-value]


def _migrations(env: Env) -> Literal["auto", "skip"]:
    if parse_bool(env, "JANGAR_SKIP_MIGRATIONS", False):
        return "skip"
    value = _raw(env, "JANGAR_MIGRATIONS")
    if value is None:
        return "auto"
    lowered = value.lower()
    if lowered in {"auto", "on", "true", "1", "enabled"}:
        return "auto"
    if lowered in {"skip", "disabled", "false", "0", "off"}:
        return "skip"
    raise SettingsError("JANGAR_MIGRATIONS", f"expected 'auto' or 'skip', got {value!r}")


def _positive_float(env: Env, name: str, default: float) -> float:
    value = _raw(env, name)
    if value is None:
        return default
    # Accept Go-style durations ("15s") as well as bare seconds, since Lease settings are often written so.
    text = value[:-1] if value.endswith("s") else value
    try:
        number = float(text)
    except ValueError:
        raise SettingsError(name, f"expected seconds (e.g. 15 or 15s), got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise SettingsError(name, f"must be > 0, got {value!r}")
    return number


def _leader_election(env: Env) -> LeaderElectionSettings:
    lease = _positive_float(env, f"{_LE}LEASE_DURATION_SECONDS", 15.0)
    renew = _positive_float(env, f"{_LE}RENEW_DEADLINE_SECONDS", 10.0)
    retry = _positive_float(env, f"{_LE}RETRY_PERIOD_SECONDS", 2.0)
    if renew >= lease:
        raise SettingsError(f"{_LE}RENEW_DEADLINE_SECONDS", f"must be below the lease duration ({lease}s)")
    if retry >= renew:
        raise SettingsError(f"{_LE}RETRY_PERIOD_SECONDS", f"must be less than the renew deadline ({renew}s)")
    lease_name = parse_str(env, f"{_LE}LEASE_NAME", "jangar-controller") or "jangar-controller"
    namespace = parse_str(env, f"{_LE}NAMESPACE")
    for var, value in ((f"{_LE}LEASE_NAME", lease_name), (f"{_LE}NAMESPACE", namespace)):
        if value is not None and (len(value) > 63 or not _NAMESPACE_RE.match(value)):
            raise SettingsError(var, f"{value!r} is not a valid DNS-1123 label")
    return LeaderElectionSettings(
        enabled=parse_bool(env, f"{_LE}ENABLED", True),
        lease_name=lease_name,
        namespace=namespace or parse_str(env, "JANGAR_POD_NAMESPACE"),
        lease_duration_seconds=lease,
        renew_deadline_seconds=renew,
        retry_period_seconds=retry,
    )


def _auth_secret(env: Env) -> AuthSecretSettings | None:
    name = parse_str(env, f"{_AC}AUTH_SECRET_NAME")
    if name is None:
        return None
    mount_path = parse_str(env, f"{_AC}AUTH_SECRET_MOUNT_PATH", "/root/.codex") or "/root/.codex"
    if not mount_path.startswith("/"):
        raise SettingsError(f"{_AC}AUTH_SECRET_MOUNT_PATH", f"must be an absolute path, got {mount_path!r}")
    return AuthSecretSettings(
        name=name,
        key=parse_str(env, f"{_AC}AUTH_SECRET_KEY", "auth.json") or "auth.json",
        mount_path=mount_path.rstrip("/") or "/",
    )


def _native_workflows(env: Env) -> NativeWorkflowSettings:
    # One fallback chain instead of the reference's `jangar` default: the workflow namespace, the
    # controller's namespace setting, the pod's namespace, then the one default namespace.
    fallback = (
        parse_str(env, "JANGAR_CODEX_WORKFLOW_NAMESPACE")
        or parse_str(env, "JANGAR_NAMESPACE")
        or parse_str(env, "JANGAR_POD_NAMESPACE")
        or DEFAULT_NAMESPACES[0]
    )
    return NativeWorkflowSettings(
        rerun_orchestration=parse_str(env, "JANGAR_CODEX_RERUN_ORCHESTRATION"),
        rerun_orchestration_namespace=parse_str(env, "JANGAR_CODEX_RERUN_ORCHESTRATION_NAMESPACE")
        or fallback,
        system_improvement_orchestration=parse_str(env, "JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION"),
        system_improvement_orchestration_namespace=(
            parse_str(env, "JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION_NAMESPACE") or fallback
        ),
    )


def _from_env(env: Env) -> Settings:
    cluster = parse_bool(env, "JANGAR_RBAC_CLUSTER_SCOPED", False)
    agents = _controller(
        env,
        f"{_AC}ENABLED",
        f"{_AC}NAMESPACES",
        default_on=True,
        fallback=DEFAULT_NAMESPACES,
        cluster=cluster,
    )
    primitives = _controller(
        env,
        "JANGAR_PRIMITIVES_RECONCILER",
        "JANGAR_PRIMITIVES_NAMESPACES",
        default_on=True,
        fallback=agents.namespaces,
        cluster=cluster,
    )
    return Settings(
        rbac_cluster_scoped=cluster,
        agents_controller=agents,
        orchestration_controller=_controller(
            env,
            "JANGAR_ORCHESTRATION_CONTROLLER_ENABLED",
            "JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES",
            default_on=True,
            fallback=agents.namespaces,
            cluster=cluster,
        ),
        supporting_controller=_controller(
            env,
            "JANGAR_SUPPORTING_CONTROLLER_ENABLED",
            "JANGAR_SUPPORTING_CONTROLLER_NAMESPACES",
            default_on=True,
            fallback=agents.namespaces,
            cluster=cluster,
        ),
        primitives_reconciler=primitives,
        control_plane_cache=_controller(
            env,
            "JANGAR_CONTROL_PLANE_CACHE_ENABLED",
            "JANGAR_CONTROL_PLANE_CACHE_NAMESPACES",
            default_on=False,
            fallback=primitives.namespaces,
            cluster=cluster,
        ),
        control_plane_cache_cluster=parse_str(env, "JANGAR_CONTROL_PLANE_CACHE_CLUSTER") or "default",
        concurrency=ConcurrencySettings(
            per_namespace=parse_int(env, f"{_AC}CONCURRENCY_NAMESPACE", 10),
            per_agent=parse_int(env, f"{_AC}CONCURRENCY_AGENT", 5),
            cluster=parse_int(env, f"{_AC}CONCURRENCY_CLUSTER", 100),
        ),
        repo_concurrency=RepoConcurrencySettings(
            enabled=parse_bool(env, f"{_AC}REPO_CONCURRENCY_ENABLED", False),
            default=parse_int(env, f"{_AC}REPO_CONCURRENCY_DEFAULT", 0),
            overrides=_repo_overrides(env),
        ),
        queue=QueueSettings(
            per_namespace=parse_int(env, f"{_AC}QUEUE_NAMESPACE", 200),
            per_repo=parse_int(env, f"{_AC}QUEUE_REPO", 50),
            cluster=parse_int(env, f"{_AC}QUEUE_CLUSTER", 1000),
        ),
        rate=RateSettings(
            window_seconds=parse_int(env, f"{_AC}RATE_WINDOW_SECONDS", 60, minimum=1),
            per_namespace=parse_int(env, f"{_AC}RATE_NAMESPACE", 120),
            per_repo=parse_int(env, f"{_AC}RATE_REPO", 30),
            cluster=parse_int(env, f"{_AC}RATE_CLUSTER", 600),
        ),
        webhook=WebhookSettings(
            queue_size=parse_int(env, f"{_AC}WEBHOOK_QUEUE_SIZE", 1000, minimum=1),
            retry_base_delay_seconds=parse_int(env, f"{_AC}WEBHOOK_RETRY_BASE_DELAY_SECONDS", 1),
            retry_max_delay_seconds=parse_int(env, f"{_AC}WEBHOOK_RETRY_MAX_DELAY_SECONDS", 60),
            retry_max_attempts=parse_int(env, f"{_AC}WEBHOOK_RETRY_MAX_ATTEMPTS", 5, minimum=1),
        ),
        agentrun_retention_seconds=parse_int(env, f"{_AC}AGENTRUN_RETENTION_SECONDS", 2_592_000),
        admission_policy=AdmissionPolicySettings(
            labels_required=parse_list(env, f"{_AC}LABELS_REQUIRED"),
            labels_allowed=parse_list(env, f"{_AC}LABELS_ALLOWED"),
            labels_denied=parse_list(env, f"{_AC}LABELS_DENIED"),
            images_allowed=parse_list(env, f"{_AC}IMAGES_ALLOWED"),
            images_denied=parse_list(env, f"{_AC}IMAGES_DENIED"),
            blocked_secrets=parse_list(env, f"{_AC}BLOCKED_SECRETS"),
        ),
        vcs=VcsSettings(
            providers_enabled=parse_bool(env, f"{_AC}VCS_PROVIDERS_ENABLED", True),
            deprecated_token_types=_deprecated_token_types(env),
            pr_rate_limits=parse_json(env, f"{_AC}VCS_PR_RATE_LIMITS", dict) or {},
        ),
        auth_secret=_auth_secret(env),
        runner=RunnerSettings(
            image=parse_str(env, f"{_RUNNER}IMAGE"),
            image_pull_policy=_pull_policy(env),
            fallback_image=parse_str(env, "JANGAR_AGENT_IMAGE"),
            job_ttl_seconds=parse_int(env, f"{_RUNNER}JOB_TTL_SECONDS", 600),
            log_retention_seconds=parse_int(env, f"{_RUNNER}LOG_RETENTION_SECONDS", 604_800),
            default_workload=_default_workload(env),
        ),
        leader_election=_leader_election(env),
        database=DatabaseSettings(
            url=parse_str(env, "DATABASE_URL"),
            sslmode=parse_str(env, "PGSSLMODE", "require") or "require",
            sslrootcert=parse_str(env, "PGSSLROOTCERT"),
            ca_cert=parse_str(env, "JANGAR_DB_CA_CERT"),
            connect_timeout_ms=parse_int(env, "PGCONNECT_TIMEOUT_MS", 5000, minimum=1),
            query_timeout_ms=parse_int(env, "PGQUERY_TIMEOUT_MS", 20000, minimum=1),
            migrations=_migrations(env),
        ),
        grpc=GrpcSettings(
            enabled=parse_bool(env, "JANGAR_GRPC_ENABLED", False),
            host=parse_str(env, "JANGAR_GRPC_HOST", "127.0.0.1") or "127.0.0.1",
            port=parse_int(env, "JANGAR_GRPC_PORT", 50051, minimum=1, maximum=65535),
            address=parse_str(env, "JANGAR_GRPC_ADDRESS"),
            token=parse_str(env, "JANGAR_GRPC_TOKEN"),
            proto_path=parse_str(env, "JANGAR_GRPC_PROTO_PATH"),
        ),
        native_workflows=_native_workflows(env),
        agent_comms=AgentCommsSettings(
            enabled=not parse_bool(env, "JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED", True),
            subjects=parse_list(env, "JANGAR_AGENT_COMMS_SUBJECTS"),
        ),
        metrics_enabled=parse_bool(env, "JANGAR_PROMETHEUS_METRICS_ENABLED", True),
        metrics_path=parse_str(env, "JANGAR_PROMETHEUS_METRICS_PATH", "/metrics") or "/metrics",
        image=parse_str(env, "JANGAR_IMAGE", "ghcr.io/proompteng/jangar:latest") or "",
        schedule_runner_image=parse_str(env, "JANGAR_SCHEDULE_RUNNER_IMAGE"),
        schedule_service_account=parse_str(env, "JANGAR_SCHEDULE_SERVICE_ACCOUNT"),
        service_account_name=parse_str(env, "JANGAR_SERVICE_ACCOUNT_NAME"),
        pod_namespace=parse_str(env, "JANGAR_POD_NAMESPACE"),
        pod_name=parse_str(env, "JANGAR_POD_NAME"),
        http_port=parse_int(env, "JANGAR_HTTP_PORT", 8080, minimum=1, maximum=65535),
        log_level=_log_level(env),
        version=parse_str(env, "JANGAR_VERSION", "dev") or "dev",
        build_sha=parse_str(env, "JANGAR_BUILD_SHA", "") or "",
        build_time=parse_str(env, "JANGAR_BUILD_TIME", "") or "",
    )

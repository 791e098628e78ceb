"""Validate an AgentRun against what it references and the controller's policies.

All problems are returned, not just the first, so a user can fix a spec in one go; the reconciler writes
`InvalidSpec=True` with `summarize(problems)` and a terminal phase (with `finishedAt`, unlike the reference,
§12.10). Reasons keep the reference's names (§3.11) where it had one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from jangar.api.shape import allow_list, as_list, as_map, maps
from jangar.scheduler.contract import check_contract
from jangar.scheduler.naming import (
    auth_volume_names,
    configmap_volume_name,
    dns_label,
    inputs_configmap_name,
    spec_configmap_name,
)
from jangar.scheduler.provider_workload import secret_env_secrets
from jangar.scheduler.runtimes import KNOWN_RUNTIMES, SUPPORTED_RUNTIMES, runtime_type
from jangar.scheduler.system_prompt import agent_prompt_source
from jangar.scheduler.workload import effective_service_account, resolve_image
from jangar.scheduler.workspaces import workspace_mount_path, workspace_problem, workspace_volume_name
from jangar.settings import Settings
from jangar.validation.loops import check_loop
from jangar.validation.patterns import matches_any
from jangar.validation.problems import Problem
from jangar.validation.resolve import Resolution
from jangar.validation.secrets import secret_problem

__all__ = [
    "MAX_PARAMETERS",
    "MAX_PARAMETER_BYTES",
    "check_image",
    "check_labels",
    "check_parameters",
    "check_runtime_config",
    "check_volumes",
    "validate_agent_run",
]

MAX_PARAMETERS = 100
MAX_PARAMETER_BYTES = 2048


def check_parameters(parameters: Any, where: str = "spec.parameters") -> list[Problem]:
    if parameters is None:
        return []
    if not isinstance(parameters, Mapping):
        return [Problem("ParameterNotString", f"{where} must be a map of strings", where)]
    problems: list[Problem] = []
    if len(parameters) > MAX_PARAMETERS:
        problems.append(
            Problem(
                "ParametersTooLarge",
                f"{where} has {len(parameters)} entries; at most {MAX_PARAMETERS} are allowed",
                where,
            )
        )
    for key, value in parameters.items():
        if not isinstance(value, str):
            problems.append(
                Problem(
                    "ParameterNotString", f"{where}.{key} must be a string, got {type(value).__name__}", where
                )
            )
        elif len(value.encode("utf-8")) > MAX_PARAMETER_BYTES:
            problems.append(
                Problem(
                    "ParameterValueTooLarge",
                    f"{where}.{key} is {len(value.encode('utf-8'))} bytes; at most {MAX_PARAMETER_BYTES} are allowed",
                    where,
                )
            )
    return problems


def check_labels(labels: Mapping[str, Any] | None, settings: Settings) -> list[Problem]:
    policy = settings.admission_policy
    present = {k: v for k, v in (labels or {}).items() if isinstance(v, str) and v}
    problems: list[Problem] = []
    missing = [key for key in policy.labels_required if key not in present]
    if missing:
        problems.append(
            Problem(
                "MissingRequiredLabels", f"missing required labels: {', '.join(missing)}", "metadata.labels"
            )
        )
    denied = [key for key in present if matches_any(policy.labels_denied, key)]
    if denied:
        problems.append(
            Problem("LabelBlocked", f"labels not permitted: {', '.join(denied)}", "metadata.labels")
        )
    if policy.labels_allowed:
        outside = [key for key in present if not matches_any(policy.labels_allowed, key)]
        if outside:
            problems.append(
                Problem(
                    "LabelNotAllowed",
                    f"labels not in the allowed list: {', '.join(outside)}",
                    "metadata.labels",
                )
            )
    return problems


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_RESERVED_MOUNTS = frozenset({"/workspace/run.json", "/workspace/agent-runner.json"})


def reserved_volume_names(run_name: str) -> frozenset[str]:
    """Volume names the Job builder generates for a run (job runtime), which workload volumes must avoid."""
    spec_cm = spec_configmap_name(run_name)
    return frozenset(
        {
            configmap_volume_name(spec_cm),
            configmap_volume_name(inputs_configmap_name(run_name)),
            dns_label(run_name, "workspace"),
            *auth_volume_names(run_name),
            dns_label(run_name, "vcs-ssh"),
            dns_label(run_name, "vcs-known-hosts"),
            dns_label(run_name, "vcs-token"),
            workspace_volume_name(run_name),
        }
    )


def check_volumes(
    workload: Any, where: str = "spec.workload", reserved: frozenset[str] = frozenset()
) -> list[Problem]:
    """Workload volumes must be addressable: DNS-label names, unique, absolute mount paths, a known type.

    A bad volume would otherwise only surface as a rejected Job create (`SubmitFailed`).
    """
    volumes = workload.get("volumes") if isinstance(workload, Mapping) else None
    problems: list[Problem] = []
    seen_names: set[str] = set()
    seen_paths: set[str] = set()
    for index, volume in enumerate(as_list(volumes)):
        at = f"{where}.volumes[{index}]"
        if not isinstance(volume, Mapping):
            problems.append(Problem("InvalidWorkloadVolume", f"{at} must be an object", at))
            continue
        name, path, kind = volume.get("name"), volume.get("mountPath"), volume.get("type")
        if not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
            problems.append(
                Problem("InvalidWorkloadVolume", f"{at}.name {name!r} must be a DNS-1123 label", at)
            )
        elif name in seen_names or name in reserved:
            problems.append(Problem("InvalidWorkloadVolume", f"{at}.name {name!r} is already used", at))
        else:
            seen_names.add(name)
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(Problem("InvalidWorkloadVolume", f"{at}.mountPath must be an absolute path", at))
        elif path.rstrip("/") in seen_paths or path in _RESERVED_MOUNTS:
            problems.append(Problem("InvalidWorkloadVolume", f"{at}.mountPath {path} is already used", at))
        else:
            seen_paths.add(path.rstrip("/"))
        if kind not in ("emptyDir", "pvc", "secret"):
            problems.append(
                Problem(
                    "InvalidWorkloadVolume", f"{at}.type must be emptyDir, pvc or secret, got {kind!r}", at
                )
            )
    return problems


def _is_str_map(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values())


def _is_object_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, Mapping) for v in value)


def _is_pull_secrets(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, str) or (isinstance(v, Mapping) and isinstance(v.get("name"), str)) for v in value
    )


def _is_count(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


#: `spec.runtime.config` keys the scheduler reads, with the shape each must have.
_CONFIG_SHAPES: dict[str, tuple[Any, str]] = {
    "nodeSelector": (_is_str_map, "a map of strings"),
    "tolerations": (_is_object_list, "a list of objects"),
    "topologySpreadConstraints": (_is_object_list, "a list of objects"),
    "affinity": (lambda v: isinstance(v, Mapping), "an object"),
    "podSecurityContext": (lambda v: isinstance(v, Mapping), "an object"),
    "imagePullSecrets": (_is_pull_secrets, "a list of names or {name} objects"),
    "priorityClassName": (lambda v: isinstance(v, str), "a string"),
    "schedulerName": (lambda v: isinstance(v, str), "a string"),
    "serviceAccount": (lambda v: isinstance(v, str), "a string"),
    "serviceAccountName": (lambda v: isinstance(v, str), "a string"),
    "ttlSecondsAfterFinished": (_is_count, "a number >= 0"),
    "logRetentionSeconds": (_is_count, "a number >= 0"),
    "timeoutSeconds": (_is_count, "a number >= 0"),
    "backoffLimit": (_is_count, "a number >= 0"),
}


def check_runtime_config(config: Any) -> list[Problem]:
    """The per-run overrides must have the shapes the pod spec needs (else the Job create would fail)."""
    if config is None:
        return []
    if not isinstance(config, Mapping):
        return [
            Problem("InvalidRuntimeConfig", "spec.runtime.config must be an object", "spec.runtime.config")
        ]
    problems = []
    for key, (valid, shape) in _CONFIG_SHAPES.items():
        if key in config and config[key] is not None and not valid(config[key]):
            where = f"spec.runtime.config.{key}"
            problems.append(Problem("InvalidRuntimeConfig", f"{where} must be {shape}", where))
    return problems


def check_image(image: str | None, settings: Settings, where: str = "spec.workload.image") -> list[Problem]:
    if not image:
        return [
            Problem(
                "MissingWorkloadImage",
                f"no workload image: set {where} or the controller's runner image (runner.image)",
                where,
            )
        ]
    policy = settings.admission_policy
    if matches_any(policy.images_denied, image):
        return [
            Problem(
                "ImageBlocked",
                f"image {image!r} is blocked by controller.admissionPolicy.images.denied",
                where,
            )
        ]
    if policy.images_allowed and not matches_any(policy.images_allowed, image):
        return [
            Problem(
                "ImageNotAllowed",
                f"image {image!r} is not in controller.admissionPolicy.images.allowed",
                where,
            )
        ]
    return []


def _check_runtime(run: Mapping[str, Any]) -> list[Problem]:
    kind = runtime_type(run)
    if kind is None:
        return [
            Problem("MissingRuntime", "spec.runtime.type is required (job or workflow)", "spec.runtime.type")
        ]
    if kind not in SUPPORTED_RUNTIMES:
        known = "is not implemented yet" if kind in KNOWN_RUNTIMES else "is unknown"
        return [
            Problem(
                "UnsupportedRuntime",
                f"runtime {kind!r} {known}; use 'job' or 'workflow'",
                "spec.runtime.type",
            )
        ]
    return []


def _steps(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return maps(as_map(as_map(run.get("spec")).get("workflow")).get("steps"))


def _check_workflow(run: Mapping[str, Any], resolution: Resolution, settings: Settings) -> list[Problem]:
    steps = _steps(run)
    if not steps:
        return [
            Problem(
                "MissingWorkflowSteps", "spec.workflow.steps needs at least one step", "spec.workflow.steps"
            )
        ]
    problems: list[Problem] = []
    seen: set[str] = set()
    run_params = as_map(run.get("spec")).get("parameters") or {}
    run_workload = as_map(run.get("spec")).get("workload") or {}
    for index, step in enumerate(steps):
        where = f"spec.workflow.steps[{index}]"
        name = step.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(Problem("WorkflowStepMissingName", f"{where} needs a name", where))
            continue
        if name in seen:
            problems.append(
                Problem("WorkflowStepDuplicate", f"step name {name!r} is used more than once", where)
            )
        seen.add(name)
        problems += check_parameters(step.get("parameters"), f"{where}.parameters")
        problems += check_loop(run, step, where, settings)
        for key in ("retries", "retryBackoffSeconds"):
            value = step.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                problems.append(
                    Problem("InvalidWorkflowStep", f"{where}.{key} must be an integer >= 0", where)
                )
        workload = as_map(step.get("workload"))
        problems += check_volumes(workload, f"{where}.workload")
        image = resolve_image(
            workload if workload.get("image") else run_workload, settings, resolution.provider
        )
        problems += check_image(image, settings, f"{where}.workload.image")
        impl = resolution.step_implementations.get(name)
        if impl is None:
            problems.append(
                Problem(
                    "MissingImplementation",
                    f"step {name!r} has no implementation: set its implementation or implementationSpecRef, "
                    "or the run's",
                    where,
                )
            )
        else:
            params = dict(as_map(run_params)) | dict(as_map(step.get("parameters")))
            contract = check_contract(params, impl)
            if contract.reason:
                problems.append(Problem(contract.reason, f"step {name!r}: {contract.message}", where))
    return problems


def _secret_uses(run: Mapping[str, Any], resolution: Resolution) -> Iterable[tuple[str, str]]:
    spec = as_map(run.get("spec"))
    for secret in as_list(spec.get("secrets")):
        if isinstance(secret, str) and secret:
            yield secret, "spec.secrets"
    workloads = [as_map(spec.get("workload"))] + [as_map(s.get("workload")) for s in _steps(run)]
    for workload in workloads:
        for volume in maps(workload.get("volumes")):
            if volume.get("type") == "secret":
                yield str(volume.get("secretName") or volume.get("name")), "a workload secret volume"
    memory_spec = as_map((resolution.memory or {}).get("spec"))
    memory_secret = as_map(as_map(memory_spec.get("connection")).get("secretRef")).get("name")
    if memory_secret:
        yield str(memory_secret), "the memory connection"


def validate_agent_run(
    run: Mapping[str, Any],
    resolution: Resolution,
    settings: Settings,
    *,
    require_secret_bindings: bool = True,
    now: datetime | None = None,
) -> list[Problem]:
    """Every problem that stops `run` from being submitted, in the reference's check order (then the
    Workspace's, whose expiry is judged at `now`; without it only an Expired status counts)."""
    spec = as_map(run.get("spec"))
    problems = _check_runtime(run)
    problems += check_parameters(spec.get("parameters"))
    problems += check_runtime_config(as_map(spec.get("runtime")).get("config"))
    problems += check_labels(as_map(run.get("metadata")).get("labels"), settings)
    kind = runtime_type(run)
    run_name = str(as_map(run.get("metadata")).get("name") or "")
    problems += check_volumes(spec.get("workload"), reserved=reserved_volume_names(run_name))
    if kind == "job":
        problems += check_image(
            resolve_image(spec.get("workload") or {}, settings, resolution.provider), settings
        )
    elif kind == "workflow":
        problems += _check_workflow(run, resolution, settings)

    if resolution.agent is None:
        problems.append(
            Problem(
                "MissingAgent",
                f"agent {resolution.agent_ref!r} not found in the run's namespace",
                "spec.agentRef",
            )
        )
    elif resolution.provider is None:
        problems.append(
            Problem(
                "MissingProvider",
                f"agent provider {resolution.provider_ref!r} (agent.spec.providerRef) not found",
                "spec.agentRef",
            )
        )

    agent_spec = (resolution.agent or {}).get("spec") or {}
    security = as_map(agent_spec.get("security"))
    allowed_accounts = allow_list(security.get("allowedServiceAccounts"))
    if allowed_accounts is not None and kind in SUPPORTED_RUNTIMES:
        account = (
            effective_service_account(
                as_map(spec.get("runtime")).get("config") or {}, settings, resolution.provider
            )
            or "default"
        )
        if account not in allowed_accounts:
            problems.append(
                Problem(
                    "ServiceAccountNotAllowed",
                    f"service account {account!r} is not in the agent's spec.security.allowedServiceAccounts",
                    "spec.runtime.config.serviceAccount",
                )
            )

    if kind == "job":
        if resolution.implementation is None:
            what = resolution.implementation_ref or "an inline implementation"
            problems.append(
                Problem(
                    "MissingImplementation",
                    f"implementation {what!r} not found: set spec.implementationSpecRef or spec.implementation",
                    "spec.implementationSpecRef",
                )
            )
        else:
            contract = check_contract(spec.get("parameters") or {}, resolution.implementation)
            if contract.reason:
                problems.append(Problem(contract.reason, contract.message, "spec.parameters"))

    if resolution.memory_ref and resolution.memory is None:
        problems.append(
            Problem("MissingMemory", f"memory {resolution.memory_ref!r} not found", "spec.memoryRef")
        )

    seen: set[str] = set()
    for secret, purpose in _secret_uses(run, resolution):
        if secret in seen:
            continue
        seen.add(secret)
        problem = secret_problem(
            secret,
            purpose=purpose,
            agent=resolution.agent,
            run=run,
            bindings=resolution.secret_bindings,
            settings=settings,
            needs_binding=require_secret_bindings,
        )
        if problem is not None:
            problems.append(problem)
    # Secrets chosen by an object's author rather than the run's (the provider's 0.9.29 spec.secretEnv, the
    # Agent's 0.9.29 systemPromptRef, the controller's auth secret), all mounted into the runner pod: the
    # Agent's allow list and the controller's block list apply, a SecretBinding is not asked for.
    authored = [(s, "the provider's spec.secretEnv") for s in secret_env_secrets(resolution.provider)]
    prompt = agent_prompt_source(resolution.agent)
    if prompt is not None and prompt.kind == "Secret" and prompt.name:
        authored.append((prompt.name, "the Agent's spec.defaults.systemPromptRef"))
    if settings.auth_secret is not None:
        authored.append((settings.auth_secret.name, "the controller's auth secret"))
    for secret, purpose in authored:
        if secret in seen:
            continue
        seen.add(secret)
        problem = secret_problem(
            secret,
            purpose=purpose,
            agent=resolution.agent,
            run=run,
            bindings=(),
            settings=settings,
            needs_binding=False,
        )
        if problem is not None:
            problems.append(problem)
    memory_secret = next((s for s, p in _secret_uses(run, resolution) if p == "the memory connection"), None)
    secrets = [s for s in as_list(spec.get("secrets")) if isinstance(s, str)]
    if memory_secret and secrets and memory_secret not in secrets:
        problems.append(
            Problem(
                "SecretNotAllowed",
                f"memory secret {memory_secret!r} must also be listed in spec.secrets when spec.secrets is set",
                "spec.secrets",
            )
        )
    problems += _check_workspace(run, resolution, now)
    return problems


def _check_workspace(run: Mapping[str, Any], resolution: Resolution, now: datetime | None) -> list[Problem]:
    """`spec.workspaceRef`: the Workspace exists and can be used, and no workload volume takes its path."""
    if not resolution.workspace_ref:
        return []
    found = workspace_problem(resolution.workspace_ref, resolution.workspace, now)
    if found is not None:
        return [Problem(found.reason, found.message, "spec.workspaceRef")]
    path = workspace_mount_path(resolution.workspace_ref)
    spec = as_map(run.get("spec"))
    workloads = [as_map(spec.get("workload"))] + [as_map(s.get("workload")) for s in _steps(run)]
    for workload in workloads:
        for volume in (workload.get("volumes") or ()) if isinstance(workload, Mapping) else ():
            if isinstance(volume, Mapping) and str(volume.get("mountPath") or "").rstrip("/") == path:
                return [
                    Problem(
                        "InvalidWorkloadVolume",
                        f"workload volume {volume.get('name')!r} uses {path}, where the workspace is mounted",
                        "spec.workload.volumes",
                    )
                ]
    return []

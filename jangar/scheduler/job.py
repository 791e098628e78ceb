"""AgentRun (or one workflow step) → the Job and ConfigMaps that run it.

Pure: `build_job_plan(ctx, settings)` returns manifests; the reconciler creates them (ConfigMaps first) and
adopts what already exists by name, so a re-reconcile after a crash never duplicates a Job. Nothing secret is
ever written as a literal value: tokens arrive through `secretKeyRef`, Secret volumes or `envFrom`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jangar.api.shape import as_list, as_map
from jangar.scheduler.context import RunContext, spec_of
from jangar.scheduler.goal import goal_env
from jangar.scheduler.naming import (
    auth_volume_names,
    configmap_volume_name,
    dns_label,
    inputs_configmap_name,
    job_name,
    spec_configmap_name,
)
from jangar.scheduler.ownership import owner_reference, run_labels
from jangar.scheduler.provider_workload import (
    ADAPTER_ENV,
    adapter_of,
    effective_resources,
    provider_secret_env,
    token_volume,
)
from jangar.scheduler.runspec import (
    AGENT_RUNNER_SPEC_PATH,
    RUN_SPEC_PATH,
    WORKSPACE,
    render_context,
    render_input_files,
    run_spec,
    runner_spec,
)
from jangar.scheduler.system_prompt import prompt_delivery
from jangar.scheduler.templating import render_template
from jangar.scheduler.termination import TERMINATION_MESSAGE_POLICY
from jangar.scheduler.workload import (
    effective_service_account,
    resolve_image,
    scheduling_fields,
    workload_volumes,
)
from jangar.scheduler.workspaces import workspace_mount
from jangar.settings import Settings

__all__ = ["CONTAINER_NAME", "JobPlan", "build_job_plan", "runtime_ref"]

CONTAINER_NAME = "agent-runner"
_RESERVED_ENV = frozenset({"AGENT_RUN_SPEC", "AGENT_RUNNER_SPEC_PATH", "AGENT_PROVIDER", ADAPTER_ENV})


@dataclass(frozen=True)
class JobPlan:
    """Everything to create for one run (or step attempt), in creation order: ConfigMaps, then the Job."""

    job: dict[str, Any]
    configmaps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def job_name(self) -> str:
        return str(self.job["metadata"]["name"])


def runtime_ref(job: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """`status.runtimeRef` for a created or adopted Job."""
    metadata = as_map(job.get("metadata"))
    ref = {"type": "job", "name": metadata.get("name"), "namespace": metadata.get("namespace")}
    if metadata.get("uid"):
        ref["uid"] = metadata["uid"]
    ref.update(extra)
    return ref


def _metadata(name: str, ctx: RunContext, labels: Mapping[str, str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": ctx.namespace, "labels": dict(labels)}
    owner = owner_reference(ctx.run)
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return metadata


def _dedupe_env(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Last definition of a name wins, at its first position (the API server would keep duplicates)."""
    positions: dict[str, int] = {}
    result: list[dict[str, Any]] = []
    for entry in entries:
        name = entry["name"]
        if name in positions:
            result[positions[name]] = entry
        else:
            positions[name] = len(result)
            result.append(entry)
    return result


def _env(ctx: RunContext, settings: Settings) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "AGENT_RUN_SPEC", "value": RUN_SPEC_PATH},
        {"name": "AGENT_RUNNER_SPEC_PATH", "value": AGENT_RUNNER_SPEC_PATH},
    ]
    auth = settings.auth_secret
    if auth is not None:
        env.append({"name": "CODEX_HOME", "value": auth.mount_path})
        env.append({"name": "CODEX_AUTH", "value": f"{auth.mount_path}/{auth.key}"})
    context = render_context(ctx)
    for name, template in as_map(spec_of(ctx.provider).get("envTemplate")).items():
        if str(name) not in _RESERVED_ENV:
            env.append({"name": str(name), "value": render_template(str(template), context)})
    env.append({"name": "AGENT_PROVIDER", "value": ctx.provider_name})
    adapter = adapter_of(ctx.provider)
    if adapter is not None:
        env.append({"name": ADAPTER_ENV, "value": adapter})
    # The provider's Secret-backed env: references only (never a literal); a template may not shadow it.
    env.extend(e for e in provider_secret_env(ctx.provider) if e["name"] not in _RESERVED_ENV)
    if ctx.vcs is not None:
        env.extend(dict(e) for e in ctx.vcs.env if e.get("name") not in _RESERVED_ENV)
    env.extend(goal_env(ctx.spec))  # issue 13 item 3: after the templates, so they cannot shadow it
    return _dedupe_env(env)


def _int_setting(*values: Any, minimum: int) -> int | None:
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= minimum:
            return int(value)
    return None


def build_job_plan(ctx: RunContext, settings: Settings) -> JobPlan:
    """Build the Job and ConfigMaps for `ctx`. The caller has validated the run (image present, etc.)."""
    step = ctx.step.key if ctx.step else None
    labels = run_labels(ctx)
    workload = ctx.workload
    image = resolve_image(workload, settings, ctx.provider)
    if image is None:
        raise ValueError("no workload image: validate the run before building its Job")

    spec_cm = spec_configmap_name(ctx.name, step)
    runner = runner_spec(ctx, settings)
    configmaps: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _metadata(spec_cm, ctx, labels),
            "data": {
                "run.json": json.dumps(run_spec(ctx), indent=2, sort_keys=True),
                "agent-runner.json": json.dumps(runner, indent=2, sort_keys=True),
            },
        }
    ]
    spec_vol = configmap_volume_name(spec_cm)
    volumes: list[dict[str, Any]] = [{"name": spec_vol, "configMap": {"name": spec_cm}}]
    mounts: list[dict[str, Any]] = [
        {"name": spec_vol, "mountPath": RUN_SPEC_PATH, "subPath": "run.json", "readOnly": True},
        {
            "name": spec_vol,
            "mountPath": AGENT_RUNNER_SPEC_PATH,
            "subPath": "agent-runner.json",
            "readOnly": True,
        },
    ]

    files = render_input_files(ctx)
    if files:
        inputs_cm = inputs_configmap_name(ctx.name, step)
        configmaps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _metadata(inputs_cm, ctx, labels),
                "data": {f"input-{i}": f["content"] for i, f in enumerate(files)},
            }
        )
        inputs_vol = configmap_volume_name(inputs_cm)
        volumes.append({"name": inputs_vol, "configMap": {"name": inputs_cm}})
        mounts.extend(
            {"name": inputs_vol, "mountPath": f["path"], "subPath": f"input-{i}", "readOnly": True}
            for i, f in enumerate(files)
        )

    user_volumes, user_mounts = workload_volumes(workload)
    if not any(m["mountPath"].rstrip("/") == WORKSPACE for m in user_mounts):
        # A writable workspace for .agent/status.json and runner.log, even with a read-only root fs.
        workspace_vol = dns_label(ctx.name, "workspace", *(map(str, step) if step else ()))
        volumes.append({"name": workspace_vol, "emptyDir": {}})
        mounts.insert(0, {"name": workspace_vol, "mountPath": WORKSPACE})
    volumes.extend(user_volumes)
    mounts.extend(user_mounts)
    if ctx.workspace is not None:
        ws_volume, ws_mount = workspace_mount(ctx.workspace, ctx.name, step)
        volumes.append(ws_volume)
        mounts.append(ws_mount)

    auth = settings.auth_secret
    if auth is not None:
        home_vol, secret_vol = auth_volume_names(ctx.name, step)
        volumes.append({"name": home_vol, "emptyDir": {}})
        volumes.append(
            {
                "name": secret_vol,
                "secret": {"secretName": auth.name, "items": [{"key": auth.key, "path": auth.key}]},
            }
        )
        mounts.append({"name": home_vol, "mountPath": auth.mount_path})
        mounts.append(
            {
                "name": secret_vol,
                "mountPath": f"{auth.mount_path}/{auth.key}",
                "subPath": auth.key,
                "readOnly": True,
            }
        )
    if ctx.vcs is not None:
        volumes.extend(dict(v) for v in ctx.vcs.volumes)
        mounts.extend(dict(m) for m in ctx.vcs.volume_mounts)
    projected = token_volume(ctx.provider, ctx.name, step)
    if projected is not None:
        volumes.append(projected[0])
        mounts.append(projected[1])
    prompt_env: list[dict[str, Any]] = []
    if ctx.system_prompt is not None:  # issue 13 item 3: the text as a file, the expected hash as env
        expected = ctx.system_prompt_sha256 or ctx.system_prompt.sha256
        delivery = prompt_delivery(ctx.system_prompt, expected, ctx.name, _metadata("", ctx, labels))
        configmaps.extend(delivery.configmaps)
        volumes.extend(delivery.volumes)
        mounts.extend(delivery.mounts)
        prompt_env = list(delivery.env)

    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        # The provider's binary is the entrypoint (the reference's contract): the workload image is the
        # user's and needs nothing of jangar. Everything the binary reads was prepared here, at build time.
        "command": [runner["binary"]],
        **({"args": list(runner["args"])} if runner["args"] else {}),
        # A failing agent that wrote no termination message still explains itself: the kubelet keeps its
        # log tail there, and the controller reads it back into status.runner.
        "terminationMessagePolicy": TERMINATION_MESSAGE_POLICY,
        **(
            {"imagePullPolicy": settings.runner.image_pull_policy}
            if settings.runner.image_pull_policy
            else {}
        ),
        "workingDir": WORKSPACE,
        "env": _dedupe_env([*_env(ctx, settings), *prompt_env]),
        "volumeMounts": mounts,
    }
    secrets = [s for s in as_list(ctx.spec.get("secrets")) if isinstance(s, str) and s]
    if secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in dict.fromkeys(secrets)]
    resources = effective_resources(workload, ctx.provider, settings.runner.default_workload.resources)
    if resources:
        container["resources"] = resources

    config = ctx.runtime_config
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container], "volumes": volumes}
    service_account = effective_service_account(config, settings, ctx.provider)
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    pod_spec.update(scheduling_fields(config, settings))

    defaults = as_map(spec_of(ctx.agent).get("defaults"))
    job_spec: dict[str, Any] = {
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    # Workflow steps retry as new Jobs (one per attempt), so a step's own Job does not retry pods.
    step_default = 0 if ctx.step is not None else None
    backoff = _int_setting(config.get("backoffLimit"), step_default, defaults.get("retryLimit"), minimum=0)
    if backoff is not None:
        job_spec["backoffLimit"] = backoff
    step_timeout = ctx.step.spec.get("timeoutSeconds") if ctx.step is not None else None
    deadline = _int_setting(
        step_timeout, config.get("timeoutSeconds"), defaults.get("timeoutSeconds"), minimum=1
    )
    if deadline is not None:
        job_spec["activeDeadlineSeconds"] = deadline

    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(job_name(ctx.name, step), ctx, labels),
        "spec": job_spec,
    }
    return JobPlan(job=job, configmaps=configmaps)

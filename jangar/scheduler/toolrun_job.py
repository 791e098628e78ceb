"""Tool + ToolRun → the Job and spec ConfigMap that execute it (reference §6.3), as pure functions.

* `tool_problems(tool)`: what makes a Tool unusable (image, command or args, env names, placeholders), shared
  by the Tool's own status and by the ToolRuns that use it.
* `build_toolrun_job(toolrun, tool, settings)`: the `JobPlan` (ConfigMap first, then the Job), or the
  placeholders that resolve to nothing. The reference rendered a missing parameter as an empty string, so a
  tool ran with an empty argument; here the run fails with `MissingParameter` and the paths.

The pod: one container `tool-runner` with the Tool's image, its command and args rendered from
`{{parameters.x}}` / `{{tool.…}}` / `{{toolRun.…}}` (the objects as in `run.json`: `metadata.{name,namespace,uid}`
and `spec`), env `TOOL_RUN_SPEC=/workspace/run.json` plus the Tool's env (values rendered the same way),
`workingDir`, the Tool's service account (else the controller's default), the controller's default scheduling
fields (overridable by the ToolRun's `spec.runtime.config`, as for AgentRuns), `restartPolicy: Never`,
`backoffLimit: 0` (retries belong to the orchestration step), Tool `timeoutSeconds` as
`activeDeadlineSeconds`, and `terminationMessagePolicy: FallbackToLogsOnError` so the outputs the tool writes to
`/dev/termination-log` come back (`jangar.scheduler.termination`). `ttlSecondsAfterFinished` is not set here:
the controller patches it after it has recorded the outcome.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jangar.api.contract import LABEL_MANAGED_BY, LABEL_TOOL_RUN, MANAGED_BY
from jangar.api.refs import TOOLRUNS
from jangar.api.shape import as_list, as_map
from jangar.runtime import controllerutil
from jangar.scheduler.job import JobPlan
from jangar.scheduler.naming import configmap_volume_name, dns_label, label_value, spec_configmap_name
from jangar.scheduler.templating import references, render_strict, render_template
from jangar.scheduler.termination import TERMINATION_MESSAGE_PATH, TERMINATION_MESSAGE_POLICY
from jangar.scheduler.workload import scheduling_fields
from jangar.settings import Settings

__all__ = [
    "CONTAINER_NAME",
    "JOB_NAME_PREFIX_LIMIT",
    "SPEC_ENV",
    "SPEC_KEY",
    "SPEC_PATH",
    "TEMPLATE_ROOTS",
    "ToolProblem",
    "ToolRunBuild",
    "build_toolrun_job",
    "run_document",
    "template_context",
    "tool_problems",
    "toolrun_configmap_name",
    "toolrun_job_name",
    "toolrun_labels",
]

CONTAINER_NAME = "tool-runner"
SPEC_ENV = "TOOL_RUN_SPEC"
SPEC_KEY = "run.json"
SPEC_PATH = f"/workspace/{SPEC_KEY}"
JOB_NAME_PREFIX_LIMIT = 50
"""The ToolRun part of the Job name (`<toolrun(≤50)>-job`, as in the reference): Pod names stay short."""
TEMPLATE_ROOTS = ("parameters", "tool", "toolRun")

# Kubernetes' classic IsEnvVarName: portable to every API server version (newer ones accept more).
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


@dataclass(frozen=True)
class ToolProblem:
    reason: str
    message: str


def toolrun_job_name(toolrun_name: str) -> str:
    return f"{dns_label(toolrun_name, limit=JOB_NAME_PREFIX_LIMIT)}-job"


def toolrun_configmap_name(toolrun_name: str) -> str:
    return spec_configmap_name(toolrun_name)


def toolrun_labels(toolrun_name: str) -> dict[str, str]:
    return {LABEL_TOOL_RUN: label_value(toolrun_name), LABEL_MANAGED_BY: MANAGED_BY}


def _spec(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _templates(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field path, template) for every rendered string of a Tool spec."""
    out = [(f"spec.command[{i}]", v) for i, v in enumerate(_strings(spec.get("command")))]
    out += [(f"spec.args[{i}]", v) for i, v in enumerate(_strings(spec.get("args")))]
    for i, entry in enumerate(as_list(spec.get("env"))):
        if isinstance(entry, Mapping) and isinstance(entry.get("value"), str):
            out.append((f"spec.env[{i}].value", str(entry["value"])))
    return out


def tool_problems(tool: Mapping[str, Any]) -> list[ToolProblem]:
    """Everything wrong with a Tool's spec (empty: usable)."""
    spec = _spec(tool)
    problems: list[ToolProblem] = []
    image = spec.get("image")
    if not isinstance(image, str) or not image.strip():
        problems.append(ToolProblem("MissingImage", "spec.image is required"))
    if not _strings(spec.get("command")) and not _strings(spec.get("args")):
        problems.append(ToolProblem("MissingCommand", "spec.command or spec.args is required"))
    seen: set[str] = set()
    for i, entry in enumerate(as_list(spec.get("env"))):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            problems.append(
                ToolProblem(
                    "InvalidEnvName",
                    f"spec.env[{i}].name {name!r} is not a valid environment variable name "
                    "(letters, digits, '_', '-', '.', not starting with a digit)",
                )
            )
        elif name == SPEC_ENV:
            problems.append(
                ToolProblem("InvalidEnvName", f"spec.env[{i}]: {SPEC_ENV} is set by the controller")
            )
        elif name in seen:
            problems.append(ToolProblem("DuplicateEnvName", f"spec.env[{i}]: {name} is defined twice"))
        else:
            seen.add(name)
    for path, template in _templates(spec):
        for placeholder in references(template):
            if placeholder.split(".", 1)[0] not in TEMPLATE_ROOTS:
                problems.append(
                    ToolProblem(
                        "InvalidTemplate",
                        f"{path}: {{{{{placeholder}}}}} must start with one of {', '.join(TEMPLATE_ROOTS)}",
                    )
                )
    return problems


def _slim(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = as_map(obj.get("metadata"))
    return {
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid") if meta.get(k)},
        "spec": dict(_spec(obj)),
    }


def _parameters(toolrun: Mapping[str, Any]) -> dict[str, Any]:
    params = _spec(toolrun).get("parameters")
    return dict(params) if isinstance(params, Mapping) else {}


def run_document(toolrun: Mapping[str, Any], tool: Mapping[str, Any]) -> dict[str, Any]:
    """`run.json`: `{toolRun, tool, parameters}` (the objects without status)."""
    return {"toolRun": _slim(toolrun), "tool": _slim(tool), "parameters": _parameters(toolrun)}


def template_context(toolrun: Mapping[str, Any], tool: Mapping[str, Any]) -> dict[str, Any]:
    return run_document(toolrun, tool)


@dataclass(frozen=True)
class ToolRunBuild:
    """`plan` when the Tool renders for this run; else the unresolved placeholders (`field: path`)."""

    plan: JobPlan | None
    missing: Sequence[str] = field(default=())

    @property
    def message(self) -> str:
        return "unresolved placeholders (no such parameter or field): " + ", ".join(self.missing)


def _metadata(name: str, toolrun: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    meta = as_map(toolrun.get("metadata"))
    out: dict[str, Any] = {"name": name, "namespace": meta.get("namespace"), "labels": dict(labels)}
    if meta.get("uid"):
        out["ownerReferences"] = [controllerutil.owner_reference(dict(toolrun), TOOLRUNS)]
    return out


def _positive(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


def build_toolrun_job(
    toolrun: Mapping[str, Any], tool: Mapping[str, Any], settings: Settings
) -> ToolRunBuild:
    """The spec ConfigMap and the Job for `toolrun`. The caller has checked `tool_problems(tool)` is empty."""
    spec = _spec(tool)
    context = template_context(toolrun, tool)
    missing = [
        f"{path}: {{{{{p}}}}}"
        for path, template in _templates(spec)
        for p in dict.fromkeys(render_strict(template, context)[1])
    ]
    if missing:
        return ToolRunBuild(None, missing)

    name = str((toolrun.get("metadata") or {})["name"])
    labels = toolrun_labels(name)
    cm_name = toolrun_configmap_name(name)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(cm_name, toolrun, labels),
        "data": {SPEC_KEY: json.dumps(run_document(toolrun, tool), indent=2, sort_keys=True)},
    }
    volume = configmap_volume_name(cm_name)
    env: list[dict[str, Any]] = [{"name": SPEC_ENV, "value": SPEC_PATH}]
    for entry in as_list(spec.get("env")):
        if isinstance(entry, Mapping) and entry.get("name") != SPEC_ENV:
            env.append(
                {"name": str(entry["name"]), "value": render_template(str(entry.get("value") or ""), context)}
            )
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": str(spec["image"]).strip(),
        "env": env,
        "volumeMounts": [{"name": volume, "mountPath": SPEC_PATH, "subPath": SPEC_KEY, "readOnly": True}],
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": TERMINATION_MESSAGE_POLICY,
    }
    resources = spec.get("resources")
    if isinstance(resources, Mapping) and resources:
        container["resources"] = dict(resources)
    command = [render_template(v, context) for v in _strings(spec.get("command"))]
    args = [render_template(v, context) for v in _strings(spec.get("args"))]
    if command:
        container["command"] = command
    if args:
        container["args"] = args
    working_dir = spec.get("workingDir")
    if isinstance(working_dir, str) and working_dir.strip():
        container["workingDir"] = working_dir.strip()
    if settings.runner.image_pull_policy:
        container["imagePullPolicy"] = settings.runner.image_pull_policy

    runtime = _spec(toolrun).get("runtime")
    config = runtime.get("config") if isinstance(runtime, Mapping) else None
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": volume, "configMap": {"name": cm_name}}],
    }
    service_account = spec.get("serviceAccount")
    if not isinstance(service_account, str) or not service_account.strip():
        service_account = settings.runner.default_workload.service_account_name
    if service_account:
        pod_spec["serviceAccountName"] = service_account.strip()
    pod_spec.update(scheduling_fields(config if isinstance(config, Mapping) else {}, settings))

    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    deadline = _positive(spec.get("timeoutSeconds"))
    if deadline is not None:
        job_spec["activeDeadlineSeconds"] = deadline
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(toolrun_job_name(name), toolrun, labels),
        "spec": job_spec,
    }
    return ToolRunBuild(JobPlan(job=job, configmaps=[configmap]))

"""Job composition: the reference's contract (names, labels, env, ConfigMaps, auth layout) and its fixes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jangar.scheduler import RunContext, StepRef, VcsRuntime, build_job_plan, runtime_ref
from jangar.scheduler.contract import build_metadata
from jangar.settings import Settings
from tests.unit.scheduler.objects import agent, agent_run, implementation, provider

RUNNER_IMAGE = {"JANGAR_AGENT_RUNNER_IMAGE": "runner:1"}


def make_ctx(run: dict[str, Any] | None = None, **kwargs: Any) -> RunContext:
    run = run or agent_run(parameters={"repository": "acme/demo", "stage": "implement"})
    impl = kwargs.pop("implementation", implementation())
    params = run["spec"].get("parameters") or {}
    return RunContext(
        run=run,
        agent=kwargs.pop("agent", agent()),
        provider=kwargs.pop("provider", provider()),
        implementation=impl,
        implementation_name="impl-1",
        parameters=params,
        metadata=build_metadata(params, impl),
        **kwargs,
    )


def container(plan: Any) -> dict[str, Any]:
    containers: list[dict[str, Any]] = plan.job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_map(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_names_labels_and_owner_references() -> None:
    plan = build_job_plan(make_ctx(), Settings.from_env(RUNNER_IMAGE))
    job = plan.job
    assert job["metadata"]["name"] == "run-1-job" == plan.job_name
    assert job["metadata"]["namespace"] == "agents"
    labels = job["metadata"]["labels"]
    assert labels["agents.proompteng.ai/agent-run"] == "run-1"
    assert labels["agents.proompteng.ai/agent"] == "agent-1"
    assert labels["agents.proompteng.ai/provider"] == "provider-1"
    assert labels["agents.proompteng.ai/implementation"] == "impl-1"
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    owner = {
        "apiVersion": "agents.proompteng.ai/v1alpha1",
        "kind": "AgentRun",
        "name": "run-1",
        "uid": "uid-run-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert job["metadata"]["ownerReferences"] == [owner]
    for cm in plan.configmaps:
        assert cm["metadata"]["ownerReferences"] == [owner]
        assert cm["metadata"]["labels"] == labels
    # No TTL at creation: it is patched only after the outcome is recorded.
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_long_run_name_gives_valid_names_and_labels() -> None:
    name = "r" * 120
    plan = build_job_plan(make_ctx(agent_run(name)), Settings.from_env(RUNNER_IMAGE))
    assert len(plan.job_name) == 63
    assert len(plan.job["metadata"]["labels"]["agents.proompteng.ai/agent-run"]) <= 63
    assert all(len(cm["metadata"]["name"]) <= 63 for cm in plan.configmaps)


def test_configmaps_and_mounts_with_templated_input_files() -> None:
    prov = provider(
        inputFiles=[
            {
                "path": "/workspace/prompt.md",
                "content": "Stage {{ inputs.stage }} for {{parameters.repository}}",
            },
            {"path": "", "content": "ignored"},
        ]
    )
    plan = build_job_plan(make_ctx(provider=prov), Settings.from_env(RUNNER_IMAGE))
    assert [cm["metadata"]["name"] for cm in plan.configmaps] == ["run-1-spec", "run-1-inputs"]
    assert plan.configmaps[1]["data"] == {"input-0": "Stage implement for acme/demo"}
    mounts = {m["mountPath"]: m for m in container(plan)["volumeMounts"]}
    assert mounts["/workspace/prompt.md"]["subPath"] == "input-0"
    assert mounts["/workspace/run.json"]["subPath"] == "run.json"
    assert mounts["/workspace/agent-runner.json"]["subPath"] == "agent-runner.json"
    volumes = {v["name"]: v for v in plan.job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["run-1-spec-vol"]["configMap"]["name"] == "run-1-spec"
    assert volumes["run-1-inputs-vol"]["configMap"]["name"] == "run-1-inputs"


def test_only_one_configmap_without_input_files() -> None:
    plan = build_job_plan(make_ctx(), Settings.from_env(RUNNER_IMAGE))
    assert [cm["metadata"]["name"] for cm in plan.configmaps] == ["run-1-spec"]


def test_env_order_and_rendered_env_template() -> None:
    prov = provider(envTemplate={"MODEL": "{{agent.config.model}}", "AGENT_PROVIDER": "spoofed"})
    ag = agent(config={"model": "gpt-5"})
    vcs = VcsRuntime(
        context={"repository": "acme/demo"},
        env=(
            {"name": "VCS_REPOSITORY", "value": "acme/demo"},
            {"name": "GITHUB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "gh", "key": "token"}}},
        ),
    )
    settings = Settings.from_env(RUNNER_IMAGE | {"JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME": "codex-auth"})
    c = container(build_job_plan(make_ctx(provider=prov, agent=ag, vcs=vcs), settings))
    names = [e["name"] for e in c["env"]]
    assert names == [
        "AGENT_RUN_SPEC",
        "AGENT_RUNNER_SPEC_PATH",
        "CODEX_HOME",
        "CODEX_AUTH",
        "MODEL",
        "AGENT_PROVIDER",
        "VCS_REPOSITORY",
        "GITHUB_TOKEN",
    ]
    env = env_map(c)
    assert env["AGENT_RUN_SPEC"] == "/workspace/run.json"
    assert env["AGENT_RUNNER_SPEC_PATH"] == "/workspace/agent-runner.json"
    assert env["MODEL"] == "gpt-5"
    assert env["AGENT_PROVIDER"] == "provider-1"  # a template cannot override the reserved names
    assert env["GITHUB_TOKEN"] == {"secretKeyRef": {"name": "gh", "key": "token"}}


def test_auth_secret_layout_matches_reference() -> None:
    settings = Settings.from_env(RUNNER_IMAGE | {"JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME": "codex-auth"})
    plan = build_job_plan(make_ctx(), settings)
    env = env_map(container(plan))
    assert env["CODEX_HOME"] == "/root/.codex"
    assert env["CODEX_AUTH"] == "/root/.codex/auth.json"
    volumes = {v["name"]: v for v in plan.job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["run-1-auth-home"] == {"name": "run-1-auth-home", "emptyDir": {}}
    assert volumes["run-1-auth-secret"]["secret"] == {
        "secretName": "codex-auth",
        "items": [{"key": "auth.json", "path": "auth.json"}],
    }
    mounts = {m["name"]: m for m in container(plan)["volumeMounts"]}
    assert mounts["run-1-auth-home"] == {"name": "run-1-auth-home", "mountPath": "/root/.codex"}
    assert mounts["run-1-auth-secret"] == {
        "name": "run-1-auth-secret",
        "mountPath": "/root/.codex/auth.json",
        "subPath": "auth.json",
        "readOnly": True,
    }


def test_env_from_secrets_resources_and_workload_volumes() -> None:
    run = agent_run(
        secrets=["api-keys", "api-keys", "more"],
        workload={
            "image": "custom:2",
            "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "2Gi"}},
            "volumes": [
                {
                    "type": "pvc",
                    "name": "cache",
                    "mountPath": "/cache",
                    "claimName": "cache-pvc",
                    "readOnly": True,
                },
                {
                    "type": "emptyDir",
                    "name": "tmp",
                    "mountPath": "/tmp",
                    "medium": "Memory",
                    "sizeLimit": "1Gi",
                },
                {"type": "secret", "name": "cfg", "mountPath": "/cfg", "secretName": "cfg-secret"},
            ],
        },
    )
    plan = build_job_plan(make_ctx(run), Settings.from_env(RUNNER_IMAGE))
    c = container(plan)
    assert c["image"] == "custom:2"
    assert c["envFrom"] == [{"secretRef": {"name": "api-keys"}}, {"secretRef": {"name": "more"}}]
    assert c["resources"] == {"requests": {"cpu": "1"}, "limits": {"memory": "2Gi"}}
    volumes = {v["name"]: v for v in plan.job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["cache"]["persistentVolumeClaim"] == {"claimName": "cache-pvc", "readOnly": True}
    assert volumes["tmp"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Gi"}
    assert volumes["cfg"]["secret"] == {"secretName": "cfg-secret"}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["cache"] == {"name": "cache", "mountPath": "/cache", "readOnly": True}


def test_image_falls_back_to_runner_then_agent_image() -> None:
    assert container(build_job_plan(make_ctx(), Settings.from_env(RUNNER_IMAGE)))["image"] == "runner:1"
    fallback = Settings.from_env({"JANGAR_AGENT_IMAGE": "agent:9"})
    assert container(build_job_plan(make_ctx(), fallback))["image"] == "agent:9"
    with pytest.raises(ValueError, match="image"):
        build_job_plan(make_ctx(), Settings.from_env({}))


DEFAULTS = RUNNER_IMAGE | {
    "JANGAR_AGENT_RUNNER_NODE_SELECTOR": '{"pool": "agents"}',
    "JANGAR_AGENT_RUNNER_TOLERATIONS": '[{"key": "dedicated", "operator": "Exists"}]',
    "JANGAR_AGENT_RUNNER_AFFINITY": '{"nodeAffinity": {}}',
    "JANGAR_AGENT_RUNNER_POD_SECURITY_CONTEXT": '{"runAsNonRoot": true}',
    "JANGAR_AGENT_RUNNER_IMAGE_PULL_SECRETS": '["regcred"]',
    "JANGAR_AGENT_RUNNER_PRIORITY_CLASS": "low",
    "JANGAR_AGENT_RUNNER_SCHEDULER_NAME": "custom-scheduler",
    "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT": "runner-sa",
}


def test_default_workload_applies() -> None:
    pod = build_job_plan(make_ctx(), Settings.from_env(DEFAULTS)).job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "agents"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["affinity"] == {"nodeAffinity": {}}
    assert pod["securityContext"] == {"runAsNonRoot": True}
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["priorityClassName"] == "low"
    assert pod["schedulerName"] == "custom-scheduler"
    assert pod["serviceAccountName"] == "runner-sa"


def test_runtime_config_replaces_defaults_and_empty_values_opt_out() -> None:
    run = agent_run(
        config={
            "nodeSelector": {},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "imagePullSecrets": [{"name": "other"}],
            "serviceAccount": "special",
            "priorityClassName": "high",
        }
    )
    pod = build_job_plan(make_ctx(run), Settings.from_env(DEFAULTS)).job["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert pod["imagePullSecrets"] == [{"name": "other"}]
    assert pod["serviceAccountName"] == "special"
    assert pod["priorityClassName"] == "high"
    assert pod["affinity"] == {"nodeAffinity": {}}  # untouched keys keep the default


def test_run_json_and_agent_runner_json() -> None:
    prov = provider(
        argsTemplate=["--stage", "{{ inputs.stage }}", "{{ missing.value }}"],
        envTemplate={"X": "{{ agentRun.name }}"},
        outputArtifacts=[{"name": "log", "path": "/workspace/out.log"}],
    )
    run = agent_run(parameters={"repo": "acme/demo", "stage": "plan"}, config={"logRetentionSeconds": 60.7})
    memory = {
        "metadata": {"name": "mem"},
        "spec": {"type": "postgres", "connection": {"secretRef": {"name": "db"}}},
    }
    plan = build_job_plan(make_ctx(run, provider=prov, memory=memory), Settings.from_env(RUNNER_IMAGE))
    data = plan.configmaps[0]["data"]
    run_doc = json.loads(data["run.json"])
    assert run_doc["provider"] == "provider-1"
    assert run_doc["agentRun"] == {"name": "run-1", "uid": "uid-run-1", "namespace": "agents"}
    assert run_doc["implementation"]["text"] == "Fix the bug"
    assert run_doc["parameters"] == {"repo": "acme/demo", "stage": "plan"}
    assert run_doc["memory"] == {"name": "mem", "type": "postgres", "connectionRef": "db"}
    assert run_doc["artifacts"] == [{"name": "log", "path": "/workspace/out.log"}]
    assert run_doc["repository"] == "acme/demo"  # alias repo → repository
    assert run_doc["stage"] == "plan"
    assert run_doc["prompt"] == "Fix the bug"
    assert run_doc["metadata"]["map"]["repository"] == "acme/demo"
    runner = json.loads(data["agent-runner.json"])
    assert runner["binary"] == "/usr/local/bin/codex"
    assert runner["args"] == ["--stage", "plan", ""]
    assert runner["env"] == {"X": "run-1"}
    assert runner["inputs"] == {"repo": "acme/demo", "stage": "plan"}
    assert runner["payloads"] == {"eventFilePath": "/workspace/run.json"}
    assert runner["artifacts"] == {
        "statusPath": "/workspace/.agent/status.json",
        "logPath": "/workspace/.agent/runner.log",
        "logRetentionSeconds": 60,
    }
    assert container(plan)["command"] == ["/usr/local/bin/codex"]
    assert container(plan)["args"] == ["--stage", "plan", ""]
    assert container(plan)["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_log_retention_default_from_settings() -> None:
    settings = Settings.from_env(RUNNER_IMAGE | {"JANGAR_AGENT_RUNNER_LOG_RETENTION_SECONDS": "120"})
    runner = json.loads(build_job_plan(make_ctx(), settings).configmaps[0]["data"]["agent-runner.json"])
    assert runner["artifacts"]["logRetentionSeconds"] == 120


def test_workflow_step_names_labels_and_step_workload() -> None:
    step = StepRef(
        name="Review Code",
        index=2,
        attempt=1,
        spec={
            "name": "Review Code",
            "workload": {"image": "step:1"},
            "implementationSpecRef": {"name": "rev"},
        },
    )
    run = agent_run(runtime="workflow", workload={"image": "run:1", "resources": {"limits": {"cpu": "2"}}})
    plan = build_job_plan(make_ctx(run, step=step), Settings.from_env(RUNNER_IMAGE))
    assert plan.job_name == "run-1-step-2-attempt-1"
    assert plan.configmaps[0]["metadata"]["name"] == "run-1-spec-step-2-attempt-1"
    labels = plan.job["metadata"]["labels"]
    assert labels["agents.proompteng.ai/step"] == "review-code"
    assert labels["agents.proompteng.ai/step-index"] == "2"
    assert labels["agents.proompteng.ai/implementation"] == "rev"
    c = container(plan)
    assert c["image"] == "step:1"
    assert c["resources"] == {"limits": {"cpu": "2"}}  # inherited from the run's workload
    assert plan.job["spec"]["backoffLimit"] == 0  # step retries are new Jobs


def test_job_deadline_and_backoff_from_agent_defaults_and_config() -> None:
    ag = agent(defaults={"timeoutSeconds": 3600, "retryLimit": 1})
    job = build_job_plan(make_ctx(agent=ag), Settings.from_env(RUNNER_IMAGE)).job
    assert job["spec"]["activeDeadlineSeconds"] == 3600
    assert job["spec"]["backoffLimit"] == 1
    run = agent_run(config={"timeoutSeconds": 60, "backoffLimit": 0})
    job = build_job_plan(make_ctx(run, agent=ag), Settings.from_env(RUNNER_IMAGE)).job
    assert job["spec"]["activeDeadlineSeconds"] == 60
    assert job["spec"]["backoffLimit"] == 0


def test_no_owner_reference_without_uid() -> None:
    plan = build_job_plan(make_ctx(agent_run(uid=None)), Settings.from_env(RUNNER_IMAGE))
    assert "ownerReferences" not in plan.job["metadata"]


def test_plan_is_deterministic() -> None:
    settings = Settings.from_env(DEFAULTS)
    assert build_job_plan(make_ctx(), settings) == build_job_plan(make_ctx(), settings)


def test_runtime_ref() -> None:
    job = {"metadata": {"name": "run-1-job", "namespace": "agents", "uid": "j1"}}
    assert runtime_ref(job) == {"type": "job", "name": "run-1-job", "namespace": "agents", "uid": "j1"}

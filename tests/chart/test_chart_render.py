"""`helm template` matrix: every install mode and toggle, parsed and asserted object by object."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import CHART, Rendered, render

CRD_GROUPS = {
    "agents.proompteng.ai": {
        "agents",
        "agentruns",
        "agentproviders",
        "implementationspecs",
        "implementationsources",
        "versioncontrolproviders",
        "memories",
    },
    "orchestration.proompteng.ai": {"orchestrations", "orchestrationruns"},
    "tools.proompteng.ai": {"tools", "toolruns"},
    "signals.proompteng.ai": {"signals", "signaldeliveries"},
    "schedules.proompteng.ai": {"schedules"},
    "artifacts.proompteng.ai": {"artifacts"},
    "workspaces.proompteng.ai": {"workspaces"},
    "approvals.proompteng.ai": {"approvalpolicies"},
    "budgets.proompteng.ai": {"budgets"},
    "security.proompteng.ai": {"secretbindings"},
}


def allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    for rule in rules:
        groups = rule.get("apiGroups", [])
        if (
            (group in groups or "*" in groups)
            and (resource in rule.get("resources", []) or "*" in rule.get("resources", []))
            and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
        ):
            return True
    return False


def assert_controller_rules(rules: list[dict[str, Any]]) -> None:
    for group, resources in CRD_GROUPS.items():
        for resource in resources:
            for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
                assert allowed(rules, group, resource, verb), (group, resource, verb)
            for sub in ("status", "finalizers"):
                for verb in ("get", "update", "patch"):
                    assert allowed(rules, group, f"{resource}/{sub}", verb), (group, resource, sub, verb)
    for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
        assert allowed(rules, "batch", "jobs", verb)
        assert allowed(rules, "batch", "cronjobs", verb)
        assert allowed(rules, "", "configmaps", verb)
        assert allowed(rules, "", "persistentvolumeclaims", verb)
    for verb in ("get", "list", "watch"):
        assert allowed(rules, "", "pods", verb)
        assert allowed(rules, "", "pods/log", verb)
        assert allowed(rules, "", "secrets", verb)
    for verb in ("create", "patch"):
        assert allowed(rules, "", "events", verb)
        assert allowed(rules, "events.k8s.io", "events", verb)
    for verb in ("update", "delete"):
        assert not allowed(rules, "", "secrets", verb), f"secrets {verb} must not be granted"


# --- defaults ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def defaults(helm_bin: Path) -> Rendered:
    return render(helm_bin)


def test_auth_reviews_granted_in_every_mode(helm_bin: Path, defaults: Rendered) -> None:
    """The surfaces authenticate with TokenReview and authorize with SubjectAccessReview (issue 12)."""
    for rendered in (defaults, render(helm_bin, {"rbac": {"clusterScoped": True}})):
        role = rendered.get("ClusterRole", "agents-agents-auth")
        assert role["rules"] == [
            {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["subjectaccessreviews"],
                "verbs": ["create"],
            },
        ]
        binding = rendered.get("ClusterRoleBinding", "agents-agents-auth")
        assert binding["roleRef"]["name"] == "agents-agents-auth"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "agents-sa", "namespace": "agents"}]


def test_default_inventory(defaults: Rendered) -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in defaults.docs)
    assert kinds == sorted(
        [
            ("ClusterRole", "agents-agents-auth"),
            ("ClusterRoleBinding", "agents-agents-auth"),
            ("ConfigMap", "agents-dashboard"),
            ("Deployment", "agents"),
            ("Pod", "agents-test-health"),
            ("Role", "agents"),
            ("Role", "agents-leader-election"),
            ("RoleBinding", "agents"),
            ("RoleBinding", "agents-leader-election"),
            ("Service", "agents"),
            ("Service", "agents-grpc"),
            ("Service", "agents-metrics"),
            ("ServiceAccount", "agents-sa"),
        ]
    )
    for doc in defaults.docs:
        if doc["kind"].startswith("Cluster"):
            continue  # the TokenReview/SubjectAccessReview grant is cluster-scoped in every mode
        assert doc["metadata"]["namespace"] == "agents", doc["metadata"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == "agents"
    for forbidden in ("Ingress", "StatefulSet", "CronJob", "PersistentVolumeClaim"):
        assert not defaults.all(forbidden)


def test_default_process_contract(defaults: Rendered) -> None:
    dep = defaults.get("Deployment", "agents")
    assert dep["spec"]["replicas"] == 1
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "agents-sa"
    assert pod["securityContext"]["runAsNonRoot"] is True
    c = defaults.container()
    assert c["name"] == "agents"
    assert c["image"] == "ghcr.io/proompteng/jangar:0.1.0"
    assert c["command"] == ["jangar"] and c["args"] == ["serve"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8080, "grpc": 50051}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    svc = defaults.get("Service", "agents")
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == {
        "app.kubernetes.io/name": "agents",
        "app.kubernetes.io/instance": "agents",
    }
    assert dep["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]


def test_default_env_values(defaults: Rendered) -> None:
    names = [e["name"] for e in defaults.env_list()]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    env = defaults.env()
    expected = {
        "JANGAR_MIGRATIONS": "auto",
        "JANGAR_IMAGE": "ghcr.io/proompteng/jangar:0.1.0",
        "JANGAR_AGENT_RUNNER_IMAGE": "registry.ide-newton.ts.net/lab/codex-universal:latest",
        "JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY": "IfNotPresent",
        "JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS": "600",
        "JANGAR_AGENT_RUNNER_LOG_RETENTION_SECONDS": "604800",
        "JANGAR_SERVICE_ACCOUNT_NAME": "agents-sa",
        "JANGAR_HTTP_PORT": "8080",
        "JANGAR_LOG_LEVEL": "info",
        "JANGAR_PROMETHEUS_METRICS_ENABLED": "true",
        "JANGAR_PROMETHEUS_METRICS_PATH": "/metrics",
        "JANGAR_RBAC_CLUSTER_SCOPED": "false",
        "JANGAR_PRIMITIVES_NAMESPACES": "agents",
        "JANGAR_LEADER_ELECTION_ENABLED": "true",
        "JANGAR_LEADER_ELECTION_LEASE_NAME": "agents-controller",
        "JANGAR_LEADER_ELECTION_NAMESPACE": "agents",
        "JANGAR_LEADER_ELECTION_LEASE_DURATION_SECONDS": "15",
        "JANGAR_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": "10",
        "JANGAR_LEADER_ELECTION_RETRY_PERIOD_SECONDS": "2",
        "JANGAR_AGENTS_CONTROLLER_ENABLED": "1",
        "JANGAR_AGENTS_CONTROLLER_NAMESPACES": "agents",
        "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE": "10",
        "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_AGENT": "5",
        "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_CLUSTER": "100",
        "JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_ENABLED": "false",
        "JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_DEFAULT": "0",
        "JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE": "200",
        "JANGAR_AGENTS_CONTROLLER_QUEUE_REPO": "50",
        "JANGAR_AGENTS_CONTROLLER_QUEUE_CLUSTER": "1000",
        "JANGAR_AGENTS_CONTROLLER_RATE_WINDOW_SECONDS": "60",
        "JANGAR_AGENTS_CONTROLLER_RATE_NAMESPACE": "120",
        "JANGAR_AGENTS_CONTROLLER_RATE_REPO": "30",
        "JANGAR_AGENTS_CONTROLLER_RATE_CLUSTER": "600",
        "JANGAR_AGENTS_CONTROLLER_WEBHOOK_QUEUE_SIZE": "1000",
        "JANGAR_AGENTS_CONTROLLER_WEBHOOK_RETRY_BASE_DELAY_SECONDS": "1",
        "JANGAR_AGENTS_CONTROLLER_WEBHOOK_RETRY_MAX_DELAY_SECONDS": "60",
        "JANGAR_AGENTS_CONTROLLER_WEBHOOK_RETRY_MAX_ATTEMPTS": "5",
        # Helm keeps numbers as float64; the chart prints integers, never 2.592e+06 (reference Q3).
        "JANGAR_AGENTS_CONTROLLER_AGENTRUN_RETENTION_SECONDS": "2592000",
        "JANGAR_AGENTS_CONTROLLER_VCS_PROVIDERS_ENABLED": "true",
        "JANGAR_AGENTS_CONTROLLER_VCS_DEPRECATED_TOKEN_TYPES": '{"github":["pat"]}',
        "JANGAR_ORCHESTRATION_CONTROLLER_ENABLED": "1",
        "JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES": "agents",
        "JANGAR_SUPPORTING_CONTROLLER_ENABLED": "1",
        "JANGAR_SUPPORTING_CONTROLLER_NAMESPACES": "agents",
        "JANGAR_GRPC_ENABLED": "true",
        "JANGAR_GRPC_HOST": "0.0.0.0",
        "JANGAR_GRPC_PORT": "50051",
        "JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED": "true",
    }
    for key, value in expected.items():
        assert env.get(key) == value, f"{key}={env.get(key)!r}, want {value!r}"
    assert env["JANGAR_POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["JANGAR_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # No database configured by default: no DATABASE_URL (NOTES warns).
    assert "DATABASE_URL" not in env
    for absent in ("JANGAR_PRIMITIVES_RECONCILER", "NATS_URL", "JANGAR_GRPC_TOKEN", "CODEX_HOME"):
        assert absent not in env
    for value in env.values():
        assert not (isinstance(value, str) and "e+0" in value), value


def test_settings_parse_the_rendered_env(defaults: Rendered) -> None:
    """The env the chart renders is accepted by jangar's own settings parser."""
    settings_mod = pytest.importorskip("jangar.settings")
    env = {k: v for k, v in defaults.env().items() if isinstance(v, str)}
    env["JANGAR_POD_NAMESPACE"] = "agents"
    settings = settings_mod.Settings.from_env(env)
    assert settings.agents_controller.namespaces == ("agents",)
    assert settings.agentrun_retention_seconds == 2_592_000
    assert settings.leader_election.lease_name == "agents-controller"
    assert settings.grpc.enabled and settings.grpc.host == "0.0.0.0"


def test_default_rbac_namespaced(defaults: Rendered) -> None:
    role = defaults.get("Role", "agents")
    assert_controller_rules(role["rules"])
    assert not allowed(role["rules"], "", "namespaces", "list")
    binding = defaults.get("RoleBinding", "agents")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "agents"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "agents-sa", "namespace": "agents"}]
    le = defaults.get("Role", "agents-leader-election")
    for verb in ("get", "create", "update"):
        assert allowed(le["rules"], "coordination.k8s.io", "leases", verb)
    # Namespaced mode grants nothing cluster-wide but the two reviews the API surfaces ask (issue 12).
    assert [r["metadata"]["name"] for r in defaults.all("ClusterRole")] == ["agents-agents-auth"]
    assert [b["metadata"]["name"] for b in defaults.all("ClusterRoleBinding")] == ["agents-agents-auth"]


def test_dashboard_configmap(defaults: Rendered) -> None:
    cm = defaults.get("ConfigMap", "agents-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["agents-observability.json"])
    assert dashboard["uid"] == "agents-observability"
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "jangar_agent_run_outcomes_total",
        "jangar_reconcile_duration_ms_bucket",
        "jangar_agents_queue_depth_bucket",
        "jangar_agentrun_admissions_total",
    ):
        assert metric in exprs
        assert "agents_" + metric.removeprefix("jangar_") in exprs  # chart 0.9.29's names too
    assert json.loads((CHART / "dashboards" / "agents-observability.json").read_text()) == dashboard


def test_helm_test_hook(defaults: Rendered) -> None:
    pod = defaults.get("Pod", "agents-test-health")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    assert container["image"] == "curlimages/curl:8.11.1"
    assert container["args"][-1] == "http://agents.agents.svc:80/health"
    # The test pod must not be picked up by the Services.
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "agents"
    assert "app.kubernetes.io/component" in pod["metadata"]["labels"]


# --- install modes -----------------------------------------------------------------------------


def test_single_other_namespace_gets_its_role(helm_bin: Path) -> None:
    """Reference gap 8.1.7: a single watched namespace other than the release one had no RBAC."""
    r = render(helm_bin, {"controller": {"namespaces": ["team-a"]}})
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in r.all("Role")}
    # orchestration/supporting default to the release namespace, so both namespaces get a Role.
    assert ("team-a", "agents") in roles and ("agents", "agents") in roles
    for binding in r.all("RoleBinding"):
        assert binding["subjects"][0] == {
            "kind": "ServiceAccount",
            "name": "agents-sa",
            "namespace": "agents",
        }
    env = r.env()
    assert env["JANGAR_AGENTS_CONTROLLER_NAMESPACES"] == "team-a"
    assert env["JANGAR_PRIMITIVES_NAMESPACES"] == "team-a"
    assert env["JANGAR_RBAC_CLUSTER_SCOPED"] == "false"


@pytest.mark.parametrize(
    ("namespaces", "expected"),
    [(["team-a", "team-b"], "team-a,team-b"), (["*"], "*")],
    ids=["several", "all"],
)
def test_cluster_scoped_modes(helm_bin: Path, namespaces: list[str], expected: str) -> None:
    values = {
        "rbac": {"clusterScoped": True},
        "controller": {"namespaces": namespaces},
        "orchestrationController": {"namespaces": namespaces},
        "supportingController": {"namespaces": namespaces},
    }
    r = render(helm_bin, values)
    assert sorted(r.names("ClusterRole")) == [
        "agents-agents",
        "agents-agents-auth",
        "agents-agents-vcs-tokens",
    ]
    tokens = r.get("ClusterRole", "agents-agents-vcs-tokens")
    assert tokens["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "patch"]}]
    if "*" in namespaces:
        assert (
            r.get("ClusterRoleBinding", "agents-agents-vcs-tokens")["roleRef"]["name"]
            == "agents-agents-vcs-tokens"
        )
    else:
        bound = sorted(
            b["metadata"]["namespace"]
            for b in r.all("RoleBinding")
            if b["metadata"]["name"] == "agents-vcs-tokens"
        )
        assert bound == sorted(namespaces)
    role = r.get("ClusterRole", "agents-agents")
    assert "namespace" not in role["metadata"]
    assert_controller_rules(role["rules"])
    for verb in ("get", "list", "watch"):
        assert allowed(role["rules"], "", "namespaces", verb)
    binding = r.get("ClusterRoleBinding", "agents-agents")
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "agents-sa", "namespace": "agents"}]
    # Only the leader-election Role stays namespaced.
    assert r.names("Role") == ["agents-leader-election"]
    env = r.env()
    assert env["JANGAR_RBAC_CLUSTER_SCOPED"] == "true"
    for key in (
        "JANGAR_AGENTS_CONTROLLER_NAMESPACES",
        "JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES",
        "JANGAR_SUPPORTING_CONTROLLER_NAMESPACES",
        "JANGAR_PRIMITIVES_NAMESPACES",
    ):
        assert env[key] == expected


def test_cluster_role_names_differ_per_namespace(helm_bin: Path) -> None:
    values = {"rbac": {"clusterScoped": True}}
    a = render(helm_bin, values, namespace="one")
    b = render(helm_bin, values, namespace="two")
    assert a.names("ClusterRole") != b.names("ClusterRole")


def test_rbac_create_false(helm_bin: Path) -> None:
    r = render(helm_bin, {"rbac": {"create": False}})
    for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
        assert not r.all(kind)


def test_rbac_extra_rules(helm_bin: Path) -> None:
    extra = {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}
    r = render(helm_bin, {"rbac": {"extraRules": [extra]}})
    assert extra in r.get("Role", "agents")["rules"]


def test_vcs_providers_disabled_reaches_env(helm_bin: Path) -> None:
    """Reference quirk Q1 / 8.1.3: false used to render as "true"."""
    r = render(helm_bin, {"controller": {"vcsProviders": {"enabled": False}}})
    assert r.env()["JANGAR_AGENTS_CONTROLLER_VCS_PROVIDERS_ENABLED"] == "false"


def test_secret_writes_only_for_vcs_tokens(helm_bin: Path, defaults: Rendered) -> None:
    """Minted GitHub App tokens go into a run-owned Secret: create/patch with VCS providers on, never delete,
    and no Secret writes at all when VCS providers are off."""
    rules = defaults.get("Role", "agents")["rules"]
    assert allowed(rules, "", "secrets", "create") and allowed(rules, "", "secrets", "patch")
    assert not allowed(rules, "", "secrets", "delete") and not allowed(rules, "", "secrets", "update")
    off = render(helm_bin, {"controller": {"vcsProviders": {"enabled": False}}}).get("Role", "agents")[
        "rules"
    ]
    assert allowed(off, "", "secrets", "get")
    assert not allowed(off, "", "secrets", "create") and not allowed(off, "", "secrets", "patch")


def test_zero_values_reach_env(helm_bin: Path) -> None:
    """Reference quirk 17: 0 was replaced by the fallback."""
    values = {
        "controller": {
            "queue": {"perNamespace": 0, "perRepo": 0, "cluster": 0},
            "rate": {"perNamespace": 0, "perRepo": 0, "cluster": 0},
            "webhook": {"retry": {"baseDelaySeconds": 0, "maxDelaySeconds": 0}},
            "agentRunRetentionSeconds": 0,
            "jobTtlSecondsAfterFinished": 0,
            "logRetentionSeconds": 0,
        }
    }
    env = render(helm_bin, values).env()
    for suffix in (
        "QUEUE_NAMESPACE",
        "QUEUE_REPO",
        "QUEUE_CLUSTER",
        "RATE_NAMESPACE",
        "RATE_REPO",
        "RATE_CLUSTER",
        "WEBHOOK_RETRY_BASE_DELAY_SECONDS",
        "WEBHOOK_RETRY_MAX_DELAY_SECONDS",
        "AGENTRUN_RETENTION_SECONDS",
    ):
        assert env[f"JANGAR_AGENTS_CONTROLLER_{suffix}"] == "0", suffix
    assert env["JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS"] == "0"
    assert env["JANGAR_AGENT_RUNNER_LOG_RETENTION_SECONDS"] == "0"


def test_job_ttl_alias(helm_bin: Path) -> None:
    env = render(helm_bin, {"controller": {"jobTtlSecondsAfterFinished": 1200}}).env()
    assert env["JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS"] == "1200"
    env = render(helm_bin, {"controller": {"jobTtlSeconds": 300, "jobTtlSecondsAfterFinished": 1200}}).env()
    assert env["JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS"] == "300"


def test_controller_tuning_env(helm_bin: Path) -> None:
    values = {
        "controller": {
            "concurrency": {"perNamespace": 3, "perAgent": 2, "cluster": 9},
            "repoConcurrency": {"enabled": True, "default": 2, "overrides": {"proompteng/lab": 1}},
            "admissionPolicy": {
                "labels": {"required": ["team"], "allowed": ["team", "env"], "denied": ["bad"]},
                "images": {"allowed": ["ghcr.io/*"], "denied": ["docker.io/*"]},
                "secrets": {"blocked": ["root-creds"]},
            },
            "vcsProviders": {
                "deprecatedTokenTypes": {"github": ["pat", "fine_grained"]},
                "prRateLimits": {"github": {"windowSeconds": 60, "maxRequests": 5, "backoffSeconds": 30}},
            },
            "defaultWorkload": {
                "nodeSelector": {"pool": "agents"},
                "tolerations": [{"key": "agents", "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {}},
                "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
                ],
                "podSecurityContext": {"runAsNonRoot": True},
                "imagePullSecrets": ["reg-a"],
                "priorityClassName": "agents-low",
                "schedulerName": "batch",
                "serviceAccountName": "runner-x",
            },
        },
        "runner": {"image": {"pullSecrets": ["reg-b", "reg-a"]}},
        "workflowRuntime": {
            "native": {
                "rerunOrchestration": "rerun",
                "rerunOrchestrationNamespace": "jobs",
                "systemImprovementOrchestration": "improve",
                "systemImprovementOrchestrationNamespace": "jobs",
            }
        },
        "runtime": {"agentImage": "a:1", "scheduleRunnerImage": "s:1", "scheduleServiceAccount": "sched"},
        "kubernetesApi": {"host": "10.0.0.1", "port": "6443"},
        "logging": {"level": "debug"},
    }
    env = render(helm_bin, values).env()
    p = "JANGAR_AGENTS_CONTROLLER_"
    assert env[p + "CONCURRENCY_NAMESPACE"] == "3"
    assert env[p + "CONCURRENCY_AGENT"] == "2"
    assert env[p + "CONCURRENCY_CLUSTER"] == "9"
    assert env[p + "REPO_CONCURRENCY_ENABLED"] == "true"
    assert env[p + "REPO_CONCURRENCY_DEFAULT"] == "2"
    assert json.loads(env[p + "REPO_CONCURRENCY_OVERRIDES"]) == {"proompteng/lab": 1}
    assert json.loads(env[p + "LABELS_REQUIRED"]) == ["team"]
    assert json.loads(env[p + "LABELS_ALLOWED"]) == ["team", "env"]
    assert json.loads(env[p + "LABELS_DENIED"]) == ["bad"]
    assert json.loads(env[p + "IMAGES_ALLOWED"]) == ["ghcr.io/*"]
    assert json.loads(env[p + "IMAGES_DENIED"]) == ["docker.io/*"]
    assert json.loads(env[p + "BLOCKED_SECRETS"]) == ["root-creds"]
    assert json.loads(env[p + "VCS_DEPRECATED_TOKEN_TYPES"]) == {"github": ["pat", "fine_grained"]}
    assert json.loads(env[p + "VCS_PR_RATE_LIMITS"]) == {
        "github": {"windowSeconds": 60, "maxRequests": 5, "backoffSeconds": 30}
    }
    r = "JANGAR_AGENT_RUNNER_"
    assert json.loads(env[r + "NODE_SELECTOR"]) == {"pool": "agents"}
    assert json.loads(env[r + "TOLERATIONS"])[0]["key"] == "agents"
    assert json.loads(env[r + "AFFINITY"]) == {"nodeAffinity": {}}
    assert json.loads(env[r + "TOPOLOGY_SPREAD_CONSTRAINTS"])[0]["maxSkew"] == 1
    assert json.loads(env[r + "POD_SECURITY_CONTEXT"]) == {"runAsNonRoot": True}
    assert json.loads(env[r + "IMAGE_PULL_SECRETS"]) == ["reg-a", "reg-b"]
    assert env[r + "PRIORITY_CLASS"] == "agents-low"
    assert env[r + "SCHEDULER_NAME"] == "batch"
    assert env[r + "SERVICE_ACCOUNT"] == "runner-x"
    assert env["JANGAR_CODEX_RERUN_ORCHESTRATION"] == "rerun"
    assert env["JANGAR_CODEX_RERUN_ORCHESTRATION_NAMESPACE"] == "jobs"
    assert env["JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION"] == "improve"
    assert env["JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION_NAMESPACE"] == "jobs"
    assert env["JANGAR_AGENT_IMAGE"] == "a:1"
    assert env["JANGAR_SCHEDULE_RUNNER_IMAGE"] == "s:1"
    assert env["JANGAR_SCHEDULE_SERVICE_ACCOUNT"] == "sched"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"
    assert env["JANGAR_LOG_LEVEL"] == "debug"


def test_controllers_disabled_individually(helm_bin: Path) -> None:
    values = {
        "controller": {"enabled": False},
        "orchestrationController": {"enabled": False},
        "supportingController": {"enabled": False},
    }
    env = render(helm_bin, values).env()
    assert env["JANGAR_AGENTS_CONTROLLER_ENABLED"] == "0"
    assert env["JANGAR_ORCHESTRATION_CONTROLLER_ENABLED"] == "0"
    assert env["JANGAR_SUPPORTING_CONTROLLER_ENABLED"] == "0"
    # The namespaces and admission settings stay: the API side of the process reads them.
    assert env["JANGAR_AGENTS_CONTROLLER_NAMESPACES"] == "agents"
    assert env["JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES"] == "agents"
    assert env["JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE"] == "200"


# --- images and env precedence -------------------------------------------------------------------


def test_image_digest_and_overrides(helm_bin: Path) -> None:
    digest = "sha256:" + "a" * 64
    r = render(
        helm_bin,
        {
            "image": {"repository": "reg/jangar", "tag": "1.2.3", "digest": digest, "pullSecrets": ["cred"]},
            "controlPlane": {"image": {"tag": "9.9.9", "pullPolicy": "Always"}},
        },
    )
    c = r.container()
    assert c["image"] == f"reg/jangar:9.9.9@{digest}"
    assert c["imagePullPolicy"] == "Always"
    assert r.env()["JANGAR_IMAGE"] == c["image"]
    pod = r.get("Deployment", "agents")["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "cred"}]


def test_runner_image_precedence(helm_bin: Path) -> None:
    """Reference Q4/8.1.4: runtime.agentRunnerImage used to be shadowed by a duplicate entry."""
    r = render(helm_bin, {"runtime": {"agentRunnerImage": "custom/runner:1"}})
    names = [e["name"] for e in r.env_list()]
    assert names.count("JANGAR_AGENT_RUNNER_IMAGE") == 1
    assert r.env()["JANGAR_AGENT_RUNNER_IMAGE"] == "custom/runner:1"
    digest = "sha256:" + "b" * 64
    r = render(helm_bin, {"runner": {"image": {"repository": "r/run", "tag": "7", "digest": digest}}})
    assert r.env()["JANGAR_AGENT_RUNNER_IMAGE"] == f"r/run:7@{digest}"


def test_user_env_overrides_without_duplicates(helm_bin: Path) -> None:
    values = {
        "env": {
            "vars": {"JANGAR_GRPC_PORT": "6000", "JANGAR_AGENT_RUNNER_IMAGE": "x/y:z", "FOO": "bar"},
            "extra": [{"name": "EXTRA", "value": "1"}],
            "secrets": [{"name": "OPENAI_API_KEY", "secretName": "openai"}],
            "config": [{"name": "FEATURES", "configMapName": "flags"}],
        },
        "controlPlane": {"env": {"vars": {"FOO": "control-plane-wins"}}},
        "envFromSecretRefs": ["bulk-secret"],
        "envFromConfigMapRefs": ["bulk-config"],
    }
    r = render(helm_bin, values)
    names = [e["name"] for e in r.env_list()]
    assert len(names) == len(set(names)), names
    env = r.env()
    assert env["JANGAR_GRPC_PORT"] == "6000"
    assert env["JANGAR_AGENT_RUNNER_IMAGE"] == "x/y:z"
    assert env["FOO"] == "control-plane-wins"  # reference Q2 inverted this
    assert env["EXTRA"] == "1"
    assert env["OPENAI_API_KEY"] == {"secretKeyRef": {"name": "openai", "key": "value"}}
    assert env["FEATURES"] == {"configMapKeyRef": {"name": "flags", "key": "FEATURES"}}
    assert r.container()["envFrom"] == [
        {"secretRef": {"name": "bulk-secret"}},
        {"configMapRef": {"name": "bulk-config"}},
    ]


# --- gRPC ----------------------------------------------------------------------------------------


def test_grpc_on_with_token_secret(helm_bin: Path) -> None:
    r = render(helm_bin, {"grpc": {"port": 6001, "servicePort": 7001, "tokenSecret": {"name": "grpc-tok"}}})
    svc = r.get("Service", "agents-grpc")
    assert svc["spec"]["ports"][0]["port"] == 7001 and svc["spec"]["ports"][0]["targetPort"] == "grpc"
    assert svc["spec"]["type"] == "ClusterIP"
    assert {"name": "grpc", "containerPort": 6001, "protocol": "TCP"} in r.container()["ports"]
    env = r.env()
    assert env["JANGAR_GRPC_PORT"] == "6001"
    assert env["JANGAR_GRPC_TOKEN"] == {"secretKeyRef": {"name": "grpc-tok", "key": "token"}}


def test_grpc_plain_token(helm_bin: Path) -> None:
    assert render(helm_bin, {"grpc": {"token": "s3cret"}}).env()["JANGAR_GRPC_TOKEN"] == "s3cret"


def test_grpc_off(helm_bin: Path) -> None:
    r = render(helm_bin, {"grpc": {"enabled": False}})
    assert not r.has("Service", "agents-grpc")
    assert [p["name"] for p in r.container()["ports"]] == ["http"]
    env = r.env()
    assert env["JANGAR_GRPC_ENABLED"] == "false"
    assert "JANGAR_GRPC_PORT" not in env and "JANGAR_GRPC_HOST" not in env


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_off(helm_bin: Path) -> None:
    """Reference 8.1.2: metrics.enabled=false still said "true" in the env."""
    r = render(helm_bin, {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}})
    assert not r.has("Service", "agents-metrics")
    assert not r.all("ServiceMonitor")
    assert not r.has("ConfigMap", "agents-dashboard")
    assert r.env()["JANGAR_PROMETHEUS_METRICS_ENABLED"] == "false"


def test_metrics_service_and_dashboard_toggles(helm_bin: Path) -> None:
    r = render(helm_bin, {"metrics": {"service": {"enabled": False}, "dashboards": {"enabled": False}}})
    assert not r.has("Service", "agents-metrics")
    assert not r.has("ConfigMap", "agents-dashboard")
    assert r.env()["JANGAR_PROMETHEUS_METRICS_ENABLED"] == "true"


def test_service_monitor(helm_bin: Path) -> None:
    values = {
        "metrics": {
            "path": "/prom",
            "serviceMonitor": {
                "enabled": True,
                "namespace": "monitoring",
                "interval": "15s",
                "scrapeTimeout": "5s",
                "honorLabels": True,
                "labels": {"release": "kps"},
                "relabelings": [{"action": "labeldrop", "regex": "pod"}],
                "metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"], "regex": "go_.*"}],
            },
        }
    }
    r = render(helm_bin, values)
    sm = r.get("ServiceMonitor", "agents")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["namespace"] == "monitoring"
    assert sm["metadata"]["labels"]["release"] == "kps"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["agents"]}
    endpoint = sm["spec"]["endpoints"][0]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/prom"
    assert (
        endpoint["interval"] == "15s"
        and endpoint["scrapeTimeout"] == "5s"
        and endpoint["honorLabels"] is True
    )
    assert endpoint["relabelings"] and endpoint["metricRelabelings"]
    metrics_svc = r.get("Service", "agents-metrics")
    labels = metrics_svc["metadata"]["labels"]
    for key, value in sm["spec"]["selector"]["matchLabels"].items():
        assert labels[key] == value
    assert metrics_svc["spec"]["ports"][0] == {
        "name": "metrics",
        "port": 9090,
        "targetPort": "http",
        "protocol": "TCP",
    }
    assert r.env()["JANGAR_PROMETHEUS_METRICS_PATH"] == "/prom"


# --- split controllers ---------------------------------------------------------------------------


def test_split_controllers(helm_bin: Path) -> None:
    values = {
        "controllers": {
            "enabled": True,
            "replicaCount": 2,
            "image": {"repository": "reg/ctl", "tag": "2"},
            "resources": {"requests": {"cpu": "50m"}},
            "env": {"vars": {"JANGAR_MIGRATIONS": "auto"}},
        },
        "agentComms": {"enabled": True},
        "metrics": {"serviceMonitor": {"enabled": True}},
    }
    r = render(helm_bin, values)
    main_env = r.env("agents")
    for key in (
        "JANGAR_AGENTS_CONTROLLER_ENABLED",
        "JANGAR_ORCHESTRATION_CONTROLLER_ENABLED",
        "JANGAR_SUPPORTING_CONTROLLER_ENABLED",
        "JANGAR_PRIMITIVES_RECONCILER",
    ):
        assert main_env[key] == "0", key
    assert main_env["JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED"] == "true"
    assert main_env["JANGAR_LEADER_ELECTION_ENABLED"] == "false"
    assert "JANGAR_LEADER_ELECTION_LEASE_NAME" not in main_env
    # The API-only Deployment still knows the watched namespaces and the admission limits (REST side).
    assert main_env["JANGAR_AGENTS_CONTROLLER_NAMESPACES"] == "agents"
    assert main_env["JANGAR_AGENTS_CONTROLLER_RATE_CLUSTER"] == "600"
    assert main_env["JANGAR_GRPC_ENABLED"] == "true"

    ctl = r.get("Deployment", "agents-controllers")
    assert ctl["spec"]["replicas"] == 2
    labels = ctl["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "agents-controllers"
    assert ctl["metadata"]["labels"]["app.kubernetes.io/name"] == "agents-controllers"
    c = r.container("agents-controllers")
    assert c["image"] == "reg/ctl:2"
    assert c["resources"] == {"requests": {"cpu": "50m"}}
    assert [p["name"] for p in c["ports"]] == ["http"]
    ctl_env = r.env("agents-controllers")
    assert ctl_env["JANGAR_AGENTS_CONTROLLER_ENABLED"] == "1"
    assert ctl_env["JANGAR_ORCHESTRATION_CONTROLLER_ENABLED"] == "1"
    assert ctl_env["JANGAR_SUPPORTING_CONTROLLER_ENABLED"] == "1"
    assert ctl_env["JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED"] == "false"
    assert ctl_env["NATS_URL"] == "nats://nats.nats.svc.cluster.local:4222"
    assert ctl_env["JANGAR_GRPC_ENABLED"] == "false"
    assert "JANGAR_GRPC_PORT" not in ctl_env
    assert ctl_env["JANGAR_CONTROL_PLANE_CACHE_ENABLED"] == "0"
    assert ctl_env["JANGAR_LEADER_ELECTION_ENABLED"] == "true"
    # controllers.env.vars wins over the forced "skip" (reference Q2 made this impossible).
    assert ctl_env["JANGAR_MIGRATIONS"] == "auto"
    assert ctl_env["JANGAR_AGENTS_CONTROLLER_AGENTRUN_RETENTION_SECONDS"] == "2592000"
    assert ctl_env["JANGAR_AGENT_RUNNER_LOG_RETENTION_SECONDS"] == "604800"
    # The controllers pods are scraped too (reference 8.2.21).
    ctl_metrics = r.get("Service", "agents-controllers-metrics")
    assert ctl_metrics["spec"]["selector"] == ctl["spec"]["selector"]["matchLabels"]
    sm = r.get("ServiceMonitor", "agents")
    for key, value in sm["spec"]["selector"]["matchLabels"].items():
        assert ctl_metrics["metadata"]["labels"][key] == value
    # The main Service never selects controllers pods.
    main_svc = r.get("Service", "agents")
    assert main_svc["spec"]["selector"]["app.kubernetes.io/name"] == "agents"


def test_split_controllers_skip_migrations_by_default(helm_bin: Path) -> None:
    r = render(helm_bin, {"controllers": {"enabled": True}})
    assert r.env("agents-controllers")["JANGAR_MIGRATIONS"] == "skip"
    assert r.env("agents")["JANGAR_MIGRATIONS"] == "auto"


# --- PDB / NetworkPolicy / HPA -------------------------------------------------------------------


def test_pdb(helm_bin: Path) -> None:
    r = render(helm_bin, {"podDisruptionBudget": {"enabled": True}})
    spec = r.get("PodDisruptionBudget", "agents")["spec"]
    assert spec == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": {"app.kubernetes.io/name": "agents", "app.kubernetes.io/instance": "agents"}
        },
    }
    spec = render(helm_bin, {"podDisruptionBudget": {"enabled": True, "minAvailable": "50%"}}).get(
        "PodDisruptionBudget", "agents"
    )["spec"]
    assert spec["minAvailable"] == "50%" and "maxUnavailable" not in spec
    assert not render(helm_bin).all("PodDisruptionBudget")


def test_network_policy_default_allows_served_ports(helm_bin: Path) -> None:
    r = render(helm_bin, {"networkPolicy": {"enabled": True}})
    spec = r.get("NetworkPolicy", "agents")["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    ports = {p["port"] for p in spec["ingress"][0]["ports"]}
    assert ports == {"http", "grpc"}
    assert "egress" not in spec
    names = next(e for e in spec["podSelector"]["matchExpressions"] if e["key"] == "app.kubernetes.io/name")
    assert set(names["values"]) == {"agents", "agents-controllers"}


def test_network_policy_custom_rules(helm_bin: Path) -> None:
    ingress = [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}]
    egress = [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]
    spec = render(helm_bin, {"networkPolicy": {"enabled": True, "ingress": ingress, "egress": egress}}).get(
        "NetworkPolicy", "agents"
    )["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == ingress and spec["egress"] == egress


def test_hpa(helm_bin: Path) -> None:
    values = {
        "autoscaling": {
            "enabled": True,
            "minReplicas": 2,
            "maxReplicas": 5,
            "targetMemoryUtilizationPercentage": 70,
        }
    }
    r = render(helm_bin, values)
    hpa = r.get("HorizontalPodAutoscaler", "agents")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "agents"}
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 5
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu", "memory"]
    assert "replicas" not in r.get("Deployment", "agents")["spec"]
    hpa = render(helm_bin, {"autoscaling": {"enabled": True}}).get("HorizontalPodAutoscaler", "agents")
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


def test_replicas_and_control_plane_overrides(helm_bin: Path) -> None:
    r = render(helm_bin, {"replicaCount": 2})
    assert r.get("Deployment", "agents")["spec"]["replicas"] == 2
    r = render(
        helm_bin,
        {"replicaCount": 2, "controlPlane": {"replicaCount": 3, "resources": {"limits": {"memory": "1Gi"}}}},
    )
    assert r.get("Deployment", "agents")["spec"]["replicas"] == 3
    assert r.container()["resources"] == {"limits": {"memory": "1Gi"}}


# --- database ------------------------------------------------------------------------------------

DB_URL = "postgresql://u:p@db:5432/agents?sslmode=disable"


def test_database_inline_url(helm_bin: Path) -> None:
    r = render(helm_bin, {"database": {"url": DB_URL}})
    assert r.env()["DATABASE_URL"] == DB_URL
    assert not r.all("Secret")


def test_database_secret_ref(helm_bin: Path) -> None:
    r = render(helm_bin, {"database": {"secretRef": {"name": "pg-app", "key": "uri"}}})
    assert r.env()["DATABASE_URL"] == {"secretKeyRef": {"name": "pg-app", "key": "uri"}}
    assert not r.all("Secret")


def test_database_created_secret_is_used(helm_bin: Path) -> None:
    """Reference 8.1.1: the created Secret was never referenced and the URL leaked into plain env."""
    r = render(
        helm_bin, {"database": {"url": DB_URL, "createSecret": {"enabled": True, "annotations": {"a": "b"}}}}
    )
    secret = r.get("Secret", "agents-db")
    assert base64.b64decode(secret["data"]["url"]).decode() == DB_URL
    assert secret["metadata"]["annotations"] == {"a": "b"}
    env = r.env()
    assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "agents-db", "key": "url"}}
    assert DB_URL not in json.dumps(r.get("Deployment", "agents"))
    r = render(helm_bin, {"database": {"url": DB_URL, "createSecret": {"enabled": True, "name": "mine"}}})
    assert r.has("Secret", "mine")
    assert r.env()["DATABASE_URL"] == {"secretKeyRef": {"name": "mine", "key": "url"}}


def test_database_ca_secret(helm_bin: Path) -> None:
    r = render(helm_bin, {"database": {"secretRef": {"name": "pg"}, "caSecret": {"name": "pg-ca"}}})
    assert r.env()["PGSSLROOTCERT"] == "/etc/jangar/ca/ca.crt"
    assert {"name": "db-ca-cert", "mountPath": "/etc/jangar/ca", "readOnly": True} in r.container()[
        "volumeMounts"
    ]
    volumes = r.get("Deployment", "agents")["spec"]["template"]["spec"]["volumes"]
    ca = next(v for v in volumes if v["name"] == "db-ca-cert")
    assert ca["secret"] == {"secretName": "pg-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}


# --- Codex auth secret ---------------------------------------------------------------------------


def test_auth_secret(helm_bin: Path) -> None:
    values = {
        "controller": {
            "authSecret": {"name": "codex-auth", "key": "creds.json", "mountPath": "/home/codex/.codex"}
        }
    }
    r = render(helm_bin, values)
    env = r.env()
    assert env["JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME"] == "codex-auth"
    assert env["JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_KEY"] == "creds.json"
    assert env["JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_MOUNT_PATH"] == "/home/codex/.codex"
    assert env["CODEX_HOME"] == "/home/codex/.codex"
    assert env["CODEX_AUTH"] == "/home/codex/.codex/auth.json"
    pod = r.get("Deployment", "agents")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["codex-home"] == {"name": "codex-home", "emptyDir": {}}
    assert volumes["codex-auth"]["secret"] == {
        "secretName": "codex-auth",
        "items": [{"key": "creds.json", "path": "auth.json"}],
    }
    mounts = {m["name"]: m for m in r.container()["volumeMounts"]}
    assert mounts["codex-home"]["mountPath"] == "/home/codex/.codex"
    assert "readOnly" not in mounts["codex-home"]
    assert mounts["codex-auth"] == {
        "name": "codex-auth",
        "mountPath": "/home/codex/.codex/auth.json",
        "subPath": "auth.json",
        "readOnly": True,
    }
    # Default key and mount path.
    env = render(helm_bin, {"controller": {"authSecret": {"name": "codex-auth"}}}).env()
    assert env["JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_KEY"] == "auth.json"
    assert env["JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_MOUNT_PATH"] == "/root/.codex"


# --- service accounts ----------------------------------------------------------------------------


def test_runner_service_account_and_rbac(helm_bin: Path) -> None:
    values = {
        "runnerServiceAccount": {
            "create": True,
            "annotations": {"team": "agents"},
            "rbac": {
                "create": True,
                "extraRules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
            },
        },
        "controller": {"namespaces": ["team-a"]},
    }
    r = render(helm_bin, values)
    sas = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in r.all("ServiceAccount")}
    assert ("agents", "agents-runner") in sas and ("team-a", "agents-runner") in sas
    role = r.get("Role", "agents-runner", namespace="team-a")
    assert allowed(role["rules"], "", "pods/log", "get")
    assert allowed(role["rules"], "", "secrets", "get")
    binding = r.get("RoleBinding", "agents-runner", namespace="team-a")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "agents-runner", "namespace": "team-a"}]
    assert r.env()["JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT"] == "agents-runner"
    env = render(helm_bin, {"runnerServiceAccount": {"create": True, "setAsDefault": False}}).env()
    assert "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT" not in env


def test_runner_rbac_cluster_scoped(helm_bin: Path) -> None:
    values = {
        "rbac": {"clusterScoped": True},
        "controller": {"namespaces": ["*"]},
        "runnerServiceAccount": {"create": True, "rbac": {"create": True}},
    }
    r = render(helm_bin, values)
    binding = r.get("ClusterRoleBinding", "agents-agents-runner")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "agents-runner", "namespace": "agents"}]


def test_service_account_names(helm_bin: Path) -> None:
    r = render(helm_bin, {"serviceAccount": {"name": "ctl", "annotations": {"iam": "role"}}})
    sa = r.get("ServiceAccount", "ctl")
    assert sa["metadata"]["annotations"] == {"iam": "role"}
    assert r.get("Deployment", "agents")["spec"]["template"]["spec"]["serviceAccountName"] == "ctl"
    r = render(helm_bin, {"serviceAccount": {"create": False}})
    assert not r.all("ServiceAccount")
    assert r.get("Deployment", "agents")["spec"]["template"]["spec"]["serviceAccountName"] == "default"


# --- naming --------------------------------------------------------------------------------------


def test_fullname_and_namespace_override(helm_bin: Path) -> None:
    r = render(helm_bin, {"namespaceOverride": "elsewhere"}, release="prod", namespace="default")
    assert r.has("Deployment", "prod-agents")
    for doc in r.docs:
        if doc["kind"] not in {"ClusterRole", "ClusterRoleBinding"}:
            assert doc["metadata"]["namespace"] == "elsewhere"
    assert r.env("prod-agents")["JANGAR_AGENTS_CONTROLLER_NAMESPACES"] == "elsewhere"
    r = render(helm_bin, {"fullnameOverride": "jangar"}, release="x")
    assert r.has("Deployment", "jangar") and r.has("Service", "jangar-grpc")


# --- optional objects ----------------------------------------------------------------------------


def test_version_control_provider(helm_bin: Path) -> None:
    """Reference 8.2.23: the default auth.app/auth.ssh maps rendered refs without the required name."""
    r = render(
        helm_bin,
        {
            "versionControlProvider": {
                "enabled": True,
                "auth": {"token": {"secretRef": {"name": "gh-token"}, "type": "fine_grained"}},
                "defaults": {"branchConflictSuffixTemplate": "-{{agentRun.name}}"},
            }
        },
    )
    vcp = r.get("VersionControlProvider", "github")
    spec = vcp["spec"]
    assert spec["provider"] == "github"
    assert spec["auth"] == {
        "method": "token",
        "token": {"secretRef": {"name": "gh-token", "key": "token"}, "type": "fine_grained"},
    }
    assert spec["defaults"]["branchTemplate"] == "codex/{{issueNumber}}"
    assert spec["defaults"]["branchConflictSuffixTemplate"] == "-{{agentRun.name}}"
    r = render(
        helm_bin,
        {
            "versionControlProvider": {
                "enabled": True,
                "auth": {
                    "method": "app",
                    "app": {
                        "appId": 12345,
                        "installationId": "67",
                        "tokenTtlSeconds": 3600,
                        "privateKeySecretRef": {"name": "app-key"},
                    },
                },
            }
        },
    )
    app = r.get("VersionControlProvider", "github")["spec"]["auth"]["app"]
    assert app == {
        "appId": "12345",
        "installationId": "67",
        "tokenTtlSeconds": 3600,
        "privateKeySecretRef": {"name": "app-key", "key": "privateKey"},
    }


def test_quota_limitrange_namespace(helm_bin: Path) -> None:
    r = render(
        helm_bin,
        {
            "resourceQuota": {"enabled": True, "hard": {"pods": "50"}},
            "limitRange": {"enabled": True, "limits": [{"type": "Container", "default": {"cpu": "500m"}}]},
            "podSecurityAdmission": {
                "enabled": True,
                "createNamespace": True,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        },
    )
    assert r.get("ResourceQuota", "agents")["spec"] == {"hard": {"pods": "50"}}
    assert r.get("LimitRange", "agents")["spec"]["limits"][0]["type"] == "Container"
    ns = r.get("Namespace", "agents")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_argocd_hooks(helm_bin: Path) -> None:
    run = {
        "apiVersion": "agents.proompteng.ai/v1alpha1",
        "kind": "AgentRun",
        "metadata": {"name": "smoke"},
        "spec": {"agentRef": {"name": "a"}},
    }
    r = render(helm_bin, {"argocdHooks": {"enabled": True, "smoke": {"agentRun": run}}})
    cleanup = r.get("Job", "agents-smoke-cleanup")
    assert cleanup["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    smoke = r.get("Job", "agents-smoke-run")
    script = smoke["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "kubectl -n agents wait --for=condition=Succeeded agentruns.agents.proompteng.ai/smoke" in script
    assert "agents.proompteng.ai/agent-run=smoke" in script


def test_extra_volumes_and_scheduling(helm_bin: Path) -> None:
    r = render(
        helm_bin,
        {
            "extraVolumes": [{"name": "cache", "volume": {"emptyDir": {}}}],
            "extraVolumeMounts": [{"name": "cache", "mountPath": "/cache", "readOnly": True}],
            "nodeSelector": {"pool": "ctl"},
            "tolerations": [{"key": "ctl", "operator": "Exists"}],
            "podAnnotations": {"a": "b"},
            "podLabels": {"team": "x"},
        },
    )
    pod = r.get("Deployment", "agents")["spec"]["template"]
    assert {"name": "cache", "emptyDir": {}} in pod["spec"]["volumes"]
    assert {"name": "cache", "mountPath": "/cache", "readOnly": True} in r.container()["volumeMounts"]
    assert pod["spec"]["nodeSelector"] == {"pool": "ctl"}
    assert pod["metadata"]["annotations"] == {"a": "b"}
    assert pod["metadata"]["labels"]["team"] == "x"


def test_probes_toggle(helm_bin: Path) -> None:
    c = render(
        helm_bin, {"livenessProbe": {"enabled": False}, "readinessProbe": {"enabled": False}}
    ).container()
    assert "livenessProbe" not in c and "readinessProbe" not in c


def test_tests_toggle(helm_bin: Path) -> None:
    assert not render(helm_bin, {"tests": {"enabled": False}}).all("Pod")


def test_variant_files_render(helm_bin: Path) -> None:
    local = render(helm_bin, files=["values-local.yaml"])
    assert local.env()["DATABASE_URL"].startswith("postgresql://agents:agents@agents-postgres.agents.svc")
    kind = render(helm_bin, files=["values-kind.yaml"])
    assert kind.container()["image"] == "jangar-local:kind"
    assert kind.env()["DATABASE_URL"] == {"secretKeyRef": {"name": "jangar-db-app", "key": "uri"}}
    prod = render(helm_bin, files=["values-prod.yaml"])
    assert "@sha256:" in prod.container()["image"]
    assert "@sha256:" in prod.env()["JANGAR_AGENT_RUNNER_IMAGE"]
    assert prod.get("Deployment", "agents")["spec"]["replicas"] == 2
    assert prod.env()["JANGAR_LEADER_ELECTION_ENABLED"] == "true"
    assert prod.has("PodDisruptionBudget", "agents") and prod.has("NetworkPolicy", "agents")
    assert prod.env()["NATS_USER"] == {"secretKeyRef": {"name": "nats-agents-credentials", "key": "username"}}
    dev = render(helm_bin, files=["values-dev.yaml"])
    assert dev.env()["JANGAR_LOG_LEVEL"] == "debug"


SEED_README_PRODUCTION_VALUES = """
image:
  repository: ghcr.io/proompteng/jangar
  tag: 0.9.0

database:
  secretRef:
    name: jangar-postgres
    key: url

controller:
  namespaces:
    - agents
  vcsProviders:
    enabled: true
    deprecatedTokenTypes:
      github:
        - pat

rbac:
  clusterScoped: false

grpc:
  enabled: true

podDisruptionBudget:
  enabled: true

networkPolicy:
  enabled: true
"""


def test_seed_readme_production_values(helm_bin: Path) -> None:
    """The values block the README promises, verbatim."""
    import yaml

    r = render(helm_bin, yaml.safe_load(SEED_README_PRODUCTION_VALUES))
    assert r.container()["image"] == "ghcr.io/proompteng/jangar:0.9.0"
    assert r.env()["DATABASE_URL"] == {"secretKeyRef": {"name": "jangar-postgres", "key": "url"}}
    assert r.get("PodDisruptionBudget", "agents")["spec"]["maxUnavailable"] == 1
    policy = r.get("NetworkPolicy", "agents")["spec"]
    assert policy["policyTypes"] == ["Ingress"]  # egress (DNS, DB, API server) stays open
    assert {p["port"] for p in policy["ingress"][0]["ports"]} == {"http", "grpc"}


_REFERENCE_ENV_TEXT = """
DATABASE_URL PGSSLROOTCERT JANGAR_CODEX_RERUN_ORCHESTRATION JANGAR_CODEX_RERUN_ORCHESTRATION_NAMESPACE
JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION_NAMESPACE JANGAR_AGENT_RUNNER_IMAGE
JANGAR_AGENT_IMAGE JANGAR_SCHEDULE_RUNNER_IMAGE JANGAR_SCHEDULE_SERVICE_ACCOUNT JANGAR_IMAGE
JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS JANGAR_AGENT_RUNNER_LOG_RETENTION_SECONDS JANGAR_SERVICE_ACCOUNT_NAME
JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT JANGAR_AGENT_RUNNER_NODE_SELECTOR JANGAR_AGENT_RUNNER_TOLERATIONS
JANGAR_AGENT_RUNNER_TOPOLOGY_SPREAD_CONSTRAINTS JANGAR_AGENT_RUNNER_AFFINITY JANGAR_AGENT_RUNNER_POD_SECURITY_CONTEXT
JANGAR_AGENT_RUNNER_IMAGE_PULL_SECRETS JANGAR_AGENT_RUNNER_PRIORITY_CLASS JANGAR_AGENT_RUNNER_SCHEDULER_NAME
KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT JANGAR_POD_NAMESPACE JANGAR_PROMETHEUS_METRICS_ENABLED
JANGAR_PROMETHEUS_METRICS_PATH JANGAR_RBAC_CLUSTER_SCOPED JANGAR_PRIMITIVES_NAMESPACES JANGAR_AGENTS_CONTROLLER_ENABLED
JANGAR_AGENTS_CONTROLLER_NAMESPACES JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE JANGAR_AGENTS_CONTROLLER_CONCURRENCY_AGENT
JANGAR_AGENTS_CONTROLLER_CONCURRENCY_CLUSTER JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_ENABLED
JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_DEFAULT JANGAR_AGENTS_CONTROLLER_REPO_CONCURRENCY_OVERRIDES
JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE JANGAR_AGENTS_CONTROLLER_QUEUE_REPO JANGAR_AGENTS_CONTROLLER_QUEUE_CLUSTER
JANGAR_AGENTS_CONTROLLER_RATE_WINDOW_SECONDS JANGAR_AGENTS_CONTROLLER_RATE_NAMESPACE JANGAR_AGENTS_CONTROLLER_RATE_REPO
JANGAR_AGENTS_CONTROLLER_RATE_CLUSTER JANGAR_AGENTS_CONTROLLER_WEBHOOK_QUEUE_SIZE
JANGAR_AGENTS_CONTROLLER_WEBHOOK_RETRY_BASE_DELAY_SECONDS JANGAR_AGENTS_CONTROLLER_WEBHOOK_RETRY_MAX_DELAY_SECONDS
JANGAR_AGENTS_CONTROLLER_WEBHOOK_RETRY_MAX_ATTEMPTS JANGAR_AGENTS_CONTROLLER_AGENTRUN_RETENTION_SECONDS
JANGAR_AGENTS_CONTROLLER_LABELS_REQUIRED JANGAR_AGENTS_CONTROLLER_LABELS_ALLOWED JANGAR_AGENTS_CONTROLLER_LABELS_DENIED
JANGAR_AGENTS_CONTROLLER_IMAGES_ALLOWED JANGAR_AGENTS_CONTROLLER_IMAGES_DENIED JANGAR_AGENTS_CONTROLLER_BLOCKED_SECRETS
JANGAR_AGENTS_CONTROLLER_VCS_PROVIDERS_ENABLED JANGAR_AGENTS_CONTROLLER_VCS_DEPRECATED_TOKEN_TYPES
JANGAR_AGENTS_CONTROLLER_VCS_PR_RATE_LIMITS JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_KEY
JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_MOUNT_PATH JANGAR_ORCHESTRATION_CONTROLLER_ENABLED
JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES JANGAR_SUPPORTING_CONTROLLER_ENABLED JANGAR_SUPPORTING_CONTROLLER_NAMESPACES
JANGAR_GRPC_ENABLED JANGAR_GRPC_HOST JANGAR_GRPC_PORT JANGAR_AGENT_COMMS_SUBSCRIBER_DISABLED NATS_URL NATS_USER
NATS_PASSWORD JANGAR_AGENT_COMMS_SUBJECTS
"""
REFERENCE_ENV = _REFERENCE_ENV_TEXT.split()


def test_every_reference_env_var_can_be_produced(helm_bin: Path) -> None:
    """Chart-0.9.1 section 3.2: every env var of the main Deployment comes out of some values."""
    values = {
        "database": {"secretRef": {"name": "pg"}, "caSecret": {"name": "ca"}},
        "workflowRuntime": {
            "native": {
                "rerunOrchestration": "a",
                "rerunOrchestrationNamespace": "b",
                "systemImprovementOrchestration": "c",
                "systemImprovementOrchestrationNamespace": "d",
            }
        },
        "runtime": {"agentImage": "i:1", "scheduleRunnerImage": "s:1", "scheduleServiceAccount": "sa"},
        "controller": {
            "repoConcurrency": {"overrides": {"a/b": 1}},
            "admissionPolicy": {
                "labels": {"required": ["a"], "allowed": ["a"], "denied": ["b"]},
                "images": {"allowed": ["good/*"], "denied": ["bad/*"]},
                "secrets": {"blocked": ["z"]},
            },
            "vcsProviders": {
                "prRateLimits": {"github": {"windowSeconds": 1, "maxRequests": 1, "backoffSeconds": 0}}
            },
            "authSecret": {"name": "codex"},
            "defaultWorkload": {
                "serviceAccountName": "r",
                "nodeSelector": {"a": "b"},
                "tolerations": [{"key": "k"}],
                "topologySpreadConstraints": [{"maxSkew": 1}],
                "affinity": {"a": {}},
                "podSecurityContext": {"runAsUser": 1},
                "imagePullSecrets": ["p"],
                "priorityClassName": "pc",
                "schedulerName": "sn",
            },
        },
        "kubernetesApi": {"host": "h", "port": "1"},
        "agentComms": {"enabled": True, "subjects": ["s"], "nats": {"user": "u", "password": "p"}},
    }
    names = {e["name"] for e in render(helm_bin, values).env_list()}
    assert set(REFERENCE_ENV) - names == set()
    split = render(helm_bin, {"controllers": {"enabled": True}})
    assert split.env()["JANGAR_PRIMITIVES_RECONCILER"] == "0"
    assert split.env("agents-controllers")["JANGAR_CONTROL_PLANE_CACHE_ENABLED"] == "0"


def test_reference_values_file_is_accepted(helm_bin: Path) -> None:
    """Drop-in: the reference chart's complete default values (what `--reuse-values` carries over from an
    0.9.1 install) pass the schema and render a working control plane."""
    ref = str(Path(__file__).parent / "reference-values-0.9.1.yaml")
    r = render(helm_bin, files=[ref])
    env = r.env()
    assert r.container()["image"] == "ghcr.io/proompteng/jangar:latest"
    assert env["NODE_ENV"] == "production" and env["PORT"] == "8080"
    assert env["JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS"] == "600"
    assert env["JANGAR_AGENTS_CONTROLLER_AGENTRUN_RETENTION_SECONDS"] == "2592000"
    assert r.container()["readinessProbe"]["httpGet"]["path"] == "/health"
    names = [e["name"] for e in r.env_list()]
    assert len(names) == len(set(names))
    # Explicit reference settings keep their meaning: PDB minAvailable 1 when enabled.
    r = render(helm_bin, {"podDisruptionBudget": {"enabled": True}}, files=[ref])
    assert r.get("PodDisruptionBudget", "agents")["spec"]["minAvailable"] == 1

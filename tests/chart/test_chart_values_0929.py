"""issue 13 item 2: the 0.9.29 values keys render where they should, their conflicts and the 0.9.29 add-ons
fail with a sentence, and a 0.9.1 values file renders as before (tests/chart/values/render-0.9.1.yaml)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, Rendered, render, render_error
from tests.chart.test_chart_render import allowed

HERE = Path(__file__).parent
V0929 = str(HERE / "values" / "values-0.9.29.yaml")
V091 = str(HERE / "reference-values-0.9.1.yaml")
GOLDEN_091 = HERE / "values" / "render-0.9.1.yaml"


@pytest.fixture(scope="module")
def r(helm_bin: Path) -> Rendered:
    return render(helm_bin, files=[V0929])


def dep(r: Rendered, name: str = "agents") -> dict[str, Any]:
    return r.get("Deployment", name)


def pod(r: Rendered, name: str = "agents") -> dict[str, Any]:
    spec: dict[str, Any] = dep(r, name)["spec"]["template"]["spec"]
    return spec


def ctr(r: Rendered, name: str = "agents") -> dict[str, Any]:
    return r.container(name)


def env(r: Rendered, name: str = "agents") -> dict[str, Any]:
    return r.env(name)


C = "agents-controllers"
EMPTY_SHA = ""  # helm template: lookup finds nothing

# (values key, what it renders to, expected)
CASES: list[tuple[str, Callable[[Rendered], Any], Any]] = [
    ("controllers.autoscaling", lambda r: r.get("HorizontalPodAutoscaler", C)["spec"]["maxReplicas"], 5),
    (
        "controllers.autoscaling.targetMemoryUtilizationPercentage",
        lambda r: [
            m["resource"]["target"]["averageUtilization"]
            for m in r.get("HorizontalPodAutoscaler", C)["spec"]["metrics"]
        ],
        [70, 75],
    ),
    ("controllers.autoscaling (replicas left to the HPA)", lambda r: "replicas" in dep(r, C)["spec"], False),
    (
        "controllers.podDisruptionBudget",
        lambda r: (
            r.get("PodDisruptionBudget", C)["spec"]["minAvailable"],
            r.get("PodDisruptionBudget", C)["spec"]["selector"],
        ),
        (
            1,
            {
                "matchLabels": {
                    "app.kubernetes.io/name": "agents-controllers",
                    "app.kubernetes.io/instance": "agents",
                }
            },
        ),
    ),
    (
        "controllers.service",
        lambda r: (
            r.get("Service", "agents-controllers-grpc")["spec"]["ports"][0]["port"],
            r.get("Service", "agents-controllers-grpc")["metadata"]["annotations"],
        ),
        (50052, {"svc.example/owner": "controllers"}),
    ),
    (
        "controllers.service (controllers serve gRPC)",
        lambda r: (env(r, C)["JANGAR_GRPC_ENABLED"], [p["name"] for p in ctr(r, C)["ports"]]),
        ("true", ["http", "grpc"]),
    ),
    ("controllers.startupProbe", lambda r: ctr(r, C)["startupProbe"]["failureThreshold"], 60),
    (
        "controllers.livenessProbe (raw)",
        lambda r: ctr(r, C)["livenessProbe"],
        {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 20},
    ),
    (
        "controllers.readinessProbe",
        lambda r: (
            ctr(r, C)["readinessProbe"]["timeoutSeconds"],
            ctr(r, C)["readinessProbe"]["httpGet"]["path"],
        ),
        (4, "/ready"),
    ),
    (
        "controllers.lifecycle",
        lambda r: ctr(r, C)["lifecycle"]["preStop"]["exec"]["command"],
        ["sleep", "10"],
    ),
    ("controllers.terminationGracePeriodSeconds", lambda r: pod(r, C)["terminationGracePeriodSeconds"], 90),
    ("controllers.deploymentStrategy", lambda r: dep(r, C)["spec"]["strategy"], {"type": "Recreate"}),
    ("controlPlane.startupProbe", lambda r: ctr(r)["startupProbe"]["periodSeconds"], 3),
    ("controlPlane.livenessProbe", lambda r: ctr(r)["livenessProbe"]["initialDelaySeconds"], 25),
    ("controlPlane.readinessProbe", lambda r: ctr(r)["readinessProbe"]["httpGet"]["path"], "/health"),
    ("controlPlane.lifecycle", lambda r: ctr(r)["lifecycle"]["preStop"]["exec"]["command"], ["sleep", "5"]),
    ("controlPlane.terminationGracePeriodSeconds", lambda r: pod(r)["terminationGracePeriodSeconds"], 45),
    (
        "startupProbe",
        lambda r: ctr(r)["startupProbe"],
        {
            "httpGet": {"path": "/health", "port": "http"},
            "initialDelaySeconds": 1,
            "periodSeconds": 3,
            "timeoutSeconds": 3,
            "failureThreshold": 40,
        },
    ),
    (
        "deploymentStrategy",
        lambda r: dep(r)["spec"]["strategy"],
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    ),
    (
        "deploymentLifecycle",
        lambda r: [
            (
                d["spec"]["minReadySeconds"],
                d["spec"]["progressDeadlineSeconds"],
                d["spec"]["revisionHistoryLimit"],
            )
            for d in (dep(r), dep(r, C))
        ],
        [(11, 601, 4), (11, 601, 4)],
    ),
    (
        "rolloutChecksums",
        lambda r: {
            k: v
            for k, v in dep(r)["spec"]["template"]["metadata"]["annotations"].items()
            if k.startswith("checksum/")
        },
        {
            "checksum/secret-agents-env": EMPTY_SHA,
            "checksum/secret-agents-db": EMPTY_SHA,
            "checksum/configmap-agents-config": EMPTY_SHA,
        },
    ),
    (
        "rolloutChecksums (controllers pods too)",
        lambda r: sorted(
            k for k in dep(r, C)["spec"]["template"]["metadata"]["annotations"] if k.startswith("checksum/")
        ),
        ["checksum/configmap-agents-config", "checksum/secret-agents-db", "checksum/secret-agents-env"],
    ),
    (
        "envFromSecretRefs / envFromConfigMapRefs {name, optional}",
        lambda r: ctr(r)["envFrom"],
        [
            {"secretRef": {"name": "agents-env"}},
            {"configMapRef": {"name": "agents-config", "optional": True}},
        ],
    ),
    ("imagePolicy.requireDigest (pinned images render)", lambda r: "@sha256:1111" in ctr(r)["image"], True),
    (
        "tests.image.digest",
        lambda r: r.get("Pod", "agents-test-health")["spec"]["containers"][0]["image"].endswith(
            "@sha256:" + "3" * 64
        ),
        True,
    ),
    (
        "tests.resources",
        lambda r: r.get("Pod", "agents-test-health")["spec"]["containers"][0]["resources"],
        {"requests": {"cpu": "10m", "memory": "16Mi"}},
    ),
    (
        "tests.timeoutSeconds",
        lambda r: r.get("Pod", "agents-test-health")["spec"]["activeDeadlineSeconds"],
        120,
    ),
    ("audit.sink.type", lambda r: env(r)["JANGAR_AUDIT_SINK_TYPE"], "http"),
    ("audit.sink.url", lambda r: env(r)["JANGAR_AUDIT_SINK_URL"], "https://audit.example.com/events"),
    (
        "audit.sink.headersSecretRef",
        lambda r: env(r, C)["JANGAR_AUDIT_SINK_HEADERS"],
        {"secretKeyRef": {"name": "audit-headers", "key": "headers.json"}},
    ),
    ("audit.sink.timeoutMs", lambda r: env(r)["JANGAR_AUDIT_SINK_TIMEOUT_MS"], "2500"),
    (
        "cors.allowedOrigins",
        lambda r: env(r)["JANGAR_CORS_ALLOWED_ORIGINS"],
        "https://ui.example.com,http://localhost:3000",
    ),
    ("cors.allowedOrigins (only the HTTP API)", lambda r: "JANGAR_CORS_ALLOWED_ORIGINS" in env(r, C), False),
    (
        "agentRuntime.native.rerunOrchestration",
        lambda r: env(r)["JANGAR_CODEX_RERUN_ORCHESTRATION"],
        "codex-rerun",
    ),
    (
        "agentRuntime.native.systemImprovementOrchestrationNamespace",
        lambda r: env(r, C)["JANGAR_SYSTEM_IMPROVEMENT_ORCHESTRATION_NAMESPACE"],
        "agents",
    ),
    (
        "controller.leaderElection.leaseName",
        lambda r: env(r, C)["JANGAR_LEADER_ELECTION_LEASE_NAME"],
        "agents-controller-leader",
    ),
    (
        "controller.leaderElection.leaseNamespace",
        lambda r: env(r, C)["JANGAR_LEADER_ELECTION_NAMESPACE"],
        "agents",
    ),
    (
        "controller.leaderElection timings",
        lambda r: [
            env(r, C)[f"JANGAR_LEADER_ELECTION_{k}_SECONDS"]
            for k in ("LEASE_DURATION", "RENEW_DEADLINE", "RETRY_PERIOD")
        ],
        ["30", "20", "5"],
    ),
    (
        "controller.agentRunRetentionMaxDeletesPerNamespace",
        lambda r: env(r, C)["JANGAR_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE"],
        "25",
    ),
    (
        "controller.agentRunRetentionZeroTtlMaxSeconds",
        lambda r: env(r, C)["JANGAR_AGENTRUN_RETENTION_ZERO_TTL_MAX_SECONDS"],
        "300",
    ),
    ("controller.agentRunArtifacts.max", lambda r: env(r, C)["JANGAR_ARTIFACTS_MAX_PER_RUN"], "40"),
    ("controller.agentRunArtifacts.strict", lambda r: env(r, C)["JANGAR_AGENTRUN_ARTIFACTS_STRICT"], "true"),
    (
        "controller knobs stay off the API-only Deployment",
        lambda r: "JANGAR_AGENTRUN_ARTIFACTS_STRICT" in env(r),
        False,
    ),
    (
        "controller.runtimeDebrisCleanup.mode",
        lambda r: env(r, C)["JANGAR_RUNTIME_DEBRIS_CLEANUP_MODE"],
        "delete",
    ),
    (
        "controller.runtimeDebrisCleanup.minAgeSeconds",
        lambda r: env(r, C)["JANGAR_RUNTIME_DEBRIS_CLEANUP_MIN_AGE_SECONDS"],
        "900",
    ),
    (
        "controller.runtimeDebrisCleanup.maxDeletesPerNamespace",
        lambda r: env(r, C)["JANGAR_RUNTIME_DEBRIS_CLEANUP_MAX_DELETES_PER_NAMESPACE"],
        "15",
    ),
    (
        "controller.defaultWorkload.resources",
        lambda r: json.loads(env(r, C)["JANGAR_AGENT_RUNNER_RESOURCES"]),
        {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    ),
    (
        "env.vars.AGENTS_MIGRATIONS (replaces the chart default)",
        lambda r: (env(r).get("JANGAR_MIGRATIONS"), env(r)["AGENTS_MIGRATIONS"]),
        (None, "auto"),
    ),
    ("env.vars.AGENTS_MIGRATIONS (controllers still skip)", lambda r: env(r, C)["JANGAR_MIGRATIONS"], "skip"),
    ("env.vars.AGENTS_* accepted", lambda r: env(r)["AGENTS_SOME_FUTURE_FLAG"], "1"),
    (
        "controller.runtimeDebrisCleanup.mode=delete (RBAC pods list/delete)",
        lambda r: all(allowed(r.get("Role", "agents")["rules"], "", "pods", v) for v in ("list", "delete")),
        True,
    ),
]


@pytest.mark.parametrize(("key", "extract", "expected"), CASES, ids=[c[0] for c in CASES])
def test_0929_key_renders(r: Rendered, key: str, extract: Callable[[Rendered], Any], expected: Any) -> None:
    assert extract(r) == expected


def test_0929_file_has_no_literal_secret(r: Rendered) -> None:
    """The audit headers come from a Secret: no env literal carries them."""
    for name in ("agents", C):
        assert "value" not in next(e for e in r.env_list(name) if e["name"] == "JANGAR_AUDIT_SINK_HEADERS")


def test_0929_file_passes_lint_strict(helm_bin: Path) -> None:
    from tests.chart.helm import helm

    proc = helm(helm_bin, "lint", "--strict", str(CHART), "--values", V0929, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


ADDON_MESSAGE = "is a 0.9.29 add-on jangar does not ship; remove the key (see docs/compatibility.md)"


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"agentsShell": {"enabled": True, "image": {"repository": "x"}}}, "agentsShell"),
        ({"linearMcpGateway": {"enabled": True}}, "linearMcpGateway"),
        ({"swarm": {"enabled": True}}, "swarm"),
        ({"ui": {"enabled": True}}, "ui"),
        ({"controlPlane": {"ui": {"enabled": True}}}, "controlPlane.ui"),
    ],
    ids=["agentsShell", "linearMcpGateway", "swarm", "ui", "controlPlane.ui"],
)
def test_addons_refused_when_enabled(helm_bin: Path, values: dict[str, Any], key: str) -> None:
    message = render_error(helm_bin, values)
    assert f"{key} {ADDON_MESSAGE}" in message
    assert "schema" not in message.lower()  # a sentence, not a schema dump


def test_addons_disabled_render(helm_bin: Path) -> None:
    off = {
        k: {"enabled": False, "anything": {"nested": 1}}
        for k in ("agentsShell", "linearMcpGateway", "swarm", "ui")
    }
    rendered = render(helm_bin, {**off, "controlPlane": {"ui": {"enabled": False}}})
    assert rendered.has("Deployment", "agents")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {
                "leaderElection": {"leaseName": "mine"},
                "controller": {"leaderElection": {"leaseName": "theirs"}},
            },
            ["leaderElection.leaseName (mine)", "controller.leaderElection.leaseName (theirs)"],
        ),
        (
            {
                "leaderElection": {"leaseDurationSeconds": 40},
                "controller": {"leaderElection": {"leaseDurationSeconds": 30}},
            },
            [
                "leaderElection.leaseDurationSeconds (40)",
                "controller.leaderElection.leaseDurationSeconds (30)",
            ],
        ),
        (
            {
                "workflowRuntime": {"native": {"rerunOrchestration": "a"}},
                "agentRuntime": {"native": {"rerunOrchestration": "b"}},
            },
            ["workflowRuntime.native.rerunOrchestration (a)", "agentRuntime.native.rerunOrchestration (b)"],
        ),
        (
            {"imagePolicy": {"requireDigest": True}},
            ["imagePolicy.requireDigest=true", "image / controlPlane.image", "runner.image", "tests.image"],
        ),
        (
            {
                "imagePolicy": {"requireDigest": True},
                "controlPlane": {"image": {"digest": "sha256:" + "a" * 64}},
                "runner": {"image": {"digest": "sha256:" + "b" * 64}},
                "tests": {"enabled": False},
                "controllers": {"enabled": True},
            },
            ["not pinned by @sha256: image / controllers.image ("],
        ),
        (
            {
                "rolloutChecksums": {"enabled": True},
                "envFromSecretRefs": ["s1"],
                "envFromConfigMapRefs": [{"name": "c1"}],
                "database": {"secretRef": {"name": "db"}},
            },
            ['Secret "s1"', 'Secret "db"', 'ConfigMap "c1"', "rolloutChecksums.secrets"],
        ),
        (
            {"audit": {"sink": {"headers": {"Authorization": "x"}, "headersSecretRef": {"name": "s"}}}},
            ["audit.sink.headers and audit.sink.headersSecretRef.name"],
        ),
        ({"audit": {"sink": {"type": "http"}}}, ["audit.sink.type=http needs audit.sink.url"]),
        (
            {
                "controllers": {
                    "enabled": True,
                    "autoscaling": {"enabled": True, "minReplicas": 4, "maxReplicas": 2},
                }
            },
            ["controllers.autoscaling.minReplicas (4)"],
        ),
        (
            {"env": {"vars": {"AGENTS_LOG_LEVEL": "debug"}}},
            ["env.vars.AGENTS_LOG_LEVEL would be ignored", "JANGAR_LOG_LEVEL"],
        ),
        (
            {"controlPlane": {"env": {"vars": {"AGENTS_GRPC_PORT": "1"}}}},
            ["controlPlane.env.vars.AGENTS_GRPC_PORT would be ignored"],
        ),
        (
            {"env": {"vars": {"AGENTS_FOO": "1", "JANGAR_FOO": "2"}}},
            ["env.vars.JANGAR_FOO and env.vars.AGENTS_FOO"],
        ),
    ],
    ids=[
        "lease-name-conflict",
        "lease-timing-conflict",
        "native-runtime-conflict",
        "unpinned-images",
        "unpinned-controllers-image",
        "checksums-missing-sources",
        "audit-headers-twice",
        "audit-http-without-url",
        "controllers-hpa-bounds",
        "agents-alias-of-managed-env",
        "agents-alias-of-managed-env-component",
        "agents-and-jangar-twins-differ",
    ],
)
def test_0929_rejections(helm_bin: Path, values: dict[str, Any], expected: list[str]) -> None:
    message = render_error(helm_bin, values)
    assert "agents chart: invalid values" in message, message
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"controller": {"leaderElection": {"leaseNmae": "x"}}}, "leaseNmae"),
        ({"controller": {"runtimeDebrisCleanup": {"mode": "purge"}}}, "mode"),
        ({"controller": {"agentRunArtifacts": {"maximum": 3}}}, "maximum"),
        ({"cors": {"allowOrigins": ["x"]}}, "allowOrigins"),
        ({"imagePolicy": {"requireDigests": True}}, "requireDigests"),
    ],
    ids=["lease-typo", "debris-mode", "artifacts-typo", "cors-typo", "image-policy-typo"],
)
def test_closed_0929_sections_name_typos(helm_bin: Path, values: dict[str, Any], key: str) -> None:
    message = render_error(helm_bin, values)
    assert "schema" in message.lower() and key in message


def test_tolerant_sections_accept_unknown_sub_keys(helm_bin: Path) -> None:
    """The sections whose 0.9.29 sub-key names are guesses (values_schema.TOLERANT) let unknown keys in."""
    rendered = render(
        helm_bin,
        {
            "deploymentLifecycle": {"futureKey": 1},
            "rolloutChecksums": {"futureKey": True},
            "audit": {"futureKey": 1, "sink": {"futureKey": 1}},
            "tests": {"futureKey": 1},
            "controllers": {
                "enabled": True,
                "service": {"futureKey": 1},
                "podDisruptionBudget": {"futureKey": 1},
            },
        },
    )
    assert rendered.has("Deployment", "agents-controllers")


def test_controllers_service_alone_turns_on_their_grpc(helm_bin: Path) -> None:
    """controllers.service.enabled serves gRPC from the controllers even with the main Deployment's off."""
    rendered = render(
        helm_bin,
        {"controllers": {"enabled": True, "service": {"enabled": True}}, "grpc": {"enabled": False}},
    )
    assert rendered.env(C)["JANGAR_GRPC_ENABLED"] == "true"
    assert rendered.env()["JANGAR_GRPC_ENABLED"] == "false"
    assert rendered.has("Service", "agents-controllers-grpc") and not rendered.has("Service", "agents-grpc")
    assert render(helm_bin, {"controllers": {"enabled": True}}).env(C)["JANGAR_GRPC_ENABLED"] == "false"


def test_grpc_manage_env_var_false_leaves_the_grpc_env_to_the_user(helm_bin: Path) -> None:
    values = {"grpc": {"manageEnvVar": False, "token": "t"}, "env": {"vars": {"AGENTS_GRPC_PORT": "50053"}}}
    rendered = render(helm_bin, values)
    env = rendered.env()
    assert not {"JANGAR_GRPC_ENABLED", "JANGAR_GRPC_HOST", "JANGAR_GRPC_PORT"} & set(env)
    assert (env["AGENTS_GRPC_PORT"], env["JANGAR_GRPC_TOKEN"]) == ("50053", "t")
    assert rendered.has("Service", "agents-grpc")
    # managed (the default): the same AGENTS_GRPC_PORT would be ignored, so it is refused
    message = render_error(helm_bin, {"env": {"vars": {"AGENTS_GRPC_PORT": "50053"}}})
    assert "env.vars.AGENTS_GRPC_PORT would be ignored" in message


def test_reserved_env_check_can_be_turned_off(helm_bin: Path) -> None:
    values = {
        "env": {"vars": {"AGENTS_LOG_LEVEL": "debug"}},
        "validation": {"reservedEnvKeysEnforced": False},
    }
    env = render(helm_bin, values).env()
    assert (env["AGENTS_LOG_LEVEL"], env["JANGAR_LOG_LEVEL"]) == ("debug", "info")


def test_top_level_rollout_keys_reach_both_deployments(helm_bin: Path) -> None:
    """lifecycle, terminationGracePeriodSeconds and deploymentStrategy without per-component keys."""
    rendered = render(
        helm_bin,
        {
            "controllers": {"enabled": True},
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "3"]}}},
            "terminationGracePeriodSeconds": 60,
            "deploymentStrategy": {"maxSurge": "25%"},  # no type: RollingUpdate
        },
    )
    for name in ("agents", C):
        assert rendered.container(name)["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "3"]}}}
        assert pod(rendered, name)["terminationGracePeriodSeconds"] == 60
        assert dep(rendered, name)["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%"},
        }
        assert "startupProbe" not in rendered.container(name)  # off by default


def test_alias_alone_replaces_chart_defaults(helm_bin: Path) -> None:
    rendered = render(
        helm_bin, {"controller": {"leaderElection": {"leaseDurationSeconds": 30, "renewDeadlineSeconds": 20}}}
    )
    e = rendered.env()
    assert (
        e["JANGAR_LEADER_ELECTION_LEASE_DURATION_SECONDS"],
        e["JANGAR_LEADER_ELECTION_RENEW_DEADLINE_SECONDS"],
    ) == ("30", "20")
    assert e["JANGAR_LEADER_ELECTION_LEASE_NAME"] == "agents-controller"  # jangar's default name stays
    assert e["JANGAR_LEADER_ELECTION_NAMESPACE"] == "agents"


def test_alias_equal_to_top_level_is_no_conflict(helm_bin: Path) -> None:
    rendered = render(
        helm_bin, {"leaderElection": {"leaseName": "x"}, "controller": {"leaderElection": {"leaseName": "x"}}}
    )
    assert rendered.env()["JANGAR_LEADER_ELECTION_LEASE_NAME"] == "x"


def test_lease_namespace_moves_the_lease_role(helm_bin: Path) -> None:
    rendered = render(helm_bin, {"controller": {"leaderElection": {"leaseNamespace": "locks"}}})
    assert rendered.env()["JANGAR_LEADER_ELECTION_NAMESPACE"] == "locks"
    assert rendered.get("Role", "agents-leader-election")["metadata"]["namespace"] == "locks"
    assert rendered.get("RoleBinding", "agents-leader-election")["metadata"]["namespace"] == "locks"


def test_workflow_runtime_alone_still_renders(helm_bin: Path) -> None:
    rendered = render(helm_bin, {"workflowRuntime": {"native": {"rerunOrchestration": "a"}}})
    assert rendered.env()["JANGAR_CODEX_RERUN_ORCHESTRATION"] == "a"


def test_plain_audit_headers_render_as_json(helm_bin: Path) -> None:
    rendered = render(helm_bin, {"audit": {"sink": {"type": "stdout", "headers": {"X-Team": "a"}}}})
    assert json.loads(rendered.env()["JANGAR_AUDIT_SINK_HEADERS"]) == {"X-Team": "a"}


def _canonical(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for doc in docs:
        d = json.loads(json.dumps(doc))
        d.get("metadata", {}).get("labels", {}).pop("helm.sh/chart", None)
        out.append(d)
    return sorted(out, key=lambda d: (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace", "")))


def test_0_9_1_values_render_as_before(helm_bin: Path) -> None:
    """The 0.9.1 reference values render object for object as before the 0.9.29 keys. The golden file is
    `helm template agents charts/agents -n agents -f tests/chart/reference-values-0.9.1.yaml` of the chart at
    b5d64c0 (before issue 13 item 2); the helm.sh/chart label is ignored. A later change that means to alter
    this rendering regenerates it and says so in its commit."""
    now = _canonical(render(helm_bin, files=[V091]).docs)
    before = _canonical([d for d in yaml.safe_load_all(GOLDEN_091.read_text()) if d])
    assert now == before


def test_0929_env_parses_into_settings(r: Rendered) -> None:
    """The env the 0.9.29 keys render parses with jangar's settings (the CORS list included); the variables
    other features declare are parsed by their declarations once merged."""
    from jangar.settings import Settings

    parsed = {
        name: Settings.from_env({e["name"]: e["value"] for e in r.env_list(name) if "value" in e})
        for name in ("agents", C)
    }
    assert parsed["agents"].cors_allowed_origins == ("https://ui.example.com", "http://localhost:3000")
    le = parsed[C].leader_election
    assert (le.enabled, le.lease_name, le.namespace) == (True, "agents-controller-leader", "agents")
    assert parsed[C].grpc.enabled and parsed[C].grpc.port == 50051
    assert not parsed["agents"].leader_election.enabled  # the API-only Deployment of split mode


def test_leader_election_defaults_in_the_template_match_values_yaml() -> None:
    """agents.leaderElectionDefaults tells a changed top-level key from a chart default; it must be
    values.yaml's leaderElection block, or a user's key would be taken for a default (or the reverse)."""
    import re

    tpl = (CHART / "templates" / "_values0929.tpl").read_text()
    line = next(ln for ln in tpl.splitlines() if ln.startswith('{{- dict "enabled"'))
    pairs = re.findall(r'"(\w+)" ("[^"]*"|\w+)', line)
    in_template = {k: yaml.safe_load(v) for k, v in pairs}
    values = yaml.safe_load((CHART / "values.yaml").read_text())["leaderElection"]
    assert in_template == values


def test_compatibility_doc_names_every_audit_sink_key_the_chart_renders() -> None:
    """docs/compatibility.md once said the chart did not render `audit.sink.*` (stale after h-values merged):
    every `audit.sink` key of values.yaml is named there, and no row says the chart does not render them."""
    doc = (HERE.parents[1] / "docs" / "compatibility.md").read_text()
    sink = yaml.safe_load((CHART / "values.yaml").read_text())["audit"]["sink"]
    assert set(sink) == {"type", "url", "headers", "headersSecretRef", "timeoutMs"}
    for key in sink:
        assert key in doc
    assert [line for line in doc.splitlines() if "audit.sink" in line and "does not render" in line] == []


def test_compatibility_row_30_says_what_the_chart_does_not_do(helm_bin: Path) -> None:
    """docs/compatibility.md row [30] names CRD read access in its title: the chart grants none and puts no
    sync-wave on the CRDs, and the row says so instead of staying silent."""
    doc = (HERE.parents[1] / "docs" / "compatibility.md").read_text()
    row = next(
        line for line in doc.splitlines() if line.startswith("| CORS, envFrom objects, CRD read access")
    )
    assert "no CRD read access" in row and "no sync-wave" in row
    rendered = render(helm_bin, files=[V0929])
    rules = [
        rule
        for kind in ("ClusterRole", "Role")
        for obj in rendered.all(kind)
        for rule in obj.get("rules") or ()
    ]
    assert rules and not [r for r in rules if "apiextensions.k8s.io" in (r.get("apiGroups") or ())]
    for crd in sorted((CHART / "crds").glob("*.yaml")):
        assert "sync-wave" not in crd.read_text()

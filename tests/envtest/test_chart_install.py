"""The chart against a real kube-apiserver: every rendered manifest passes a server-side dry run, and
`helm install` / `helm uninstall` work and leave nothing behind."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster
from tests.chart.envtest_support import Kube, extra_namespace


@pytest.fixture(scope="module")
def kube(envtest_crds: LocalCluster, kubectl_bin: Path, helm_bin: Path) -> Kube:
    return Kube(envtest_crds.kubeconfig, kubectl_bin, helm_bin)


def _dry_run(kube: Kube, manifest: str) -> str:
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    assert docs, "nothing rendered"
    proc = kube.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=manifest, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


ALL_ON: dict[str, Any] = {
    "controllers": {"enabled": True},
    "metrics": {"serviceMonitor": {"enabled": True}},
    "podDisruptionBudget": {"enabled": True},
    "networkPolicy": {"enabled": True, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]},
    "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
    "database": {
        "url": "postgresql://a:b@db:5432/agents",
        "createSecret": {"enabled": True},
        "caSecret": {"name": "db-ca"},
    },
    "controller": {
        "authSecret": {"name": "codex-auth"},
        "defaultWorkload": {"nodeSelector": {"a": "b"}, "imagePullSecrets": ["x"]},
    },
    "runnerServiceAccount": {"create": True, "rbac": {"create": True}},
    "resourceQuota": {"enabled": True, "hard": {"pods": "100"}},
    "limitRange": {"enabled": True, "limits": [{"type": "Container", "default": {"cpu": "500m"}}]},
    "versionControlProvider": {"enabled": True, "auth": {"token": {"secretRef": {"name": "gh"}}}},
    "argocdHooks": {
        "enabled": True,
        "smoke": {
            "agentRun": {
                "apiVersion": "agents.proompteng.ai/v1alpha1",
                "kind": "AgentRun",
                "metadata": {"name": "smoke"},
                "spec": {
                    "agentRef": {"name": "smoke-agent"},
                    "implementationSpecRef": {"name": "smoke-impl"},
                    "runtime": {"type": "workflow"},
                },
            }
        },
    },
    "grpc": {"tokenSecret": {"name": "grpc-token"}},
    "agentComms": {"enabled": True, "subjects": ["agents.>"]},
    "extraVolumes": [{"name": "cache", "volume": {"emptyDir": {}}}],
    "extraVolumeMounts": [{"name": "cache", "mountPath": "/cache"}],
    "podSecurityAdmission": {
        "enabled": True,
        "createNamespace": True,
        "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
    },
}


@pytest.mark.parametrize(
    ("files", "values"),
    [
        ((), None),
        (("values-local.yaml",), None),
        (("values-kind.yaml",), None),
        (("values-dev.yaml",), None),
        (("values-prod.yaml",), {"controller": {"namespaces": []}}),
        ((), ALL_ON),
        (
            (),
            {
                "rbac": {"clusterScoped": True},
                "controller": {"namespaces": ["*"]},
                "runnerServiceAccount": {"create": True, "rbac": {"create": True}},
            },
        ),
    ],
    ids=["defaults", "local", "kind", "dev", "prod", "everything-on", "all-namespaces"],
)
async def test_rendered_manifests_pass_server_dry_run(
    kube: Kube, namespace: str, files: tuple[str, ...], values: dict[str, Any] | None
) -> None:
    manifest = kube.template("agents", namespace, values, files)
    out = _dry_run(kube, manifest)
    assert "(server dry run)" in out


async def test_several_namespaces_dry_run(kube: Kube, kube_client: k8s.ApiClient, namespace: str) -> None:
    other = f"t-{uuid.uuid4().hex[:10]}"
    async with extra_namespace(kube_client, other):
        for values in (
            {
                "controller": {"namespaces": [other]},
                "runnerServiceAccount": {"create": True, "rbac": {"create": True}},
            },
            {"rbac": {"clusterScoped": True}, "controller": {"namespaces": [namespace, other]}},
        ):
            _dry_run(kube, kube.template("agents", namespace, values))


def _leftovers(kube: Kube, namespace: str, release: str) -> list[str]:
    kinds = kube.kubectl(
        "api-resources", "--namespaced=true", "--verbs=list,delete", "-o", "name"
    ).stdout.split()
    kinds = [k for k in kinds if k not in {"events", "events.events.k8s.io"}]
    proc = kube.kubectl(
        "get", ",".join(kinds), "-n", namespace, "-l", f"app.kubernetes.io/instance={release}", "-o", "json"
    )
    return [f"{i['kind']}/{i['metadata']['name']}" for i in json.loads(proc.stdout)["items"]]


def _cluster_leftovers(kube: Kube, release: str, namespace: str) -> list[str]:
    proc = kube.kubectl(
        "get", "clusterroles,clusterrolebindings", "-l", f"app.kubernetes.io/instance={release}", "-o", "json"
    )
    return [
        i["metadata"]["name"]
        for i in json.loads(proc.stdout)["items"]
        if i["metadata"]["name"].startswith(f"{namespace}-")
    ]


@pytest.mark.parametrize(
    ("files", "values"),
    [
        ((), None),
        (("values-local.yaml",), None),
        (
            (),
            {
                "rbac": {"clusterScoped": True},
                "controller": {"namespaces": ["*"]},
                "controllers": {"enabled": True},
                "database": {"url": "postgresql://a:b@db/agents", "createSecret": {"enabled": True}},
            },
        ),
    ],
    ids=["defaults", "values-local", "cluster-scoped-split"],
)
async def test_helm_install_and_uninstall(
    kube: Kube,
    kube_client: k8s.ApiClient,
    namespace: str,
    files: tuple[str, ...],
    values: dict[str, Any] | None,
) -> None:
    kube.install("agents", namespace, values, files)
    status = json.loads(kube.helm("status", "agents", "--namespace", namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    apps = k8s.AppsV1Api(kube_client)
    await apps.read_namespaced_deployment("agents", namespace)
    split = bool(values and values.get("controllers", {}).get("enabled"))
    dep = await apps.read_namespaced_deployment("agents-controllers" if split else "agents", namespace)
    env = {e.name: e for e in dep.spec.template.spec.containers[0].env}
    assert env["JANGAR_AGENTS_CONTROLLER_NAMESPACES"].value in {namespace, "*"}
    assert _leftovers(kube, namespace, "agents")
    # The README's upgrade command for the Codex auth secret.
    kube.helm(
        "upgrade",
        "agents",
        str(kube_chart()),
        "--namespace",
        namespace,
        "--reuse-values",
        "--set",
        "controller.authSecret.name=codex-auth",
        "--set",
        "controller.authSecret.key=auth.json",
    )
    dep = await apps.read_namespaced_deployment("agents-controllers" if split else "agents", namespace)
    volumes = {v.name: v for v in dep.spec.template.spec.volumes}
    assert volumes["codex-auth"].secret.secret_name == "codex-auth"
    kube.helm("uninstall", "agents", "--namespace", namespace, "--wait")
    assert _leftovers(kube, namespace, "agents") == []
    assert _cluster_leftovers(kube, "agents", namespace) == []


def kube_chart() -> Path:
    from tests.chart.helm import CHART

    return CHART


def _notes(kube: Kube, namespace: str, *args: str) -> str:
    out = kube.helm(
        "install", "agents", str(kube_chart()), "--namespace", namespace, "--dry-run=client", *args
    )
    return out.stdout.split("NOTES:", 1)[1]


async def test_notes(kube: Kube, namespace: str) -> None:
    text = _notes(kube, namespace)
    assert "WARNING: no database is configured" in text
    assert f"kubectl -n {namespace} port-forward svc/agents 8080:80" in text
    assert "svc/agents-grpc 50051:50051" in text
    assert f"helm test agents -n {namespace}" in text
    text = _notes(
        kube,
        namespace,
        "--set",
        "grpc.enabled=false",
        "--set",
        "namespaceOverride=team-a",
        "--set",
        "database.secretRef.name=pg",
    )
    assert "grpc" not in text.lower()
    assert "WARNING" not in text
    assert "kubectl -n team-a port-forward svc/agents 8080:80" in text

"""Helpers for the chart's envtest and kwok tests (tests/envtest/test_chart_*.py, tests/kwok/test_chart_*.py):
kubectl/helm against the local apiserver, SubjectAccessReview checks. The CRDs (and the ServiceMonitor
stand-in) come from the session fixtures `envtest_crds` / `kwok_crds`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client as k8s

from tests.chart.helm import CHART
from tests.support.waiting import eventually


class Kube:
    """kubectl and helm bound to one cluster's kubeconfig."""

    def __init__(self, kubeconfig: Path, kubectl: Path, helm: Path) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl_bin = kubectl
        self.helm_bin = helm

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.kubectl_bin), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=180,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
        return proc

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.helm_bin), *args, "--kubeconfig", str(self.kubeconfig)],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=300,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
        return proc

    def template(
        self, release: str, namespace: str, values: Mapping[str, Any] | None = None, files: Iterable[str] = ()
    ) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            args = ["template", release, str(CHART), "--namespace", namespace]
            for name in files:
                args += ["--values", str(CHART / name)]
            if values:
                path = Path(tmp) / "values.yaml"
                path.write_text(yaml.safe_dump(dict(values)))
                args += ["--values", str(path)]
            proc = subprocess.run(
                [str(self.helm_bin), *args], capture_output=True, text=True, timeout=120, check=False
            )
            if proc.returncode != 0:
                raise AssertionError(proc.stderr)
            return proc.stdout

    def install(
        self,
        release: str,
        namespace: str,
        values: Mapping[str, Any] | None = None,
        files: Iterable[str] = (),
        extra: Iterable[str] = (),
    ) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            args = ["install", release, str(CHART), "--namespace", namespace]
            for name in files:
                args += ["--values", str(CHART / name)]
            if values:
                path = Path(tmp) / "values.yaml"
                path.write_text(yaml.safe_dump(dict(values)))
                args += ["--values", str(path)]
            self.helm(*args, *extra)


@contextlib.asynccontextmanager
async def extra_namespace(api: k8s.ApiClient, name: str) -> AsyncIterator[str]:
    core = k8s.CoreV1Api(api)
    await core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        with contextlib.suppress(k8s.ApiException):
            await core.delete_namespace(name)


async def can(
    api: k8s.ApiClient,
    user: str,
    verb: str,
    resource: str,
    *,
    group: str = "",
    namespace: str | None = None,
    subresource: str | None = None,
) -> bool:
    ns_of_user = user.split(":")[2]
    review = k8s.V1SubjectAccessReview(
        spec=k8s.V1SubjectAccessReviewSpec(
            user=user,
            groups=["system:serviceaccounts", f"system:serviceaccounts:{ns_of_user}", "system:authenticated"],
            resource_attributes=k8s.V1ResourceAttributes(
                group=group, resource=resource, verb=verb, namespace=namespace, subresource=subresource
            ),
        )
    )
    result = await k8s.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(result.status.allowed)


async def wait_allowed(api: k8s.ApiClient, user: str, verb: str, resource: str, **kw: Any) -> None:
    """RBAC reaches the authorizer through an informer: wait for the first grant to be visible."""
    await eventually(
        lambda: can(api, user, verb, resource, **kw),
        interval=0.1,
        what=f"{user} to get {verb} {resource} {kw}",
    )


CRD_RESOURCES: dict[str, list[str]] = {
    "agents.proompteng.ai": [
        "agents",
        "agentruns",
        "agentproviders",
        "implementationspecs",
        "implementationsources",
        "versioncontrolproviders",
        "memories",
    ],
    "orchestration.proompteng.ai": ["orchestrations", "orchestrationruns"],
    "tools.proompteng.ai": ["tools", "toolruns"],
    "signals.proompteng.ai": ["signals", "signaldeliveries"],
    "schedules.proompteng.ai": ["schedules"],
    "artifacts.proompteng.ai": ["artifacts"],
    "workspaces.proompteng.ai": ["workspaces"],
    "approvals.proompteng.ai": ["approvalpolicies"],
    "budgets.proompteng.ai": ["budgets"],
    "security.proompteng.ai": ["secretbindings"],
}

# (group, resource, subresource, verbs) the controllers use in every namespace they watch.
CONTROLLER_NEEDS: list[tuple[str, str, str | None, tuple[str, ...]]] = [
    *[
        (g, r, None, ("get", "list", "watch", "create", "update", "patch", "delete"))
        for g, rs in CRD_RESOURCES.items()
        for r in rs
    ],
    *[(g, r, "status", ("get", "update", "patch")) for g, rs in CRD_RESOURCES.items() for r in rs],
    *[(g, r, "finalizers", ("update",)) for g, rs in CRD_RESOURCES.items() for r in rs],
    ("batch", "jobs", None, ("get", "list", "watch", "create", "update", "patch", "delete")),
    ("batch", "cronjobs", None, ("get", "list", "watch", "create", "update", "patch", "delete")),
    ("", "persistentvolumeclaims", None, ("get", "list", "watch", "create", "update", "patch", "delete")),
    ("", "configmaps", None, ("get", "list", "watch", "create", "update", "patch", "delete")),
    ("", "pods", None, ("get", "list", "watch")),
    ("", "pods", "log", ("get",)),
    ("", "secrets", None, ("get", "list", "watch", "create", "patch")),
    ("", "events", None, ("create", "patch", "list")),
    ("events.k8s.io", "events", None, ("create", "patch")),
]


async def missing_grants(api: k8s.ApiClient, user: str, namespace: str | None) -> list[str]:
    checks = [(g, r, sub, verb) for g, r, sub, verbs in CONTROLLER_NEEDS for verb in verbs]
    results = await asyncio.gather(
        *[
            can(api, user, verb, r, group=g, namespace=namespace, subresource=sub)
            for g, r, sub, verb in checks
        ]
    )
    return [
        f"{verb} {g or 'core'}/{r}{'/' + sub if sub else ''}"
        for (g, r, sub, verb), ok in zip(checks, results, strict=True)
        if not ok
    ]

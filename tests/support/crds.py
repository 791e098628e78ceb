"""The one CRD installer of the test suite.

`install_crds` applies every CRD a test may need, server side and idempotently, with kubectl (not with
jangar's own client: the runtime is under test elsewhere), then waits until each is Established. The
session fixtures `envtest_crds` and `kwok_crds` of `tests/conftest.py` call it once per cluster; tests
that need CRDs ask for one of those fixtures.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from jangar.api import crdgen
from jangar.dev.assets import kubectl_binary

# The generated CRDs the chart ships (charts/agents/crds, written by `jangar.api.crdgen`).
CRD_DIR: Path = crdgen.DEFAULT_OUT
FIELD_MANAGER = "jangar-tests"

# prometheus-operator is not installed in the test clusters; this stand-in lets the chart's optional
# ServiceMonitor pass a server dry run and a `helm install`.
SERVICE_MONITOR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "names": {
            "kind": "ServiceMonitor",
            "listKind": "ServiceMonitorList",
            "plural": "servicemonitors",
            "singular": "servicemonitor",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def crd_manifests(*, stand_ins: bool = True) -> list[dict[str, Any]]:
    """Every jangar CRD from `CRD_DIR` (sorted by file name), then the stand-ins (ServiceMonitor)."""
    files = sorted(CRD_DIR.glob("*.yaml"))
    if not files:
        raise AssertionError(f"{CRD_DIR} has no CRDs (they are generated from the API models)")
    docs = [doc for path in files for doc in yaml.safe_load_all(path.read_text()) if doc]
    return [*docs, SERVICE_MONITOR_CRD] if stand_ins else docs


def install_crds(
    kubeconfig: Path,
    kubectl: Path | None = None,
    *,
    manifests: Sequence[Mapping[str, Any]] | None = None,
    timeout: float = 60.0,
) -> list[str]:
    """Server-side apply `manifests` (default: `crd_manifests()`) to the cluster of `kubeconfig` and wait
    until every CRD is Established; return their names. Idempotent; raises AssertionError with kubectl's
    output when either step fails."""
    docs = list(crd_manifests() if manifests is None else manifests)
    names = [str(doc["metadata"]["name"]) for doc in docs]
    base = [str(kubectl or kubectl_binary()), "--kubeconfig", str(kubeconfig)]
    _kubectl(
        [*base, "apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}", "-f", "-"],
        stdin=yaml.safe_dump_all(docs),
        timeout=timeout,
    )
    _kubectl(
        [*base, "wait", "--for=condition=Established", f"--timeout={timeout:g}s"]
        + [f"customresourcedefinition/{name}" for name in names],
        timeout=timeout + 30,
    )
    return names


def _kubectl(args: list[str], *, timeout: float, stdin: str | None = None) -> None:
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        verb = " ".join(args[3:5])
        raise AssertionError(f"installing CRDs: kubectl {verb} failed:\n{done.stderr}{done.stdout}")

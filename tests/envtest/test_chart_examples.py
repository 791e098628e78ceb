"""Every file in charts/agents/examples applies to a real apiserver with the CRDs installed, and broken
resources are rejected with the schema's or the CEL rule's message."""

from __future__ import annotations

from pathlib import Path

import pytest

from jangar.dev.cluster import LocalCluster
from tests.chart.envtest_support import Kube
from tests.chart.helm import CHART

EXAMPLES = sorted(p.name for p in (CHART / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def kube(envtest_crds: LocalCluster, kubectl_bin: Path) -> Kube:
    return Kube(envtest_crds.kubeconfig, kubectl_bin, Path("helm-not-needed"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 30


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_applies(kube: Kube, namespace: str, example: str) -> None:
    proc = kube.kubectl(
        "apply", "--validate=strict", "-n", namespace, "-f", str(CHART / "examples" / example), check=False
    )
    assert proc.returncode == 0, proc.stderr
    # and reads back
    kube.kubectl("get", "-n", namespace, "-f", str(CHART / "examples" / example))


def test_all_examples_together(kube: Kube, namespace: str) -> None:
    kube.kubectl("apply", "--validate=strict", "-n", namespace, "-f", str(CHART / "examples"))
    out = kube.kubectl("get", "agentruns", "-n", namespace, "-o", "name").stdout.split()
    # the 0.9.1 samples and the 0.9.29 loop examples (agentrun-workflow-loop-{fixed,conditional}.yaml)
    assert len(out) == 6


BROKEN = {
    "agentrun-without-implementation": (
        """
apiVersion: agents.proompteng.ai/v1alpha1
kind: AgentRun
metadata: {name: broken}
spec:
  agentRef: {name: a}
  runtime: {type: workflow}
""",
        "spec.implementationSpecRef or spec.implementation is required",
    ),
    "agentrun-bad-runtime": (
        """
apiVersion: agents.proompteng.ai/v1alpha1
kind: AgentRun
metadata: {name: broken}
spec:
  agentRef: {name: a}
  implementationSpecRef: {name: i}
  runtime: {type: lambda}
""",
        "Unsupported value",
    ),
    "agentrun-without-agent": (
        """
apiVersion: agents.proompteng.ai/v1alpha1
kind: AgentRun
metadata: {name: broken}
spec:
  implementationSpecRef: {name: i}
  runtime: {type: job}
""",
        "agentRef",
    ),
    "memory-bad-type": (
        """
apiVersion: agents.proompteng.ai/v1alpha1
kind: Memory
metadata: {name: broken}
spec:
  type: mongodb
  connection: {secretRef: {name: s}}
""",
        "Unsupported value",
    ),
    "implementationspec-without-text": (
        """
apiVersion: agents.proompteng.ai/v1alpha1
kind: ImplementationSpec
metadata: {name: broken}
spec:
  summary: no text
""",
        "text",
    ),
    "agentprovider-without-binary": (
        """
apiVersion: agents.proompteng.ai/v1alpha1
kind: AgentProvider
metadata: {name: broken}
spec:
  argsTemplate: []
""",
        "binary",
    ),
    "vcp-bad-token-type": (
        """
apiVersion: agents.proompteng.ai/v1alpha1
kind: VersionControlProvider
metadata: {name: broken}
spec:
  provider: github
  auth: {method: token, token: {type: classic, secretRef: {name: t}}}
""",
        "Unsupported value",
    ),
    "schedule-without-cron": (
        """
apiVersion: schedules.proompteng.ai/v1alpha1
kind: Schedule
metadata: {name: broken}
spec:
  targetRef: {kind: AgentRun, name: x}
""",
        "cron",
    ),
    "toolrun-without-tool": (
        """
apiVersion: tools.proompteng.ai/v1alpha1
kind: ToolRun
metadata: {name: broken}
spec:
  parameters: {a: b}
""",
        "toolRef",
    ),
    "unknown-field": (
        """
apiVersion: agents.proompteng.ai/v1alpha1
kind: Agent
metadata: {name: broken}
spec:
  providerRef: {name: p}
  provider: typo
""",
        "unknown field",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_resource_rejected(kube: Kube, namespace: str, case: str) -> None:
    manifest, message = BROKEN[case]
    proc = kube.kubectl("apply", "--validate=strict", "-n", namespace, "-f", "-", stdin=manifest, check=False)
    assert proc.returncode != 0, f"{case} was accepted"
    assert message in proc.stderr, proc.stderr

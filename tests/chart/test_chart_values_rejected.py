"""Bad values fail `helm template` with a message that names the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import render_error


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"replicaCunt": 2}, ["replicaCunt"]),
        ({"controller": {"namespace": ["a"]}}, ["namespace"]),
        ({"grpc": {"enabeld": True}}, ["enabeld"]),
    ],
    ids=["top-level", "nested", "typo"],
)
def test_unknown_keys_rejected(helm_bin: Path, values: dict[str, Any], expected: list[str]) -> None:
    message = render_error(helm_bin, values)
    assert "schema" in message.lower()
    for word in expected:
        assert word in message
    assert "additional properties" in message.lower() or "additionalproperties" in message.lower()


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"controller": {"workers": {"agentRun": 0}}}, "agentRun"),
        ({"controller": {"workers": {"supporting": 1.5}}}, "supporting"),
        ({"controller": {"reconcileTimeoutSeconds": 0}}, "reconcileTimeoutSeconds"),
        ({"controller": {"gracePeriods": {"referenceSeconds": -1}}}, "referenceSeconds"),
        ({"controller": {"gracePeriods": {"imagePullSeconds": "5m"}}}, "imagePullSeconds"),
        ({"controller": {"gracePeriods": {"missingJob": 60}}}, "missingJob"),
        ({"controller": {"artifacts": {"maxPerRun": 1001}}}, "maxPerRun"),
        ({"controller": {"artifacts": {"defaultTtlDays": -1}}}, "defaultTtlDays"),
        ({"controller": {"artifacts": {"ttlDays": 7}}}, "ttlDays"),
    ],
    ids=[
        "zero-workers",
        "fractional-workers",
        "zero-timeout",
        "negative-grace",
        "string-grace",
        "typo",
        "too-many-artifacts",
        "negative-artifact-ttl",
        "artifacts-typo",
    ],
)
def test_controller_knobs_rejected(helm_bin: Path, values: dict[str, Any], key: str) -> None:
    """The runtime knobs fail at template time, naming the key (the settings parser would only fail at start)."""
    message = render_error(helm_bin, values)
    assert "schema" in message.lower()
    assert "controller" in message and key in message


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"replicaCount": "two"}, "replicaCount"),
        ({"grpc": {"enabled": "yes"}}, "grpc"),
        ({"resources": {"requests": {"cpu": 1}}}, "resources"),
        ({"env": {"vars": {"PORT": 8080}}}, "env"),
        ({"controller": {"queue": {"cluster": -1}}}, "controller"),
        ({"grpc": {"serviceType": "NodePort"}}, "grpc"),
        ({"autoscaling": {"targetCPUUtilizationPercentage": 150}}, "autoscaling"),
        ({"image": {"pullPolicy": "Sometimes"}}, "image"),
        ({"controller": {"namespaces": ["Team_A"]}}, "controller"),
    ],
    ids=[
        "string-for-int",
        "string-for-bool",
        "number-quantity",
        "number-env",
        "negative",
        "enum",
        "above-max",
        "pull-policy",
        "bad-namespace-name",
    ],
)
def test_wrong_types_rejected(helm_bin: Path, values: dict[str, Any], path: str) -> None:
    message = render_error(helm_bin, values)
    assert "schema" in message.lower()
    assert path in message


@pytest.mark.parametrize("key", ["controller", "orchestrationController", "supportingController"])
@pytest.mark.parametrize("namespaces", [["a", "b"], ["*"]], ids=["several", "wildcard"])
def test_namespaces_need_cluster_scope(helm_bin: Path, key: str, namespaces: list[str]) -> None:
    message = render_error(helm_bin, {key: {"namespaces": namespaces}})
    assert "clusterScoped" in message


@pytest.mark.parametrize("namespaces", [["a", "b"], ["*"]], ids=["several", "wildcard"])
def test_validation_template_message(helm_bin: Path, namespaces: list[str]) -> None:
    """With schema validation skipped the template still fails, with a sentence a user understands."""
    message = render_error(
        helm_bin, {"controller": {"namespaces": namespaces}}, extra=["--skip-schema-validation"]
    )
    assert "agents chart: invalid values" in message
    assert "controller.namespaces" in message
    assert "rbac.clusterScoped=true" in message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"database": {"createSecret": {"enabled": True}}},
            "database.createSecret.enabled=true needs database.url",
        ),
        (
            {"database": {"url": "postgresql://x", "secretRef": {"name": "s"}}},
            "database.url and database.secretRef.name",
        ),
        ({"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}, "minReplicas (5)"),
        ({"runnerServiceAccount": {"rbac": {"create": True}}}, "runnerServiceAccount.rbac.create=true"),
        ({"grpc": {"token": "a", "tokenSecret": {"name": "b"}}}, "grpc.token and grpc.tokenSecret.name"),
        ({"leaderElection": {"leaseDurationSeconds": 5, "renewDeadlineSeconds": 10}}, "renewDeadlineSeconds"),
        ({"controller": {"namespaces": ["*", "a"]}, "rbac": {"clusterScoped": True}}, "cannot be combined"),
    ],
    ids=[
        "createSecret-without-url",
        "url-and-secretRef",
        "hpa-bounds",
        "runner-rbac-without-sa",
        "two-tokens",
        "lease-timing",
        "wildcard-plus-names",
    ],
)
def test_invalid_combinations(helm_bin: Path, values: dict[str, Any], expected: str) -> None:
    message = render_error(helm_bin, values)
    assert expected in message, message


def test_several_problems_reported_together(helm_bin: Path) -> None:
    message = render_error(
        helm_bin,
        {"controller": {"namespaces": ["a", "b"]}, "database": {"createSecret": {"enabled": True}}},
        extra=["--skip-schema-validation"],
    )
    assert "controller.namespaces" in message and "database.createSecret" in message

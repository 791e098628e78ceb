"""The chart and `jangar serve` validate with the same rules (issue 12 item 4).

* leader-election timings: the chart's `validation.yaml` applies the runtime's rule (`timing_problem`:
  lease > renew > 1.2 x retry); what it renders always parses into Settings and never makes the runtime's
  `LeaderElectionOptions` raise.
* every enum of values.schema.json: each documented value renders and the rendered env parses; anything else
  is rejected by the schema naming the key; where the enum feeds a setting, the two lists are the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jangar.app import leader_election_options
from jangar.runtime.leaderelection import timing_problem
from jangar.settings import Settings
from tests.chart.helm import CHART, render, render_error

SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def settings_of(rendered: Any) -> list[Settings]:
    out = []
    for dep in rendered.all("Deployment"):
        for container in dep["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
            env.setdefault("JANGAR_POD_NAMESPACE", "agents")
            out.append(Settings.from_env(env))
    assert out
    return out


@pytest.mark.parametrize(
    ("lease", "renew", "retry", "key"),
    [
        (15, 10, 9, "retryPeriodSeconds"),  # the case: crashed `jangar serve` before
        (15, 12, 10, "retryPeriodSeconds"),  # 1.2 x 10 == 12: not strictly below
        (15, 15, 2, "renewDeadlineSeconds"),
        (5, 10, 2, "renewDeadlineSeconds"),
    ],
)
def test_leader_election_timings_the_runtime_refuses_fail_the_render(
    helm_bin: Path, lease: int, renew: int, retry: int, key: str
) -> None:
    assert timing_problem(lease, renew, retry) is not None
    values = {
        "leaderElection": {
            "leaseDurationSeconds": lease,
            "renewDeadlineSeconds": renew,
            "retryPeriodSeconds": retry,
        }
    }
    message = render_error(helm_bin, values)
    assert f"leaderElection.{key}" in message, message
    # off: the timings are not used, and neither side checks them
    values["leaderElection"]["enabled"] = False
    for settings in settings_of(render(helm_bin, values)):
        assert leader_election_options(settings) is None


@pytest.mark.parametrize(("lease", "renew", "retry"), [(15, 10, 8), (15, 13, 10), (3, 2, 1)])
def test_leader_election_timings_the_chart_accepts_start_the_runtime(
    helm_bin: Path, lease: int, renew: int, retry: int
) -> None:
    values = {
        "controllers": {"enabled": True},
        "leaderElection": {
            "leaseDurationSeconds": lease,
            "renewDeadlineSeconds": renew,
            "retryPeriodSeconds": retry,
        },
    }
    elected = [leader_election_options(s) for s in settings_of(render(helm_bin, values))]
    options = [o for o in elected if o is not None]
    assert options, "no Deployment runs leader election"
    for o in options:
        assert (o.lease_duration, o.renew_deadline, o.retry_period) == (lease, renew, retry)


# ---------------------------------------------------------------------------------------------------
# Every enum of the values schema.


def schema_enums() -> dict[str, list[Any]]:
    """dotted path -> enum; ``[]`` stands for an array item, ``*`` for any key of a map."""
    found: dict[str, list[Any]] = {}

    def walk(node: Any, path: list[str]) -> None:
        if not isinstance(node, dict):
            return
        if "enum" in node:
            found[".".join(path)] = node["enum"]
        for key, child in node.get("properties", {}).items():
            walk(child, [*path, key])
        if isinstance(node.get("items"), dict):
            walk(node["items"], [*path, "[]"])
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], [*path, "*"])

    walk(SCHEMA, [])
    return found


ENUMS = schema_enums()


def values_for(path: str, value: Any) -> dict[str, Any]:
    """A values tree that sets `path` to `value` (an array item: a one-element list; a map key: ``github``)."""
    parts = path.split(".")
    leaf: Any = value
    for part in reversed(parts):
        if part == "[]":
            leaf = [leaf]
        elif part == "*":
            leaf = {"github": leaf}
        else:
            leaf = {part: leaf}
    assert isinstance(leaf, dict)
    return leaf


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def test_the_schema_has_the_enums_this_test_knows() -> None:
    """A new enum in the schema must be listed here (and, if it feeds a setting, in SETTING_ENUMS)."""
    assert set(ENUMS) == {
        "image.pullPolicy",
        "controlPlane.image.pullPolicy",
        "controllers.image.pullPolicy",
        "runner.image.pullPolicy",
        "service.type",
        "grpc.serviceType",
        "metrics.service.type",
        "networkPolicy.policyTypes.[]",
        "controller.vcsProviders.deprecatedTokenTypes.*.[]",
        "versionControlProvider.provider",
        "versionControlProvider.cloneProtocol",
        "versionControlProvider.auth.method",
        "versionControlProvider.auth.token.type",
        "logging.level",
        "argocdHooks.image.pullPolicy",
        "tests.image.pullPolicy",
        # issue 13 item 2: the 0.9.29 keys (the settings they feed are declared by their own features)
        "deploymentStrategy.type",
        "controlPlane.deploymentStrategy.type",
        "controlPlane.strategy.type",
        "controllers.deploymentStrategy.type",
        "controllers.strategy.type",
        "controllers.service.type",
        "audit.sink.type",
        "controller.runtimeDebrisCleanup.mode",
    }


@pytest.mark.parametrize("index", range(max(len(e) for e in ENUMS.values())))
def test_every_enum_value_renders_and_parses(helm_bin: Path, index: int) -> None:
    """Render k sets every enum key at once to its k-th value (mod its length): all values in 5 renders."""
    values: dict[str, Any] = {
        "controllers": {"enabled": True},
        "audit": {"sink": {"url": "https://audit.example"}},
    }
    for path, enum in ENUMS.items():
        values = merge(values, values_for(path, enum[index % len(enum)]))
    rendered = render(helm_bin, values)
    settings = settings_of(rendered)
    level = ENUMS["logging.level"][index % len(ENUMS["logging.level"])]
    assert {s.log_level for s in settings} == {"warning" if level == "warn" else level}
    policy = ENUMS["runner.image.pullPolicy"][index % 3]
    controllers = [s for s in settings if s.agents_controller.enabled]
    assert controllers and {s.runner.image_pull_policy for s in controllers} == {policy}
    token_type = ENUMS["controller.vcsProviders.deprecatedTokenTypes.*.[]"][index % 4]
    assert {s.vcs.deprecated_token_types["github"] for s in controllers} == {(token_type,)}


@pytest.mark.parametrize("path", sorted(ENUMS))
def test_values_outside_every_enum_are_rejected_naming_the_key(helm_bin: Path, path: str) -> None:
    message = render_error(helm_bin, values_for(path, "Bogus"))
    leaf = [p for p in path.split(".") if p not in ("[]", "*")][-1]
    assert "schema" in message.lower() and leaf in message, message


def test_the_enums_that_feed_settings_match_the_settings_parser() -> None:
    from jangar import settings as s

    def accepted(variable: str, value: str) -> bool:
        try:
            s.Settings.from_env({variable: value})
        except s.SettingsError:
            return False
        return True

    for value in ENUMS["logging.level"]:
        assert accepted("JANGAR_LOG_LEVEL", value), value
    for value in ENUMS["runner.image.pullPolicy"]:
        assert accepted("JANGAR_AGENT_RUNNER_IMAGE_PULL_POLICY", value), value
    assert set(ENUMS["controller.vcsProviders.deprecatedTokenTypes.*.[]"]) == set(s._TOKEN_TYPES)
    assert set(ENUMS["versionControlProvider.auth.token.type"]) - {""} == set(s._TOKEN_TYPES)


@pytest.mark.parametrize("path", ["metrics", "/", "/health", "/ready/x", "/v1"])
def test_a_metrics_path_the_settings_refuse_is_refused_by_the_schema(helm_bin: Path, path: str) -> None:
    from jangar.settings import SettingsError

    with pytest.raises(SettingsError):
        Settings.from_env({"JANGAR_PROMETHEUS_METRICS_PATH": path})
    message = render_error(helm_bin, {"metrics": {"path": path}})
    assert "schema" in message.lower() and "path" in message, message


def test_a_custom_metrics_path_renders_and_parses(helm_bin: Path) -> None:
    settings = settings_of(render(helm_bin, {"metrics": {"path": "/prom"}}))
    assert {s.metrics_path for s in settings} == {"/prom"}
    off = settings_of(render(helm_bin, {"metrics": {"enabled": False}}))
    assert not any(s.metrics_enabled for s in off)

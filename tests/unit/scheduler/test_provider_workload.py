"""AgentProvider `spec.workload`, `secretEnv`, `adapter` in the Job (chart 0.9.29 drift rows 9 and 22).

Precedence for image, resources and ServiceAccount: the run, then the provider, then the controller default.
"""

from __future__ import annotations

from typing import Any

import pytest

from jangar.scheduler import build_job_plan
from jangar.settings import Settings
from tests.unit.scheduler.objects import agent_run, provider
from tests.unit.scheduler.test_job import container, make_ctx

DEFAULTS = Settings.from_env(
    {
        "JANGAR_AGENT_RUNNER_IMAGE": "default:1",
        "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT": "default-sa",
        "JANGAR_AGENT_RUNNER_RESOURCES": '{"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}}',
    }
)
PROVIDER_WORKLOAD = {
    "image": "provider:2",
    "serviceAccountName": "provider-sa",
    "resources": {"requests": {"cpu": "1"}},
}


def _run(workload: dict[str, Any] | None = None, sa: str | None = None) -> dict[str, Any]:
    config = {"serviceAccount": sa} if sa else {}
    return agent_run(config=config, **({"workload": workload} if workload else {}))


def _pod(run: dict[str, Any], prov: dict[str, Any], settings: Settings = DEFAULTS) -> dict[str, Any]:
    spec: dict[str, Any] = build_job_plan(make_ctx(run, provider=prov), settings).job["spec"]["template"][
        "spec"
    ]
    return spec


@pytest.mark.parametrize(
    ("run_workload", "run_sa", "provider_workload", "image", "sa", "resources"),
    [
        # nothing anywhere but the controller default
        (
            None,
            None,
            None,
            "default:1",
            "default-sa",
            {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}},
        ),
        # the provider's defaults beat the controller's
        (None, None, PROVIDER_WORKLOAD, "provider:2", "provider-sa", {"requests": {"cpu": "1"}}),
        # the run's own choices beat the provider's
        (
            {"image": "run:3", "resources": {"limits": {"cpu": "2"}}},
            "run-sa",
            PROVIDER_WORKLOAD,
            "run:3",
            "run-sa",
            {"limits": {"cpu": "2"}},
        ),
        # field by field: a run that sets only its image still gets the provider's SA and resources
        ({"image": "run:3"}, None, PROVIDER_WORKLOAD, "run:3", "provider-sa", {"requests": {"cpu": "1"}}),
        # empty provider resources do not hide the controller default
        (
            None,
            None,
            {"resources": {"requests": {}}},
            "default:1",
            "default-sa",
            {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}},
        ),
    ],
)
def test_precedence_run_then_provider_then_default(
    run_workload: dict[str, Any] | None,
    run_sa: str | None,
    provider_workload: dict[str, Any] | None,
    image: str,
    sa: str,
    resources: dict[str, Any],
) -> None:
    prov = provider(**({"workload": provider_workload} if provider_workload else {}))
    pod = _pod(_run(run_workload, run_sa), prov)
    assert pod["containers"][0]["image"] == image
    assert pod["serviceAccountName"] == sa
    assert pod["containers"][0]["resources"] == resources


def test_no_resources_anywhere_leaves_them_out() -> None:
    pod = _pod(_run(), provider(), Settings.from_env({"JANGAR_AGENT_RUNNER_IMAGE": "x:1"}))
    assert "resources" not in pod["containers"][0]
    assert "serviceAccountName" not in pod


def test_secret_env_is_a_secret_key_ref_never_a_literal() -> None:
    prov = provider(
        secretEnv=[
            {"name": "OPENAI_API_KEY", "secretKeyRef": {"name": "openai", "key": "api-key"}},
            {"name": "CODEX_TOKEN", "secretKeyRef": {"name": "codex"}},  # key defaults to the name
            {"name": "AGENT_PROVIDER", "secretKeyRef": {"name": "evil"}},  # reserved: not shadowed
        ]
    )
    c = container(build_job_plan(make_ctx(_run(), provider=prov), DEFAULTS))
    env = {e["name"]: e for e in c["env"]}
    assert env["OPENAI_API_KEY"] == {
        "name": "OPENAI_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "openai", "key": "api-key"}},
    }
    assert env["CODEX_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "codex", "key": "CODEX_TOKEN"}
    assert "value" not in env["OPENAI_API_KEY"] and "value" not in env["CODEX_TOKEN"]
    assert env["AGENT_PROVIDER"] == {"name": "AGENT_PROVIDER", "value": "provider-1"}


@pytest.mark.parametrize(
    ("adapter", "expected"), [("codex-app-server", "codex-app-server"), ("other", "other"), (None, None)]
)
def test_adapter_reaches_the_binary_as_env(adapter: str | None, expected: str | None) -> None:
    prov = provider(**({"adapter": adapter} if adapter else {}))
    c = container(build_job_plan(make_ctx(_run(), provider=prov), DEFAULTS))
    values = {e["name"]: e.get("value") for e in c["env"]}
    assert values.get("AGENT_PROVIDER_ADAPTER") == expected


def test_projected_service_account_token_volume_and_mount() -> None:
    prov = provider(
        workload={
            "serviceAccountToken": {
                "audience": "vault",
                "expirationSeconds": 3600,
                "path": "/var/run/secrets/agents/token",
            }
        }
    )
    pod = _pod(_run(), prov)
    volume = next(v for v in pod["volumes"] if "projected" in v)
    assert volume["projected"] == {
        "sources": [
            {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 3600}}
        ]
    }
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert mount == {"name": volume["name"], "mountPath": "/var/run/secrets/agents", "readOnly": True}


def test_runner_resources_setting_rejects_unknown_keys() -> None:
    from jangar.settings import SettingsError

    with pytest.raises(SettingsError, match="only requests and limits"):
        Settings.from_env({"JANGAR_AGENT_RUNNER_RESOURCES": '{"requests": {}, "claims": []}'})
    with pytest.raises(SettingsError, match="quantities"):
        Settings.from_env({"JANGAR_AGENT_RUNNER_RESOURCES": '{"limits": {"cpu": true}}'})
    # the 0.9.29 name reads too
    s = Settings.from_env({"AGENTS_AGENT_RUNNER_RESOURCES": '{"limits": {"cpu": 2}}'})
    assert s.runner.default_workload.resources == {"limits": {"cpu": 2}}

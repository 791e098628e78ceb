"""VersionControlProvider status and VCS wiring of runs against a real API server."""

from __future__ import annotations

from typing import Any

from jangar.controllers.kinds import AGENTRUNS, JOBS, SECRETBINDINGS, SECRETS, VCSPROVIDERS
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    apply_basics,
    cond,
    eventually,
    run,
    wait_phase,
)


def github(ns: str, name: str = "gh", **auth: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "provider": "github",
            "auth": auth or {"method": "token", "token": {"type": "pat", "secretRef": {"name": "gh-token"}}},
            "defaults": {"baseBranch": "main", "branchTemplate": "agent/{{ agentRun.name }}"},
        },
    }


async def vcs_status(client: Client, ns: str, name: str, reason: str) -> Any:
    obj = await client.get(VCSPROVIDERS, name, ns)
    return obj if cond(obj, "Ready").get("reason") == reason else None


async def test_provider_waits_for_its_secret_and_warns_about_pat(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await client.create(VCSPROVIDERS, github(namespace))
    obj = await eventually(
        lambda: vcs_status(client, namespace, "gh", "SecretNotFound"), what="SecretNotFound"
    )
    assert cond(obj, "Unreachable")["status"] == "True"
    await client.create(
        SECRETS, {"metadata": {"name": "gh-token", "namespace": namespace}, "stringData": {"token": "x"}}
    )
    # Not watched (Secrets are not cached): the timed re-check finds it. Nudge with a spec change instead of
    # waiting 60 s: a generation change reconciles at once.
    await client.patch(
        VCSPROVIDERS, "gh", {"spec": {"webBaseUrl": "https://github.com"}}, namespace=namespace
    )
    obj = await eventually(lambda: vcs_status(client, namespace, "gh", "AuthReady"), what="AuthReady")
    warning = cond(obj, "Warning")
    assert (warning["status"], warning["reason"]) == ("True", "DeprecatedAuth")


async def test_gitlab_app_auth_is_unsupported(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    body = github(
        namespace,
        "gl",
        method="app",
        app={"appId": 1, "installationId": 2, "privateKeySecretRef": {"name": "k"}},
    )
    body["spec"]["provider"] = "gitlab"
    await client.create(VCSPROVIDERS, body)
    obj = await eventually(
        lambda: vcs_status(client, namespace, "gl", "UnsupportedAuth"), what="UnsupportedAuth"
    )
    assert cond(obj, "InvalidSpec")["status"] == "True"


async def test_run_gets_vcs_env_by_secret_reference(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    await client.create(
        SECRETS, {"metadata": {"name": "gh-token", "namespace": namespace}, "stringData": {"token": "s3cr3t"}}
    )
    await client.create(VCSPROVIDERS, github(namespace))
    await client.create(
        SECRETBINDINGS,
        {
            "metadata": {"name": "vcs", "namespace": namespace},
            "spec": {"subjects": [{"kind": "Agent", "name": "coder"}], "allowedSecrets": ["gh-token"]},
        },
    )
    spec = {"vcsRef": {"name": "gh"}, "parameters": {"prompt": "hi", "repository": "acme/demo"}}
    await client.create(AGENTRUNS, run(namespace, "v1", **spec))
    obj = await wait_phase(client, namespace, "v1", "Running")
    assert obj["status"]["vcs"]["repository"] == "acme/demo"
    assert obj["status"]["vcs"]["headBranch"] == "agent/v1"
    assert cond(obj, "Warning")["reason"] == "DeprecatedAuth"
    job = await client.get(JOBS, "v1-job", namespace)
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["VCS_REPOSITORY"]["value"] == "acme/demo"
    assert env["VCS_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "gh-token", "key": "token"}
    assert "s3cr3t" not in str(job)


async def test_denied_repository_fails_the_run(
    controller: ControllerProcess, client: Client, namespace: str
) -> None:
    await apply_basics(client, namespace)
    body = github(namespace, "locked", method="none")
    body["spec"]["repositoryPolicy"] = {"deny": ["acme/*"]}
    await client.create(VCSPROVIDERS, body)
    spec = {"vcsRef": {"name": "locked"}, "parameters": {"prompt": "hi", "repository": "acme/demo"}}
    await client.create(AGENTRUNS, run(namespace, "v2", **spec))
    done = await wait_phase(client, namespace, "v2", "Failed")
    assert cond(done, "InvalidSpec")["reason"] == "VcsPolicyDenied"

"""No secret value leaves its Secret (issue 12, item 7): envtest tier, with a real Postgres.

One namespace holds every kind of Secret jangar handles, each with a distinctive random value: the AgentRun's
own Secret (`spec.secrets`, allowed by the Agent and a SecretBinding), the VersionControlProvider token, a
GitHub App private key (a second provider), the Codex auth secret (`JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME`),
the Memory connection Secret (a Postgres URL with a password, which the Memory controller reads and parses),
the ImplementationSource webhook secret, the AgentProvider's `spec.secretEnv` Secret (issue 13); the controller's settings carry `JANGAR_GRPC_TOKEN` and a
`DATABASE_URL` with a password, which the run recorder really uses. A run using all of them goes to
Succeeded. Then everything jangar wrote is scanned for each value (and its base64 form): the controller's
logs (structlog events and stdlib records), every Job and Pod (env literals, args, command: the whole
object), every Event of the namespace, every ConfigMap, every jangar object (status included), every row of
every table in Postgres. None may contain any of them. The test also checks that the scan is not vacuous:
the Job refers to each Secret by name, the Memory was resolved from its Secret, and records were written.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog

from jangar.api import registry
from jangar.api.refs import IMPLEMENTATIONSOURCES, MEMORIES, ref_for
from jangar.controllers.kinds import (
    AGENTPROVIDERS,
    AGENTRUNS,
    AGENTS,
    CONFIGMAPS,
    EVENTS,
    JOBS,
    PODS,
    SECRETBINDINGS,
    SECRETS,
    VCSPROVIDERS,
)
from jangar.dev.cluster import LocalCluster
from jangar.dev.postgres import LocalPostgres
from jangar.runtime import Client
from jangar.storage import RunRecorder, apply_migrations
from tests.envtest.controllers_fixtures import (
    apply_basics,
    cond,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)
from tests.envtest.test_controllers_agentrun import finish_job


def _value(what: str) -> str:
    return f"leak-{what}-{secrets.token_hex(12)}"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.args!r} {record.exc_text or ''}")


def _forms(value: str) -> Iterator[str]:
    yield value
    yield base64.b64encode(value.encode()).decode()


def _leaks(where: str, blob: str, values: dict[str, str]) -> list[str]:
    return [f"{what} in {where}" for what, v in values.items() for form in _forms(v) if form in blob]


async def _all_rows(database_url: str) -> tuple[str, int]:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = [
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        rows: list[str] = []
        for table in tables:
            rows += [r[0] for r in await conn.fetch(f'SELECT t::text FROM "{table}" t')]
    finally:
        await conn.close()
    return "\n".join(rows), len(rows)


async def test_no_secret_value_reaches_logs_jobs_events_configmaps_statuses_or_postgres(
    envtest: LocalCluster,
    client: Client,
    namespace: str,
    database_url: str,
    postgres_server: LocalPostgres,
) -> None:
    values = {
        "run secret": _value("run"),
        "vcs token": _value("vcstoken"),
        "github app key": _value("appkey"),
        "codex auth": _value("codexauth"),
        "memory password": _value("mempw"),
        "webhook secret": _value("webhook"),
        "grpc token": _value("grpc"),
        "database password": _value("dbpw"),
        "provider secretEnv": _value("providerenv"),  # issue 13: AgentProvider spec.secretEnv
    }
    # The recorder connects as a role with a password (the URL carries it, as DATABASE_URL does in the chart).
    role = f"r_{uuid.uuid4().hex[:10]}"
    postgres_server.psql(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{values['database password']}'")
    db_url = database_url.replace("://postgres@", f"://{role}:{values['database password']}@")
    await apply_migrations(db_url)

    def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": namespace}, "stringData": data}

    for body in (
        secret("run-env", {"API_KEY": values["run secret"]}),
        secret("vcs-token", {"token": values["vcs token"]}),
        secret("gh-app-key", {"privateKey": values["github app key"]}),
        secret("codex-auth", {"auth.json": json.dumps({"OPENAI_API_KEY": values["codex auth"]})}),
        secret("memory-conn", {"url": f"postgresql://mem:{values['memory password']}@memdb:5432/app"}),
        secret("webhook", {"token": values["webhook secret"]}),
        secret("provider-env", {"api-key": values["provider secretEnv"]}),
    ):
        await client.create(SECRETS, body)

    settings = settings_for(
        namespace,
        JANGAR_GRPC_TOKEN=values["grpc token"],
        DATABASE_URL=db_url,
        JANGAR_AGENTS_CONTROLLER_AUTH_SECRET_NAME="codex-auth",
    )
    records = _Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    recorder = RunRecorder(db_url, initial_backoff=0.05)
    await recorder.start()
    try:
        with structlog.testing.capture_logs() as events_logged:
            async with running_controller(envtest.kubeconfig, settings, recorder=recorder):
                await apply_basics(client, namespace)
                await client.patch(
                    AGENTPROVIDERS,
                    "codex",
                    {
                        "spec": {
                            "secretEnv": [
                                {
                                    "name": "PROVIDER_KEY",
                                    "secretKeyRef": {"name": "provider-env", "key": "api-key"},
                                }
                            ]
                        }
                    },
                    namespace=namespace,
                )
                await client.patch(
                    AGENTS,
                    "coder",
                    {"spec": {"memoryRef": {"name": "mem"}}},
                    namespace=namespace,
                )
                await client.create(
                    MEMORIES,
                    {
                        "metadata": {"name": "mem", "namespace": namespace},
                        "spec": {"type": "postgres", "connection": {"secretRef": {"name": "memory-conn"}}},
                    },
                )
                await client.create(
                    VCSPROVIDERS,
                    {
                        "metadata": {"name": "gh", "namespace": namespace},
                        "spec": {
                            "provider": "github",
                            "auth": {"method": "token", "token": {"secretRef": {"name": "vcs-token"}}},
                            "defaults": {"baseBranch": "main", "branchTemplate": "agent/{{ agentRun.name }}"},
                        },
                    },
                )
                await client.create(
                    VCSPROVIDERS,
                    {
                        "metadata": {"name": "gh-app", "namespace": namespace},
                        "spec": {
                            "provider": "github",
                            "auth": {
                                "method": "app",
                                "app": {
                                    "appId": 1,
                                    "installationId": 2,
                                    "privateKeySecretRef": {"name": "gh-app-key", "key": "privateKey"},
                                },
                            },
                        },
                    },
                )
                await client.create(
                    IMPLEMENTATIONSOURCES,
                    {
                        "metadata": {"name": "issues", "namespace": namespace},
                        "spec": {
                            "provider": "github",
                            "auth": {"secretRef": {"name": "webhook", "key": "token"}},
                            "webhook": {"enabled": True},
                        },
                    },
                )
                await client.create(
                    SECRETBINDINGS,
                    {
                        "metadata": {"name": "all", "namespace": namespace},
                        "spec": {
                            "subjects": [{"kind": "Agent", "name": "coder"}],
                            "allowedSecrets": ["run-env", "vcs-token", "memory-conn"],
                        },
                    },
                )
                spec = {
                    "vcsRef": {"name": "gh"},
                    "secrets": ["run-env", "memory-conn"],
                    "parameters": {"prompt": "hi", "repository": "acme/demo"},
                }
                await client.create(AGENTRUNS, run(namespace, "leak", **spec))
                await wait_phase(client, namespace, "leak", "Running", timeout=60)
                await finish_job(client, namespace, "leak-job", ok=True)
                await wait_phase(client, namespace, "leak", "Succeeded", timeout=60)

                async def resolved(kind: str, name: str, reason: str) -> Any:
                    obj = await client.get(ref_for(kind), name, namespace)
                    return obj if cond(obj, "Ready").get("reason") == reason else None

                memory = await eventually(
                    lambda: resolved("Memory", "mem", "SecretResolved"), timeout=60, what="Memory resolved"
                )
                await eventually(
                    lambda: cond_set(client, VCSPROVIDERS, "gh-app", namespace), timeout=60, what="app VCS"
                )
                await eventually(
                    lambda: cond_set(client, IMPLEMENTATIONSOURCES, "issues", namespace),
                    timeout=60,
                    what="ImplementationSource checked",
                )
                assert await recorder.flush(timeout=30)
    finally:
        await recorder.close(timeout=5)
        root.removeHandler(records)
        root.setLevel(old_level)

    # -- the scan is not vacuous: the run used each Secret by name, the Memory read its Secret ----------------
    job = await client.get(JOBS, "leak-job", namespace)
    job_text = json.dumps(job)
    for name in ("run-env", "vcs-token", "memory-conn", "codex-auth", "provider-env"):
        assert name in job_text, f"the Job does not use Secret {name}"
    assert memory["status"].get("connection") or memory["status"]["conditions"]
    rows, row_count = await _all_rows(db_url)
    assert row_count > 0 and "leak" in rows

    # -- the scan -----------------------------------------------------------------------------------------------
    found: list[str] = []
    found += _leaks("structlog events", "\n".join(map(repr, events_logged)), values)
    found += _leaks("stdlib log records", "\n".join(records.lines), values)
    for ref, what in ((JOBS, "a Job"), (PODS, "a Pod"), (EVENTS, "an Event"), (CONFIGMAPS, "a ConfigMap")):
        for obj in (await client.list(ref, namespace)).items:
            found += _leaks(f"{what} {obj['metadata']['name']}", json.dumps(obj), values)
    for info in registry.KINDS:
        for obj in (await client.list(ref_for(info.kind), namespace)).items:
            found += _leaks(f"{info.kind} {obj['metadata']['name']}", json.dumps(obj), values)
    found += _leaks("Postgres rows", rows, values)
    assert not found, "secret values leaked: " + "; ".join(found)
    assert len(events_logged) > 10  # the controller did log (the structlog capture saw it)


async def cond_set(client: Client, ref: Any, name: str, namespace: str) -> Any:
    obj = await client.get(ref, name, namespace)
    return obj if cond(obj, "Ready").get("status") in ("True", "False") else None

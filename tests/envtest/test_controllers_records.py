"""The controller writes run records through the real Postgres RunRecorder (envtest tier, with Postgres).

The `client` fixture (CRDs installed) comes from tests/envtest/conftest.py."""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]

from jangar.controllers.kinds import AGENTRUNS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client
from jangar.storage import RunRecorder, apply_migrations
from tests.envtest.controllers_fixtures import (
    apply_basics,
    eventually,
    run,
    running_controller,
    settings_for,
    wait_phase,
)
from tests.envtest.test_controllers_agentrun import finish_job


async def test_run_history_reaches_postgres(
    envtest: LocalCluster, client: Client, namespace: str, database_url: str
) -> None:
    await apply_migrations(database_url)
    recorder = RunRecorder(database_url, initial_backoff=0.05)
    await recorder.start()
    try:
        async with running_controller(envtest.kubeconfig, settings_for(namespace), recorder=recorder):
            await apply_basics(client, namespace)
            await client.create(AGENTRUNS, run(namespace, "db1"))
            obj = await wait_phase(client, namespace, "db1", "Running")
            await finish_job(client, namespace, "db1-job", ok=True)
            await wait_phase(client, namespace, "db1", "Succeeded")
            assert await recorder.flush(timeout=10)
    finally:
        await recorder.close(timeout=5)
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        row = await conn.fetchrow(
            "SELECT * FROM agent_run_records WHERE run_uid = $1", obj["metadata"]["uid"]
        )
        phases = [
            r["to_phase"]
            for r in await conn.fetch(
                "SELECT to_phase FROM agent_run_transitions WHERE run_uid = $1 ORDER BY at, id",
                obj["metadata"]["uid"],
            )
        ]
    finally:
        await conn.close()
    assert row is not None
    assert (row["name"], row["phase"], row["agent"]) == ("db1", "Succeeded", "coder")
    assert row["job_name"] == "db1-job"
    assert phases[-2:] == ["Running", "Succeeded"]


async def test_a_terminal_run_whose_record_was_never_written_gets_it_from_a_fresh_controller(
    envtest: LocalCluster, client: Client, namespace: str, database_url: str
) -> None:
    """The run finished while nothing recorded it (the database was unreachable and the controller then
    crashed, or records were off): the next controller's first reconcile of the terminal run writes it."""
    async with running_controller(envtest.kubeconfig, settings_for(namespace)):  # no recorder at all
        await apply_basics(client, namespace)
        await client.create(AGENTRUNS, run(namespace, "late1"))
        await wait_phase(client, namespace, "late1", "Running")
        await finish_job(client, namespace, "late1-job", ok=False)
        obj = await wait_phase(client, namespace, "late1", "Failed")
    await apply_migrations(database_url)
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM agent_run_records") == 0
    finally:
        await conn.close()
    recorder = RunRecorder(database_url, initial_backoff=0.05)
    await recorder.start()
    try:
        async with running_controller(envtest.kubeconfig, settings_for(namespace), recorder=recorder):

            async def recorded() -> Any:
                c = await asyncpg.connect(dsn)
                try:
                    return await c.fetchrow(
                        "SELECT * FROM agent_run_records WHERE run_uid = $1", obj["metadata"]["uid"]
                    )
                finally:
                    await c.close()

            row = await eventually(recorded, timeout=60, interval=0.5, what="the terminal run's record")
    finally:
        await recorder.close(timeout=5)
    assert (row["name"], row["phase"], row["agent"], row["provider"]) == ("late1", "Failed", "coder", "codex")
    assert row["finished_at"] is not None and row["job_name"] == "late1-job"

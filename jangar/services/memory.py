"""`MemoryService`: query and write a postgres Memory's rows — the rules behind `POST /v1/memory-queries`
and `POST /v1/memory-records` (docs/memory.md).

* **which Memory**: `memoryRef` (`name` or `namespace/name`) in a namespace the controller manages
  (`NamespaceScope`); it must exist (`NotFound`) and be `type: postgres` (`InvalidRequest`: the other types
  have no query adapter).
* **connection**: the Memory's Secret, read at request time and interpreted by
  `jangar.validation.memory.postgres_dsn` (the same rules as the Memory controller's Ready). A missing or
  unusable Secret, or a database that does not answer, is `MemoryUnavailable` (HTTP 503) with the reason.
* **table**: `public.memory_embeddings` (`SCHEMA_SQL`), one row per `(dataset, key)`; `dataset` is the
  Memory's name (the reference's convention). Writes create the extension and the table when absent (the
  database role needs that right, or an operator creates them first, e.g. with `vector(N)` and an index);
  queries never create anything.
* **query**: `embedding` → nearest neighbours, `ORDER BY embedding <-> $1` (L2, the default) or `<=>`
  (`distance: cosine`; `score` = 1 - distance, as the reference); `key` → that row; `text` alone → rows whose
  content contains it (case-insensitive, by key). `limit` 1 to 100, default 10. Jangar computes no
  embeddings: the caller sends the vector (the reference's SHA-256 "fallback" vectors were not embeddings).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from prometheus_client import CollectorRegistry

from jangar.api.refs import MEMORIES
from jangar.runtime import Client, NotFoundError
from jangar.runtime.resources import SECRETS
from jangar.services.errors import InvalidRequest, NotFound, ServiceError
from jangar.services.memory_metrics import MemoryMetrics
from jangar.services.scope import NamespaceScope
from jangar.settings import Settings
from jangar.validation.memory import decoded_secret_data, postgres_dsn

log = structlog.get_logger("jangar.services.memory")

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "SCHEMA_SQL",
    "MemoryQuery",
    "MemoryRecord",
    "MemoryService",
    "MemoryUnavailable",
]

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_DIMENSIONS = 16000  # pgvector's limit for the vector type
MAX_RECORDS = 500
CONNECT_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 30.0

SCHEMA_SQL = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS public.memory_embeddings (
    dataset    text        NOT NULL,
    key        text        NOT NULL,
    content    text        NOT NULL DEFAULT '',
    embedding  vector      NOT NULL,
    metadata   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, key)
);
"""

_OPERATORS = {"l2": "<->", "cosine": "<=>"}


class MemoryUnavailable(ServiceError):
    """The Memory's store cannot be used right now (Secret missing or unusable, database unreachable)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class MemoryQuery:
    memory: str
    namespace: str | None = None
    embedding: tuple[float, ...] | None = None
    key: str | None = None
    text: str | None = None
    limit: int = DEFAULT_LIMIT
    distance: str = "l2"


@dataclass(frozen=True)
class MemoryRecord:
    key: str
    embedding: tuple[float, ...]
    content: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _vector(values: object, what: str) -> tuple[float, ...]:
    if not isinstance(values, list | tuple) or not values:
        raise InvalidRequest(f"{what} must be a non-empty array of numbers")
    if len(values) > MAX_DIMENSIONS:
        raise InvalidRequest(f"{what} has {len(values)} dimensions; at most {MAX_DIMENSIONS}")
    out: list[float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidRequest(f"{what} must contain only finite numbers")
        out.append(float(v))
    return tuple(out)


def _literal(vector: Sequence[float]) -> str:
    """pgvector's text form, `[1.0,2.0]` (bound as a parameter and cast with `::vector`)."""
    return "[" + ",".join(repr(v) for v in vector) + "]"


def parse_query(body: object) -> MemoryQuery:
    """`{memoryRef, namespace, embedding | key | text (query), limit, distance}`."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    memory, namespace = _memory_ref(body)
    embedding = _vector(body["embedding"], "embedding") if body.get("embedding") is not None else None
    key = str(body["key"]) if body.get("key") not in (None, "") else None
    text = body.get("text", body.get("query"))
    text = str(text) if text not in (None, "") else None
    if embedding is None and key is None and text is None:
        raise InvalidRequest("one of embedding, key or text is required (jangar computes no embeddings)")
    limit = body.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    distance = str(body.get("distance") or "l2")
    if distance not in _OPERATORS:
        raise InvalidRequest("distance must be l2 or cosine")
    return MemoryQuery(memory, namespace, embedding, key, text, limit, distance)


def parse_records(body: object) -> tuple[str, str | None, list[MemoryRecord]]:
    """`{memoryRef, namespace, records: [{key, embedding, content, metadata}]}`."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    memory, namespace = _memory_ref(body)
    raw = body.get("records")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("records must be a non-empty array")
    if len(raw) > MAX_RECORDS:
        raise InvalidRequest(f"at most {MAX_RECORDS} records per request")
    records: list[MemoryRecord] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("key"):
            raise InvalidRequest(f"records[{i}].key is required")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidRequest(f"records[{i}].metadata must be an object")
        content = item.get("content") or ""
        if not isinstance(content, str):
            raise InvalidRequest(f"records[{i}].content must be a string")
        embedding = _vector(item.get("embedding"), f"records[{i}].embedding")
        records.append(MemoryRecord(str(item["key"]), embedding, content, metadata))
    if len({r.key for r in records}) != len(records):
        raise InvalidRequest("record keys must be unique within a request")
    return memory, namespace, records


def _memory_ref(body: Mapping[str, Any]) -> tuple[str, str | None]:
    ref = body.get("memoryRef", body.get("memory"))
    name = ref.get("name") if isinstance(ref, dict) else ref
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("memoryRef is required (a name, namespace/name or {name})")
    namespace = body.get("namespace")
    name = name.strip()
    if "/" in name:
        ns, _, name = name.partition("/")
        if namespace and namespace != ns:
            raise InvalidRequest(f"memoryRef namespace {ns!r} disagrees with namespace {namespace!r}")
        namespace = ns
    return name, str(namespace) if namespace else None


def _result_of(exc: BaseException) -> str:
    if isinstance(exc, MemoryUnavailable):
        return "unavailable"
    if isinstance(exc, NotFound):
        return "not_found"
    if isinstance(exc, InvalidRequest):
        return "invalid"
    return "error"


class MemoryService:
    def __init__(self, client: Client, scope: NamespaceScope, metrics: MemoryMetrics | None = None) -> None:
        self.client = client
        self.scope = scope
        self.metrics = metrics if metrics is not None else MemoryMetrics(None)

    @classmethod
    def from_settings(
        cls, client: Client, settings: Settings, registry: CollectorRegistry | None = None
    ) -> MemoryService:
        return cls(client, NamespaceScope.from_settings(settings), MemoryMetrics(registry))

    async def _dsn(self, name: str, requested_ns: str | None) -> tuple[str, str]:
        """(dsn, namespace) of a postgres Memory."""
        namespace = self.scope.resolve(requested_ns)
        try:
            memory = await self.client.get(MEMORIES, name, namespace)
        except NotFoundError:
            raise NotFound("Memory", namespace, name) from None
        spec = memory.get("spec") or {}
        if spec.get("type") != "postgres":
            raise InvalidRequest(
                f"Memory {namespace}/{name} is type {spec.get('type')!r}: only postgres memories are queryable"
            )
        ref = (spec.get("connection") or {}).get("secretRef") or {}
        secret_name = str(ref.get("name") or "")
        try:
            secret = await self.client.get(SECRETS, secret_name, namespace)
        except NotFoundError:
            raise MemoryUnavailable(
                f"secret {secret_name!r} of Memory {namespace}/{name} not found", "SecretNotFound"
            ) from None
        try:
            dsn = postgres_dsn(decoded_secret_data(secret), str(ref["key"]) if ref.get("key") else None)
        except ValueError as err:
            raise MemoryUnavailable(f"Memory {namespace}/{name}: {err}", "InvalidConnection") from None
        return dsn, namespace

    async def _connect(self, dsn: str, what: str) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(
                dsn, timeout=CONNECT_TIMEOUT_SECONDS, command_timeout=COMMAND_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            log.warning("memory.connect_failed", memory=what, error=type(err).__name__)
            raise MemoryUnavailable(
                f"Memory {what}: database unreachable ({type(err).__name__})", "Unreachable"
            ) from None

    async def query(self, q: MemoryQuery) -> dict[str, Any]:
        """`_query`, counted (`jangar_memory_queries_total{result}`) and timed."""
        mode = "key" if q.key is not None else "embedding" if q.embedding is not None else "text"
        start = time.perf_counter()
        result = "error"
        try:
            answer = await self._query(q)
            result = "ok" if answer["results"] else "empty"
            return answer
        except Exception as exc:
            result = _result_of(exc)
            raise
        finally:
            self.metrics.queries.labels(result).inc()
            self.metrics.query_seconds.labels(mode).observe(time.perf_counter() - start)

    async def _query(self, q: MemoryQuery) -> dict[str, Any]:
        dsn, namespace = await self._dsn(q.memory, q.namespace)
        conn = await self._connect(dsn, f"{namespace}/{q.memory}")
        try:
            rows = await self._select(conn, q)
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedObjectError):
            rows = []  # nothing was ever written (no table, or not even the vector extension)
        except asyncpg.DataError as err:  # e.g. a vector of another dimension
            raise InvalidRequest(f"query rejected by the database: {err}") from None
        finally:
            await conn.close()
        results = []
        for row in rows:
            item: dict[str, Any] = {
                "key": row["key"],
                "content": row["content"],
                "metadata": json.loads(row["metadata"])
                if isinstance(row["metadata"], str)
                else row["metadata"],
            }
            if q.embedding is not None and q.key is None:
                item["distance"] = float(row["distance"])
                if q.distance == "cosine":
                    item["score"] = 1.0 - float(row["distance"])
            results.append(item)
        return {"memory": {"namespace": namespace, "name": q.memory}, "results": results}

    async def _select(self, conn: asyncpg.Connection, q: MemoryQuery) -> list[asyncpg.Record]:
        base = "SELECT key, content, metadata::text AS metadata"
        if q.key is not None:
            sql = f"{base} FROM public.memory_embeddings WHERE dataset = $1 AND key = $2"
            return list(await conn.fetch(sql, q.memory, q.key))
        if q.embedding is not None:
            op = _OPERATORS[q.distance]
            sql = (
                f"{base}, embedding {op} $2::vector AS distance FROM public.memory_embeddings"
                f" WHERE dataset = $1 ORDER BY embedding {op} $2::vector LIMIT $3"
            )
            return list(await conn.fetch(sql, q.memory, _literal(q.embedding), q.limit))
        sql = (
            f"{base} FROM public.memory_embeddings WHERE dataset = $1"
            " AND strpos(lower(content), lower($2)) > 0 ORDER BY key LIMIT $3"
        )
        return list(await conn.fetch(sql, q.memory, q.text, q.limit))

    async def upsert(
        self, memory: str, namespace: str | None, records: Sequence[MemoryRecord]
    ) -> dict[str, Any]:
        """`_upsert`, counted (`jangar_memory_writes_total{result}`, `jangar_memory_records_written_total`)."""
        try:
            answer = await self._upsert(memory, namespace, records)
        except Exception as exc:
            self.metrics.writes.labels(_result_of(exc)).inc()
            raise
        self.metrics.writes.labels("ok").inc()
        self.metrics.records_written.labels(answer["memory"]["namespace"]).inc(answer["upserted"])
        return answer

    async def _upsert(
        self, memory: str, namespace: str | None, records: Sequence[MemoryRecord]
    ) -> dict[str, Any]:
        dsn, ns = await self._dsn(memory, namespace)
        conn = await self._connect(dsn, f"{ns}/{memory}")
        try:
            async with conn.transaction():
                await conn.execute(SCHEMA_SQL)
                await conn.executemany(
                    "INSERT INTO public.memory_embeddings (dataset, key, content, embedding, metadata)"
                    " VALUES ($1, $2, $3, $4::vector, $5::jsonb)"
                    " ON CONFLICT (dataset, key) DO UPDATE SET content = EXCLUDED.content,"
                    " embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata, updated_at = now()",
                    [
                        (memory, r.key, r.content, _literal(r.embedding), json.dumps(dict(r.metadata)))
                        for r in records
                    ],
                )
        except asyncpg.InsufficientPrivilegeError as err:
            raise MemoryUnavailable(
                f"Memory {ns}/{memory}: the database role cannot create the vector extension or the table: {err}",
                "InsufficientPrivilege",
            ) from None
        except asyncpg.DataError as err:
            raise InvalidRequest(f"records rejected by the database: {err}") from None
        finally:
            await conn.close()
        return {"memory": {"namespace": ns, "name": memory}, "upserted": len(records)}

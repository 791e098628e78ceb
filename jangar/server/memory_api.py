"""`POST /v1/memory-queries` and `POST /v1/memory-records`: query and write a postgres Memory's
`memory_embeddings` rows over HTTP — a protocol adapter over `jangar.services.memory.MemoryService`
(docs/memory.md has the request and answer shapes).

Errors: 400 bad input (or a Memory of another type, or a vector the table rejects), 403 namespace not
managed, 404 no such Memory, 503 the store is unavailable (`reason`: `SecretNotFound`, `InvalidConnection`,
`Unreachable`, `InsufficientPrivilege`). No `Idempotency-Key` is needed: a query reads, a write is an
upsert on `(dataset, key)`.

Like every HTTP API route these need an authenticated caller (401) with a permission on the Memory
(403): a query needs `get memories <name>`, a write `update memories <name>` (the rows are the Memory's
content; docs/security.md).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from jangar.access import on
from jangar.api.refs import MEMORIES
from jangar.server.agentruns_api import _mapped
from jangar.server.auth import require
from jangar.services.errors import InvalidRequest
from jangar.services.memory import MemoryService, MemoryUnavailable, parse_query, parse_records

__all__ = ["MemoryApi"]


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except json.JSONDecodeError as err:
        raise InvalidRequest(f"request body is not JSON: {err}") from None


def _unavailable(exc: MemoryUnavailable) -> web.Response:
    return web.json_response({"error": exc.message, "reason": exc.reason}, status=503)


class MemoryApi:
    def __init__(self, memories: MemoryService) -> None:
        self.memories = memories

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/memory-queries", _mapped(self.query)),
            web.post("/v1/memory-records", _mapped(self.upsert)),
        ]

    async def query(self, request: web.Request) -> web.Response:
        q = parse_query(await _body(request))
        await require(request, on(MEMORIES, "get", self.memories.scope.resolve(q.namespace), q.memory))
        try:
            result = await self.memories.query(q)
        except MemoryUnavailable as exc:
            return _unavailable(exc)
        return web.json_response({"ok": True, **result})

    async def upsert(self, request: web.Request) -> web.Response:
        memory, namespace, records = parse_records(await _body(request))
        await require(request, on(MEMORIES, "update", self.memories.scope.resolve(namespace), memory))
        try:
            result = await self.memories.upsert(memory, namespace, records)
        except MemoryUnavailable as exc:
            return _unavailable(exc)
        return web.json_response({"ok": True, **result})

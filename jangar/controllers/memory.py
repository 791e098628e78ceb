"""Memory: a type and a connection Secret whose keys make a connection of that type.

Per type (`jangar.validation.memory`, docs/memory.md): postgres needs a `postgres://`/`postgresql://` URL
(`secretRef.key`, else `url`/`uri`/`connectionString`) or host, database and username; redis a `redis://`
URL or a host; weaviate an http(s) URL or a host; pinecone an `apiKey` plus `index` or `host`; custom only the
named key. Ready is `SecretResolved` (the reference's reason) with where the connection points (never a
credential); else `InvalidSpec` with `MissingType`, `MissingSecretRef`, `SecretKeyMissing`,
`MissingConnectionKeys` or `InvalidConnectionString`, or `Unreachable/SecretNotFound`. The controller does not
connect: Ready means the configuration is complete, not that the store answers.

`Queryable` says whether `POST /v1/memory-queries` serves this Memory (postgres only).

The reference stamped `lastCheckedAt` on every pass (a self-triggering loop, §12.5); this writes nothing
unless the verdict changes. The Secret is not watched: an unresolved one is re-checked every 60 s, a
resolved one every 5 minutes (a GET, and a status write only if the verdict changed).
"""

from __future__ import annotations

from jangar.api.shape import as_map
from jangar.controllers.status import Cond
from jangar.controllers.supporting import CheckEnv, Verdict, invalid, ready, unreachable
from jangar.runtime import JsonObject, NotFoundError
from jangar.validation.memory import connection_problem, connection_summary, decoded_secret_data

__all__ = ["MEMORY_RECHECK_SECONDS", "check_memory"]

#: How often a Ready Memory's Secret is read again (the Secret is not watched).
MEMORY_RECHECK_SECONDS = 300.0

QUERYABLE_TYPES = frozenset({"postgres"})


def _queryable(memory_type: str, ok: bool) -> Cond:
    if memory_type not in QUERYABLE_TYPES:
        return Cond(
            "Queryable",
            False,
            "QueryUnsupported",
            f"POST /v1/memory-queries serves postgres memories only, not {memory_type!r}",
        )
    if not ok:
        return Cond("Queryable", False, "ConnectionUnresolved", "the connection secret is not usable yet")
    return Cond("Queryable", True, "MemoryQueriesServed", "POST /v1/memory-queries serves this memory")


async def check_memory(obj: JsonObject, env: CheckEnv) -> Verdict:
    from jangar.controllers.kinds import SECRETS

    ns = obj["metadata"]["namespace"]
    spec = obj.get("spec") or {}
    memory_type = str(spec.get("type") or "")
    if not memory_type:
        return invalid("MissingType", "spec.type is required (postgres, redis, weaviate, pinecone or custom)")
    secret_ref = as_map(as_map(spec.get("connection")).get("secretRef"))
    name = str(secret_ref.get("name") or "")
    if not name:
        return invalid(
            "MissingSecretRef",
            "spec.connection.secretRef.name is required",
            conditions=(_queryable(memory_type, False),),
        )
    key = str(secret_ref["key"]) if secret_ref.get("key") else None
    try:
        secret = await env.client.get(SECRETS, name, ns)
    except NotFoundError:
        return unreachable(
            "SecretNotFound",
            f"secret {name!r} not found in namespace {ns!r}: create it with the {memory_type} connection",
            conditions=(_queryable(memory_type, False),),
        )
    data = decoded_secret_data(secret)
    problem = connection_problem(memory_type, data, name, key)
    if problem is not None:
        return invalid(
            problem.reason,
            problem.message,
            conditions=(_queryable(memory_type, False),),
            requeue_after=60.0,
        )
    where = connection_summary(memory_type, data, key)
    used = f" key {key!r}" if key else ""
    message = f"{memory_type} connection from secret {name!r}{used}" + (f" ({where})" if where else "")
    return ready(
        "SecretResolved",
        message,
        conditions=(_queryable(memory_type, True),),
        requeue_after=MEMORY_RECHECK_SECONDS,
    )

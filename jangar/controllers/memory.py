"""Memory: a type and a connection Secret that exists (and has the named key).

The reference stamped `lastCheckedAt` on every pass (a self-triggering loop, §12.5); this writes nothing
unless the verdict changes.
"""

from __future__ import annotations

from jangar.controllers.supporting import CheckEnv, Verdict, invalid, read_secret_key, ready
from jangar.runtime import JsonObject

__all__ = ["check_memory"]


async def check_memory(obj: JsonObject, env: CheckEnv) -> Verdict:
    ns = obj["metadata"]["namespace"]
    spec = obj.get("spec") or {}
    if not spec.get("type"):
        return invalid("MissingType", "spec.type is required")
    secret_ref = (spec.get("connection") or {}).get("secretRef") or {}
    if not secret_ref.get("name"):
        return invalid("MissingSecretRef", "spec.connection.secretRef.name is required")
    key = secret_ref.get("key")
    problem = await read_secret_key(env.client, ns, str(secret_ref["name"]), str(key) if key else None)
    if problem is not None:
        return problem
    return ready("SecretResolved", f"connection secret {secret_ref['name']} found")

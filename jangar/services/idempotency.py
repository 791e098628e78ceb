"""Create an AgentRun (or an OrchestrationRun or ToolRun, keyed by `spec.deliveryId`), or recognise a replay of
the same submission.

The API server's AlreadyExists is the arbiter (no read-then-write race): a taken name is a **replay** when the
existing run carries the same `spec.idempotencyKey` (the existing run is returned, nothing is written), and a
**conflict** (`AlreadyExists`) when it has another key or the submission has none (an explicit name reused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jangar.api.refs import AGENTRUNS
from jangar.runtime import AlreadyExistsError, Client, JsonObject, NotFoundError, ResourceRef
from jangar.services.errors import AlreadyExists

__all__ = ["Submitted", "create_or_replay", "existing_replay"]


@dataclass(frozen=True)
class Submitted:
    run: JsonObject
    replayed: bool
    """True when the run existed already with this idempotency key (HTTP 200 instead of 201)."""


def _key(manifest: dict[str, Any], key_field: str) -> str | None:
    return (manifest.get("spec") or {}).get(key_field) or None


def _check_replay(
    manifest: dict[str, Any], existing: JsonObject, ref: ResourceRef, key_field: str
) -> Submitted:
    meta = manifest["metadata"]
    key = _key(manifest, key_field)
    if key is None or (existing.get("spec") or {}).get(key_field) != key:
        raise AlreadyExists(ref.kind, meta["namespace"], meta["name"])
    return Submitted(existing, replayed=True)


async def existing_replay(
    client: Client,
    manifest: dict[str, Any],
    *,
    ref: ResourceRef = AGENTRUNS,
    key_field: str = "idempotencyKey",
) -> Submitted | None:
    """The existing run when `manifest` (with a fixed name) was submitted before, None when the name is free.

    Raises `AlreadyExists` when the name is taken by another submission. `ref`/`key_field`: the kind and
    the spec field holding its key (`deliveryId` for OrchestrationRuns and ToolRuns)."""
    meta = manifest["metadata"]
    if not meta.get("name"):
        return None
    try:
        existing = await client.get(ref, meta["name"], meta["namespace"])
    except NotFoundError:
        return None
    return _check_replay(manifest, existing, ref, key_field)


async def create_or_replay(
    client: Client,
    manifest: dict[str, Any],
    *,
    ref: ResourceRef = AGENTRUNS,
    key_field: str = "idempotencyKey",
) -> Submitted:
    """Create the run; on AlreadyExists return the existing run if this is a replay, else `AlreadyExists`."""
    meta = manifest["metadata"]
    try:
        created = await client.create(ref, manifest, namespace=meta["namespace"])
    except AlreadyExistsError:
        replay = await existing_replay(client, manifest, ref=ref, key_field=key_field)
        if replay is None:  # deleted in between: the name is free again
            created = await client.create(ref, manifest, namespace=meta["namespace"])
        else:
            return replay
    return Submitted(created, replayed=False)

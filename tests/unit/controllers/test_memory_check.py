"""The Memory check per type over a fake Secret read: reasons, messages, Queryable and requeues."""

from __future__ import annotations

from typing import Any, cast

import pytest

from jangar.controllers.kinds import SECRETS
from jangar.controllers.memory import MEMORY_RECHECK_SECONDS, check_memory
from jangar.controllers.supporting import CheckEnv, Verdict
from jangar.runtime import Client, NotFoundError, ResourceRef
from jangar.runtime.testing import FakeCache
from jangar.settings import Settings

NS = "agents"


class Secrets:
    """`client.get` for Secrets only."""

    def __init__(self, **secrets: dict[str, str]) -> None:
        self.secrets = secrets

    async def get(self, ref: ResourceRef, name: str, namespace: str | None = None) -> dict[str, Any]:
        assert ref is SECRETS and namespace == NS
        if name not in self.secrets:
            raise NotFoundError(404, f"secrets {name!r} not found")
        return {"metadata": {"name": name, "namespace": NS}, "stringData": self.secrets[name]}


def memory(memory_type: str | None, secret: str | None = "s", key: str | None = None) -> dict[str, Any]:
    ref = {k: v for k, v in {"name": secret, "key": key}.items() if v}
    spec: dict[str, Any] = {"connection": {"secretRef": ref}}
    if memory_type:
        spec["type"] = memory_type
    return {"metadata": {"name": "m", "namespace": NS, "generation": 1}, "spec": spec}


async def check(obj: dict[str, Any], **secrets: dict[str, str]) -> Verdict:
    env = CheckEnv(settings=Settings.from_env({}), client=cast(Client, Secrets(**secrets)), cache=FakeCache())
    return await check_memory(obj, env)


def queryable(v: Verdict) -> tuple[bool | str, str]:
    (cond,) = [c for c in v.conditions if c.type == "Queryable"]
    return cond.status, cond.reason


async def test_postgres_ready_and_queryable() -> None:
    v = await check(memory("postgres", key="url"), s={"url": "postgresql://a:pw@db:5432/agents"})
    assert (v.ready, v.reason) == (True, "SecretResolved")
    assert v.message == "postgres connection from secret 's' key 'url' (db:5432/agents)"
    assert "pw" not in v.message
    assert queryable(v) == (True, "MemoryQueriesServed")
    assert v.requeue_after == MEMORY_RECHECK_SECONDS


@pytest.mark.parametrize(
    ("obj", "secrets", "reason", "unreachable"),
    [
        (memory(None), {"s": {}}, "MissingType", False),
        (memory("postgres", secret=None), {}, "MissingSecretRef", False),
        (memory("postgres"), {}, "SecretNotFound", True),
        (memory("postgres", key="url"), {"s": {"dsn": "postgresql://h/d"}}, "SecretKeyMissing", False),
        (memory("postgres"), {"s": {"url": "mysql://h/d"}}, "InvalidConnectionString", False),
        (memory("postgres"), {"s": {"password": "x"}}, "MissingConnectionKeys", False),
        (memory("pinecone"), {"s": {"apiKey": "k"}}, "MissingConnectionKeys", False),
    ],
)
async def test_not_ready(
    obj: dict[str, Any], secrets: dict[str, Any], reason: str, unreachable: bool
) -> None:
    v = await check(obj, **secrets)
    assert (v.ready, v.reason, v.unreachable, v.invalid) == (False, reason, unreachable, not unreachable)
    assert v.message
    if reason not in ("MissingType", "MissingSecretRef"):
        assert v.requeue_after == 60.0  # the Secret is not watched: look again
    if reason != "MissingType":
        expected = "ConnectionUnresolved" if obj["spec"]["type"] == "postgres" else "QueryUnsupported"
        assert queryable(v) == (False, expected)


async def test_other_types_are_ready_but_not_queryable() -> None:
    v = await check(memory("redis"), s={"url": "redis://r:6379/0"})
    assert (v.ready, v.reason) == (True, "SecretResolved")
    assert queryable(v) == (False, "QueryUnsupported")
    v = await check(memory("custom"), s={})
    assert v.ready and queryable(v)[1] == "QueryUnsupported"

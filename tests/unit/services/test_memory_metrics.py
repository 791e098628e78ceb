"""`MemoryService` counts its queries by result, times them by mode and counts the records it writes
(`jangar_memory_*`), with a stand-in client and database connection."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from jangar.services import memory as memory_module
from jangar.services.errors import InvalidRequest, NotFound
from jangar.services.memory import MemoryQuery, MemoryRecord, MemoryService, MemoryUnavailable
from jangar.services.memory_metrics import MemoryMetrics
from jangar.services.scope import NamespaceScope
from tests.unit.services.fakes import FakeClient


class FakeConnection:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.executed: list[Any] = []

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return self.rows

    async def execute(self, sql: str) -> None:
        self.executed.append(sql)

    async def executemany(self, sql: str, rows: list[Any]) -> None:
        self.executed.extend(rows)

    def transaction(self) -> Any:
        class _Tx:
            async def __aenter__(self) -> None:
                return None

            async def __aexit__(self, *exc: Any) -> None:
                return None

        return _Tx()

    async def close(self) -> None:
        return None


def setup(
    monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]]
) -> tuple[MemoryService, CollectorRegistry]:
    client = FakeClient()
    client.put(
        {
            "metadata": {"name": "pg", "namespace": "agents"},
            "spec": {"type": "postgres", "connection": {"secretRef": {"name": "pg-conn", "key": "url"}}},
        }
    )
    client.put(
        {"metadata": {"name": "pg-conn", "namespace": "agents"}, "stringData": {"url": "postgresql://x/db"}}
    )
    client.put({"metadata": {"name": "redis", "namespace": "agents"}, "spec": {"type": "redis"}})
    client.put(
        {
            "metadata": {"name": "nosecret", "namespace": "agents"},
            "spec": {"type": "postgres", "connection": {"secretRef": {"name": "gone"}}},
        }
    )

    async def connect(dsn: str, **_: Any) -> FakeConnection:
        return FakeConnection(rows)

    monkeypatch.setattr(memory_module.asyncpg, "connect", connect)
    registry = CollectorRegistry()
    service = MemoryService(client, NamespaceScope(("agents",)), MemoryMetrics(registry))  # type: ignore[arg-type]
    return service, registry


def queries(registry: CollectorRegistry, result: str) -> float:
    return registry.get_sample_value("jangar_memory_queries_total", {"result": result}) or 0.0


async def test_queries_are_counted_by_result_and_timed_by_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    service, registry = setup(monkeypatch, [{"key": "k", "content": "c", "metadata": "{}", "distance": 0.5}])
    await service.query(MemoryQuery("pg", "agents", embedding=(1.0, 2.0)))
    await service.query(MemoryQuery("pg", "agents", key="k"))
    assert queries(registry, "ok") == 2
    with pytest.raises(NotFound):
        await service.query(MemoryQuery("ghost", "agents", text="x"))
    with pytest.raises(InvalidRequest):
        await service.query(MemoryQuery("redis", "agents", text="x"))
    with pytest.raises(MemoryUnavailable):
        await service.query(MemoryQuery("nosecret", "agents", text="x"))
    assert (
        queries(registry, "not_found"),
        queries(registry, "invalid"),
        queries(registry, "unavailable"),
    ) == (
        1,
        1,
        1,
    )
    count = "jangar_memory_query_duration_seconds_count"
    assert registry.get_sample_value(count, {"mode": "embedding"}) == 1
    assert registry.get_sample_value(count, {"mode": "key"}) == 1
    assert registry.get_sample_value(count, {"mode": "text"}) == 3


async def test_an_empty_answer_is_counted_as_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    service, registry = setup(monkeypatch, [])
    answer = await service.query(MemoryQuery("pg", "agents", text="nothing"))
    assert answer["results"] == [] and queries(registry, "empty") == 1 and queries(registry, "ok") == 0


async def test_written_records_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    service, registry = setup(monkeypatch, [])
    records = [MemoryRecord("a", (1.0,)), MemoryRecord("b", (2.0,))]
    await service.upsert("pg", "agents", records)
    written = "jangar_memory_records_written_total"
    assert registry.get_sample_value(written, {"namespace": "agents"}) == 2
    with pytest.raises(NotFound):
        await service.upsert("ghost", "agents", records)
    assert registry.get_sample_value(written, {"namespace": "agents"}) == 2
    assert registry.get_sample_value("jangar_memory_writes_total", {"result": "ok"}) == 1
    assert registry.get_sample_value("jangar_memory_writes_total", {"result": "not_found"}) == 1

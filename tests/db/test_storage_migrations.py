"""Migrations build the schema the models describe, apply to an empty database, and roll back."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from jangar.storage import (
    Base,
    apply_migrations,
    create_engine,
    current_revision,
    downgrade_migrations,
    migrate_on_start,
)

HEAD = "0004_agent_run_idempotency_keys"


async def _tables(url: str) -> set[str]:
    engine = create_engine(url, one_shot=True)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_creates_tables_and_downgrade_removes_them(database_url: str) -> None:
    assert await current_revision(database_url) is None

    await apply_migrations(database_url)
    assert await current_revision(database_url) == HEAD
    assert {
        "agent_run_records",
        "agent_run_transitions",
        "orchestration_run_records",
        "orchestration_run_transitions",
        "tool_run_records",
        "tool_run_transitions",
        "alembic_version",
    } <= await _tables(database_url)

    await downgrade_migrations(database_url)
    assert await current_revision(database_url) is None
    assert await _tables(database_url) == {"alembic_version"}

    await apply_migrations(database_url)
    assert await current_revision(database_url) == HEAD


async def test_applying_twice_is_a_no_op(database_url: str) -> None:
    await apply_migrations(database_url)
    await apply_migrations(database_url)
    assert await current_revision(database_url) == HEAD


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    await apply_migrations(database_url)

    def diff(sync: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(sync), Base.metadata))

    engine = create_engine(database_url, one_shot=True)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_migrate_on_start_follows_jangar_migrations(database_url: str) -> None:
    assert await migrate_on_start(database_url, {"JANGAR_MIGRATIONS": "skip"}) is False
    assert await current_revision(database_url) is None

    assert await migrate_on_start(database_url, {"JANGAR_MIGRATIONS": "auto"}) is True
    assert await current_revision(database_url) == HEAD


async def test_migrate_on_start_without_a_database_does_nothing() -> None:
    assert await migrate_on_start(None, {"JANGAR_MIGRATIONS": "auto"}) is False


async def test_postgres_scheme_urls_are_accepted(database_url: str) -> None:
    plain = database_url.replace("postgresql+asyncpg://", "postgres://")
    plain += ("&" if "?" in plain else "?") + "sslmode=disable"
    await apply_migrations(plain)
    assert await current_revision(plain) == HEAD

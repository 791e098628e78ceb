"""The db tier works: a real Postgres per session, a fresh database per test."""

from __future__ import annotations

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def test_asyncpg_and_sqlalchemy(database_url: str) -> None:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        version = await conn.fetchval("select version()")
        assert "PostgreSQL" in version
        await conn.execute("create table marker (id int)")
    finally:
        await conn.close()

    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as sa:
            assert (await sa.execute(text("select 40 + 2"))).scalar_one() == 42
            tables = (
                await sa.execute(text("select tablename from pg_tables where tablename = 'marker'"))
            ).all()
            assert len(tables) == 1
    finally:
        await engine.dispose()


async def test_each_test_gets_an_empty_database(database_url: str) -> None:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # The previous test created `marker` in its own database; this one must not see it.
        assert await conn.fetchval("select count(*) from pg_tables where tablename = 'marker'") == 0
    finally:
        await conn.close()

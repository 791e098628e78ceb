"""Alembic environment for jangar's run records.

Programmatic runs (``jangar.storage.migrate``) pass an open connection in ``config.attributes``; the
``alembic`` command line (from a checkout, with ``alembic.ini``) passes ``DATABASE_URL`` instead, and this
file opens an async engine for it.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from jangar.storage.engine import create_engine
from jangar.storage.models import Base

target_metadata = Base.metadata


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_from_url(url: str) -> None:
    engine = create_engine(url, one_shot=True)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate)
    finally:
        await engine.dispose()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = os.environ.get("DATABASE_URL") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set DATABASE_URL to run alembic against a database")
    asyncio.run(_migrate_from_url(url))


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
_main()

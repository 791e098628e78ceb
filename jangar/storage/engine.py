"""One place that builds the async engine, so every caller gets the same URL handling and pool settings."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from jangar.storage.url import DatabaseTarget, normalize_database_url


def create_engine(
    database_url: str | DatabaseTarget,
    *,
    env: Mapping[str, str] | None = None,
    pool_size: int = 2,
    one_shot: bool = False,
) -> AsyncEngine:
    """Create the process's engine for ``database_url``.

    One engine (one small pool) per process, unlike the reference, which opened a pool per request.
    ``pool_pre_ping`` throws away connections that died in a database restart, so the first write after
    an outage does not fail on a stale socket. ``one_shot`` engines (migrations, checks) keep no pool.
    """
    target = (
        database_url
        if isinstance(database_url, DatabaseTarget)
        else normalize_database_url(database_url, env)
    )
    if one_shot:
        return create_async_engine(target.url, connect_args=dict(target.connect_args), poolclass=NullPool)
    return create_async_engine(
        target.url,
        connect_args=dict(target.connect_args),
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=1800,
    )

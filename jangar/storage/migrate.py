"""Run the Alembic migrations from code, with an async engine.

The migration scripts ship inside the package (``jangar/storage/migrations``), so an installed jangar
migrates exactly like a source checkout; no ``alembic.ini`` is needed at runtime. Migrations run in one
transaction holding a Postgres advisory lock, so several replicas starting at once migrate once and the
others wait and then find nothing to do.

``JANGAR_MIGRATIONS`` decides whether the process migrates on start (reference §7): ``auto`` (the
default) migrates; ``skip``, ``disabled``, ``false``, ``0`` and ``off`` do not, nor does
``JANGAR_SKIP_MIGRATIONS=1``. Unlike the reference, an unknown value is an error rather than ``auto``, so
a typo cannot silently migrate a database somebody meant to leave alone.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from jangar.storage.engine import create_engine
from jangar.storage.url import DatabaseTarget, normalize_database_url

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary, fixed: pg_advisory_xact_lock key shared by every jangar process migrating this database.
ADVISORY_LOCK_KEY = 0x6A616E676172
_SKIP_VALUES = frozenset({"skip", "disabled", "false", "0", "off", "no"})
_AUTO_VALUES = frozenset({"", "auto", "true", "1", "on", "yes", "enabled"})


class MigrationMode(enum.StrEnum):
    """Whether the process applies migrations when it starts."""

    AUTO = "auto"
    SKIP = "skip"


def parse_migration_mode(env: Mapping[str, str] | None = None) -> MigrationMode:
    """Read ``JANGAR_MIGRATIONS`` / ``JANGAR_SKIP_MIGRATIONS`` from ``env`` (default ``os.environ``)."""
    environ = os.environ if env is None else env
    if environ.get("JANGAR_SKIP_MIGRATIONS", "").strip().lower() in ("1", "true", "yes", "on"):
        return MigrationMode.SKIP
    raw = environ.get("JANGAR_MIGRATIONS", "")
    value = raw.strip().lower()
    if value in _SKIP_VALUES:
        return MigrationMode.SKIP
    if value in _AUTO_VALUES:
        return MigrationMode.AUTO
    raise ValueError(f"JANGAR_MIGRATIONS must be 'auto' or 'skip', got {raw!r}")


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _target(database_url: str | DatabaseTarget) -> DatabaseTarget:
    return database_url if isinstance(database_url, DatabaseTarget) else normalize_database_url(database_url)


async def _run_locked(database_url: str | DatabaseTarget, action: str, revision: str) -> None:
    target = _target(database_url)
    engine = create_engine(target, one_shot=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            await conn.run_sync(_run_command, action, revision)
    finally:
        await engine.dispose()


def _run_command(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


async def apply_migrations(database_url: str | DatabaseTarget, revision: str = "head") -> None:
    """Upgrade the database at ``database_url`` to ``revision`` (default: the newest)."""
    target = _target(database_url)
    log.info("storage.migrate", database=target.redacted, revision=revision)
    await _run_locked(target, "upgrade", revision)


async def downgrade_migrations(database_url: str | DatabaseTarget, revision: str = "base") -> None:
    """Downgrade the database at ``database_url`` to ``revision`` (default: an empty schema)."""
    target = _target(database_url)
    log.info("storage.downgrade", database=target.redacted, revision=revision)
    await _run_locked(target, "downgrade", revision)


async def current_revision(database_url: str | DatabaseTarget) -> str | None:
    """The revision the database is at, or None before the first migration."""
    engine = create_engine(_target(database_url), one_shot=True)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


async def migrate_on_start(database_url: str | None, env: Mapping[str, str] | None = None) -> bool:
    """Apply migrations when ``JANGAR_MIGRATIONS`` says ``auto``; return whether they ran.

    Without a ``database_url`` there is nothing to migrate and run records are off.
    """
    if not database_url:
        log.info("storage.migrate_skipped", reason="no DATABASE_URL")
        return False
    if parse_migration_mode(env) is MigrationMode.SKIP:
        log.info("storage.migrate_skipped", reason="JANGAR_MIGRATIONS=skip")
        return False
    await apply_migrations(database_url)
    return True

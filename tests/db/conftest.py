"""Postgres fixtures for the storage tests (``database_url`` comes from ``tests/conftest.py``).

The outage tests need a server of their own that they can stop and start again without disturbing the
session-wide one other tests use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from jangar.dev.postgres import LocalPostgres
from tests.conftest import missing


@dataclass
class RestartablePostgres:
    """A Postgres a test may stop (an outage) and start again, with the same port and data."""

    server: LocalPostgres

    @property
    def url(self) -> str:
        return self.server.url()

    def stop(self) -> None:
        self.server.pause()

    def start(self) -> None:
        self.server.resume()


@pytest.fixture
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A Postgres of this test's own; ``stop()`` takes it down, ``start()`` brings it back."""
    try:
        server = LocalPostgres().start()
    except (ImportError, FileNotFoundError) as err:
        missing(f"Postgres binaries unavailable: {err}")  # an error under CI=true, a skip locally
        raise
    yield RestartablePostgres(server=server)
    server.stop()

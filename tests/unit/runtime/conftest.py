from collections.abc import AsyncIterator

import pytest_asyncio

from jangar.runtime.client import Client, RetryPolicy
from jangar.runtime.metrics import RuntimeMetrics
from tests.fakes.apiserver import FakeApiServer, fake_apiserver


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeApiServer]:
    async with fake_apiserver() as server:
        yield server


@pytest_asyncio.fixture
async def client(fake: FakeApiServer) -> AsyncIterator[Client]:
    api = fake.api_client()
    c = Client(
        api,
        timeout=5,
        retry=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05),
        metrics=RuntimeMetrics(),
    )
    yield c
    await api.close()

"""Fixtures shared by the kwok-tier modules (they used to copy them from `test_controllers_kwok.py`): a
runtime `Client` on the kwok cluster with the CRDs installed, once the test namespace's default
ServiceAccount exists (the controller-manager creates it; Pods cannot be created before)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, NotFoundError
from jangar.runtime.resources import SERVICE_ACCOUNTS
from tests.envtest.controllers_fixtures import eventually


@pytest_asyncio.fixture
async def client(
    kwok_crds: LocalCluster, kwok_client: k8s.ApiClient, kwok_namespace: str
) -> AsyncIterator[Client]:
    c = Client(kwok_client, timeout=15, field_manager="test")

    async def default_sa() -> bool:
        try:
            await c.get(SERVICE_ACCOUNTS, "default", kwok_namespace)
        except NotFoundError:
            return False
        return True

    await eventually(default_sa, what="default service account")
    yield c

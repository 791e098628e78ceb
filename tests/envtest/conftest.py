"""Fixtures shared by the controller envtest modules: a runtime Client on the cluster with the CRDs
installed (`envtest_crds`), and the agents controllers running in-process for the test's namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from kubernetes_asyncio import client as k8s

from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client
from tests.envtest.controllers_fixtures import (
    ControllerProcess,
    running_controller,
    settings_for,
)


@pytest_asyncio.fixture
async def client(envtest_crds: LocalCluster, kube_client: k8s.ApiClient) -> AsyncIterator[Client]:
    yield Client(kube_client, timeout=10, field_manager="test")


@pytest_asyncio.fixture
async def controller(
    envtest: LocalCluster, namespace: str, client: Client
) -> AsyncIterator[ControllerProcess]:
    async with running_controller(envtest.kubeconfig, settings_for(namespace)) as proc:
        yield proc

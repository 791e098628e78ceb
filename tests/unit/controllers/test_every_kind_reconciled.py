"""No kind in the chart is without a controller (issue 11, "Done when").

Builds the manager exactly as `jangar serve` does (`jangar.controllers.setup.install` with default
settings) and walks the 19 kinds of `jangar.api.registry`: each must be the `for_` kind of at least one
registered controller. The failure names every kind that has none.
"""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from jangar.api import registry
from jangar.controllers.setup import ControllerDeps, install
from jangar.runtime import Client, Manager, ManagerOptions
from jangar.runtime.controller import Controller
from jangar.runtime.metrics import RuntimeMetrics
from jangar.settings import Settings
from tests.fakes.apiserver import fake_apiserver


@pytest_asyncio.fixture
async def client() -> AsyncIterator[Client]:
    async with fake_apiserver() as server:
        api = server.api_client()
        yield Client(api, timeout=5, metrics=RuntimeMetrics())
        await api.close()


def reconciled_kinds(manager: Manager) -> dict[str, list[str]]:
    """kind → names of the controllers whose primary (`for_`) resource it is."""
    out: dict[str, list[str]] = {}
    for runnable in manager._leader_runnables + manager._other_runnables:
        if isinstance(runnable, Controller) and runnable._watched:
            out.setdefault(runnable._watched[0].kind, []).append(runnable.name)
    return out


@pytest.mark.asyncio
async def test_every_registered_kind_has_a_reconciler(client: Client) -> None:
    manager = Manager(client, ManagerOptions(bind_address=None))
    install(manager, ControllerDeps(settings=Settings.from_env({}), client=manager.client))
    kinds = reconciled_kinds(manager)
    assert len(registry.KINDS) == 19
    missing = sorted(info.kind for info in registry.KINDS if info.kind not in kinds)
    assert not missing, f"kinds without a registered reconciler: {', '.join(missing)}"

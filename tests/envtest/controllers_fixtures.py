"""Helpers for the controller tests (envtest and kwok tiers): samples, waiting, an in-process controller.

CRDs come from the session fixtures `envtest_crds` / `kwok_crds` (tests/support/crds.py).

Not a conftest: other engineers own `tests/envtest/conftest.py`; test modules import from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from jangar.controllers.kinds import AGENTPROVIDERS, AGENTRUNS, AGENTS, IMPLEMENTATIONSPECS
from jangar.controllers.setup import ControllerDeps, Installed, install
from jangar.runtime import CacheOptions, Client, Manager, ManagerOptions, ReflectorOptions
from jangar.settings import ControllerTuning, Settings
from tests.support.waiting import eventually as shared_eventually

RUNNER_IMAGE = "ghcr.io/proompteng/jangar-runner:test"


def settings_for(namespace: str | list[str], **env: str) -> Settings:
    namespaces = namespace if isinstance(namespace, list) else [namespace]
    base = {
        "JANGAR_AGENTS_CONTROLLER_NAMESPACES": ",".join(namespaces),
        "JANGAR_AGENT_RUNNER_IMAGE": RUNNER_IMAGE,
    }
    base.update(env)
    return Settings.from_env(base)


# -- samples ----------------------------------------------------------------------------------------


def provider(ns: str, name: str = "codex", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "binary": "/usr/local/bin/codex",
            "argsTemplate": ["exec", "{{ parameters.prompt }}"],
            **spec,
        },
    }


def agent(ns: str, name: str = "coder", provider_name: str = "codex", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"providerRef": {"name": provider_name}, **spec},
    }


def impl(ns: str, name: str = "task", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"text": "Do the thing.", **spec}}


def run(
    ns: str, name: str, *, agent_name: str = "coder", impl_name: str = "task", **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agentRef": {"name": agent_name},
        "implementationSpecRef": {"name": impl_name},
        "runtime": {"type": "job"},
        "parameters": {"prompt": "hello"},
    }
    body.update(spec)
    return {"metadata": {"name": name, "namespace": ns}, "spec": body}


async def apply_basics(client: Client, ns: str) -> None:
    """The sample AgentProvider, Agent and ImplementationSpec."""
    await client.create(AGENTPROVIDERS, provider(ns))
    await client.create(AGENTS, agent(ns))
    await client.create(IMPLEMENTATIONSPECS, impl(ns))


# -- waiting --------------------------------------------------------------------------------------------


# The shared `eventually` with the bounds the controller tests have always used: 20 s, polling every 0.1 s.
eventually = functools.partial(shared_eventually, timeout=20.0, interval=0.1)


async def get_run(client: Client, ns: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = await client.get(AGENTRUNS, name, ns)
    return obj


def cond(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            found: Mapping[str, Any] = c
            return found
    return {}


async def wait_phase(
    client: Client, ns: str, name: str, *phases: str, timeout: float = 30.0
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await get_run(client, ns, name)
        return obj if (obj.get("status") or {}).get("phase") in phases else None

    result: dict[str, Any] = await eventually(check, timeout=timeout, what=f"{ns}/{name} in {phases}")
    return result


# -- the controller in-process --------------------------------------------------------------------------

FAST_CACHE = CacheOptions(
    reflector=ReflectorOptions(watchdog_timeout=120, backoff_initial=0.05, backoff_cap=1.0)
)


class ControllerProcess:
    """A Manager with the agents controllers, running as a task of the test's event loop."""

    def __init__(
        self,
        kubeconfig: Path,
        settings: Settings,
        tuning: ControllerTuning | None = None,
        recorder: Any = None,
        audit: Any = None,
    ):
        self.kubeconfig = kubeconfig
        self.audit = audit  # issue 13: the process's audit sink (ControllerDeps.audit)
        self.tuning = tuning or ControllerTuning(agentrun_workers=4, reference_grace_seconds=5.0)
        self.settings = dataclasses.replace(settings, tuning=self.tuning)
        self.recorder = recorder
        self.client: Client | None = None
        self.manager: Manager | None = None
        self.installed: Installed | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> ControllerProcess:
        self.client = await Client.from_kubeconfig(str(self.kubeconfig), field_manager="jangar-controller")
        self.manager = Manager(
            self.client, ManagerOptions(bind_address=None, cache=FAST_CACHE, graceful_shutdown_timeout=5)
        )
        self.installed = install(
            self.manager,
            ControllerDeps(
                settings=self.settings, client=self.client, recorder=self.recorder, audit=self.audit
            ),
        )
        self.task = asyncio.create_task(self.manager.start())
        deadline = time.monotonic() + 30
        while not self.manager.cache.has_synced() or not self.manager._started:
            if self.task.done():
                self.task.result()
            assert time.monotonic() < deadline, "controller did not start"
            await asyncio.sleep(0.05)
        return self

    async def stop(self) -> None:
        if self.manager is not None and self.task is not None:
            self.manager.request_stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 15)
        if self.installed is not None:
            await asyncio.wait_for(self.installed.events.flush(), 5)
        if self.client is not None:
            await self.client.close()

    async def kill(self) -> None:
        """Crash: cancel the manager task abruptly, nothing drains or finishes gracefully."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task
        if self.manager is not None:
            with contextlib.suppress(Exception):
                await self.manager.cache.stop()
        if self.client is not None:
            await self.client.close()


@contextlib.asynccontextmanager
async def running_controller(
    kubeconfig: Path, settings: Settings, tuning: ControllerTuning | None = None, recorder: Any = None
) -> AsyncIterator[ControllerProcess]:
    proc = await ControllerProcess(kubeconfig, settings, tuning, recorder).start()
    try:
        yield proc
    finally:
        await proc.stop()

"""The chart's Grafana dashboard queries metrics jangar really emits, and the metrics switch works.

`jangar serve`'s composition (`build_manager`, controllers installed) runs against envtest; one AgentRun
goes from submission to Succeeded (the Job status written as the Job controller would), then `/metrics` is
scraped over HTTP. Every selector of every panel and template query of
charts/agents/dashboards/agents-observability.json must name a series present in that scrape, with the
labels the query filters and groups on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from jangar.app import Options, build_manager
from jangar.controllers.kinds import AGENTRUNS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.runtime import Client, Manager, NotFoundError
from jangar.settings import Settings
from tests.envtest.controllers_fixtures import apply_basics, run, settings_for, wait_phase
from tests.envtest.test_controllers_agentrun import finish_job
from tests.support.waiting import eventually

DASHBOARD = (
    Path(__file__).resolve().parents[2] / "charts" / "agents" / "dashboards" / "agents-observability.json"
)

#: `name{matchers}` or `name[range]` or a bare name inside label_values(...)
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*\[")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_]+)\s*\)")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    queries: list[str] = []

    def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for p in items:
            out.append(p)
            out.extend(panels(p.get("panels", [])))
        return out

    for panel in panels(board["panels"]):
        for target in panel.get("targets", []):
            queries.append(target["expr"])
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def scrape_index(text: str) -> dict[str, list[dict[str, str]]]:
    """sample name -> the label sets of its samples."""
    index: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            index.setdefault(sample.name, []).append(dict(sample.labels))
    return index


def problems(queries: list[str], index: dict[str, list[dict[str, str]]]) -> list[str]:
    found: list[str] = []
    for query in queries:
        grouped = {label.strip() for by in _BY.findall(query) for label in by.split(",") if label.strip()}
        selectors = [(name, matchers) for name, matchers in _SELECTOR.findall(query)]
        selectors += [(name, "{" + label + '=~".*"}') for name, label in _LABEL_VALUES.findall(query)]
        if not selectors:
            found.append(f"{query!r}: no metric selector recognised")
        for name, matchers in selectors:
            samples = index.get(name)
            if not samples:
                found.append(f"{query!r}: jangar emits no series {name}")
                continue
            wanted = {m for m, _ in _MATCHER.findall(matchers)} | (grouped - {"le"})
            if name.endswith("_bucket"):
                wanted.add("le")
            if not any(wanted <= set(labels) for labels in samples):
                found.append(f"{query!r}: no {name} series carries the labels {sorted(wanted)}")
    return found


@contextlib.asynccontextmanager
async def serving(envtest: LocalCluster, settings: Settings, *, controllers: bool) -> AsyncIterator[Manager]:
    client = await Client.from_kubeconfig(str(envtest.kubeconfig))
    manager, _ = await build_manager(
        settings, client, Options(bind_address="127.0.0.1:0", controllers=controllers)
    )
    task = asyncio.create_task(manager.start())
    try:
        await eventually(
            lambda: bool(manager.http_port and manager.cache.has_synced()), timeout=60, what="manager up"
        )
        yield manager
    finally:
        manager.request_stop()
        await asyncio.wait_for(task, 60)
        await client.close()


async def get(manager: Manager, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{manager.http_port}{path}") as resp,
    ):
        return resp.status, await resp.text()


def test_the_checker_catches_a_wrong_query() -> None:
    """The checker itself: an unknown series, a missing label and a metric that exists."""
    index = {"jangar_x_total": [{"namespace": "a", "outcome": "ok"}], "jangar_h_bucket": [{"le": "1"}]}
    assert problems(['sum by (outcome) (rate(jangar_x_total{namespace=~"$namespace"}[5m]))'], index) == []
    assert problems(["rate(jangar_sse_connections_total[5m])"], index)
    assert problems(['sum by (state) (rate(jangar_x_total{namespace=~"$namespace"}[5m]))'], index)
    assert problems(['rate(jangar_h_bucket{namespace="a"}[5m])'], index)
    assert problems(["label_values(jangar_x_total, runtime)"], index)
    assert problems(["label_values(jangar_x_total, namespace)"], index) == []


async def test_every_dashboard_query_names_a_series_of_a_live_scrape(
    envtest_crds: LocalCluster, namespace: str
) -> None:
    settings = settings_for(namespace, JANGAR_LEADER_ELECTION_ENABLED="false")
    async with serving(envtest_crds, settings, controllers=True) as manager:
        client = manager.client
        await apply_basics(client, namespace)
        await client.create(AGENTRUNS, run(namespace, "dash"))

        await eventually(
            lambda: client.get(JOBS, "dash-job", namespace),
            timeout=60,
            what="the run's Job",
            ignoring=(NotFoundError,),
        )
        await finish_job(client, namespace, "dash-job", ok=True)
        await wait_phase(client, namespace, "dash", "Succeeded", timeout=60)

        queries = dashboard_queries()
        assert len(queries) >= 5  # four panels and the namespace variable

        async def clean() -> bool:
            status, body = await get(manager, "/metrics")
            assert status == 200
            return problems(queries, scrape_index(body)) == []

        # the outcome counter is written with the Succeeded status: scrape until it is there
        try:
            await eventually(clean, timeout=30, what="every dashboard query matched")
        except AssertionError:
            _, body = await get(manager, "/metrics")
            assert problems(queries, scrape_index(body)) == []
            raise
        _, body = await get(manager, "/metrics")
        namespaces = {
            labels.get("namespace") for labels in scrape_index(body)["jangar_agent_run_outcomes_total"]
        }
        assert namespace in namespaces  # the dashboard's namespace variable lists the run's namespace


async def test_metrics_switch_and_path(envtest_crds: LocalCluster, namespace: str) -> None:
    base = {"JANGAR_AGENTS_CONTROLLER_NAMESPACES": namespace, "JANGAR_LEADER_ELECTION_ENABLED": "false"}
    off = Settings.from_env({**base, "JANGAR_PROMETHEUS_METRICS_ENABLED": "false"})
    async with serving(envtest_crds, off, controllers=False) as manager:
        assert (await get(manager, "/metrics"))[0] == 404
        assert (await get(manager, "/health"))[0] == 200
    moved = Settings.from_env({**base, "JANGAR_PROMETHEUS_METRICS_PATH": "/prom"})
    async with serving(envtest_crds, moved, controllers=False) as manager:
        status, body = await get(manager, "/prom")
        assert status == 200 and "# TYPE" in body
        assert (await get(manager, "/metrics"))[0] == 404
    on = Settings.from_env(base)
    async with serving(envtest_crds, on, controllers=False) as manager:
        status, body = await get(manager, "/metrics")
        assert status == 200 and "# TYPE" in body

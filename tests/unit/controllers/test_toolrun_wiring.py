"""`scope_tool_cache`: ToolRun Jobs/Pods become a second cache scope beside the AgentRun one, never a wider one."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from jangar.api.contract import LABEL_RUN, LABEL_TOOL_RUN
from jangar.api.refs import TOOLRUNS, TOOLS
from jangar.controllers.kinds import JOBS, PODS
from jangar.controllers.toolrun.wiring import scope_tool_cache
from jangar.runtime import CacheOptions, CacheScope, ResourceCacheOptions
from jangar.settings import Settings


def manager(options: CacheOptions) -> Any:
    return SimpleNamespace(cache=SimpleNamespace(options=options))


def test_tool_run_jobs_and_pods_get_their_own_scope() -> None:
    agent_scope = ResourceCacheOptions(namespaces=["agents"], label_selector=LABEL_RUN)
    mgr = manager(CacheOptions(by_resource={JOBS: agent_scope, PODS: agent_scope}))
    settings = Settings.from_env(
        {
            "JANGAR_AGENTS_CONTROLLER_NAMESPACES": "agents",
            "JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES": "agents,tools",
        }
    )
    scope_tool_cache(mgr, settings)
    scope_tool_cache(mgr, settings)  # idempotent
    by = mgr.cache.options.by_resource
    for ref in (JOBS, PODS):
        assert by[ref].label_selector == LABEL_RUN and by[ref].namespaces == ["agents"]
        assert by[ref].also == (CacheScope(namespaces=["agents", "tools"], label_selector=LABEL_TOOL_RUN),)
    assert by[TOOLS].namespaces == ["agents", "tools"] and by[TOOLRUNS].namespaces == ["agents", "tools"]


def test_all_namespaces_is_explicit_and_no_job_cache_becomes_unselected() -> None:
    mgr = manager(CacheOptions())
    scope_tool_cache(
        mgr,
        Settings.from_env(
            {"JANGAR_ORCHESTRATION_CONTROLLER_NAMESPACES": "*", "JANGAR_RBAC_CLUSTER_SCOPED": "true"}
        ),
    )
    by = mgr.cache.options.by_resource
    assert by[JOBS] == ResourceCacheOptions(namespaces=[], label_selector=LABEL_TOOL_RUN)


def test_disabled_changes_nothing() -> None:
    options = CacheOptions()
    mgr = manager(options)
    scope_tool_cache(mgr, Settings.from_env({"JANGAR_ORCHESTRATION_CONTROLLER_ENABLED": "false"}))
    assert mgr.cache.options is options

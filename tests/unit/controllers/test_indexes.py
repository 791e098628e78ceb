from jangar.controllers import indexes as ix
from jangar.controllers.kinds import AGENTRUNS, AGENTS
from jangar.runtime import Request
from jangar.runtime.testing import FakeCache


def _cache() -> FakeCache:
    cache = FakeCache()
    for name, func in (
        (ix.RUN_AGENT, ix.run_agent),
        (ix.RUN_MEMORY, ix.run_memory),
        (ix.RUN_UNSUBMITTED, ix.run_unsubmitted),
        (ix.RUN_IMPLEMENTATION, ix.run_implementation),
    ):
        cache.add_index(AGENTRUNS, name, func)
    cache.add_index(AGENTS, ix.AGENT_PROVIDER, ix.agent_provider)
    cache.add(
        AGENTS, {"metadata": {"name": "coder", "namespace": "a"}, "spec": {"providerRef": {"name": "codex"}}}
    )
    cache.add(
        AGENTS, {"metadata": {"name": "other", "namespace": "a"}, "spec": {"providerRef": {"name": "x"}}}
    )
    runs = [
        ("new", "coder", {}),
        ("running", "coder", {"phase": "Running", "jobRef": {"name": "running-job"}}),
        ("done", "coder", {"phase": "Succeeded"}),
        ("elsewhere", "other", {}),
    ]
    for name, agent, status in runs:
        cache.add(
            AGENTRUNS,
            {
                "metadata": {"name": name, "namespace": "a"},
                "spec": {
                    "agentRef": {"name": agent},
                    "workflow": {"steps": [{"name": "s", "implementationSpecRef": {"name": "step-impl"}}]},
                },
                "status": status,
            },
        )
    return cache


def test_provider_change_wakes_only_unsubmitted_runs_of_agents_using_it() -> None:
    cache = _cache()
    mapper = ix.runs_for(cache, None, ix.AGENT_PROVIDER)
    assert mapper({"metadata": {"name": "codex", "namespace": "a"}}) == [Request("a", "new")]
    assert ix.agents_for(cache, ix.AGENT_PROVIDER)({"metadata": {"name": "codex", "namespace": "a"}}) == [
        Request("a", "coder")
    ]
    assert mapper({"metadata": {"name": "codex", "namespace": "b"}}) == []  # other namespace


def test_step_implementations_are_indexed() -> None:
    cache = _cache()
    mapper = ix.runs_for(cache, ix.RUN_IMPLEMENTATION)
    assert mapper({"metadata": {"name": "step-impl", "namespace": "a"}}) == [
        Request("a", "elsewhere"),
        Request("a", "new"),
    ]


def test_default_memory_wakes_every_unsubmitted_run_but_a_plain_one_only_referencing_runs() -> None:
    cache = _cache()
    mapper = ix.runs_for(cache, ix.RUN_MEMORY, unsubmitted_if=lambda o: bool(o["spec"].get("default")))
    assert mapper({"metadata": {"name": "m", "namespace": "a"}, "spec": {"default": False}}) == []
    woken = mapper({"metadata": {"name": "m", "namespace": "a"}, "spec": {"default": True}})
    assert woken == [Request("a", "elsewhere"), Request("a", "new")]

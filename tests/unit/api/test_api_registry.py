"""The registry is how controllers find a kind's API names; lookups must agree with each other."""

from __future__ import annotations

import pytest

from jangar.api import groups, registry
from jangar.api.agents import AgentRun, VersionControlProvider
from jangar.api.orchestration import OrchestrationRun

# Short names of built-in resources a jangar short name must not shadow.
BUILTIN_SHORT_NAMES = {
    "cm", "cs", "csr", "deploy", "ds", "ep", "ev", "hpa", "ing", "limits", "netpol", "no", "ns", "pc", "pdb",
    "po", "psp", "pv", "pvc", "quota", "rc", "rs", "sa", "sc", "sts", "svc", "crd", "crds", "ingclass",
}  # fmt: skip


def test_lookups_agree() -> None:
    for info in registry.KINDS:
        assert registry.by_kind(info.kind) is info
        assert registry.for_model(info.model) is info
        assert registry.by_resource(info.group, info.plural) is info
        assert info.group in groups.ALL
        assert info.api_version == f"{info.group}/v1alpha1"
        assert info.crd_name == f"{info.plural}.{info.group}"
        assert info.file_name == f"{info.group}_{info.plural}.yaml"


def test_reference_names() -> None:
    run = registry.for_model(AgentRun)
    assert (run.group, run.plural, run.singular, run.list_kind) == (
        "agents.proompteng.ai",
        "agentruns",
        "agentrun",
        "AgentRunList",
    )
    assert registry.for_model(VersionControlProvider).plural == "versioncontrolproviders"
    assert registry.by_kind("Memory").plural == "memories"
    assert registry.by_kind("SignalDelivery").plural == "signaldeliveries"
    assert registry.by_kind("ApprovalPolicy").plural == "approvalpolicies"
    assert registry.for_model(OrchestrationRun).group == "orchestration.proompteng.ai"


def test_names_are_unique_and_do_not_shadow_builtins() -> None:
    names: list[str] = []
    for info in registry.KINDS:
        names += [info.plural, info.singular, *info.short_names]
    assert len(names) == len(set(names))
    assert not set(names) & BUILTIN_SHORT_NAMES


def test_every_kind_is_in_the_shared_category() -> None:
    assert all(registry.CATEGORY in info.categories for info in registry.KINDS)


def test_unknown_kind_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        registry.by_kind("Pod")
    with pytest.raises(KeyError):
        registry.for_object({"apiVersion": "v1", "kind": "Pod"})

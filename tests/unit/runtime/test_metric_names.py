"""The `agents_*` twin names of `jangar_*` metrics (jangar.runtime.metric_names), read back as Prometheus
would: the text exposition parsed by prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from jangar.runtime.metric_names import twin_name
from jangar.runtime.metrics import RuntimeMetrics


def families(
    metrics: RuntimeMetrics,
) -> dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]]:
    """family name -> (type, HELP, {(sample name, labels): value})."""
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
        out[family.name] = (family.type, family.documentation, samples)
    return out


def populated(twin_names: bool) -> RuntimeMetrics:
    metrics = RuntimeMetrics(twin_names=twin_names)
    r = metrics.registry
    Counter("jangar_things_total", "Things done.", ["namespace"], registry=r).labels("a").inc(3)
    Gauge("jangar_depth", "Items waiting.", registry=r).set(7)
    Histogram("jangar_wait_seconds", "Wait.", buckets=(1, 5), registry=r).observe(2)
    metrics.reconcile_total.labels("agentrun", "success").inc()
    return metrics


def twin_samples(samples: dict) -> dict:
    return {(twin_name(name) or name, labels): value for (name, labels), value in samples.items()}


def test_every_jangar_family_has_an_agents_twin_with_the_same_samples_help_and_type() -> None:
    found = families(populated(twin_names=True))
    for name in ("jangar_things", "jangar_depth", "jangar_wait_seconds"):
        kind, help_text, samples = found[name]
        twin = found[name.replace("jangar_", "agents_", 1)]
        assert twin == (kind, help_text, twin_samples(samples))
    assert found["agents_things"][0] == "counter"
    assert found["agents_things"][2] == {("agents_things_total", (("namespace", "a"),)): 3.0}  # keeps _total
    assert found["agents_depth"][0] == "gauge"
    assert found["agents_wait_seconds"][0] == "histogram"
    assert ("agents_wait_seconds_bucket", (("le", "5.0"),)) in found["agents_wait_seconds"][2]
    # only the jangar_ prefix is twinned: controller-runtime's names are the same in both generations
    assert "controller_runtime_reconcile" in found
    assert not any(name.startswith("agents_controller_runtime") for name in found)


def test_twins_follow_the_source_at_each_scrape() -> None:
    metrics = populated(twin_names=True)
    things = metrics.registry._names_to_collectors["jangar_things_total"]
    assert isinstance(things, Counter)
    things.labels("a").inc(2)
    assert families(metrics)["agents_things"][2] == {("agents_things_total", (("namespace", "a"),)): 5.0}


def test_the_setting_off_exposes_the_0_9_1_names_only() -> None:
    found = families(populated(twin_names=False))
    assert "jangar_things" in found
    assert not [name for name in found if name.startswith("agents_")]


def test_a_family_registered_under_an_agents_name_is_not_shadowed_by_a_twin() -> None:
    metrics = RuntimeMetrics()
    Gauge("jangar_x", "old.", registry=metrics.registry).set(1)
    Gauge("agents_x", "registered directly.", registry=metrics.registry).set(2)
    text = metrics.render().decode()
    assert text.count("# TYPE agents_x gauge") == 1  # a duplicate family would be rejected by Prometheus
    assert families(metrics)["agents_x"] == ("gauge", "registered directly.", {("agents_x", ()): 2.0})


def test_twin_name() -> None:
    assert twin_name("jangar_agent_run_outcomes_total") == "agents_agent_run_outcomes_total"
    assert twin_name("workqueue_depth") is None
    assert twin_name("xjangar_y") is None


def test_an_explicit_registry_is_served_with_its_twins() -> None:
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    Gauge("jangar_up", "Up.", registry=registry).set(1)
    assert families(metrics)["agents_up"][2] == {("agents_up", ()): 1.0}


def test_the_metric_names_docs_compatibility_gives_are_registered_by_jangar() -> None:
    """docs/compatibility.md's metric rows name real families: it once gave a retention error counter under a
    name nothing registers, and called the runtime-debris metrics "not exposed" after the sweep exposed them."""
    import re
    from pathlib import Path

    from jangar.controllers.sweep import SweepMetrics

    repo = Path(__file__).parents[3]
    doc = (repo / "docs" / "compatibility.md").read_text()
    source = "\n".join(p.read_text() for p in (repo / "jangar").rglob("*.py"))
    named = set(re.findall(r"\bjangar_[a-z0-9_]*[a-z0-9]\b", doc)) - {"jangar_x"}  # `agents_x or jangar_x`
    assert "jangar_agentrun_retention_errors_total" in named
    assert [n for n in sorted(named) if f'"{n}"' not in source] == []
    sweep = CollectorRegistry()
    SweepMetrics(sweep)
    debris = sorted(f.name for f in sweep.collect() if "debris" in f.name)
    assert debris  # the sweep registers them, so the doc may not call them absent
    row = next(line for line in doc.splitlines() if line.startswith("| runtime-debris metrics"))
    assert "not exposed" not in row
    assert all(f"`{name}_total`" in row or f"`_{name.rsplit('_', 1)[1]}_total`" in row for name in debris)

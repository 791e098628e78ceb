"""Template AgentRuns (0.9.29, `agents.proompteng.ai/template: "true"`): copy sources that never run.

A Schedule may target one; the controller must neither start it nor hold a finalizer on it, and admission
must not count it as waiting (else every template would take a queue place)."""

from __future__ import annotations

import pytest

from jangar.admission.snapshot import LIVE, live_index
from jangar.api.contract import ANNOTATION_TEMPLATE, is_resting_template
from jangar.controllers.agentrun.decide import decide
from jangar.controllers.agentrun.plan import RunPlan
from tests.unit.controllers.agentrun_objects import run, snapshot
from tests.unit.controllers.test_agentrun_decide import ADMIT, submitted

TEMPLATE = {ANNOTATION_TEMPLATE: "true"}


@pytest.mark.parametrize("value", ["true", "True", "TRUE"])
def test_a_new_template_is_left_alone(value: str) -> None:
    obj = run(finalizer=False, annotations={ANNOTATION_TEMPLATE: value})
    assert decide(snapshot(obj)) == RunPlan()
    assert decide(snapshot(obj), ADMIT) == RunPlan()
    assert live_index(obj) == []


@pytest.mark.parametrize("value", ["false", "", "yes"])
def test_any_other_value_is_an_ordinary_run(value: str) -> None:
    obj = run(finalizer=False, annotations={ANNOTATION_TEMPLATE: value})
    assert decide(snapshot(obj)).needs_admission
    assert live_index(obj) == [LIVE]


def test_a_started_run_annotated_later_goes_on_to_its_end() -> None:
    started = submitted()
    started["metadata"]["annotations"] = dict(TEMPLATE)
    assert not is_resting_template(started)
    assert live_index(started) == [LIVE]
    assert decide(snapshot(started)) != RunPlan()


def test_a_deleted_template_without_finalizer_is_released_at_once() -> None:
    obj = run(finalizer=False, deleting=True, annotations=dict(TEMPLATE))
    assert decide(snapshot(obj)) == RunPlan(release_admission=True)


def test_a_template_with_the_finalizer_still_releases_it_on_delete() -> None:
    obj = run("Pending", deleting=True, annotations=dict(TEMPLATE))
    assert decide(snapshot(obj)).remove_finalizer

from datetime import UTC, datetime, timedelta

from jangar.controllers.runconditions import RunDetails, run_conditions
from jangar.controllers.status import Cond, compose_status, status_changed

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _conds(status: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_recomposing_the_same_status_later_is_not_a_change() -> None:
    first = compose_status(
        None, phase="Running", conditions=[Cond("InProgress", True, "Running")], generation=1, now=T0
    )
    again = compose_status(
        first,
        phase="Running",
        conditions=[Cond("InProgress", True, "Running")],
        generation=1,
        now=T0 + timedelta(hours=1),
    )
    assert not status_changed(first, again)
    assert again["conditions"] == first["conditions"]  # lastTransitionTime kept


def test_a_real_change_is_detected_and_updated_at_is_ignored() -> None:
    first = compose_status(None, phase="Running", conditions=[], generation=1, now=T0)
    assert status_changed(first, {**first, "phase": "Succeeded"})
    assert not status_changed(first, {**first, "updatedAt": "2030-01-01T00:00:00Z"})
    assert status_changed(first, compose_status(first, phase="Running", conditions=[], generation=2, now=T0))


def test_none_field_removes_a_key() -> None:
    first = compose_status(
        None, phase="Queued", conditions=[], generation=1, now=T0, fields={"queue": {"position": 3}}
    )
    second = compose_status(
        first, phase="Running", conditions=[], generation=1, now=T0, fields={"queue": None}
    )
    assert "queue" not in second


def test_succeeded_run_clears_in_progress_blocked_and_progressing() -> None:
    running = compose_status(
        None,
        phase="Queued",
        conditions=run_conditions("Queued", RunDetails("ConcurrencyLimit", "full")),
        generation=1,
        now=T0,
    )
    assert _conds(running)["Blocked"] == ("True", "ConcurrencyLimit")
    done = compose_status(
        running,
        phase="Succeeded",
        conditions=run_conditions("Succeeded", RunDetails("Completed", accepted=True)),
        generation=1,
        now=T0,
    )
    c = _conds(done)
    assert c["Blocked"][0] == "False"
    assert c["InProgress"][0] == "False"
    assert c["Progressing"][0] == "False"
    assert c["Ready"][0] == "True"
    assert c["Succeeded"] == ("True", "Completed")
    assert c["Failed"][0] == "False"
    assert c["Warning"] == ("False", "None")


def test_failed_run_reports_its_reason_everywhere_a_user_looks() -> None:
    status = compose_status(
        None,
        phase="Failed",
        conditions=run_conditions("Failed", RunDetails("OOMKilled", "killed", accepted=True)),
        generation=1,
        now=T0,
        summary_reason="OOMKilled",
    )
    c = _conds(status)
    assert c["Failed"] == ("True", "OOMKilled")
    assert c["Succeeded"] == ("False", "OOMKilled")
    assert c["Degraded"] == ("True", "OOMKilled")
    assert c["InvalidSpec"][0] == "False"

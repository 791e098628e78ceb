from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from jangar.conditions import (
    conditions_equal,
    find_condition,
    format_time,
    is_true,
    remove_condition,
    sanitize_reason,
    set_condition,
    summary_conditions,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_transition_time_moves_only_on_status_change() -> None:
    conds = set_condition(
        [], "Blocked", True, "ConcurrencyLimit", "agent limit", now=T0, observed_generation=1
    )
    assert conds == [
        {
            "type": "Blocked",
            "status": "True",
            "reason": "ConcurrencyLimit",
            "message": "agent limit",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 1,
        }
    ]
    same = set_condition(
        conds, "Blocked", "True", "QueueLimit", "other message", now=T1, observed_generation=2
    )
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert (same[0]["reason"], same[0]["message"], same[0]["observedGeneration"]) == (
        "QueueLimit",
        "other message",
        2,
    )
    flipped = set_condition(same, "Blocked", False, "Admitted", now=T1)
    assert flipped[0]["lastTransitionTime"] == format_time(T1)
    assert not is_true(flipped, "Blocked")


def test_set_keeps_others_and_collapses_duplicates() -> None:
    conds = [
        {"type": "A", "status": "True", "reason": "X", "message": "", "lastTransitionTime": "t"},
        {"type": "B", "status": "True", "reason": "X", "message": "", "lastTransitionTime": "t"},
        {"type": "B", "status": "False", "reason": "X", "message": "", "lastTransitionTime": "t"},
    ]
    result = set_condition(conds, "B", True, "Y", now=T0)
    assert [c["type"] for c in result] == ["A", "B"]
    assert find_condition(result, "B")["reason"] == "Y"  # type: ignore[index]
    assert remove_condition(result, "A") == [result[1]]


def test_reason_is_sanitized_and_message_capped() -> None:
    assert sanitize_reason("ImagePullBackOff") == "ImagePullBackOff"
    assert sanitize_reason("bad reason!") == "bad_reason"
    assert sanitize_reason("9lives") == "lives"
    assert sanitize_reason("!!!") == "Unknown"
    long = set_condition([], "X", True, "R", "m" * 40_000, now=T0)
    assert len(long[0]["message"]) == 32_768


def test_conditions_equal_ignores_order_and_time() -> None:
    a = set_condition(set_condition([], "A", True, "R", now=T0), "B", False, "R", now=T0)
    b = set_condition(set_condition([], "B", False, "R", now=T1), "A", True, "R", now=T1)
    assert conditions_equal(a, b)
    assert not conditions_equal(a, set_condition(b, "A", False, "R", now=T1))


def test_summary_conditions_are_definitive() -> None:
    running = summary_conditions([], "Running", now=T0)
    assert {c["type"]: c["status"] for c in running} == {
        "Ready": "False",
        "Progressing": "True",
        "Degraded": "False",
    }
    done = summary_conditions(running, "Succeeded", now=T1)
    assert {c["type"]: c["status"] for c in done} == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
    }
    failed = summary_conditions(done, "Failed", now=T1, reason="JobFailed")
    assert {c["type"]: c["status"] for c in failed} == {
        "Ready": "False",
        "Progressing": "False",
        "Degraded": "True",
    }
    assert find_condition(failed, "Degraded")["reason"] == "JobFailed"  # type: ignore[index]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]), st.sampled_from(["True", "False", "Unknown"]), st.integers(0, 3)
        ),
        max_size=20,
    )
)
def test_transition_time_tracks_the_last_status_flip(updates: list[tuple[str, str, int]]) -> None:
    """After any sequence of updates, each condition's lastTransitionTime is the time of its last flip."""
    conds: list[dict[str, object]] = []
    last_flip: dict[str, tuple[str, datetime]] = {}
    for step, (type_, status, reason) in enumerate(updates):
        now = T0 + timedelta(seconds=step)
        conds = set_condition(conds, type_, status, f"R{reason}", now=now)  # type: ignore[arg-type]
        if type_ not in last_flip or last_flip[type_][0] != status:
            last_flip[type_] = (status, now)
    assert sorted(c["type"] for c in conds) == sorted(last_flip)  # type: ignore[type-var]
    for c in conds:
        status, flipped = last_flip[str(c["type"])]
        assert c["status"] == status
        assert c["lastTransitionTime"] == format_time(flipped)

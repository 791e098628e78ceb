from __future__ import annotations

import json
from typing import Any

import pytest

from jangar.scheduler.termination import (
    TERMINATION_MESSAGE_LIMIT,
    TerminationReport,
    container_termination_message,
    parse_termination_message,
    render_termination_message,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, TerminationReport()),
        ("", TerminationReport()),
        ("  \n", TerminationReport()),
        ('{"outputs": {"branch": "main", "n": 2}}', TerminationReport(outputs={"branch": "main", "n": 2})),
        (
            '{"outputs": {"a": 1}, "artifacts": [{"name": "log", "url": "s3://x"}, "junk", 3]}',
            TerminationReport(outputs={"a": 1}, artifacts=[{"name": "log", "url": "s3://x"}]),
        ),
        ('{"outputs": {}, "artifacts": "nope"}', TerminationReport()),
        # no `outputs` object: the whole object is the outputs
        ('{"branch": "feature", "ok": true}', TerminationReport(outputs={"branch": "feature", "ok": True})),
        ('{"outputs": "flat", "x": 1}', TerminationReport(outputs={"outputs": "flat", "x": 1})),
        # not a JSON object: plain text (a log tail with FallbackToLogsOnError)
        ("boom: file not found\n", TerminationReport(text="boom: file not found")),
        ("[1, 2]", TerminationReport(text="[1, 2]")),
        ("42", TerminationReport(text="42")),
        ('{"truncated": ', TerminationReport(text='{"truncated":')),
    ],
)
def test_parse_termination_message(text: str | None, expected: TerminationReport) -> None:
    assert parse_termination_message(text) == expected


def test_render_round_trips_and_enforces_the_limit() -> None:
    text = render_termination_message({"b": 2, "a": "x"}, [{"name": "out"}])
    assert json.loads(text) == {"outputs": {"a": "x", "b": 2}, "artifacts": [{"name": "out"}]}
    assert parse_termination_message(text) == TerminationReport(
        outputs={"a": "x", "b": 2}, artifacts=[{"name": "out"}]
    )
    assert "artifacts" not in json.loads(render_termination_message({"a": 1}))
    with pytest.raises(ValueError, match="4096-byte limit"):
        render_termination_message({"big": "x" * TERMINATION_MESSAGE_LIMIT})


def _pod(created: str, name: str, message: str | None, *, terminated: bool = True) -> dict[str, Any]:
    state: dict[str, Any] = {"terminated": {"exitCode": 0} | ({"message": message} if message else {})}
    return {
        "metadata": {"name": f"p-{created}", "creationTimestamp": created},
        "status": {"containerStatuses": [{"name": name, "state": state if terminated else {"running": {}}}]},
    }


def test_container_termination_message_takes_the_newest_terminated_container() -> None:
    old = _pod("2026-01-01T10:00:00Z", "tool-runner", "old")
    new = _pod("2026-01-01T11:00:00Z", "tool-runner", "new")
    other = _pod("2026-01-01T12:00:00Z", "sidecar", "not me")
    assert container_termination_message([old, new, other], "tool-runner") == "new"
    running = _pod("2026-01-01T13:00:00Z", "tool-runner", None, terminated=False)
    assert container_termination_message([old, running], "tool-runner") == "old"
    assert container_termination_message([other], "tool-runner") is None
    assert (
        container_termination_message([_pod("2026-01-01T10:00:00Z", "tool-runner", None)], "tool-runner")
        is None
    )

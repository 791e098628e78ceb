"""A looping step's loop-control file reaches the controller through the runner's termination message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jangar.runner.loopcontrol import CONTROL_PATH_ENV, MAX_CONTROL_BYTES
from jangar.runner.report import MAX_BYTES, report
from jangar.runner.status import RunStatus
from tests.unit.runner.conftest import Workspace


def _message(path: Path) -> dict[str, object]:
    text = path.read_text()
    assert len(text.encode()) <= MAX_BYTES
    loaded: dict[str, object] = json.loads(text)
    return loaded


def test_the_control_file_is_reported_as_loop_control(workspace: Workspace, tmp_path: Path) -> None:
    target, control = tmp_path / "termination-log", tmp_path / "pvc" / "loop.json"
    control.parent.mkdir()
    control.write_text('{"continue": true, "round": 2}')
    result = workspace.run(JANGAR_TERMINATION_MESSAGE_PATH=str(target), **{CONTROL_PATH_ENV: str(control)})
    assert result.returncode == 0, result.stderr
    message = _message(target)
    assert message["loopControl"] == {"continue": True, "round": 2}
    assert "loopControlError" not in message


@pytest.mark.parametrize(
    ("content", "reason", "says"),
    [
        (None, "missing", "does not exist"),
        ("{not json", "invalid", "is not JSON"),
        ("[1, 2]", "invalid", "must hold a JSON object, not list"),
        (json.dumps({"blob": "x" * MAX_CONTROL_BYTES}), "invalid", "keep only what the condition reads"),
    ],
)
def test_a_missing_or_bad_control_file_is_reported_as_an_error(
    workspace: Workspace, tmp_path: Path, content: str | None, reason: str, says: str
) -> None:
    target, control = tmp_path / "termination-log", tmp_path / "loop.json"
    if content is not None:
        control.write_text(content)
    result = workspace.run(JANGAR_TERMINATION_MESSAGE_PATH=str(target), **{CONTROL_PATH_ENV: str(control)})
    assert result.returncode == 0, result.stderr
    message = _message(target)
    assert "loopControl" not in message
    error = message["loopControlError"]
    assert isinstance(error, dict) and error["reason"] == reason and says in error["message"]


def test_no_loop_no_control_entry(workspace: Workspace, tmp_path: Path) -> None:
    target = tmp_path / "termination-log"
    result = workspace.run(JANGAR_TERMINATION_MESSAGE_PATH=str(target))
    assert result.returncode == 0, result.stderr
    message = _message(target)
    assert "loopControl" not in message and "loopControlError" not in message


def test_the_control_data_survives_truncation_of_large_outputs() -> None:
    status = RunStatus(phase="Succeeded", started_at="2026-12-01T00:00:00Z", reason="Completed", exit_code=0)
    text = report(status, {"big": "y" * 5000}, {"loopControl": {"continue": False}})
    message = json.loads(text)
    assert len(text.encode()) <= MAX_BYTES
    assert message["truncated"] is True and message["loopControl"] == {"continue": False}

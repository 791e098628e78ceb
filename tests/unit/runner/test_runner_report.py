"""The runner reports the outcome in the termination message, and can wrap a command given as arguments."""

from __future__ import annotations

import json
from pathlib import Path

from jangar.runner.report import MAX_BYTES, report
from jangar.runner.status import RunStatus
from tests.unit.runner.conftest import Workspace


def _message(path: Path) -> dict[str, object]:
    text = path.read_text()
    assert len(text.encode()) <= MAX_BYTES
    loaded: dict[str, object] = json.loads(text)
    return loaded


def test_the_outcome_outputs_and_artifacts_reach_the_termination_message(
    workspace: Workspace, tmp_path: Path
) -> None:
    target = tmp_path / "termination-log"
    workspace.write_specs(run={"artifacts": [{"name": "patch", "path": "out.patch"}]})

    result = workspace.run(PROVIDER_MODE="outputs", JANGAR_TERMINATION_MESSAGE_PATH=str(target))

    assert result.returncode == 0, result.stderr
    message = _message(target)
    assert message["phase"] == "Succeeded"
    assert message["exitCode"] == 0
    assert message["outputs"] == {"branch": "codex/7"}
    assert [a["name"] for a in message["artifacts"]] == ["patch"]  # type: ignore[union-attr]


def test_a_failure_is_reported_with_its_code(workspace: Workspace, tmp_path: Path) -> None:
    target = tmp_path / "termination-log"
    workspace.write_specs()
    result = workspace.run(
        PROVIDER_MODE="fail", PROVIDER_EXIT="9", JANGAR_TERMINATION_MESSAGE_PATH=str(target)
    )
    assert result.returncode == 9
    message = _message(target)
    assert (message["phase"], message["reason"], message["exitCode"]) == ("Failed", "AgentFailed", 9)


def test_outputs_that_are_not_an_object_are_ignored_with_a_message(
    workspace: Workspace, tmp_path: Path
) -> None:
    target = tmp_path / "termination-log"
    workspace.write_specs()
    result = workspace.run(
        PROVIDER_MODE="outputs", PROVIDER_OUTPUTS="[1, 2]", JANGAR_TERMINATION_MESSAGE_PATH=str(target)
    )
    assert result.returncode == 0
    assert "must hold a JSON object" in result.stderr
    assert _message(target)["outputs"] == {}


def test_the_runner_wraps_the_command_given_as_arguments(workspace: Workspace, tmp_path: Path) -> None:
    target = tmp_path / "termination-log"
    workspace.write_specs(runner={"binary": "jangar-runner"})
    result = workspace.run(
        argv=("--", "/bin/sh", "-c", "echo wrapped $0; exit 4", "agent"),
        JANGAR_TERMINATION_MESSAGE_PATH=str(target),
    )
    assert result.returncode == 4
    assert "wrapped agent" in result.stdout
    assert "wrapped agent" in workspace.log
    assert _message(target)["exitCode"] == 4


def test_a_spec_that_names_the_runner_itself_is_refused(workspace: Workspace) -> None:
    workspace.write_specs(runner={"binary": "/opt/jangar/bin/jangar-runner"})
    result = workspace.run()
    assert result.returncode == 65
    assert "names the runner itself" in result.stderr
    assert workspace.status["reason"] == "InvalidSpec"


def test_a_report_too_big_for_the_kubelet_drops_the_artifacts_first() -> None:
    status = RunStatus(phase="Succeeded", started_at="t", reason="Completed", exit_code=0)
    status.artifacts = [{"name": f"a{i}", "path": "/x" * 40, "present": False} for i in range(100)]
    kept = json.loads(report(status, {"branch": "b"}))
    assert kept["truncated"] is True and "artifacts" not in kept
    assert kept["outputs"] == {"branch": "b"}

    huge = json.loads(report(status, {"blob": "x" * MAX_BYTES}))
    assert huge == {"phase": "Succeeded", "reason": "Completed", "exitCode": 0, "truncated": True}

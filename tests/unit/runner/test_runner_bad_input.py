"""Bad input ends with a clear message, a distinct exit code, and a status.json saying why."""

from __future__ import annotations

import json

import pytest

from jangar.runner.errors import (
    EXIT_CANTCREAT,
    EXIT_DATAERR,
    EXIT_NOINPUT,
    EXIT_NOT_EXECUTABLE,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)
from tests.unit.runner.conftest import Workspace


def _assert_failed(workspace: Workspace, code: int, reason: str) -> None:
    status = workspace.status
    assert (status["phase"], status["reason"], status["exitCode"]) == ("Failed", reason, code)
    assert status["message"]
    assert status["message"] in workspace.log


def test_missing_run_spec_env(workspace: Workspace) -> None:
    env = workspace.env()
    del env["AGENT_RUN_SPEC"]
    result = workspace.run(env=env)

    assert result.returncode == EXIT_USAGE
    assert "AGENT_RUN_SPEC is not set" in result.stderr
    _assert_failed(workspace, EXIT_USAGE, "MissingSpec")


def test_missing_runner_spec_env_reports_in_the_workspace(workspace: Workspace) -> None:
    env = workspace.env(AGENT_WORKSPACE=str(workspace.root))
    del env["AGENT_RUNNER_SPEC_PATH"]
    result = workspace.run(env=env)

    assert result.returncode == EXIT_USAGE
    assert "AGENT_RUNNER_SPEC_PATH is not set" in result.stderr
    _assert_failed(workspace, EXIT_USAGE, "MissingSpec")


def test_run_spec_file_that_does_not_exist(workspace: Workspace) -> None:
    result = workspace.run(AGENT_RUN_SPEC=str(workspace.root / "nope.json"))

    assert result.returncode == EXIT_NOINPUT
    assert "nope.json does not exist" in result.stderr
    _assert_failed(workspace, EXIT_NOINPUT, "MissingSpec")


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_runner_spec_that_is_not_a_json_object(workspace: Workspace, content: str) -> None:
    workspace.runner_json.write_text(content)
    result = workspace.run()

    assert result.returncode == EXIT_DATAERR
    assert "AGENT_RUNNER_SPEC_PATH" in result.stderr
    _assert_failed(workspace, EXIT_DATAERR, "InvalidSpec")


def test_invalid_inline_run_spec(workspace: Workspace) -> None:
    result = workspace.run(AGENT_RUN_SPEC="{oops")

    assert result.returncode == EXIT_DATAERR
    assert "AGENT_RUN_SPEC is not valid JSON" in result.stderr


@pytest.mark.parametrize(
    ("runner", "fragment"),
    [
        ({"binary": ""}, "'binary'"),
        ({"args": "not a list"}, "'args' must be a list of strings"),
        ({"env": {"A": 1}}, "'env' must map names to strings"),
        ({"inputFiles": [{"path": "x"}]}, "inputFiles[0]"),
    ],
)
def test_runner_spec_with_the_wrong_shape(
    workspace: Workspace, runner: dict[str, object], fragment: str
) -> None:
    workspace.write_specs(runner=runner)
    result = workspace.run()

    assert result.returncode == EXIT_DATAERR
    assert fragment in result.stderr


def test_binary_that_does_not_exist(workspace: Workspace) -> None:
    workspace.write_specs(runner={"binary": "/no/such/agent"})
    result = workspace.run()

    assert result.returncode == EXIT_NOT_FOUND
    assert "/no/such/agent does not exist" in result.stderr
    _assert_failed(workspace, EXIT_NOT_FOUND, "BinaryNotFound")


def test_binary_that_is_not_executable(workspace: Workspace) -> None:
    workspace.provider.chmod(0o644)
    result = workspace.run()

    assert result.returncode == EXIT_NOT_EXECUTABLE
    _assert_failed(workspace, EXIT_NOT_EXECUTABLE, "BinaryNotExecutable")


def test_a_bare_binary_name_is_found_on_path(workspace: Workspace) -> None:
    workspace.write_specs(runner={"binary": workspace.provider.name})
    env = workspace.env()
    env["PATH"] = f"{workspace.provider.parent}:{env['PATH']}"
    result = workspace.run(env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["args"] == []


@pytest.mark.parametrize("key", ["statusPath", "logPath"])
def test_unwritable_status_or_log_is_reported_and_the_agent_never_starts(
    workspace: Workspace, key: str
) -> None:
    blocker = workspace.root / "a-file"
    blocker.write_text("")
    runner = json.loads(workspace.runner_json.read_text())
    runner["artifacts"][key] = str(blocker / "sub" / "x.json")
    runner["args"] = [str(workspace.root / "started")]
    runner["binary"] = "/usr/bin/touch"
    workspace.runner_json.write_text(json.dumps(runner))

    result = workspace.run()

    assert result.returncode == EXIT_CANTCREAT
    assert "cannot" in result.stderr and "a-file" in result.stderr
    assert not (workspace.root / "started").exists()

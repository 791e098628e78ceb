"""The runner as the Job pod runs it: a real subprocess with a real provider executable."""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.unit.runner.conftest import Workspace


def _first_json(stdout: str) -> dict[str, object]:
    return json.loads(stdout.splitlines()[0])


def test_success_streams_output_logs_it_and_writes_status(workspace: Workspace) -> None:
    result = workspace.run()

    assert result.returncode == 0, result.stderr
    assert _first_json(result.stdout)["cwd"] == str(workspace.root)
    assert "to stderr" in result.stderr
    assert "to stderr" in workspace.log and '"args": []' in workspace.log
    status = workspace.status
    assert status["phase"] == "Succeeded" and status["reason"] == "Completed"
    assert status["exitCode"] == 0
    assert status["agentRun"] == {"name": "run-1", "uid": "uid-1", "namespace": "agents"}
    assert status["provider"] == "test-provider"
    assert status["startedAt"] <= status["finishedAt"]
    assert status["binary"] == str(workspace.provider)


def test_status_lists_the_providers_output_artifacts(workspace: Workspace) -> None:
    workspace.write_specs(
        run={
            "artifacts": [
                {"name": "runner-log", "path": ".agent/runner.log"},
                {"name": "patch", "path": str(workspace.root / "out.patch")},
                {"name": "remote", "url": "s3://bucket/key"},
            ]
        }
    )
    assert workspace.run(PROVIDER_MODE="outputs").returncode == 0

    log, patch = workspace.status["artifacts"]
    assert (log["name"], log["path"], log["present"]) == (
        "runner-log",
        str(workspace.root / ".agent" / "runner.log"),
        True,
    )
    assert patch == {
        "name": "patch",
        "path": str(workspace.root / "out.patch"),
        "present": True,
        "size": 14,
        "sha256": hashlib.sha256(b"patch content\n").hexdigest(),
    }


def test_a_missing_artifact_is_listed_as_absent(workspace: Workspace) -> None:
    workspace.write_specs(run={"artifacts": [{"name": "patch", "path": "nothing-here.patch"}]})
    assert workspace.run().returncode == 0
    assert workspace.status["artifacts"] == [
        {"name": "patch", "path": str(workspace.root / "nothing-here.patch"), "present": False}
    ]


def test_the_agents_exit_code_is_propagated(workspace: Workspace) -> None:
    result = workspace.run(PROVIDER_MODE="fail", PROVIDER_EXIT="3")

    assert result.returncode == 3
    status = workspace.status
    assert (status["phase"], status["reason"], status["exitCode"]) == ("Failed", "AgentFailed", 3)


def test_an_agent_killed_by_a_signal_exits_128_plus_the_signal(workspace: Workspace) -> None:
    result = workspace.run(PROVIDER_MODE="kill")

    assert result.returncode == 128 + signal.SIGKILL
    assert workspace.status["reason"] == "Killed"


def test_rendered_args_and_env_are_used_verbatim_and_the_environment_is_inherited(
    workspace: Workspace,
) -> None:
    workspace.write_specs(
        runner={
            "args": ["--stage", "implement", "literal {{parameters.stage}}"],
            "env": {"PROVIDER_LEVEL": "debug", "FROM_SPEC": "spec wins"},
        }
    )
    result = workspace.run(FROM_SECRET="envFrom value", FROM_SPEC="pod value")

    assert result.returncode == 0, result.stderr
    seen = _first_json(result.stdout)
    assert seen["args"] == ["--stage", "implement", "literal {{parameters.stage}}"]
    env = seen["env"]
    assert isinstance(env, dict)
    assert env["PROVIDER_LEVEL"] == "debug"
    assert env["FROM_SECRET"] == "envFrom value"
    assert env["FROM_SPEC"] == "spec wins"
    assert env["AGENT_RUN_SPEC"] == str(workspace.run_json)


def test_templates_are_rendered_from_run_json_when_no_rendered_values_are_given(workspace: Workspace) -> None:
    runner = json.loads(workspace.runner_json.read_text())
    del runner["args"], runner["env"]
    runner["argsTemplate"] = ["--stage={{ inputs.stage }}", "{{implementation.text}}", "[{{missing.key}}]"]
    runner["envTemplate"] = {
        "PROVIDER_RUN": "{{agentRun.name}}/{{parameters.issueNumber}}",
        "PROVIDER_P": "{{parameters}}",
    }
    workspace.runner_json.write_text(json.dumps(runner))

    result = workspace.run()

    assert result.returncode == 0, result.stderr
    seen = _first_json(result.stdout)
    assert seen["args"] == ["--stage=implement", "fix the bug", "[]"]
    env = seen["env"]
    assert isinstance(env, dict)
    assert env["PROVIDER_RUN"] == "run-1/7"
    assert json.loads(env["PROVIDER_P"]) == {"stage": "implement", "issueNumber": "7"}


def test_input_files_are_written_before_the_agent_starts(workspace: Workspace, tmp_path: Path) -> None:
    absolute = tmp_path / "home" / ".codex" / "config.toml"
    workspace.write_specs(
        runner={
            "args": ["prompt.md", str(absolute)],
            "inputFiles": [
                {"path": "prompt.md", "content": "fix issue 7"},
                {"path": str(absolute), "content": 'model = "o3"'},
            ],
        }
    )
    result = workspace.run(PROVIDER_MODE="cat")

    assert result.returncode == 0, result.stderr
    assert "fix issue 7" in result.stdout and 'model = "o3"' in result.stdout
    assert (workspace.root / "prompt.md").read_text() == "fix issue 7"


def test_inline_run_spec_json_is_accepted(workspace: Workspace) -> None:
    inline = json.dumps({"agentRun": {"name": "inline-run"}, "parameters": {}})
    result = workspace.run(AGENT_RUN_SPEC=inline)

    assert result.returncode == 0, result.stderr
    assert workspace.status["agentRun"] == {"name": "inline-run"}


def test_sigterm_is_forwarded_to_the_agent(workspace: Workspace) -> None:
    proc = workspace.popen(workspace.env(PROVIDER_MODE="wait"))
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        if line.strip() == "ready":
            break
        assert time.monotonic() < deadline
    assert workspace.status["phase"] == "Running"

    proc.send_signal(signal.SIGTERM)
    rest, errors = proc.communicate(timeout=30)

    assert proc.returncode == 42, errors
    assert "provider got SIGTERM" in rest
    status = workspace.status
    assert (status["phase"], status["reason"], status["signal"], status["exitCode"]) == (
        "Failed",
        "Terminated",
        "SIGTERM",
        42,
    )
    assert "provider got SIGTERM" in workspace.log


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreaper is Linux-only")
def test_orphaned_grandchildren_are_reaped(workspace: Workspace) -> None:
    result = workspace.run(PROVIDER_MODE="orphan")

    assert result.returncode == 0, result.stderr
    assert "zombies of the runner: []" in result.stdout


def test_help_documents_the_environment() -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "jangar.runner", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "AGENT_RUNNER_SPEC_PATH" in result.stdout

"""The runner accepts exactly what the scheduler puts into the run-spec ConfigMap.

The documents come from `jangar.scheduler.runspec` (run.json and agent-runner.json); only the absolute
`/workspace` paths are moved into the test's workspace. If either side changes shape, this breaks.
"""

from __future__ import annotations

import json
from pathlib import Path

from jangar.scheduler.context import RunContext
from jangar.scheduler.runspec import run_spec, runner_spec
from jangar.settings import Settings
from tests.unit.runner.conftest import Workspace


def _relocate(document: str, root: Path) -> str:
    return document.replace('"/workspace', f'"{root}')


def test_the_schedulers_documents_run_the_provider(workspace: Workspace) -> None:
    run = {
        "metadata": {"name": "run-1", "namespace": "agents", "uid": "uid-1"},
        "spec": {"agentRef": {"name": "agent-1"}, "runtime": {"type": "job"}},
    }
    provider = {
        "metadata": {"name": "provider-1"},
        "spec": {
            "binary": str(workspace.provider),
            "argsTemplate": ["--stage={{inputs.stage}}", "{{implementation.summary}}", "prompt.md"],
            "envTemplate": {"PROVIDER_AGENT": "{{agent.name}}", "PROVIDER_CONFIG": "{{agent.config.level}}"},
            "inputFiles": [{"path": "/workspace/prompt.md", "content": "Work on {{parameters.issueNumber}}"}],
        },
    }
    agent = {
        "metadata": {"name": "agent-1"},
        "spec": {"providerRef": {"name": "provider-1"}, "config": {"level": 2}},
    }
    ctx = RunContext(
        run=run,
        agent=agent,
        provider=provider,
        implementation={"text": "Fix the bug", "summary": "Fix it"},
        parameters={"stage": "implement", "issueNumber": "7"},
    )
    settings = Settings.from_env({})
    workspace.run_json.write_text(_relocate(json.dumps(run_spec(ctx)), workspace.root))
    workspace.runner_json.write_text(_relocate(json.dumps(runner_spec(ctx, settings)), workspace.root))

    result = workspace.run(PROVIDER_MODE="ok")

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[0])
    assert seen["args"] == ["--stage=implement", "Fix it", "prompt.md"]
    assert seen["cwd"] == str(workspace.root)
    assert seen["env"]["PROVIDER_AGENT"] == "agent-1"
    assert seen["env"]["PROVIDER_CONFIG"] == "2"
    assert (workspace.root / "prompt.md").read_text() == "Work on 7"
    status = workspace.status
    assert status["phase"] == "Succeeded"
    assert status["agentRun"] == {"name": "run-1", "uid": "uid-1", "namespace": "agents"}
    assert status["provider"] == "provider-1"

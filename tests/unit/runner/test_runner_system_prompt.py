"""issue 13 item 3: the runner checks the system prompt's sha256 and shows the run's goal."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from jangar.runner.errors import EXIT_DATAERR, RunnerError
from jangar.runner.prompt import verify_system_prompt
from tests.unit.runner.conftest import Workspace

TEXT = "You are a careful engineer.\n"
DIGEST = hashlib.sha256(TEXT.encode()).hexdigest()


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "system-prompt.md"
    path.write_text(TEXT)
    return path


@pytest.mark.parametrize("name", ["JANGAR_SYSTEM_PROMPT_SHA256", "AGENTS_SYSTEM_PROMPT_SHA256"])
def test_a_matching_prompt_is_verified_under_either_name(prompt_file: Path, name: str) -> None:
    env = {name: DIGEST.upper(), "JANGAR_SYSTEM_PROMPT_PATH": str(prompt_file)}
    assert verify_system_prompt(env) == DIGEST


def test_without_an_expected_hash_there_is_nothing_to_check(tmp_path: Path) -> None:
    assert verify_system_prompt({"JANGAR_SYSTEM_PROMPT_PATH": str(tmp_path / "absent")}) is None


@pytest.mark.parametrize(
    ("content", "words"),
    [("You are a reckless engineer.\n", "changed after acceptance"), (None, "cannot be read")],
)
def test_a_different_or_missing_prompt_is_refused(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "system-prompt.md"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RunnerError) as caught:
        verify_system_prompt({"JANGAR_SYSTEM_PROMPT_SHA256": DIGEST, "JANGAR_SYSTEM_PROMPT_PATH": str(path)})
    assert caught.value.exit_code == EXIT_DATAERR and caught.value.reason == "SystemPromptHashMismatch"
    assert words in caught.value.message and DIGEST in caught.value.message


def test_the_runner_refuses_to_start_the_agent_on_a_mismatch(
    workspace: Workspace, prompt_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "termination-log"
    workspace.write_specs()
    result = workspace.run(
        PROVIDER_MODE="ok",
        JANGAR_SYSTEM_PROMPT_SHA256="0" * 64,
        JANGAR_SYSTEM_PROMPT_PATH=str(prompt_file),
        JANGAR_TERMINATION_MESSAGE_PATH=str(target),
    )
    assert result.returncode == EXIT_DATAERR
    assert result.stdout == ""  # the provider never ran
    message = json.loads(target.read_text())
    assert message["reason"] == "SystemPromptHashMismatch" and message["phase"] == "Failed"
    assert len(target.read_bytes()) <= 4096


def test_a_verified_run_reports_its_hash_goal_model_and_thread(
    workspace: Workspace, prompt_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "termination-log"
    workspace.write_specs(run={"goal": {"objective": "ship the fix", "tokenBudget": 9000}})
    result = workspace.run(
        PROVIDER_MODE="outputs",
        PROVIDER_OUTPUTS=json.dumps({"model": "gpt-5", "threadId": "th-9"}),
        JANGAR_SYSTEM_PROMPT_SHA256=DIGEST,
        JANGAR_SYSTEM_PROMPT_PATH=str(prompt_file),
        JANGAR_TERMINATION_MESSAGE_PATH=str(target),
    )
    assert result.returncode == 0, result.stderr
    assert "goal: ship the fix (token budget 9000)" in result.stderr
    assert f"system prompt verified (sha256 {DIGEST})" in result.stderr
    message = json.loads(target.read_text())
    assert message["systemPromptSha256"] == DIGEST
    assert (message["model"], message["threadId"]) == ("gpt-5", "th-9")
    assert workspace.status["goal"] == {"objective": "ship the fix", "tokenBudget": 9000}


def test_the_runner_reads_what_the_scheduler_sends() -> None:
    """The runner may not import the scheduler (it is the pod's own program): the names must agree."""
    from jangar.runner import prompt
    from jangar.scheduler import system_prompt

    assert prompt.HASH_ENVS == (system_prompt.PROMPT_HASH_ENV, system_prompt.PROMPT_HASH_ENV_ALIAS)
    assert prompt.PATH_ENV == system_prompt.PROMPT_PATH_ENV
    assert f"{system_prompt.PROMPT_DIR}/{system_prompt.PROMPT_FILE}" == prompt.DEFAULT_PROMPT_PATH

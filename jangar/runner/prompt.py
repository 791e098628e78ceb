"""The runner's side of system-prompt attestation (0.9.29 row 5, issue 13 item 3).

The controller records the Agent's prompt hash in `status.systemPromptHash` and sends it as
`JANGAR_SYSTEM_PROMPT_SHA256` (0.9.29: `AGENTS_SYSTEM_PROMPT_SHA256`) with the prompt file at
`JANGAR_SYSTEM_PROMPT_PATH`. Before starting the agent the runner hashes the file and refuses to go on when
it is missing or differs (exit 65, reason `SystemPromptHashMismatch`, in the termination message): an agent
never runs with a prompt other than the one the run was accepted with. Without the env var there is nothing
to check (a 0.9.1 Agent).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from jangar.runner.errors import EXIT_DATAERR, RunnerError

__all__ = ["DEFAULT_PROMPT_PATH", "HASH_ENVS", "PATH_ENV", "verify_system_prompt"]

HASH_ENVS = ("JANGAR_SYSTEM_PROMPT_SHA256", "AGENTS_SYSTEM_PROMPT_SHA256")
PATH_ENV = "JANGAR_SYSTEM_PROMPT_PATH"
DEFAULT_PROMPT_PATH = "/etc/jangar/system-prompt/system-prompt.md"
MISMATCH = "SystemPromptHashMismatch"


def verify_system_prompt(environ: Mapping[str, str]) -> str | None:
    """The verified sha256, or None when no hash was sent; `RunnerError` when the prompt does not match."""
    expected = next((environ[n].strip().lower() for n in HASH_ENVS if environ.get(n, "").strip()), None)
    if expected is None:
        return None
    path = Path(environ.get(PATH_ENV, "").strip() or DEFAULT_PROMPT_PATH)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RunnerError(
            f"the system prompt file {path} cannot be read ({exc.strerror or exc}); the controller expected "
            f"sha256 {expected}",
            EXIT_DATAERR,
            MISMATCH,
        ) from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise RunnerError(
            f"the system prompt at {path} has sha256 {actual}, not the {expected} recorded when the run was "
            "accepted (status.systemPromptHash): it changed after acceptance; refusing to start the agent",
            EXIT_DATAERR,
            MISMATCH,
        )
    return actual

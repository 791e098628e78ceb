"""``.agent/status.json``: the runner's account of the run, readable by whoever collects artifacts.

Written atomically (temp file then rename) at start (``Running``) and at the end, so a reader never sees
half a file, and a pod killed mid-run still leaves the last complete state behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def now() -> str:
    """An RFC 3339 UTC timestamp with second precision, like Kubernetes status times."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunStatus:
    """The fields of status.json (camelCase on disk)."""

    phase: str
    started_at: str
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None
    signal: str | None = None
    finished_at: str | None = None
    provider: str | None = None
    binary: str | None = None
    agent_run: dict[str, Any] = field(default_factory=dict)
    log_path: str | None = None
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    system_prompt_sha256: str | None = None
    """The Agent's system prompt hash the runner verified (issue 13 item 3)."""
    goal: dict[str, Any] | None = None
    """run.json `goal`: the objective (and token budget) the run was given."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "phase": self.phase,
            "reason": self.reason,
            "message": self.message,
            "exitCode": self.exit_code,
            "signal": self.signal,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "provider": self.provider,
            "binary": self.binary,
            "agentRun": self.agent_run,
            "logPath": self.log_path,
            "artifacts": self.artifacts,
            "systemPromptSha256": self.system_prompt_sha256,
            "goal": self.goal,
        }


def write_status(path: Path, status: RunStatus) -> None:
    """Replace ``path`` with ``status`` atomically, creating the directory if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".status-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(status.as_dict(), handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

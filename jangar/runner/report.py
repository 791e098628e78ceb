"""The run's outcome in the container's termination message, where the controller reads it back.

Kubernetes keeps at most 4096 bytes of ``/dev/termination-log`` in the Pod's terminated container state,
so the report is JSON that fits: the phase, reason and exit code always; the agent's outputs (the JSON
object it wrote to ``$AGENT_OUTPUTS_PATH``) and the artifact list (name, path, present, size, sha256) when
they fit, with ``"truncated": true`` when something had to be dropped. The controller parses it as
``jangar.scheduler.termination`` describes: ``outputs`` and ``artifacts`` become ``status.runner``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jangar.runner.status import RunStatus

TERMINATION_PATH_ENV = "JANGAR_TERMINATION_MESSAGE_PATH"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
OUTPUTS_ENV = "AGENT_OUTPUTS_PATH"
OUTPUTS_FILE = ".agent/outputs.json"
MAX_BYTES = 4096
_MAX_OUTPUTS_READ = 64 * 1024


def termination_path(environ: Mapping[str, str]) -> Path | None:
    """Where to write the report: the env override, else the kubelet's file when it exists (in a pod)."""
    configured = environ.get(TERMINATION_PATH_ENV, "").strip()
    if configured:
        return Path(configured)
    default = Path(DEFAULT_TERMINATION_PATH)
    return default if default.exists() else None


def read_outputs(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The agent's outputs object, or (None, why it was ignored); a missing file is no outputs, no error."""
    try:
        if not path.is_file():
            return None, None
        if path.stat().st_size > _MAX_OUTPUTS_READ:
            return None, f"{path} is larger than {_MAX_OUTPUTS_READ} bytes"
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"cannot read outputs {path}: {exc}"
    if not isinstance(data, dict):
        return None, f"{path} must hold a JSON object"
    return data, None


def describe_artifact(name: str, path: Path) -> dict[str, Any]:
    """One artifact: whether the file exists, and its size and sha256 when it is a regular file."""
    entry: dict[str, Any] = {"name": name, "path": str(path), "present": path.is_file()}
    if entry["present"]:
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 16), b""):
                    digest.update(chunk)
            entry["size"] = path.stat().st_size
            entry["sha256"] = digest.hexdigest()
        except OSError:
            entry["present"] = False
    return entry


def report(status: RunStatus, outputs: Mapping[str, Any] | None) -> str:
    """The termination message: as much of the outcome as fits in MAX_BYTES, the essentials always."""
    essentials: dict[str, Any] = {
        "phase": status.phase,
        "reason": status.reason,
        "exitCode": status.exit_code,
    }
    if status.message:
        essentials["message"] = status.message[:512]
    # issue 13 item 3: what status.runner summarises (the controller compares the prompt hash)
    if status.system_prompt_sha256:
        essentials["systemPromptSha256"] = status.system_prompt_sha256
    for key in ("model", "threadId"):
        value = (outputs or {}).get(key)
        if isinstance(value, str) and value:
            essentials[key] = value[:256]
    full = dict(essentials, outputs=dict(outputs or {}), artifacts=status.artifacts)
    for candidate in (full, dict(essentials, outputs=dict(outputs or {}), truncated=True)):
        text = json.dumps(candidate, separators=(",", ":"), sort_keys=True)
        if len(text.encode()) <= MAX_BYTES:
            return text
    return json.dumps(dict(essentials, truncated=True), separators=(",", ":"), sort_keys=True)


def write_termination_message(path: Path, text: str) -> str | None:
    """Write the report; returns why it could not be written (never raises: it is best effort)."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        return f"cannot write the termination message {path}: {exc}"
    return None

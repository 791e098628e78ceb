"""The loop-control data of a looping workflow step, carried to the controller in the termination message.

A looping step's CEL condition reads a JSON file the agent writes (often on the Workspace PVC). The
controller cannot read a PVC, but it does cache the Pod, whose terminated container state holds the
termination message: so the runner reads the file named by ``AGENT_LOOP_CONTROL_PATH`` (set by the
controller only for a conditional loop) and reports it as ``"loopControl": {...}``, or, when the file is
missing, unreadable, not a JSON object or too large for the message, as
``"loopControlError": {"reason": "missing" | "invalid", "message": ...}``; the step's
``onMissingControl``/``onInvalidControl`` policy decides what follows. The names mirror
``jangar.scheduler.workflow_loop`` (the runner ships alone and imports nothing of jangar).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CONTROL_PATH_ENV = "AGENT_LOOP_CONTROL_PATH"
CONTROL_KEY = "loopControl"
CONTROL_ERROR_KEY = "loopControlError"
MAX_CONTROL_BYTES = 2048
"""The control object's compact JSON must fit here, leaving room in the 4096-byte message for the rest."""


def _error(reason: str, message: str) -> dict[str, Any]:
    return {CONTROL_ERROR_KEY: {"reason": reason, "message": message[:300]}}


def read_loop_control(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The report entries for the loop-control file, or `None` when the step has no conditional loop."""
    configured = environ.get(CONTROL_PATH_ENV, "").strip()
    if not configured:
        return None
    path = Path(configured)
    try:
        if not path.is_file():
            return _error("missing", f"loop-control file {path} does not exist")
        if path.stat().st_size > 64 * 1024:
            return _error("invalid", f"loop-control file {path} is larger than 64 KiB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return _error("invalid", f"cannot read loop-control file {path}: {exc}")
    except json.JSONDecodeError as exc:
        return _error("invalid", f"loop-control file {path} is not JSON: {exc}")
    if not isinstance(data, dict):
        return _error(
            "invalid", f"loop-control file {path} must hold a JSON object, not {type(data).__name__}"
        )
    size = len(json.dumps(data, separators=(",", ":"), sort_keys=True).encode())
    if size > MAX_CONTROL_BYTES:
        return _error(
            "invalid",
            f"loop-control data is {size} bytes, over {MAX_CONTROL_BYTES}: keep only what the condition reads",
        )
    return {CONTROL_KEY: data}

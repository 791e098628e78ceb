"""Time-based cleanup values: the Job TTL and the AgentRun retention (reference §3.2 step 3, §3.4).

Both are functions, not side effects: the reconciler patches `ttlSecondsAfterFinished` only after it has
recorded the terminal status (otherwise the Job can vanish before its outcome is read); the retention sweep
(`jangar.scheduler.retention.plan_retention`, issue 13) deletes a finished run once `retention_remaining()`
reaches 0, and sleeps until the next run falls due instead of waiting for an unrelated event (§12.6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jangar.api.contract import is_retained, is_template, is_terminal
from jangar.conditions import parse_time
from jangar.settings import Settings

__all__ = [
    "JOB_TTL_MAX_SECONDS",
    "JOB_TTL_MIN_SECONDS",
    "clamp_job_ttl",
    "job_ttl_seconds",
    "retention_remaining",
    "retention_seconds",
]

JOB_TTL_MIN_SECONDS = 30
JOB_TTL_MAX_SECONDS = 7 * 24 * 3600


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and value.strip():
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def clamp_job_ttl(value: float | None) -> int | None:
    """`None` (no TTL, keep the Job) for ≤0 or non-numbers; else floored and clamped to [30 s, 7 d]."""
    if value is None or value <= 0:
        return None
    return max(JOB_TTL_MIN_SECONDS, min(JOB_TTL_MAX_SECONDS, int(value)))


def job_ttl_seconds(run: Mapping[str, Any], settings: Settings) -> int | None:
    """The Job TTL for a finished run: `runtime.config.ttlSecondsAfterFinished`, else the controller's."""
    spec = run.get("spec") or {}
    runtime = spec.get("runtime") or {}
    config = runtime.get("config") or {}
    per_run = _number(config.get("ttlSecondsAfterFinished")) if isinstance(config, Mapping) else None
    return clamp_job_ttl(per_run if per_run is not None else float(settings.runner.job_ttl_seconds))


def retention_seconds(run: Mapping[str, Any], settings: Settings) -> int:
    """How long a finished AgentRun is kept: `spec.ttlSecondsAfterFinished`, else the controller default.

    0 means keep for ever (the 0.9.1 meaning, kept so no 0.9.1 user loses runs), unless the 0.9.29 safety cap
    `JANGAR_AGENTRUN_RETENTION_ZERO_TTL_MAX_SECONDS` is set (> 0): then such a run is kept that long.
    """
    per_run = _number((run.get("spec") or {}).get("ttlSecondsAfterFinished"))
    retention = int(per_run) if per_run is not None and per_run >= 0 else settings.agentrun_retention_seconds
    return retention or settings.retention.zero_ttl_max_seconds


def retention_remaining(run: Mapping[str, Any], settings: Settings, now: datetime) -> float | None:
    """Seconds until a finished run should be deleted (≤0: delete now); `None`: never, or not finished.

    Never: a run annotated `agents.proompteng.ai/retain` (or `jangar.proompteng.ai/retain`) `"true"`, and a
    0.9.29 template run (`agents.proompteng.ai/template: "true"`), which exists to be copied.
    """
    status = run.get("status") or {}
    if not is_terminal(status.get("phase")) or is_retained(run) or is_template(run):
        return None
    finished = parse_time(status.get("finishedAt"))
    retention = retention_seconds(run, settings)
    if finished is None or retention == 0:
        return None
    return retention - (now - finished).total_seconds()

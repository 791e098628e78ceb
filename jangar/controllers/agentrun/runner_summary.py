"""`status.runner` of a finished run: the agent container's report, summarised (0.9.29 row 11).

`container_report` gives the exit code, the container's terminated reason, the agent's outputs (or the text
the kubelet kept). On top of it the summary names the model and thread id the agent reported (jangar-runner
copies them to the top of its termination message; an agent writing its own message may put them in its
outputs), the artifact names (their details go to `status.artifacts`) and whether jangar-runner verified the
system prompt against `status.systemPromptHash`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["runner_summary"]

_SUMMARY_KEYS = (("model", "model"), ("threadId", "threadId"))


def runner_summary(run: Mapping[str, Any], report: Mapping[str, Any], artifacts: Any) -> dict[str, Any]:
    """`report` (from `container_report`) with model, threadId, artifact names and prompt verification."""
    summary = {k: v for k, v in report.items() if k != "runner"}
    runner = report.get("runner")
    said: Mapping[str, Any] = runner if isinstance(runner, Mapping) else {}
    outputs = report.get("outputs")
    outs: Mapping[str, Any] = outputs if isinstance(outputs, Mapping) else {}
    for key, source in _SUMMARY_KEYS:
        value = said.get(source, outs.get(source))
        if isinstance(value, str) and value:
            summary[key] = value[:256]
    if isinstance(artifacts, list):
        names = [str(a["name"]) for a in artifacts if isinstance(a, Mapping) and a.get("name")]
        if names:
            summary["artifacts"] = names
    verified = said.get("systemPromptSha256")
    expected = (run.get("status") or {}).get("systemPromptHash")
    if isinstance(verified, str) and expected:
        summary["systemPromptVerified"] = verified == expected
    return summary

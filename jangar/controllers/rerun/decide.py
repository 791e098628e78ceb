"""Reruns and system-improvement runs (reference §6.10): a PURE function AgentRun (+ facts) → submissions.

When an AgentRun fails (or a judge verdict asks for it with `jangar.proompteng.ai/rerun: "true"`), and
`workflowRuntime.native.rerunOrchestration` is set, submit an OrchestrationRun of that orchestration with the
§6.10 parameters; when `jangar.proompteng.ai/system-improvement: "true"` is on a finished run and
`systemImprovementOrchestration` is set, submit one system-improvement OrchestrationRun.

Lineage and attempts: a rerun's parameters carry `parentRunUid` (the root run's uid) and `attempt`; the
orchestration's AgentRun steps inherit the run parameters (docs/orchestration.md), so when such a step fails
the next attempt is `attempt + 1` of the same root. The delivery id is `jangar-<root uid>-attempt-<n>`
(the reference's `jangar-<runId>-attempt-<n>`); the OrchestrationRun's name is derived from it, so the
API server's AlreadyExists makes every submission idempotent (one OrchestrationRun per attempt, whatever
the number of passes, replicas or failing steps). Attempt n waits `BACKOFF_SECONDS[n-1]` (2, 7, 15 s, the
reference's) after the failed run finished; after `MAX_ATTEMPTS` nothing more is submitted.
`jangar.proompteng.ai/rerun: "false"` opts a run out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jangar.api.contract import (
    ANNOTATION_RERUN,
    ANNOTATION_SYSTEM_IMPROVEMENT,
    LABEL_RERUN_KIND,
    LABEL_RERUN_OF,
    Phase,
    delivery_id_labels,
    is_terminal,
)
from jangar.conditions import parse_time
from jangar.scheduler.naming import dns_label, label_value

__all__ = [
    "BACKOFF_SECONDS",
    "MAX_ATTEMPTS",
    "PARAMETER_ALIASES",
    "RerunConfig",
    "RerunPlan",
    "Submission",
    "decide",
]

BACKOFF_SECONDS: tuple[float, ...] = (2.0, 7.0, 15.0)
MAX_ATTEMPTS = len(BACKOFF_SECONDS)
ANNOTATION_JUDGE_PROMPT = "jangar.proompteng.ai/judge-prompt"

#: camelCase → snake_case aliases the reference passes both of.
PARAMETER_ALIASES: dict[str, str] = {
    "issueNumber": "issue_number",
    "judgePrompt": "judge_prompt",
    "parentRunUid": "parent_run_uid",
    "iterationCycle": "iteration_cycle",
    "implementationIterations": "implementation_iterations",
    "implementationResumeKey": "implementation_resume_key",
    "implementationChangesKey": "implementation_changes_key",
}


@dataclass(frozen=True)
class RerunConfig:
    rerun_orchestration: str | None
    rerun_namespace: str
    improvement_orchestration: str | None
    improvement_namespace: str


@dataclass(frozen=True)
class Submission:
    kind: str
    """`rerun` or `system-improvement`."""
    namespace: str
    name: str
    orchestration: str
    delivery_id: str
    parameters: dict[str, str]
    labels: dict[str, str]
    annotations: dict[str, str]

    def manifest(self, api_version: str, kind: str) -> dict[str, Any]:
        return {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": dict(self.labels),
                "annotations": dict(self.annotations),
            },
            "spec": {
                "orchestrationRef": {"name": self.orchestration},
                "parameters": dict(self.parameters),
                "deliveryId": self.delivery_id,
            },
        }


@dataclass(frozen=True)
class RerunPlan:
    submit: tuple[Submission, ...] = ()
    requeue_after: float | None = None
    exhausted: bool = False
    """True when the run failed but its root used every attempt (an Event says so once)."""
    notes: tuple[str, ...] = field(default=())


def _flag(annotations: Mapping[str, Any], key: str) -> bool | None:
    value = str(annotations.get(key, "")).strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    return None


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _object_name(orchestration: str, delivery: str) -> str:
    digest = hashlib.sha256(delivery.encode()).hexdigest()[:10]
    return dns_label(orchestration[:40], digest)


def _parameters(
    run: Mapping[str, Any], prompt: str, attempt: int, root_uid: str, extra: Mapping[str, str]
) -> dict[str, str]:
    params = {str(k): str(v) for k, v in ((run.get("spec") or {}).get("parameters") or {}).items()}
    annotations = (run.get("metadata") or {}).get("annotations") or {}

    def pick(*keys: str) -> str:
        return next((params[k] for k in keys if params.get(k)), "")

    values = {
        "repository": pick("repository", "repo"),
        "base": pick("base", "baseBranch", "base_branch"),
        "head": pick("head", "headBranch", "head_branch", "branch"),
        "prompt": pick("prompt") or prompt,
        "attempt": str(attempt),
        "issueNumber": pick("issueNumber", "issue_number", "issue"),
        "judgePrompt": str(annotations.get(ANNOTATION_JUDGE_PROMPT) or "")
        or pick("judgePrompt", "judge_prompt"),
        "parentRunUid": root_uid,
        "iterationCycle": str(attempt),
        "implementationIterations": pick("implementationIterations", "implementation_iterations"),
        "implementationResumeKey": pick("implementationResumeKey", "implementation_resume_key"),
        "implementationChangesKey": pick("implementationChangesKey", "implementation_changes_key"),
        **extra,
    }
    out = dict(values)
    for camel, snake in PARAMETER_ALIASES.items():
        out[snake] = values[camel]
    return out


def decide(run: Mapping[str, Any], config: RerunConfig, *, prompt: str, now: datetime) -> RerunPlan:
    """What to submit for this AgentRun now (`prompt`: the run's implementation text, for `prompt`)."""
    meta = run.get("metadata") or {}
    status = run.get("status") or {}
    phase = status.get("phase")
    annotations = meta.get("annotations") or {}
    if meta.get("deletionTimestamp") or not is_terminal(phase):
        return RerunPlan()
    uid = str(meta.get("uid") or "")
    params = (run.get("spec") or {}).get("parameters") or {}
    submissions: list[Submission] = []
    requeue: float | None = None
    exhausted = False
    asked = _flag(annotations, ANNOTATION_RERUN)
    wants_rerun = asked is True or (asked is None and phase == Phase.FAILED)
    if config.rerun_orchestration and wants_rerun:
        root = str(params.get("parentRunUid") or params.get("parent_run_uid") or uid)
        attempt = _int(params.get("attempt"), 0) + 1 if root != uid else 1
        if attempt > MAX_ATTEMPTS:
            exhausted = True
        else:
            finished = parse_time(status.get("finishedAt")) or now
            wait = (finished.timestamp() + BACKOFF_SECONDS[attempt - 1]) - now.timestamp()
            if wait > 0:
                requeue = wait
            else:
                delivery = f"jangar-{root}-attempt-{attempt}"
                submissions.append(
                    Submission(
                        kind="rerun",
                        namespace=config.rerun_namespace,
                        name=_object_name(config.rerun_orchestration, delivery),
                        orchestration=config.rerun_orchestration,
                        delivery_id=delivery,
                        parameters=_parameters(run, prompt, attempt, root, {}),
                        labels={
                            **delivery_id_labels(label_value(delivery)),
                            LABEL_RERUN_OF: label_value(str(meta.get("name"))),
                            LABEL_RERUN_KIND: "rerun",
                        },
                        annotations={LABEL_RERUN_OF: f"{meta.get('namespace')}/{meta.get('name')}"},
                    )
                )
    if config.improvement_orchestration and _flag(annotations, ANNOTATION_SYSTEM_IMPROVEMENT):
        delivery = f"codex-system-improvement-{uid}"
        issue = str(params.get("issueNumber") or params.get("issue_number") or "0")
        head = f"codex/system-improvement-{issue}-{uid[:8]}"
        submissions.append(
            Submission(
                kind="system-improvement",
                namespace=config.improvement_namespace,
                name=_object_name(config.improvement_orchestration, delivery),
                orchestration=config.improvement_orchestration,
                delivery_id=delivery,
                parameters=_parameters(run, prompt, 1, uid, {"head": head}),
                labels={
                    **delivery_id_labels(label_value(delivery)),
                    LABEL_RERUN_OF: label_value(str(meta.get("name"))),
                    LABEL_RERUN_KIND: "system-improvement",
                },
                annotations={LABEL_RERUN_OF: f"{meta.get('namespace')}/{meta.get('name')}"},
            )
        )
    return RerunPlan(submit=tuple(submissions), requeue_after=requeue, exhausted=exhausted)

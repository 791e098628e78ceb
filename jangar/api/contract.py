"""The names users and the reference depend on, spelled once: phases, labels, annotations, finalizers.

Everything outside `jangar.api` imports these instead of writing the strings, so a rename is one edit and a
typo is an import error. Values are the reference's (chart 0.9.1), because a user switching to jangar keeps
their selectors, dashboards and `kubectl annotate` habits.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from jangar.api.groups import AGENTS

__all__ = [
    "ANNOTATION_CANCEL",
    "ANNOTATION_TEMPLATE",
    "ANNOTATION_TOKEN_EXPIRES_AT",
    "FINALIZER_RUNTIME_CLEANUP",
    "LABEL_AGENT",
    "LABEL_IMPLEMENTATION",
    "LABEL_JOB_NAME",
    "LABEL_MANAGED_BY",
    "LABEL_PROVIDER",
    "LABEL_RUN",
    "LABEL_STEP",
    "LABEL_STEP_INDEX",
    "LABEL_TOOL_RUN",
    "MANAGED_BY",
    "TERMINAL_PHASES",
    "WAITING_PHASES",
    "Phase",
    "is_cancel_requested",
    "is_resting_template",
    "is_template",
    "is_terminal",
]


class Phase(StrEnum):
    """`status.phase` of an AgentRun (and of the other run kinds). Members compare equal to their strings,
    so `status.get("phase") in TERMINAL_PHASES` works on plain dicts from the cache."""

    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


TERMINAL_PHASES: Final = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})
"""Phases a run never leaves."""

WAITING_PHASES: Final = frozenset({"", Phase.PENDING, Phase.QUEUED})
"""Phases of a run not admitted yet ("" is a run the controller has not seen)."""


def is_terminal(phase: object) -> bool:
    """True for Succeeded, Failed and Cancelled (a str or a Phase)."""
    return phase in TERMINAL_PHASES


# -- labels on a run's children (Jobs, Pods, ConfigMaps, Secrets) -------------------------------------
LABEL_RUN: Final = f"{AGENTS}/agent-run"
LABEL_AGENT: Final = f"{AGENTS}/agent"
LABEL_PROVIDER: Final = f"{AGENTS}/provider"
LABEL_IMPLEMENTATION: Final = f"{AGENTS}/implementation"
LABEL_STEP: Final = f"{AGENTS}/step"
LABEL_STEP_INDEX: Final = f"{AGENTS}/step-index"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "jangar"
LABEL_JOB_NAME: Final = "job-name"
"""Set by the Job controller on a Job's Pods."""

# -- annotations and finalizers ----------------------------------------------------------------------
ANNOTATION_CANCEL: Final = f"{AGENTS}/cancel"
"""`kubectl annotate agentrun X agents.proompteng.ai/cancel=true` cancels a run (the CRD has no field)."""
ANNOTATION_TOKEN_EXPIRES_AT: Final = f"{AGENTS}/token-expires-at"
"""On a minted GitHub App token Secret: when the installation token expires."""
FINALIZER_RUNTIME_CLEANUP: Final = f"{AGENTS}/runtime-cleanup"
"""Held on an AgentRun until its Jobs are deleted and its outcome recorded (reference §3.2)."""


ANNOTATION_TEMPLATE: Final = f"{AGENTS}/template"
"""`agents.proompteng.ai/template: "true"` (0.9.29) marks an AgentRun as a copy source (a Schedule's target, a
spec to clone): the controller never runs it, admission never counts it, retention never deletes it."""


def is_template(obj: object) -> bool:
    """The template annotation is `true` (case-insensitive) on this object dict."""
    if not isinstance(obj, dict):
        return False
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(ANNOTATION_TEMPLATE, "")).strip().lower() == "true"


def is_resting_template(obj: object) -> bool:
    """A template that never started: no Job, not Running, not finished. A template annotation added to a
    run that already started does not orphan it (the run goes on to its end)."""
    if not is_template(obj):
        return False
    status = (obj.get("status") if isinstance(obj, dict) else None) or {}
    phase = status.get("phase")
    started = phase == "Running" or is_terminal(phase) or bool((status.get("jobRef") or {}).get("name"))
    return not started


def is_cancel_requested(obj: object) -> bool:
    """The cancel annotation is `true` (case-insensitive) on this object dict."""
    if not isinstance(obj, dict):
        return False
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(ANNOTATION_CANCEL, "")).lower() == "true"


# -- orchestration (issue 10) --------------------------------------------------------------------------
LABEL_ORCHESTRATION_RUN: Final = "jangar.proompteng.ai/orchestration-run"
"""On every child of an OrchestrationRun (AgentRun, ToolRun, OrchestrationRun, decision SignalDelivery)."""
LABEL_ORCHESTRATION_STEP: Final = "jangar.proompteng.ai/orchestration-step"
"""The step of the OrchestrationRun a child belongs to."""
ANNOTATION_ORCHESTRATION_ATTEMPT: Final = "jangar.proompteng.ai/orchestration-attempt"
"""On a step's child: the step attempt (1-based) it was created for, so a lost status write is recovered."""
APPROVAL_DELIVERY_PREFIX: Final = "approval"
"""A decision SignalDelivery's `spec.deliveryId` is `approval:<run>:<step>`."""


def approval_delivery_id(run: str, step: str) -> str:
    """The `spec.deliveryId` of the decision SignalDelivery of an ApprovalGate step."""
    return f"{APPROVAL_DELIVERY_PREFIX}:{run}:{step}"


__all__ += [
    "ANNOTATION_ORCHESTRATION_ATTEMPT",
    "APPROVAL_DELIVERY_PREFIX",
    "LABEL_ORCHESTRATION_RUN",
    "LABEL_ORCHESTRATION_STEP",
    "approval_delivery_id",
]


# -- approvals, signals and budgets (issue 10, supporting kinds) ---------------------------------------
LABEL_APPROVAL_DECISION: Final = "approvals.proompteng.ai/decision"
"""On a decision SignalDelivery (its `spec.signalRef.name` is the ApprovalPolicy): `approved` or `rejected`."""
APPROVAL_DECISIONS: Final = frozenset({"approved", "rejected"})
CONDITION_BUDGET_EXCEEDED: Final = "BudgetExceeded"
"""On a run held before it starts because the Budget it counts against is exceeded (True), or not (False)."""


def approval_decision(delivery: object) -> str | None:
    """The decision label of a SignalDelivery dict (None: not a decision delivery)."""
    if not isinstance(delivery, dict):
        return None
    labels = (delivery.get("metadata") or {}).get("labels") or {}
    value = labels.get(LABEL_APPROVAL_DECISION)
    return str(value) if value is not None else None


__all__ += ["APPROVAL_DECISIONS", "CONDITION_BUDGET_EXCEEDED", "LABEL_APPROVAL_DECISION", "approval_decision"]


# -- ToolRuns ------------------------------------------------------------------------------------------
LABEL_TOOL_RUN: Final = "jangar.proompteng.ai/tool-run"
"""On a ToolRun's Job, spec ConfigMap and Pods: the ToolRun's name (as a label value), as in the reference."""


# -- submission surfaces (issue 10) --------------------------------------------------------------------
LABEL_DELIVERY_ID: Final = "jangar.proompteng.ai/delivery-id"
"""On a run submitted for a delivery (an OrchestrationRun or ToolRun with a `deliveryId`, a webhook's, a
rerun's, a schedule's; the reference's label): the id as a label value (sanitised and shortened with a hash
when it is not one)."""

__all__ += ["LABEL_DELIVERY_ID"]

# -- issue 13 item 1: the 0.9.29 name of the delivery-id label ---------------------------------------------
LABEL_DELIVERY_ID_AGENTS: Final = "agents.proompteng.ai/delivery-id"
"""The 0.9.29 reference's delivery-id label (drift-0.9.29.md row 1). jangar writes both labels, with the
same value, wherever it writes `LABEL_DELIVERY_ID` (`delivery_id_labels`), so selectors of either
generation find the run."""
LABELS_DELIVERY_ID: Final = (LABEL_DELIVERY_ID, LABEL_DELIVERY_ID_AGENTS)


def delivery_id_labels(value: str) -> dict[str, str]:
    """Both delivery-id labels set to `value` (already a label value)."""
    return dict.fromkeys(LABELS_DELIVERY_ID, value)


__all__ += ["LABELS_DELIVERY_ID", "LABEL_DELIVERY_ID_AGENTS", "delivery_id_labels"]


# -- SubOrchestration ancestry (issue 10, integration) -------------------------------------------------------
ANNOTATION_ORCHESTRATION_ANCESTRY: Final = "jangar.proompteng.ai/orchestration-ancestry"
"""On an OrchestrationRun created by a SubOrchestration step: the Orchestrations of its ancestor runs, root
first, comma-separated. A run whose own Orchestration is already in it fails `RecursiveSubOrchestration`
(A → B → A), and a step never creates such a child."""
REASON_RECURSIVE_SUB_ORCHESTRATION: Final = "RecursiveSubOrchestration"

__all__ += ["ANNOTATION_ORCHESTRATION_ANCESTRY", "REASON_RECURSIVE_SUB_ORCHESTRATION"]


# -- issue intake and reruns (issue 11: webhooks, reruns) ----------------------------------------------
LABEL_SOURCE_PROVIDER: Final = "agents.proompteng.ai/source-provider"
"""On an ImplementationSpec created by a webhook: `github` or `linear` (the reference's label)."""
LABEL_IMPLEMENTATION_SOURCE: Final = "agents.proompteng.ai/implementation-source"
"""On an ImplementationSpec (and AgentRun) created by a webhook: the ImplementationSource's name."""
WEBHOOK_FIELD_MANAGER: Final = "jangar-webhook-intake"
"""The field manager of the webhook intake's writes (its own, so it never removes another writer's fields)."""
ANNOTATION_RERUN: Final = "jangar.proompteng.ai/rerun"
"""On an AgentRun: `"true"` asks for a rerun orchestration even if the run did not fail (a judge verdict)."""
ANNOTATION_SYSTEM_IMPROVEMENT: Final = "jangar.proompteng.ai/system-improvement"
"""On an AgentRun: `"true"` asks for a system-improvement orchestration run for it."""
LABEL_RERUN_OF: Final = "jangar.proompteng.ai/rerun-of"
"""On an OrchestrationRun submitted by the rerun controller: the AgentRun's name (label value)."""
LABEL_RERUN_KIND: Final = "jangar.proompteng.ai/rerun-kind"
"""On such an OrchestrationRun: `rerun` or `system-improvement`."""

__all__ += [
    "ANNOTATION_RERUN",
    "ANNOTATION_SYSTEM_IMPROVEMENT",
    "LABEL_IMPLEMENTATION_SOURCE",
    "LABEL_RERUN_KIND",
    "LABEL_RERUN_OF",
    "LABEL_SOURCE_PROVIDER",
    "WEBHOOK_FIELD_MANAGER",
]


# -- workspaces and artifacts (issue 11): docs/workspaces.md
#: on a Workspace's PersistentVolumeClaim: the Workspace's name (the reference's label)
LABEL_WORKSPACE: Final = "workspaces.proompteng.ai/workspace"
#: on an AgentRun: the Artifacts were not all recorded (more than JANGAR_ARTIFACTS_MAX_PER_RUN)
CONDITION_ARTIFACTS_TRUNCATED: Final = "ArtifactsTruncated"
#: the Workspace phase once its lifetime (`spec.ttlSeconds`) is over; it never leaves it
WORKSPACE_EXPIRED: Final = "Expired"
#: where a run's `spec.workspaceRef` Workspace is mounted: `<root>/<workspace name>`
WORKSPACE_MOUNT_ROOT: Final = "/workspace"

__all__ += ["CONDITION_ARTIFACTS_TRUNCATED", "LABEL_WORKSPACE", "WORKSPACE_EXPIRED", "WORKSPACE_MOUNT_ROOT"]


# -- Schedules (issue 11) --------------------------------------------------------------------------------
LABEL_SCHEDULE: Final = "schedules.proompteng.ai/schedule"
"""On a Schedule's template ConfigMap, its CronJob (and the CronJob's Jobs and Pods) and on every run it
creates: the Schedule's name (as a label value), as in the reference."""
ANNOTATION_SCHEDULED_TIME: Final = "schedules.proompteng.ai/scheduled-time"
"""On a run a Schedule created: the tick it was created for (RFC 3339, UTC, whole minutes)."""
ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP: Final = "batch.kubernetes.io/cronjob-scheduled-timestamp"
"""Set by the Kubernetes CronJob controller on each Job it creates: the scheduled time of that Job."""
SCHEDULE_DELIVERY_PLACEHOLDER: Final = "__JANGAR_DELIVERY_ID__"
"""In a Schedule's `run.json` template: replaced by the tick's delivery id when the run is created."""

__all__ += [
    "ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP",
    "ANNOTATION_SCHEDULED_TIME",
    "LABEL_SCHEDULE",
    "SCHEDULE_DELIVERY_PLACEHOLDER",
]
ANNOTATION_SCHEDULE_SPEC_HASH: Final = "schedules.proompteng.ai/spec-hash"
"""On a Schedule's CronJob: a hash of the spec the controller wrote (a changed Schedule rewrites it; the API
server's defaults never look like a change)."""
__all__ += ["ANNOTATION_SCHEDULE_SPEC_HASH"]

# -- issue 11: artifacts of workflow steps ------------------------------------------------------------
ANNOTATION_ARTIFACT_NAME: Final = "artifacts.proompteng.ai/name"
"""On an Artifact created for a run: the artifact's name as the runner reported it."""
ANNOTATION_ARTIFACT_STEP: Final = "artifacts.proompteng.ai/step"
"""On an Artifact created for a workflow run: the step that produced it (its `status.artifacts` entry is
named `<step>/<artifact>`)."""
__all__ += ["ANNOTATION_ARTIFACT_NAME", "ANNOTATION_ARTIFACT_STEP"]

# -- admission rate window (issue 12 §3): the durable record of recent admissions, one per namespace --
ADMISSION_WINDOW_CONFIGMAP: Final = "jangar-admissions"
"""The ConfigMap (in each namespace with admissions) holding the admissions inside the rate window, so
deleting finished runs or restarting the controller does not give rate budget back (docs/admission.md)."""
LABEL_ADMISSION_WINDOW: Final = f"{AGENTS}/admission-window"
"""On that ConfigMap (value `true`): how a starting controller finds the records to reload."""
__all__ += ["ADMISSION_WINDOW_CONFIGMAP", "LABEL_ADMISSION_WINDOW"]

# -- issue 12: GitHub App installation tokens refreshed before expiry (docs/security.md, GitHub App tokens)
ANNOTATION_TOKEN_REFRESH_AT: Final = f"{AGENTS}/token-refresh-at"
"""On a minted GitHub App token Secret: when the controller mints the next token into it."""
ANNOTATION_TOKEN_SOURCE: Final = f"{AGENTS}/token-source"
"""On a minted GitHub App token Secret: what to mint from (JSON: API base URL, app and installation ids,
the private key's Secret and key; never a key or a token)."""
__all__ += ["ANNOTATION_TOKEN_REFRESH_AT", "ANNOTATION_TOKEN_SOURCE"]

# -- agentctl retry/resubmit (issue 13 item 4) -------------------------------------------------------
LABEL_RETRY_OF: Final = "jangar.proompteng.ai/retry-of"
"""On an AgentRun created by `agentctl retry|resubmit`: the name of the run whose spec it copies."""
ANNOTATION_RETRY_VERB: Final = "jangar.proompteng.ai/retry-verb"
"""On such an AgentRun: `retry` (of a run that did not succeed) or `resubmit` (of any run)."""
__all__ += ["ANNOTATION_RETRY_VERB", "LABEL_RETRY_OF"]


# -- issue 13 item 3: retention annotations (drift-0.9.29.md rows 12 and 18; docs/retention.md) -------------
ANNOTATION_RETAIN: Final = f"{AGENTS}/retain"
"""`agents.proompteng.ai/retain: "true"` on a finished AgentRun: the retention sweep never deletes it."""
ANNOTATION_RETAIN_JANGAR: Final = "jangar.proompteng.ai/retain"
"""The same under jangar's own prefix (read, never written), like the two delivery-id labels."""
ANNOTATIONS_RETAIN: Final = (ANNOTATION_RETAIN, ANNOTATION_RETAIN_JANGAR)


def _annotation_true(obj: object, names: tuple[str, ...]) -> bool:
    if not isinstance(obj, dict):
        return False
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return any(str(annotations.get(name, "")).strip().lower() == "true" for name in names)


def is_retained(obj: object) -> bool:
    """Either retain annotation is `true` (case-insensitive) on this object dict."""
    return _annotation_true(obj, ANNOTATIONS_RETAIN)


__all__ += [
    "ANNOTATIONS_RETAIN",
    "ANNOTATION_RETAIN",
    "ANNOTATION_RETAIN_JANGAR",
    "is_retained",
]

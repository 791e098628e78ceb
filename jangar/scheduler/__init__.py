"""AgentRun → Kubernetes Job, as pure functions over the cache's plain dicts.

The reconciler resolves a run's references into a `RunContext` and validates it (`jangar.prepare.prepare_run`
over `jangar.validation` and `jangar.vcs`), builds a `JobPlan` here and creates what it describes;
`classify_job` turns the Job and Pods back into an outcome, `job_ttl_seconds`/`retention_remaining` time the
cleanup, and `jangar.scheduler.workflow` plans the steps of a `workflow` run. See docs/scheduler.md.
"""

from jangar.scheduler.context import RunContext, StepRef, VcsRuntime
from jangar.scheduler.contract import ContractResult, build_metadata, check_contract, repository_of
from jangar.scheduler.job import JobPlan, build_job_plan, runtime_ref
from jangar.scheduler.naming import job_name, label_value, shorten
from jangar.scheduler.outcome import JobOutcome, classify_job, missing_job_action
from jangar.scheduler.ownership import owner_reference, run_labels, run_selector
from jangar.scheduler.runtimes import SUPPORTED_RUNTIMES, runtime_type
from jangar.scheduler.ttl import job_ttl_seconds, retention_remaining, retention_seconds
from jangar.scheduler.workflow import WorkflowPlan, plan_workflow

__all__ = [
    "SUPPORTED_RUNTIMES",
    "ContractResult",
    "JobOutcome",
    "JobPlan",
    "RunContext",
    "StepRef",
    "VcsRuntime",
    "WorkflowPlan",
    "build_job_plan",
    "build_metadata",
    "check_contract",
    "classify_job",
    "job_name",
    "job_ttl_seconds",
    "label_value",
    "missing_job_action",
    "owner_reference",
    "plan_workflow",
    "repository_of",
    "retention_remaining",
    "retention_seconds",
    "run_labels",
    "run_selector",
    "runtime_ref",
    "runtime_type",
    "shorten",
]

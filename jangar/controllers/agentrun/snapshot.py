"""Everything one AgentRun decision reads, gathered before deciding.

`decide` is pure: it sees the world only through a `RunSnapshot`. The reader fills it from the informer
cache (the run's own Jobs through the controller-uid index, their Pods by the `job-name` label, the run's
namespace as a `Lookup`) and, only when the run may start a Job now, from the API server: the key names of
the Secrets and ConfigMaps its VersionControlProvider uses (Secrets are never cached; their values are never
read into the snapshot), and the namespace's other unfinished runs for branch conflicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jangar.api.contract import Phase, is_cancel_requested, is_terminal
from jangar.controllers.agentrun.prompt_read import PromptRead, read_system_prompt
from jangar.controllers.budget_hold import BudgetCheck, read_budget_check
from jangar.controllers.credentials import read_provider_keys
from jangar.controllers.kinds import AGENTRUNS, JOBS, VCSPROVIDERS
from jangar.controllers.lean_cache import pods_of_job
from jangar.controllers.lookup import NamespaceLookup
from jangar.controllers.runner_sa import ServiceAccountCheck, read_service_account_check
from jangar.runtime import CacheReader, Client, JsonObject
from jangar.runtime.store import CONTROLLER_UID_INDEX
from jangar.scheduler.outcome import JobOutcome, classify_job
from jangar.scheduler.runtimes import runtime_type
from jangar.scheduler.workflow import WorkflowPlan, plan_workflow
from jangar.settings import ControllerTuning, Settings
from jangar.validation import Lookup, resolve_run

__all__ = [
    "RunSnapshot",
    "classify",
    "job_finished",
    "live_job",
    "live_jobs",
    "may_start_a_job",
    "plan_steps",
    "read_snapshot",
    "unfinished_others",
]


@dataclass(frozen=True)
class RunSnapshot:
    """One AgentRun and what its decision depends on, as of one moment."""

    run: Mapping[str, Any]
    now: datetime
    settings: Settings
    lookup: Lookup
    #: the Jobs this run controls (by owner uid), by name
    jobs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: each of those Jobs' Pods, by Job name
    pods: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    #: key names of the Secrets / ConfigMaps the run's VCS provider refers to (None: the object is missing)
    secret_keys: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    configmap_keys: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    #: False when the keys were not read (the run is not about to start a Job): then every key "exists"
    keys_read: bool = False
    #: the namespace's other unfinished AgentRuns (branch conflicts)
    active_runs: Sequence[Mapping[str, Any]] = ()
    #: the Budget the run counts against, read only before it starts (None: no Budget, or not enforced)
    budget: BudgetCheck | None = None
    #: the run's ServiceAccount, read only before it starts (None: `default`, or not checked)
    service_account: ServiceAccountCheck | None = None
    #: the Agent's system prompt, read only when a Job may be built (None: not read this pass)
    system_prompt: PromptRead | None = None

    @property
    def timing(self) -> ControllerTuning:
        """The grace periods (`Settings.tuning`)."""
        return self.settings.tuning

    @property
    def namespace(self) -> str:
        return str(self.run["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.run["metadata"]["name"])

    def secret_has_key(self, name: str, key: str) -> bool:
        return not self.keys_read or key in (self.secret_keys.get(name) or ())

    def configmap_has_key(self, name: str, key: str) -> bool:
        return not self.keys_read or key in (self.configmap_keys.get(name) or ())


def job_finished(job: Mapping[str, Any]) -> bool:
    """The Job has its Complete or Failed condition."""
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return True
    return False


def live_job(job: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """`job`, unless it is being deleted before it finished (as good as gone)."""
    if job is None or not (job.get("metadata") or {}).get("deletionTimestamp") or job_finished(job):
        return job
    return None


def live_jobs(jobs: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {name: job for name, job in jobs.items() if live_job(job) is not None}


def classify(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: datetime, tuning: ControllerTuning
) -> JobOutcome:
    """`classify_job` with the configured grace periods."""
    return classify_job(
        job,
        pods,
        now=now,
        image_pull_grace_seconds=tuning.image_pull_grace_seconds,
        scheduling_grace_seconds=tuning.scheduling_grace_seconds,
    )


def plan_steps(
    run: Mapping[str, Any],
    jobs: Mapping[str, Mapping[str, Any]],
    pods: Mapping[str, Sequence[Mapping[str, Any]]],
    now: datetime,
    tuning: ControllerTuning,
) -> WorkflowPlan:
    """`plan_workflow` over the run's live Jobs, with the configured grace periods."""
    return plan_workflow(
        run,
        live_jobs(jobs),
        now=now,
        pods=pods,
        missing_job_grace_seconds=tuning.missing_job_grace_seconds,
        image_pull_grace_seconds=tuning.image_pull_grace_seconds,
        scheduling_grace_seconds=tuning.scheduling_grace_seconds,
    )


def unfinished_others(runs: Iterable[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    """The runs other than `name` that have not finished (their head branches are taken)."""
    return [
        r
        for r in runs
        if r["metadata"]["name"] != name and not is_terminal((r.get("status") or {}).get("phase"))
    ]


def may_start_a_job(
    run: Mapping[str, Any],
    jobs: Mapping[str, Mapping[str, Any]],
    pods: Mapping[str, Sequence[Mapping[str, Any]]],
    now: datetime,
    tuning: ControllerTuning,
) -> bool:
    """Whether this pass may build a Job (submission, a workflow step attempt, a lost Job): only then are
    the VCS credentials' key names read from the API server."""
    meta = run.get("metadata") or {}
    status = run.get("status") or {}
    if meta.get("deletionTimestamp") or is_terminal(status.get("phase")) or is_cancel_requested(run):
        return False
    if runtime_type(run) == "workflow" and status.get("phase") == Phase.RUNNING:
        return plan_steps(run, jobs, pods, now, tuning).submit is not None
    job_name = (status.get("jobRef") or {}).get("name")
    return not job_name or live_job(jobs.get(str(job_name))) is None


async def read_snapshot(
    cache: CacheReader,
    client: Client | None,
    run: JsonObject,
    settings: Settings,
    now: datetime,
) -> RunSnapshot:
    """The snapshot of `run` from the cache (and, when a Job may start, its VCS credentials' key names;
    without a `client` those are not read and every key counts as present)."""
    meta = run["metadata"]
    ns = str(meta["namespace"])
    uid = str(meta.get("uid") or "")
    jobs = (
        {
            str(j["metadata"]["name"]): j
            for j in cache.list(JOBS, ns, index=(CONTROLLER_UID_INDEX, uid), copy=False)
        }
        if uid
        else {}
    )
    pods = {name: pods_of_job(cache, ns, name) for name in jobs}
    lookup = NamespaceLookup(cache, ns)
    secret_keys: dict[str, frozenset[str] | None] = {}
    configmap_keys: dict[str, frozenset[str] | None] = {}
    active: list[Mapping[str, Any]] = []
    keys_read = False
    if may_start_a_job(run, jobs, pods, now, settings.tuning):
        vcs_ref = resolve_run(run, lookup).vcs_ref
        provider = cache.get(VCSPROVIDERS, vcs_ref, ns, copy=False) if vcs_ref else None
        if provider is not None:
            active = unfinished_others(cache.list(AGENTRUNS, ns, copy=False), str(meta["name"]))
            if client is not None:
                secret_keys, configmap_keys = await read_provider_keys(client, ns, provider)
                keys_read = True
    budget = None
    status = run.get("status") or {}
    if not (status.get("jobRef") or {}).get("name") and may_start_a_job(
        run, jobs, pods, now, settings.tuning
    ):
        budget = read_budget_check(cache, run)
    starting = may_start_a_job(run, jobs, pods, now, settings.tuning)
    service_account = read_service_account_check(cache, run, settings) if starting else None
    system_prompt = (
        await read_system_prompt(client, lookup, resolve_run(run, lookup).agent_ref, ns) if starting else None
    )
    return RunSnapshot(
        run=run,
        now=now,
        settings=settings,
        lookup=lookup,
        jobs=jobs,
        pods=pods,
        secret_keys=secret_keys,
        configmap_keys=configmap_keys,
        keys_read=keys_read,
        active_runs=active,
        budget=budget,
        service_account=service_account,
        system_prompt=system_prompt,
    )

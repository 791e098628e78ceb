"""Which waiting runs to admit now, and why the others wait or are rejected.

`decide(runs, limits, now)` is a pure function of the snapshot:

1. Count what is active (admitted, not finished) per namespace, per (namespace, agent), per repository
   (across namespaces) and for the cluster, and the admissions inside the rate window.
2. Admit in rounds. Each round visits the namespaces with waiting runs, oldest head first, and admits at
   most one run per namespace: the oldest one no limit holds. So runs are FIFO within a namespace and
   namespaces share capacity round-robin. A namespace or cluster limit stops the namespace (or everything);
   an agent or repository limit only holds that run, and younger runs of other agents may pass it.
3. Runs still waiting that were never queued take a queue place in creation order, unless a queue limit is
   full: those are rejected (`QueueLimitExceeded`, terminal).
4. Every waiting run gets the limit that holds it and its 1-based position among runs held by the same
   limit; rate-limited runs also get `requeue_after`, when the window frees a slot.

Rate limits are a sliding window over admission times: `admissions` (the `RateWindow`, which outlives the
runs: deleting a finished run does not give its slot back) plus any `admittedAt` of a run in the snapshot
the window does not hold yet. See docs/admission.md.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jangar.admission.model import AdmissionLimits, RunKey, RunRecord
from jangar.admission.window import Stamp

__all__ = ["AdmissionDecision", "Rejection", "Waiting", "decide"]


@dataclass(frozen=True)
class Waiting:
    """Why a run waits: `scope` is agent, repository, namespace, cluster or rate; `key` what it applies to."""

    scope: str
    key: str
    limit: int
    position: int
    message: str
    requeue_after: float | None = None

    @property
    def reason(self) -> str:
        """The `Blocked` condition reason: `ConcurrencyLimit` (the reference's) or `RateLimited`."""
        return "RateLimited" if self.scope == "rate" else "ConcurrencyLimit"


@dataclass(frozen=True)
class Rejection:
    reason: str
    message: str
    scope: str
    limit: int


@dataclass(frozen=True)
class AdmissionDecision:
    admitted: tuple[RunKey, ...] = ()
    waiting: dict[RunKey, Waiting] = field(default_factory=dict)
    rejected: dict[RunKey, Rejection] = field(default_factory=dict)
    #: queue depth after the decision: ("namespace", ns) / ("repository", repo) / ("cluster", "") → count
    depths: dict[tuple[str, str], int] = field(default_factory=dict)

    def for_run(self, key: RunKey) -> str:
        """ "admit", "wait", "reject" or "none" (not a waiting run)."""
        if key in self.rejected:
            return "reject"
        if key in self.waiting:
            return "wait"
        return "admit" if key in self.admitted else "none"


@dataclass
class _State:
    limits: AdmissionLimits
    now: datetime
    ns: Counter[str] = field(default_factory=Counter)
    agent: Counter[tuple[str, str]] = field(default_factory=Counter)
    repo: Counter[str] = field(default_factory=Counter)
    cluster: int = 0
    rate_ns: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    rate_repo: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    rate_cluster: list[datetime] = field(default_factory=list)
    _retry_cache: dict[tuple[int, int], float] = field(default_factory=dict)

    def window_start(self) -> datetime:
        return self.now - timedelta(seconds=self.limits.rate_window_seconds)

    def add(self, run: RunRecord, admitted_at: datetime | None) -> None:
        if run.active:
            self.ns[run.namespace] += 1
            self.agent[(run.namespace, run.agent)] += 1
            if run.repository:
                self.repo[run.repository] += 1
            self.cluster += 1
        if admitted_at is not None:
            self.add_stamp(Stamp(run.namespace, run.repository, admitted_at))

    def add_stamp(self, stamp: Stamp) -> None:
        if self.window_start() < stamp.at <= self.now:
            self.rate_ns[stamp.namespace].append(stamp.at)
            if stamp.repository:
                self.rate_repo[stamp.repository].append(stamp.at)
            self.rate_cluster.append(stamp.at)

    def admit(self, run: RunRecord) -> None:
        self._retry_cache.clear()
        self.ns[run.namespace] += 1
        self.agent[(run.namespace, run.agent)] += 1
        self.cluster += 1
        self.rate_ns[run.namespace].append(self.now)
        self.rate_cluster.append(self.now)
        if run.repository:
            self.repo[run.repository] += 1
            self.rate_repo[run.repository].append(self.now)

    def _retry(self, stamps: list[datetime], limit: int) -> float:
        """Seconds until the window holds fewer than `limit` admissions (memoised until the next admit)."""
        key = (id(stamps), limit)
        if key not in self._retry_cache:
            self._retry_cache[key] = self._compute_retry(stamps, limit)
        return self._retry_cache[key]

    def _compute_retry(self, stamps: list[datetime], limit: int) -> float:
        ordered = sorted(stamps)
        free_at = ordered[len(ordered) - limit] + timedelta(seconds=self.limits.rate_window_seconds)
        return max(1.0, (free_at - self.now).total_seconds())

    # Each check returns (scope, key, limit, message, requeue_after) or None.
    def namespace_block(self, namespace: str) -> tuple[str, str, int, str, float | None] | None:
        lim = self.limits
        if lim.per_namespace and self.ns[namespace] >= lim.per_namespace:
            return (
                "namespace",
                namespace,
                lim.per_namespace,
                f"namespace {namespace} reached its concurrency limit ({lim.per_namespace} running)",
                None,
            )
        if lim.rate_per_namespace and len(self.rate_ns[namespace]) >= lim.rate_per_namespace:
            after = self._retry(self.rate_ns[namespace], lim.rate_per_namespace)
            return (
                "rate",
                f"namespace/{namespace}",
                lim.rate_per_namespace,
                f"namespace {namespace} reached its admission rate ({lim.rate_per_namespace} per "
                f"{lim.rate_window_seconds}s)",
                after,
            )
        return None

    def cluster_block(self) -> tuple[str, str, int, str, float | None] | None:
        lim = self.limits
        if lim.cluster and self.cluster >= lim.cluster:
            return (
                "cluster",
                "",
                lim.cluster,
                f"cluster concurrency limit reached ({lim.cluster} running)",
                None,
            )
        if lim.rate_cluster and len(self.rate_cluster) >= lim.rate_cluster:
            after = self._retry(self.rate_cluster, lim.rate_cluster)
            return (
                "rate",
                "cluster",
                lim.rate_cluster,
                f"cluster admission rate reached ({lim.rate_cluster} per {lim.rate_window_seconds}s)",
                after,
            )
        return None

    def run_block(self, run: RunRecord) -> tuple[str, str, int, str, float | None] | None:
        lim = self.limits
        if lim.per_agent and self.agent[(run.namespace, run.agent)] >= lim.per_agent:
            return (
                "agent",
                f"{run.namespace}/{run.agent}",
                lim.per_agent,
                f"agent {run.agent} reached its concurrency limit ({lim.per_agent} running)",
                None,
            )
        repo = run.repository
        repo_limit = lim.repo_limit(repo)
        if repo and repo_limit and self.repo[repo] >= repo_limit:
            return (
                "repository",
                repo,
                repo_limit,
                f"repository {repo} reached its concurrency limit ({repo_limit} running)",
                None,
            )
        if repo and lim.rate_per_repo and len(self.rate_repo[repo]) >= lim.rate_per_repo:
            after = self._retry(self.rate_repo[repo], lim.rate_per_repo)
            return (
                "rate",
                f"repository/{repo}",
                lim.rate_per_repo,
                f"repository {repo} reached its admission rate ({lim.rate_per_repo} per "
                f"{lim.rate_window_seconds}s)",
                after,
            )
        return None

    def block(self, run: RunRecord) -> tuple[str, str, int, str, float | None] | None:
        """The limit holding `run`, in the reference's order: agent, repository, namespace, cluster."""
        return self.run_block(run) or self.namespace_block(run.namespace) or self.cluster_block()


def _admit_rounds(waiting: dict[str, list[RunRecord]], state: _State) -> list[RunRecord]:
    admitted: list[RunRecord] = []
    pending = {ns: list(runs) for ns, runs in waiting.items()}
    while True:
        progressed = False
        for namespace in sorted(
            pending, key=lambda ns: pending[ns][0].order if pending[ns] else (state.now, ns, ())
        ):
            if state.cluster_block() is not None:
                return admitted
            queue = pending[namespace]
            if not queue or state.namespace_block(namespace) is not None:
                continue
            for index, run in enumerate(queue):
                if state.run_block(run) is None:
                    state.admit(run)
                    admitted.append(run)
                    del queue[index]
                    progressed = True
                    break
        if not progressed:
            return admitted


def decide(
    runs: Iterable[RunRecord],
    limits: AdmissionLimits,
    now: datetime,
    admissions: Mapping[str, Stamp] | None = None,
) -> AdmissionDecision:
    """Decide admissions for every waiting run in the snapshot. Deterministic in the set of `runs` and
    `admissions` (the rate window by run uid; a run's own `admittedAt` counts unless the window has it)."""
    records = sorted(runs, key=lambda r: r.order)
    state = _State(limits, now)
    window = admissions or {}
    waiting: dict[str, list[RunRecord]] = defaultdict(list)
    for run in records:
        state.add(run, None if run.window_id in window else run.admitted_at)
        if run.waiting:
            waiting[run.namespace].append(run)
    for stamp in window.values():
        state.add_stamp(stamp)

    admitted = _admit_rounds(waiting, state)
    admitted_keys = {r.key for r in admitted}
    still = [r for r in records if r.waiting and r.key not in admitted_keys]

    # Queue places: runs already queued keep theirs; new runs take one in creation order, or are rejected.
    q_ns: Counter[str] = Counter(r.namespace for r in still if r.queued)
    q_repo: Counter[str] = Counter(r.repository for r in still if r.queued and r.repository)
    q_cluster = sum(1 for r in still if r.queued)
    rejected: dict[RunKey, Rejection] = {}
    queued: list[RunRecord] = []
    for run in still:
        if not run.queued:
            hit = None
            if limits.queue_per_namespace and q_ns[run.namespace] >= limits.queue_per_namespace:
                hit = (
                    "namespace",
                    limits.queue_per_namespace,
                    f"namespace {run.namespace} reached its queue limit",
                )
            elif run.repository and limits.queue_per_repo and q_repo[run.repository] >= limits.queue_per_repo:
                hit = (
                    "repository",
                    limits.queue_per_repo,
                    f"repository {run.repository} reached its queue limit",
                )
            elif limits.queue_cluster and q_cluster >= limits.queue_cluster:
                hit = ("cluster", limits.queue_cluster, "cluster queue limit reached")
            if hit is not None:
                scope, limit, text = hit
                rejected[run.key] = Rejection(
                    "QueueLimitExceeded", f"{text} ({limit} waiting); resubmit later", scope, limit
                )
                continue
            q_ns[run.namespace] += 1
            if run.repository:
                q_repo[run.repository] += 1
            q_cluster += 1
        queued.append(run)

    positions: Counter[tuple[str, str]] = Counter()
    result: dict[RunKey, Waiting] = {}
    for run in queued:  # creation order
        block = state.block(run) or ("cluster", "", limits.cluster, "waiting for capacity", None)
        scope, key, limit, message, after = block
        positions[(scope, key)] += 1
        result[run.key] = Waiting(scope, key, limit, positions[(scope, key)], message, after)

    depths: dict[tuple[str, str], int] = {("cluster", ""): len(queued)}
    for namespace, count in Counter(r.namespace for r in queued).items():
        depths[("namespace", namespace)] = count
    for repo, count in Counter(r.repository for r in queued if r.repository).items():
        depths[("repository", repo)] = count
    return AdmissionDecision(tuple(r.key for r in admitted), result, rejected, depths)

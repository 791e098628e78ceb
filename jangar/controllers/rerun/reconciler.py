"""The rerun controller: watches AgentRuns, submits rerun / system-improvement OrchestrationRuns.

Its own controller (`rerun`), not part of the AgentRun decide: it reads a run from the cache, asks the pure
`decide`, creates what the plan says (a deterministic name: AlreadyExists means "already submitted") and
returns `requeue_after` for a backoff. It writes nothing on the AgentRun (whose status is the AgentRun
controller's); an Event `RerunSubmitted` / `SystemImprovementSubmitted` names the OrchestrationRun.
Installed only when `workflowRuntime.native.rerunOrchestration` or `systemImprovementOrchestration` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry, Counter

from jangar.api.refs import AGENTRUNS, IMPLEMENTATIONSPECS, ORCHESTRATIONRUNS
from jangar.controllers.rerun.decide import MAX_ATTEMPTS, RerunConfig, decide
from jangar.runtime import (
    AlreadyExistsError,
    Builder,
    CacheReader,
    Client,
    JsonObject,
    Manager,
    Recorder,
    Request,
    Result,
)
from jangar.settings import Settings

__all__ = ["RerunReconciler", "install_reruns", "rerun_config"]

log = structlog.get_logger("jangar.controllers.rerun")


def rerun_config(settings: Settings) -> RerunConfig:
    native = settings.native_workflows
    return RerunConfig(
        rerun_orchestration=native.rerun_orchestration or None,
        rerun_namespace=native.rerun_orchestration_namespace,
        improvement_orchestration=native.system_improvement_orchestration or None,
        improvement_namespace=native.system_improvement_orchestration_namespace,
    )


class RerunReconciler:
    def __init__(
        self,
        *,
        config: RerunConfig,
        client: Client,
        cache: CacheReader,
        events: Recorder | None,
        registry: CollectorRegistry | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.client = client
        self.cache = cache
        self.events = events
        self.clock = clock
        self.submissions = Counter(
            "jangar_rerun_submissions_total",
            "Rerun and system-improvement OrchestrationRuns, by kind and outcome (created, existing).",
            ["kind", "outcome"],
            registry=registry if registry is not None else CollectorRegistry(),
        )

    def _prompt(self, run: JsonObject) -> str:
        spec = run.get("spec") or {}
        inline = (spec.get("implementation") or {}).get("inline") or {}
        if inline.get("text"):
            return str(inline["text"])
        ref = (spec.get("implementationSpecRef") or {}).get("name") or (
            (spec.get("implementation") or {}).get("specRef") or {}
        ).get("name")
        if not ref:
            return ""
        impl = self.cache.get(IMPLEMENTATIONSPECS, str(ref), run["metadata"].get("namespace"))
        return str(((impl or {}).get("spec") or {}).get("text") or "")

    async def reconcile(self, req: Request) -> Result | None:
        run = self.cache.get(AGENTRUNS, req.name, req.namespace)
        if run is None:
            return None
        plan = decide(run, self.config, prompt=self._prompt(run), now=self.clock())
        for sub in plan.submit:
            manifest = sub.manifest(ORCHESTRATIONRUNS.api_version, ORCHESTRATIONRUNS.kind)
            try:
                await self.client.create(ORCHESTRATIONRUNS, manifest)
            except AlreadyExistsError:
                self.submissions.labels(sub.kind, "existing").inc()
                continue
            self.submissions.labels(sub.kind, "created").inc()
            log.info("rerun.submitted", run=req.name, kind=sub.kind, name=sub.name, delivery=sub.delivery_id)
            if self.events is not None:
                reason = "RerunSubmitted" if sub.kind == "rerun" else "SystemImprovementSubmitted"
                self.events.normal(
                    run,
                    reason,
                    f"OrchestrationRun {sub.namespace}/{sub.name} of {sub.orchestration} ({sub.delivery_id})",
                )
        if plan.exhausted and self.events is not None:
            self.events.warning(run, "RerunsExhausted", f"no rerun after {MAX_ATTEMPTS} attempts")
        return Result(requeue_after=plan.requeue_after) if plan.requeue_after else None


def install_reruns(
    manager: Manager, settings: Settings, events: Recorder, clock: Callable[[], datetime] | None = None
) -> RerunReconciler | None:
    """Register the `rerun` controller when an orchestration is configured (off when both are empty)."""
    config = rerun_config(settings)
    if not (config.rerun_orchestration or config.improvement_orchestration):
        return None
    cache = manager.cache
    cache.informer(AGENTRUNS)
    cache.informer(IMPLEMENTATIONSPECS)
    reconciler = RerunReconciler(
        config=config,
        client=manager.client,
        cache=cache,
        events=events,
        registry=manager.metrics.registry,
        clock=clock or (lambda: datetime.now(UTC)),
    )
    (
        Builder(manager)
        .for_(AGENTRUNS)
        .with_options(
            max_concurrent_reconciles=settings.tuning.supporting_workers,
            reconcile_timeout=settings.tuning.reconcile_timeout_seconds,
        )
        .named("rerun")
        .complete(reconciler)
    )
    return reconciler

"""One call from an AgentRun to everything needed to submit it: resolve, validate, contract, VCS, context.

The seam between the cache and the Job builder: `prepare_run()` never touches the API server. It returns the
problems to report, or a `RunContext` ready for `build_job_plan`, plus the VCS result (status, warnings, a
GitHub App token to mint) and the contract status. The AgentRun controller calls it when it submits a
`job` run, when it recreates a lost Job and when it starts each workflow step; `render` calls it too, so
what `render` prints is what runs.

It is its own module, in the layer above `jangar.vcs`, `jangar.validation` and `jangar.scheduler`, because it
is the one place that combines them (validation and VCS use the scheduler's names, contract and context, so
the scheduler cannot import them back) and both `jangar.controllers` and `jangar.services` call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jangar.api.shape import as_map
from jangar.scheduler.context import RunContext, StepRef
from jangar.scheduler.contract import ContractResult, build_metadata, check_contract
from jangar.scheduler.runtimes import runtime_type
from jangar.settings import Settings
from jangar.validation.agentrun import validate_agent_run
from jangar.validation.problems import Problem
from jangar.validation.resolve import Lookup, Resolution, resolve_run
from jangar.validation.secrets import secret_problem
from jangar.vcs.resolve import VcsResolution, resolve_run_vcs

__all__ = ["KeyCheck", "Prepared", "prepare_run", "run_parameters"]

KeyCheck = Callable[[str, str], bool]
"""(object name, key) → whether the Secret/ConfigMap has that key."""


@dataclass(frozen=True)
class Prepared:
    """The outcome of preparing a run (or one step attempt of it).

    * `problems`: why it cannot be submitted (validation, contract, a failed VCS requirement);
    * `context`: what to build the Job from; `None` for a valid `workflow` run prepared without a step
      (there is nothing to build until a step starts);
    * `contract`: the contract check of a `job` run, for `status.contract`;
    * `vcs`: the VCS result (status, skip reason, warnings, a GitHub App token to mint).
    """

    resolution: Resolution
    problems: list[Problem] = field(default_factory=list)
    context: RunContext | None = None
    contract: ContractResult | None = None
    vcs: VcsResolution | None = None

    @property
    def valid(self) -> bool:
        return not self.problems


def _always(name: str, key: str) -> bool:
    return True


def run_parameters(run: Mapping[str, Any]) -> dict[str, str]:
    """`spec.parameters` with string values only (validation reports the others)."""
    raw = as_map(run.get("spec")).get("parameters") or {}
    return {str(k): v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, Mapping) else {}


def prepare_run(
    run: Mapping[str, Any],
    lookup: Lookup,
    settings: Settings,
    *,
    step: StepRef | None = None,
    active_runs: Iterable[Mapping[str, Any]] = (),
    secret_has_key: KeyCheck = _always,
    configmap_has_key: KeyCheck = _always,
    require_secret_bindings: bool = True,
    now: datetime | None = None,
) -> Prepared:
    """Resolve and validate `run` (or one workflow `step` of it) and build its `RunContext`.

    `active_runs` are the namespace's other unfinished AgentRuns (branch conflicts); `secret_has_key` and
    `configmap_has_key` say whether VCS credentials exist (the controller reads Secrets on demand, never
    caches them; `render --offline` assumes they do). `now` judges a referenced Workspace's expiry.
    """
    resolution = resolve_run(run, lookup)
    problems = validate_agent_run(
        run, resolution, settings, require_secret_bindings=require_secret_bindings, now=now
    )
    kind = runtime_type(run)
    parameters = run_parameters(run)
    contract: ContractResult | None = None
    if step is None and kind == "job" and resolution.implementation is not None:
        contract = check_contract(parameters, resolution.implementation)
    if problems:
        return Prepared(resolution, problems, contract=contract)
    if kind == "workflow" and step is None:
        return Prepared(resolution)

    implementation = resolution.implementation
    implementation_name = resolution.implementation_ref
    if step is not None:
        implementation = resolution.step_implementations.get(step.name)
        step_params = as_map(step.spec.get("parameters"))
        parameters |= {k: v for k, v in step_params.items() if isinstance(v, str)}
        implementation_name = (
            as_map(step.spec.get("implementationSpecRef")).get("name") or implementation_name
        )
    if implementation is None or resolution.agent is None or resolution.provider is None:
        where = f"step {step.name}" if step is not None else "the run"
        return Prepared(resolution, [Problem("MissingImplementation", f"{where} has no implementation")])
    if step is not None:
        contract = check_contract(parameters, implementation)
        if contract.reason:
            return Prepared(resolution, [Problem(contract.reason, contract.message)])
    metadata = build_metadata(parameters, implementation)
    agent = resolution.agent

    def policy(secret: str, purpose: str) -> Problem | None:
        return secret_problem(
            secret,
            purpose=purpose,
            agent=agent,
            run=run,
            bindings=resolution.secret_bindings,
            settings=settings,
            needs_binding=require_secret_bindings,
        )

    provider = lookup.get("VersionControlProvider", resolution.vcs_ref) if resolution.vcs_ref else None
    vcs = resolve_run_vcs(
        run=run,
        agent=agent,
        implementation=implementation,
        parameters=parameters,
        metadata=metadata,
        provider=provider,
        settings=settings,
        active_runs=active_runs,
        secret_policy=policy,
        secret_has_key=secret_has_key,
        configmap_has_key=configmap_has_key,
        name_suffix=f"step-{step.index}-attempt-{step.attempt}" if step else "",
    )
    if vcs.outcome == "fail":
        problem = Problem(vcs.reason or "VcsUnavailable", vcs.message)
        return Prepared(resolution, [problem], contract=contract if step is None else None, vcs=vcs)
    final_parameters = dict(vcs.parameters) if vcs.parameters else parameters
    inline = isinstance((as_map(run.get("spec")).get("implementation") or {}).get("inline"), Mapping)
    context = RunContext(
        run=run,
        agent=agent,
        provider=resolution.provider,
        implementation=implementation,
        parameters=final_parameters,
        metadata=build_metadata(final_parameters, implementation),
        implementation_name=None if inline else implementation_name,
        memory=resolution.memory,
        vcs=vcs.runtime if vcs.outcome == "ok" else None,
        step=step,
        workspace=resolution.workspace,
    )
    return Prepared(resolution, [], context, contract if step is None else None, vcs)

"""One call from an AgentRun to everything needed to submit it: resolve, validate, contract, VCS, context.

This is the thin seam for the reconciler: `prepare_run()` never touches the API server. It returns either
the problems to report (`InvalidSpec`, terminal) or a `RunContext` ready for `build_job_plan`, plus the VCS
result (status, warnings, a GitHub App token to mint) and the contract status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jangar.scheduler.context import RunContext, StepRef
from jangar.scheduler.contract import ContractResult, build_metadata, check_contract
from jangar.scheduler.runtimes import runtime_type
from jangar.settings import Settings
from jangar.validation.agentrun import validate_agent_run
from jangar.validation.problems import Problem
from jangar.validation.resolve import Lookup, Resolution, resolve_run
from jangar.validation.secrets import secret_problem
from jangar.vcs.resolve import VcsResolution, resolve_run_vcs

__all__ = ["Prepared", "prepare_run"]


@dataclass(frozen=True)
class Prepared:
    """`ok`: submit `context`. Else `problems` → phase Failed, `InvalidSpec=True` (see `summarize`)."""

    resolution: Resolution
    problems: list[Problem] = field(default_factory=list)
    context: RunContext | None = None
    contract: ContractResult | None = None
    vcs: VcsResolution | None = None
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.context is not None


def _always(name: str, key: str) -> bool:
    return True


def prepare_run(
    run: Mapping[str, Any],
    lookup: Lookup,
    settings: Settings,
    *,
    step: StepRef | None = None,
    active_runs: Iterable[Mapping[str, Any]] = (),
    secret_has_key: Callable[[str, str], bool] = _always,
    configmap_has_key: Callable[[str, str], bool] = _always,
    require_secret_bindings: bool = True,
) -> Prepared:
    """Resolve and validate `run` (or one workflow `step` of it) and build its `RunContext`.

    `active_runs` are the other AgentRuns of the namespace (for branch conflicts); `secret_has_key` and
    `configmap_has_key` answer from the cache whether VCS credentials exist.
    """
    resolution = resolve_run(run, lookup)
    problems = validate_agent_run(run, resolution, settings, require_secret_bindings=require_secret_bindings)
    if problems:
        return Prepared(resolution, problems)
    spec = run.get("spec") or {}
    parameters: dict[str, str] = {
        k: v for k, v in (spec.get("parameters") or {}).items() if isinstance(v, str)
    }
    implementation = resolution.implementation
    implementation_name = resolution.implementation_ref
    if step is not None:
        implementation = resolution.step_implementations.get(step.name) or implementation
        step_params = step.spec.get("parameters") or {}
        parameters |= {k: v for k, v in step_params.items() if isinstance(v, str)}
        step_ref = (step.spec.get("implementationSpecRef") or {}).get("name")
        implementation_name = step_ref or implementation_name
    if implementation is None or resolution.agent is None or resolution.provider is None:
        return Prepared(resolution, [Problem("MissingImplementation", "implementation not found")])
    contract = check_contract(parameters, implementation)
    if contract.reason:
        return Prepared(resolution, [Problem(contract.reason, contract.message)], contract=contract)

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
        metadata=contract.metadata,
        provider=provider,
        settings=settings,
        active_runs=active_runs if runtime_type(run) in ("job", "workflow") else (),
        secret_policy=policy,
        secret_has_key=secret_has_key,
        configmap_has_key=configmap_has_key,
        name_suffix=f"step-{step.index}-attempt-{step.attempt}" if step else "",
    )
    if vcs.outcome == "fail":
        problem = Problem(vcs.reason or "VcsUnavailable", vcs.message)
        return Prepared(resolution, [problem], contract=contract, vcs=vcs, warnings=list(vcs.warnings))
    final_parameters = vcs.parameters or parameters
    context = RunContext(
        run=run,
        agent=agent,
        provider=resolution.provider,
        implementation=implementation,
        parameters=final_parameters,
        metadata=build_metadata(final_parameters, implementation),
        implementation_name=implementation_name,
        memory=resolution.memory,
        vcs=vcs.runtime if vcs.outcome == "ok" else None,
        step=step,
    )
    return Prepared(resolution, [], context, contract, vcs, list(vcs.warnings))

"""`render`: the ConfigMaps and Job the controller would create for an AgentRun, without creating anything.

It asks the controller's own pure decision (`jangar.controllers.agentrun.decide`) for the plan of an
admitted run, over an `ObjectLookup` of the referenced objects (read from the cluster, or given as files
with `--offline`), so what it prints is what runs. A `workflow` run renders one Job per step (each step's
first attempt, as the controller starts it once the steps before it succeeded). A run that cannot be
submitted renders nothing and reports the controller's reason and message instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jangar.admission import Admit
from jangar.api.contract import FINALIZER_RUNTIME_CLEANUP, Phase
from jangar.conditions import format_time
from jangar.controllers.agentrun.decide import decide
from jangar.controllers.agentrun.plan import RunPlan
from jangar.controllers.agentrun.prompt_read import PromptRead, prompt_from_objects
from jangar.controllers.agentrun.snapshot import RunSnapshot
from jangar.scheduler.runtimes import runtime_type
from jangar.scheduler.workflow import workflow_steps
from jangar.settings import Settings
from jangar.validation import Lookup, resolve_run

__all__ = ["RenderError", "Rendered", "render_run"]


class RenderError(ValueError):
    """The input cannot be rendered at all (not an AgentRun, no name, an unknown step)."""


@dataclass(frozen=True)
class Rendered:
    """What the controller would create (`objects`, in creation order), or why it would not (`reason`)."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    message: str = ""
    #: GitHub App token Secrets the controller would mint before creating the Job (never rendered)
    minted_secrets: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reason


def _snapshot(
    run: Mapping[str, Any],
    lookup: Lookup,
    settings: Settings,
    now: datetime,
    keys: tuple[Mapping[str, frozenset[str] | None], Mapping[str, frozenset[str] | None]] | None,
    active_runs: Sequence[Mapping[str, Any]],
    system_prompt: PromptRead | None = None,
) -> RunSnapshot:
    if system_prompt is None:  # offline: the Agent's prompt from the given objects (issue 13 item 3)
        system_prompt = prompt_from_objects(lookup, resolve_run(run, lookup).agent_ref)
    return RunSnapshot(
        run=run,
        now=now,
        settings=settings,
        lookup=lookup,
        secret_keys=keys[0] if keys is not None else {},
        configmap_keys=keys[1] if keys is not None else {},
        keys_read=keys is not None,
        active_runs=active_runs,
        system_prompt=system_prompt,
    )


def _collect(plan: RunPlan, out: Rendered) -> Rendered:
    if plan.create is None:
        status = plan.status
        if status is None:
            return dataclasses.replace(
                out, reason="NothingToCreate", message="the controller would create nothing"
            )
        return dataclasses.replace(out, reason=status.details.reason, message=status.details.message)
    minted = [*out.minted_secrets]
    if plan.app_token is not None:
        minted.append(plan.app_token.secret_name)
    objects = [*out.objects, *plan.create.configmaps, plan.create.job]
    return dataclasses.replace(out, objects=objects, minted_secrets=minted)


def render_run(
    run: Mapping[str, Any],
    lookup: Lookup,
    settings: Settings,
    *,
    now: datetime,
    step: str | None = None,
    keys: tuple[Mapping[str, frozenset[str] | None], Mapping[str, frozenset[str] | None]] | None = None,
    active_runs: Sequence[Mapping[str, Any]] = (),
    system_prompt: PromptRead | None = None,
) -> Rendered:
    """Render `run` (its spec and metadata; any status is ignored) against `lookup`.

    `keys` are the key names of the Secrets and ConfigMaps its VCS provider uses, as (secrets, configmaps);
    `None` (offline) counts every key as present. `active_runs` are the namespace's other unfinished runs
    (a head branch in use by one of them gets the controller's conflict suffix). A referenced object that is missing is an error here,
    not a reason to wait: `render` shows the outcome once the controller's grace has run out.
    """
    if run.get("kind") != "AgentRun":
        raise RenderError(f"expected an AgentRun, got {run.get('kind') or 'an object without kind'}")
    meta = dict(run.get("metadata") or {})
    if not meta.get("name"):
        raise RenderError("metadata.name is required: the Job and ConfigMap names derive from it")
    meta.setdefault("namespace", "default")
    meta["finalizers"] = [*(meta.get("finalizers") or ()), FINALIZER_RUNTIME_CLEANUP]
    meta.setdefault("creationTimestamp", format_time(now))
    base: dict[str, Any] = {k: v for k, v in run.items() if k not in ("status", "metadata")}
    base["metadata"] = meta
    # No grace: a missing reference is reported as the failure it becomes, not as "waiting".
    strict = dataclasses.replace(
        settings, tuning=dataclasses.replace(settings.tuning, reference_grace_seconds=0.0)
    )
    if runtime_type(base) != "workflow":
        if step is not None:
            raise RenderError("--step applies to workflow runs only")
        return _collect(
            decide(_snapshot(base, lookup, strict, now, keys, active_runs, system_prompt), Admit(now)),
            Rendered(),
        )
    names = [str(s["name"]) for s in workflow_steps(base)]
    if step is not None and step not in names:
        raise RenderError(f"the run has no step {step!r} (steps: {', '.join(names) or 'none'})")
    admitted = decide(_snapshot(base, lookup, strict, now, keys, active_runs, system_prompt), Admit(now))
    if admitted.status is None or admitted.status.phase != Phase.RUNNING:
        return _collect(admitted, Rendered())
    out = Rendered()
    for index, name in enumerate(names):
        if step is not None and name != step:
            continue
        done = [{"name": n, "phase": "Succeeded", "attempt": 1} for n in names[:index]]
        status = {
            "phase": Phase.RUNNING,
            "startedAt": format_time(now),
            "queue": {"admittedAt": format_time(now)},
            "workflow": {"phase": "Running", "steps": done},
        }
        out = _collect(
            decide(
                _snapshot({**base, "status": status}, lookup, strict, now, keys, active_runs, system_prompt)
            ),
            out,
        )
        if not out.ok:
            return out
    return out

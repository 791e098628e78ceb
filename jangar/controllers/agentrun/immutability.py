"""What a pass records at acceptance and how an unenforced spec change shows, pure (issue 13 item 3).

`acceptance_fields` adds `status.specHash`/`specFieldHashes` and `status.systemPromptHash` the first time a
status says the run is accepted (a run accepted before the upgrade is adopted the same way), and the pass
that fails a run `SpecImmutableViolation` is built in `decide`. With enforcement off, `warn_spec_change`
states a Warning condition on whatever the pass decided and asks for one Event when the warning is new.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from jangar.conditions import find_condition, set_condition
from jangar.controllers.agentrun.plan import RunPlan, StatusUpdate
from jangar.controllers.agentrun.prompt_read import PromptRead
from jangar.controllers.agentrun.spec_hash import REASON_SPEC_CHANGED, SpecChange, spec_hashes
from jangar.controllers.runconditions import RunDetails

__all__ = ["acceptance_fields", "warn_spec_change"]


def acceptance_fields(
    run: Mapping[str, Any], old: Mapping[str, Any], prompt: PromptRead | None
) -> dict[str, Any]:
    """The hashes to record with an accepted status that has none yet."""
    fields: dict[str, Any] = {}
    if not old.get("specHash"):
        whole, per_field = spec_hashes(run.get("spec") or {})
        fields["specHash"] = whole
        fields["specFieldHashes"] = per_field
    if not old.get("systemPromptHash") and prompt is not None and prompt.prompt is not None:
        fields["systemPromptHash"] = prompt.prompt.sha256
    return fields


def warn_spec_change(run: Mapping[str, Any], plan: RunPlan, change: SpecChange, now: datetime) -> RunPlan:
    """`plan` with Warning=True (SpecChangedAfterAcceptance) on its status, and an Event when it is new."""
    if plan.needs_admission:
        return plan  # decided again with the verdict, and warned then
    base = plan.status.status if plan.status is not None else dict(run.get("status") or {})
    generation = (run.get("metadata") or {}).get("generation")
    conditions = set_condition(
        [dict(c) for c in base.get("conditions") or ()],
        "Warning",
        "True",
        REASON_SPEC_CHANGED,
        change.message,
        now=now,
        observed_generation=generation,
    )
    status = {**base, "conditions": conditions}
    old = find_condition((run.get("status") or {}).get("conditions"), "Warning")
    new = old is None or old.get("status") != "True" or old.get("reason") != REASON_SPEC_CHANGED
    events = (("Warning", REASON_SPEC_CHANGED, change.message),) if new else ()
    if plan.status is not None:
        update = replace(plan.status, status=status)
    else:
        phase = str(base.get("phase") or "")
        update = StatusUpdate(phase, RunDetails(REASON_SPEC_CHANGED, change.message), status)
    return replace(plan, status=update, events=(*plan.events, *events))

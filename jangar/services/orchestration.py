"""`OrchestrationService` and `ToolRunService`: submit, cancel, get and list OrchestrationRuns and ToolRuns,
and approve or reject an ApprovalGate step — the rules `POST /v1/orchestration-runs`, `/v1/tool-runs`, the
gRPC methods and `agentctl orchestration|toolrun|approve|reject` share.

* **namespace**: the runs service's `NamespaceScope` (default namespace, `*` refused, unmanaged refused);
* **submission**: `build_orchestration_run` / `build_tool_run`. A `deliveryId` is the idempotency key: it
  becomes a deterministic name (`<orchestration>-<hash>`), `spec.deliveryId` and the label
  `jangar.proompteng.ai/delivery-id`, so a second submission with the same id returns the same run
  (`Submitted.replayed`); the API server's AlreadyExists decides, not a read-then-write;
* **references**: the Orchestration (or Tool) must exist (`NotFound`, HTTP 404);
* **budget**: an OrchestrationRun counts against its Orchestration's `spec.policies.budgetRef`; when that
  Budget is exceeded (or unreadable) the submission is refused with `BudgetExceeded` (429), by the same
  `budget_verdict` the controllers use, on the cached Budget (no Budget informer: nothing is refused). A
  ToolRun has no Budget reference of its own, so nothing is refused for it;
* **cancel**: the `agents.proompteng.ai/cancel` annotation (the controllers cancel the children / Job);
* **decisions**: a decision is the SignalDelivery of `docs/orchestration.md` (name `<run>-<step>-decision`,
  `spec.deliveryId` `approval:<run>:<step>`, `spec.signalRef.name` the policy, payload
  `{decision, decidedBy, reason}`), created with create, so the first decision wins and a second one is a
  `Conflict` (`AlreadyDecided`, 409). Only a step that is an ApprovalGate and waiting (`Running`,
  `AwaitingApproval`) can be decided; the policy's `subjects`, when it has any, must name the caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import structlog

from jangar.api.contract import (
    APPROVAL_DECISIONS,
    LABEL_APPROVAL_DECISION,
    LABEL_ORCHESTRATION_RUN,
    LABEL_ORCHESTRATION_STEP,
    Phase,
    approval_delivery_id,
    delivery_id_labels,
)
from jangar.api.refs import (
    APPROVALPOLICIES,
    BUDGETS,
    ORCHESTRATIONRUNS,
    ORCHESTRATIONS,
    SIGNALDELIVERIES,
    TOOLRUNS,
    TOOLS,
)
from jangar.runtime import (
    AlreadyExistsError,
    CacheReader,
    Client,
    InformerNotRegistered,
    JsonObject,
    NotFoundError,
    ResourceRef,
    strip_managed_fields,
)
from jangar.scheduler.budget import budget_verdict
from jangar.scheduler.naming import dns_label, label_value
from jangar.scheduler.orchestration import step_ref
from jangar.services.admission import RETRY_AFTER_SECONDS
from jangar.services.cancel import request_cancel
from jangar.services.errors import BudgetExceeded, Conflict, Forbidden, InvalidRequest, NotFound
from jangar.services.idempotency import Submitted, create_or_replay, existing_replay
from jangar.services.runs import RunList
from jangar.services.scope import NamespaceScope
from jangar.services.submission import SubmissionError, idempotent_name
from jangar.settings import Settings

__all__ = [
    "APPROVE",
    "REJECT",
    "Caller",
    "OrchestrationService",
    "OrchestrationSubmission",
    "ToolRunService",
    "ToolRunSubmission",
    "build_decision",
    "build_orchestration_run",
    "build_tool_run",
    "decision_name",
]

log = structlog.get_logger("jangar.services.orchestration")

APPROVE = "approved"
REJECT = "rejected"
_DELIVERY_ID_MAX = 253


def _check_name(value: str, what: str) -> None:
    if not value or len(value) > 253 or dns_label(value, limit=253) != value:
        raise SubmissionError(
            f"{what} {value!r} is not a valid Kubernetes name (lowercase letters, digits, '-')"
        )


def _parameters(parameters: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in parameters.items():
        if not key:
            raise SubmissionError("parameter names must not be empty")
        if not isinstance(value, str):
            raise SubmissionError(f"parameter {key!r} must be a string (the CRD's parameters are strings)")
        out[str(key)] = value
    return out


def _check_delivery_id(delivery_id: str | None) -> None:
    if delivery_id is not None and (not delivery_id.strip() or len(delivery_id) > _DELIVERY_ID_MAX):
        raise SubmissionError(f"deliveryId must be 1..{_DELIVERY_ID_MAX} characters")


def _metadata(
    namespace: str, target: str, name: str | None, delivery_id: str | None, labels: Mapping[str, str]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"namespace": namespace}
    all_labels = dict(labels)
    if delivery_id:
        all_labels.update(delivery_id_labels(label_value(delivery_id)))
    if all_labels:
        metadata["labels"] = all_labels
    if name:
        _check_name(name, "name")
        metadata["name"] = name
    elif delivery_id:
        metadata["name"] = idempotent_name(delivery_id, prefix=target[:40])
    else:
        metadata["generateName"] = f"{target[:50]}-"
    return metadata


@dataclass
class OrchestrationSubmission:
    orchestration: str
    namespace: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    delivery_id: str | None = None
    """The idempotency key (`spec.deliveryId`): the same id again returns the same run."""
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ToolRunSubmission:
    tool: str
    namespace: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    delivery_id: str | None = None
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def build_orchestration_run(sub: OrchestrationSubmission) -> dict[str, Any]:
    """Validate the submission and return the OrchestrationRun manifest."""
    if not sub.orchestration:
        raise SubmissionError("an orchestration is required (orchestrationRef)")
    _check_name(sub.orchestration, "orchestration")
    _check_name(sub.namespace, "namespace")
    _check_delivery_id(sub.delivery_id)
    spec: dict[str, Any] = {"orchestrationRef": {"name": sub.orchestration}}
    if sub.parameters:
        spec["parameters"] = _parameters(sub.parameters)
    if sub.delivery_id:
        spec["deliveryId"] = sub.delivery_id
    return {
        "apiVersion": ORCHESTRATIONRUNS.api_version,
        "kind": ORCHESTRATIONRUNS.kind,
        "metadata": _metadata(sub.namespace, sub.orchestration, sub.name, sub.delivery_id, sub.labels),
        "spec": spec,
    }


def build_tool_run(sub: ToolRunSubmission) -> dict[str, Any]:
    """Validate the submission and return the ToolRun manifest."""
    if not sub.tool:
        raise SubmissionError("a tool is required (toolRef)")
    _check_name(sub.tool, "tool")
    _check_name(sub.namespace, "namespace")
    _check_delivery_id(sub.delivery_id)
    spec: dict[str, Any] = {"toolRef": {"name": sub.tool}}
    if sub.parameters:
        spec["parameters"] = _parameters(sub.parameters)
    if sub.delivery_id:
        spec["deliveryId"] = sub.delivery_id
    return {
        "apiVersion": TOOLRUNS.api_version,
        "kind": TOOLRUNS.kind,
        "metadata": _metadata(sub.namespace, sub.tool, sub.name, sub.delivery_id, sub.labels),
        "spec": spec,
    }


# -- decisions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who asks for a decision, as the surface knows them (`user` empty: unknown)."""

    user: str = ""
    groups: tuple[str, ...] = ()


def decision_name(run: str, step: str) -> str:
    """`<run>-<step>-decision`, DNS-safe (shortened with a hash when too long)."""
    return dns_label(run, step, "decision", limit=253)


def normalize_decision(decision: str) -> str:
    """`approved`/`rejected` from the words the reference and the gate accept."""
    value = decision.strip().lower()
    aliases = {"approve": APPROVE, "allow": APPROVE, "reject": REJECT, "deny": REJECT}
    value = aliases.get(value, value)
    if value not in APPROVAL_DECISIONS:
        raise InvalidRequest(f"decision must be approved or rejected, got {decision!r}")
    return value


def build_decision(
    run: Mapping[str, Any], step: str, policy: str, decision: str, decided_by: str, reason: str | None
) -> dict[str, Any]:
    """The decision SignalDelivery of `run`'s ApprovalGate `step` (`docs/orchestration.md`, Approvals)."""
    meta = run["metadata"]
    name, ns = str(meta["name"]), str(meta["namespace"])
    payload: dict[str, Any] = {"decision": decision, "decidedBy": decided_by}
    if reason:
        payload["reason"] = reason
    metadata: dict[str, Any] = {
        "name": decision_name(name, step),
        "namespace": ns,
        "labels": {
            LABEL_ORCHESTRATION_RUN: label_value(name),
            LABEL_ORCHESTRATION_STEP: label_value(step),
            LABEL_APPROVAL_DECISION: decision,
        },
    }
    if meta.get("uid"):  # removed with the run; not a controller reference (the run does not own it)
        metadata["ownerReferences"] = [
            {
                "apiVersion": ORCHESTRATIONRUNS.api_version,
                "kind": ORCHESTRATIONRUNS.kind,
                "name": name,
                "uid": str(meta["uid"]),
            }
        ]
    return {
        "apiVersion": SIGNALDELIVERIES.api_version,
        "kind": SIGNALDELIVERIES.kind,
        "metadata": metadata,
        "spec": {
            "signalRef": {"name": policy},
            "deliveryId": approval_delivery_id(name, step),
            "payload": payload,
        },
    }


def _subject_matches(subject: Mapping[str, Any], caller: Caller, namespace: str) -> bool:
    kind, name = str(subject.get("kind") or ""), str(subject.get("name") or "")
    if not name or not caller.user:
        return False
    if kind == "User":
        return caller.user == name
    if kind == "Group":
        return name in caller.groups
    if kind == "ServiceAccount":
        sa_ns = str(subject.get("namespace") or namespace)
        return caller.user in (f"system:serviceaccount:{sa_ns}:{name}", name)
    return False


def check_subjects(policy: Mapping[str, Any], caller: Caller, namespace: str) -> None:
    """`Forbidden` unless the policy names no subjects or one of them is the caller."""
    subjects = (policy.get("spec") or {}).get("subjects") or []
    if not isinstance(subjects, list) or not subjects:
        return
    name = (policy.get("metadata") or {}).get("name")
    if not caller.user:
        raise Forbidden(f"ApprovalPolicy {name} names who may decide (subjects) and the caller is unknown")
    if not any(isinstance(s, Mapping) and _subject_matches(s, caller, namespace) for s in subjects):
        raise Forbidden(f"{caller.user} is not among the subjects of ApprovalPolicy {name} who may decide")


def _step_status(run: Mapping[str, Any], step: str) -> dict[str, Any] | None:
    for entry in (run.get("status") or {}).get("stepStatuses") or ():
        if isinstance(entry, dict) and entry.get("name") == step:
            return entry
    return None


def _describe_decision(approval: Mapping[str, Any] | None, delivery: Mapping[str, Any] | None) -> str:
    if approval:
        who = approval.get("decidedBy") or "?"
        return f"{approval.get('decision') or '?'} by {who}"
    payload = ((delivery or {}).get("spec") or {}).get("payload") or {}
    labels = ((delivery or {}).get("metadata") or {}).get("labels") or {}
    decision = payload.get("decision") or labels.get(LABEL_APPROVAL_DECISION) or "?"
    return f"{decision} by {payload.get('decidedBy') or '?'}"


# -- services ---------------------------------------------------------------------------------------


class _KindRuns:
    """Get, list and cancel of one run kind (reads go to the API server, not the cache)."""

    ref: ResourceRef

    def __init__(self, client: Client, cache: CacheReader, scope: NamespaceScope) -> None:
        self.client = client
        self.cache = cache
        self.scope = scope

    @classmethod
    def from_settings(cls, client: Client, cache: CacheReader, settings: Settings) -> Self:
        """Scoped to the namespaces the orchestration controller manages (the agents controller's by
        default)."""
        return cls(client, cache, NamespaceScope(tuple(settings.orchestration_controller.namespaces)))

    def namespace(self, requested: str | None) -> str:
        return self.scope.resolve(requested)

    async def get(self, namespace: str | None, name: str) -> JsonObject:
        ns = self.scope.resolve(namespace)
        if not name:
            raise InvalidRequest("name is required")
        try:
            return strip_managed_fields(await self.client.get(self.ref, name, ns))
        except NotFoundError:
            raise NotFound(self.ref.kind, ns, name) from None

    async def list(
        self, namespace: str | None, *, label_selector: str | None = None, phase: str | None = None
    ) -> RunList:
        """Runs oldest first; `namespace=None`: every managed namespace; `phase` case-insensitive."""
        namespaces = self.scope.managed() if namespace is None else (self.scope.resolve(namespace),)
        selector = (label_selector or "").strip() or None
        results = [
            await self.client.list(self.ref, ns, label_selector=selector) for ns in namespaces or (None,)
        ]
        items = [strip_managed_fields(o) for result in results for o in result.items]
        if phase:
            items = [
                o
                for o in items
                if str((o.get("status") or {}).get("phase") or Phase.PENDING).lower() == phase.lower()
            ]
        items.sort(
            key=lambda o: (
                str((o.get("metadata") or {}).get("creationTimestamp") or ""),
                str((o.get("metadata") or {}).get("name") or ""),
            )
        )
        return RunList(items, results[0].resource_version if len(results) == 1 else "")

    async def cancel(self, namespace: str | None, name: str) -> JsonObject:
        ns = self.scope.resolve(namespace)
        if not name:
            raise InvalidRequest("name is required")
        run = strip_managed_fields(await request_cancel(self.client, ns, name, self.ref))
        log.info("runs.cancel_requested", kind=self.ref.kind, namespace=ns, name=name)
        return run

    async def _require(self, ref: ResourceRef, name: str, namespace: str) -> JsonObject:
        try:
            return await self.client.get(ref, name, namespace)
        except NotFoundError:
            raise NotFound(ref.kind, namespace, name) from None

    async def _create(self, manifest: dict[str, Any]) -> Submitted:
        result = await create_or_replay(self.client, manifest, ref=self.ref, key_field="deliveryId")
        meta = result.run["metadata"]
        log.info(
            "runs.submitted",
            kind=self.ref.kind,
            namespace=meta["namespace"],
            name=meta["name"],
            replayed=result.replayed,
        )
        return dataclasses.replace(result, run=strip_managed_fields(result.run))

    async def _replay(self, manifest: dict[str, Any]) -> Submitted | None:
        if not (manifest.get("spec") or {}).get("deliveryId"):
            return None
        replay = await existing_replay(self.client, manifest, ref=self.ref, key_field="deliveryId")
        return dataclasses.replace(replay, run=strip_managed_fields(replay.run)) if replay else None


class ToolRunService(_KindRuns):
    ref = TOOLRUNS

    async def submit(self, submission: ToolRunSubmission) -> Submitted:
        """Create the ToolRun (or return the one this `deliveryId` created); `NotFound` without its Tool."""
        sub = dataclasses.replace(submission, namespace=self.scope.resolve(submission.namespace))
        manifest = build_tool_run(sub)
        replay = await self._replay(manifest)
        if replay is not None:
            return replay
        await self._require(TOOLS, sub.tool, sub.namespace)
        return await self._create(manifest)


class OrchestrationService(_KindRuns):
    ref = ORCHESTRATIONRUNS

    async def submit(self, submission: OrchestrationSubmission) -> Submitted:
        """Create the OrchestrationRun (or return the one this `deliveryId` created): `NotFound` without its
        Orchestration, `BudgetExceeded` when its Orchestration's Budget is exceeded."""
        sub = dataclasses.replace(submission, namespace=self.scope.resolve(submission.namespace))
        manifest = build_orchestration_run(sub)
        replay = await self._replay(manifest)  # a replay is answered whatever the budget says now
        if replay is not None:
            return replay
        orchestration = await self._require(ORCHESTRATIONS, sub.orchestration, sub.namespace)
        self._check_budget(orchestration, sub.namespace)
        return await self._create(manifest)

    def _check_budget(self, orchestration: Mapping[str, Any], namespace: str) -> None:
        policies = (orchestration.get("spec") or {}).get("policies") or {}
        ref = policies.get("budgetRef") if isinstance(policies, Mapping) else None
        name = ref.get("name") if isinstance(ref, Mapping) else ref
        if not name:
            return
        try:
            budget = self.cache.get(BUDGETS, str(name), namespace, copy=False)
        except InformerNotRegistered:
            return
        if budget is None:
            return
        verdict = budget_verdict(budget, str(name))
        if verdict.exceeded:
            raise BudgetExceeded(
                verdict.message, budget=str(name), resource=verdict.resource, retry_after=RETRY_AFTER_SECONDS
            )

    async def decide(
        self,
        namespace: str | None,
        run_name: str,
        step: str,
        decision: str,
        *,
        caller: Caller = Caller(),
        decided_by: str | None = None,
        reason: str | None = None,
    ) -> JsonObject:
        """Approve or reject the waiting ApprovalGate `step` of `run_name`; return the decision delivery."""
        value = normalize_decision(decision)
        ns = self.scope.resolve(namespace)
        if not run_name or not step:
            raise InvalidRequest("a run and a step are required")
        run = await self._require(ORCHESTRATIONRUNS, run_name, ns)
        entry = _step_status(run, step)
        steps = await self._definition_steps(run, ns)
        definition = next((s for s in steps if s.get("name") == step), None)
        kind = (entry or {}).get("kind") or (definition or {}).get("kind")
        if entry is None and definition is None:
            raise NotFound("step", ns, f"{run_name}/{step}")
        if kind != "ApprovalGate":
            raise InvalidRequest(f"step {step} of {run_name} is a {kind} step, not an ApprovalGate")
        phase = (entry or {}).get("phase") or Phase.PENDING
        if entry is not None and entry.get("approval"):
            raise Conflict(
                f"step {step} of {run_name} is already decided: {_describe_decision(entry['approval'], None)}",
                reason="AlreadyDecided",
            )
        if phase != "Running" or entry is None or entry.get("reason") != "AwaitingApproval":
            raise Conflict(
                f"step {step} of {run_name} is not waiting for a decision (phase {phase})",
                reason="NotWaiting",
            )
        policy = str((entry.get("waitingFor") or {}).get("policy") or "")
        if not policy and definition is not None:
            policy = step_ref(definition, "policyRef") or ""
        if not policy:
            raise Conflict(
                f"step {step} of {run_name} names no ApprovalPolicy", reason="MissingApprovalPolicy"
            )
        try:
            policy_obj = await self.client.get(APPROVALPOLICIES, policy, ns)
        except NotFoundError:
            raise Conflict(
                f"ApprovalPolicy {ns}/{policy} of step {step} does not exist: a decision cannot be valid",
                reason="MissingApprovalPolicy",
            ) from None
        check_subjects(policy_obj, caller, ns)
        who = caller.user or (decided_by or "").strip() or "unknown"
        manifest = build_decision(run, step, policy, value, who, reason)
        try:
            created = await self.client.create(SIGNALDELIVERIES, manifest, namespace=ns)
        except AlreadyExistsError:
            existing: JsonObject | None
            try:
                existing = await self.client.get(SIGNALDELIVERIES, manifest["metadata"]["name"], ns)
            except NotFoundError:
                existing = None
            raise Conflict(
                f"step {step} of {run_name} is already decided: {_describe_decision(None, existing)}",
                reason="AlreadyDecided",
            ) from None
        log.info("orchestration.decided", namespace=ns, run=run_name, step=step, decision=value, by=who)
        return strip_managed_fields(created)

    async def _definition_steps(self, run: Mapping[str, Any], namespace: str) -> Sequence[Mapping[str, Any]]:
        ref = (run.get("spec") or {}).get("orchestrationRef") or {}
        name = ref.get("name") if isinstance(ref, Mapping) else ref
        if not name:
            return ()
        try:
            orchestration = await self.client.get(ORCHESTRATIONS, str(name), namespace)
        except NotFoundError:
            return ()
        steps = (orchestration.get("spec") or {}).get("steps") or []
        return [s for s in steps if isinstance(s, Mapping)]

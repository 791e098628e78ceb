"""`OrchestrationService` / `ToolRunService`: idempotent submission by deliveryId, missing references, the
budget refusal, cancel, and decisions on ApprovalGate steps (first decision wins, only a waiting gate, the
policy's subjects)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from jangar.api.contract import (
    ANNOTATION_CANCEL,
    LABEL_APPROVAL_DECISION,
    LABEL_DELIVERY_ID,
    LABEL_ORCHESTRATION_RUN,
    LABEL_ORCHESTRATION_STEP,
)
from jangar.api.refs import BUDGETS, ORCHESTRATIONRUNS, SIGNALDELIVERIES
from jangar.runtime import AlreadyExistsError, NotFoundError, ObjectList, ResourceRef
from jangar.runtime.testing import FakeCache
from jangar.services import (
    AlreadyExists,
    BudgetExceeded,
    Caller,
    Conflict,
    Forbidden,
    InvalidRequest,
    NamespaceNotManaged,
    NotFound,
    OrchestrationService,
    OrchestrationSubmission,
    SubmissionError,
    ToolRunService,
    ToolRunSubmission,
)
from jangar.services.orchestration import build_orchestration_run, decision_name
from jangar.settings import Settings


class KindClient:
    """An in-memory client keyed by kind, namespace and name."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.created: list[tuple[str, str]] = []
        self._ids = itertools.count(1)

    def put(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        meta.setdefault("namespace", "agents")
        meta.setdefault("uid", f"uid-{next(self._ids)}")
        self.objects[(kind, meta["namespace"], meta["name"])] = obj
        return obj

    async def create(
        self, ref: ResourceRef, obj: dict[str, Any], *, namespace: str | None = None, **_: Any
    ) -> Any:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        if not meta.get("name"):
            meta["name"] = f"{meta.pop('generateName')}{next(self._ids):05d}"
        if (ref.kind, meta["namespace"], meta["name"]) in self.objects:
            raise AlreadyExistsError(409, "AlreadyExists", "exists")
        self.created.append((ref.kind, meta["name"]))
        return copy.deepcopy(self.put(ref.kind, obj))

    async def get(self, ref: ResourceRef, name: str, namespace: str | None = None) -> Any:
        try:
            return copy.deepcopy(self.objects[(ref.kind, str(namespace), name)])
        except KeyError:
            raise NotFoundError(404, "NotFound", f"{name} not found") from None

    async def patch(
        self, ref: ResourceRef, name: str, patch: Any, *, namespace: str | None = None, **_: Any
    ) -> Any:
        obj = self.objects.get((ref.kind, str(namespace), name))
        if obj is None:
            raise NotFoundError(404, "NotFound", f"{name} not found")
        obj["metadata"].setdefault("annotations", {}).update(patch["metadata"]["annotations"])
        return copy.deepcopy(obj)

    async def list(self, ref: ResourceRef, namespace: str | None = None, **_: Any) -> ObjectList:
        items = [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == ref.kind and namespace in (None, ns)
        ]
        return ObjectList(items, resource_version="rv")


SETTINGS = Settings.from_env({"JANGAR_AGENTS_CONTROLLER_NAMESPACES": "agents"})


def orchestration(budget: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "steps": [
            {"name": "start", "kind": "Checkpoint"},
            {
                "name": "review",
                "kind": "ApprovalGate",
                "dependsOn": ["start"],
                "policyRef": "default-approval",
            },
        ]
    }
    if budget:
        spec["policies"] = {"budgetRef": {"name": budget}}
    return {"metadata": {"name": "ship"}, "spec": spec}


def services(cache: FakeCache | None = None) -> tuple[KindClient, OrchestrationService, ToolRunService]:
    client = KindClient()
    cache = cache or FakeCache()
    return (
        client,
        OrchestrationService.from_settings(client, cache, SETTINGS),  # type: ignore[arg-type]
        ToolRunService.from_settings(client, cache, SETTINGS),  # type: ignore[arg-type]
    )


# -- submission ---------------------------------------------------------------------------------------


async def test_the_same_delivery_id_returns_the_same_run() -> None:
    client, orch, _ = services()
    client.put("Orchestration", orchestration())
    sub = OrchestrationSubmission("ship", parameters={"repository": "proompteng/lab"}, delivery_id="gh:42")
    first = await orch.submit(sub)
    second = await orch.submit(sub)
    assert (first.replayed, second.replayed) == (False, True)
    assert first.run["metadata"]["name"] == second.run["metadata"]["name"]
    assert first.run["metadata"]["name"].startswith("ship-")
    assert first.run["metadata"]["labels"][LABEL_DELIVERY_ID] == "gh-42"
    assert first.run["metadata"]["labels"]["agents.proompteng.ai/delivery-id"] == "gh-42"  # 0.9.29's label
    assert first.run["spec"] == {
        "orchestrationRef": {"name": "ship"},
        "parameters": {"repository": "proompteng/lab"},
        "deliveryId": "gh:42",
    }
    assert [c for c in client.created if c[0] == "OrchestrationRun"] == [
        ("OrchestrationRun", first.run["metadata"]["name"])
    ]


async def test_without_a_delivery_id_every_submission_is_a_new_run() -> None:
    client, orch, _ = services()
    client.put("Orchestration", orchestration())
    a = await orch.submit(OrchestrationSubmission("ship"))
    b = await orch.submit(OrchestrationSubmission("ship"))
    assert a.run["metadata"]["name"] != b.run["metadata"]["name"]
    assert LABEL_DELIVERY_ID not in (a.run["metadata"].get("labels") or {})


async def test_a_name_taken_by_another_submission_is_a_conflict() -> None:
    client, orch, _ = services()
    client.put("Orchestration", orchestration())
    await orch.submit(OrchestrationSubmission("ship", name="fixed", delivery_id="one"))
    with pytest.raises(AlreadyExists):
        await orch.submit(OrchestrationSubmission("ship", name="fixed", delivery_id="two"))


async def test_a_missing_orchestration_or_tool_is_not_found() -> None:
    _, orch, tools = services()
    with pytest.raises(NotFound, match="Orchestration agents/ship not found"):
        await orch.submit(OrchestrationSubmission("ship"))
    with pytest.raises(NotFound, match="Tool agents/echo not found"):
        await tools.submit(ToolRunSubmission("echo"))


@pytest.mark.parametrize(
    ("sub", "message"),
    [
        (OrchestrationSubmission(""), "an orchestration is required"),
        (OrchestrationSubmission("Bad_Name"), "not a valid Kubernetes name"),
        (OrchestrationSubmission("ship", parameters={"n": 1}), "must be a string"),  # type: ignore[dict-item]
        (OrchestrationSubmission("ship", parameters={"": "x"}), "must not be empty"),
        (OrchestrationSubmission("ship", delivery_id=" "), "deliveryId"),
    ],
)
async def test_bad_input_is_an_invalid_request(sub: OrchestrationSubmission, message: str) -> None:
    client, orch, _ = services()
    client.put("Orchestration", orchestration())
    with pytest.raises(SubmissionError, match=message):
        await orch.submit(sub)


async def test_namespaces_follow_the_managed_scope() -> None:
    _, orch, _ = services()
    with pytest.raises(NamespaceNotManaged):
        await orch.submit(OrchestrationSubmission("ship", namespace="elsewhere"))
    with pytest.raises(InvalidRequest):
        await orch.list("*")


def _budget(used: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "team", "namespace": "agents"},
        "spec": {"limits": {"tokens": "100"}},
        "status": {"used": {"tokens": used}},
    }


async def test_an_exceeded_orchestration_budget_refuses_new_runs_but_answers_replays() -> None:
    cache = FakeCache(BUDGETS, strict=True)
    cache.add(BUDGETS, _budget("10"))
    client, orch, _ = services(cache)
    client.put("Orchestration", orchestration(budget="team"))
    accepted = await orch.submit(OrchestrationSubmission("ship", delivery_id="d1"))
    cache.add(BUDGETS, _budget("100"))
    with pytest.raises(BudgetExceeded) as err:
        await orch.submit(OrchestrationSubmission("ship", delivery_id="d2"))
    assert (err.value.reason, err.value.budget, err.value.resource) == ("BudgetExceeded", "team", "tokens")
    replay = await orch.submit(OrchestrationSubmission("ship", delivery_id="d1"))
    assert replay.replayed and replay.run["metadata"]["name"] == accepted.run["metadata"]["name"]


async def test_budgets_not_watched_refuse_nothing() -> None:
    client, orch, _ = services(FakeCache(strict=True))
    client.put("Orchestration", orchestration(budget="team"))
    assert not (await orch.submit(OrchestrationSubmission("ship"))).replayed


async def test_tool_runs_submit_idempotently_and_cancel_by_annotation() -> None:
    client, _, tools = services()
    client.put("Tool", {"metadata": {"name": "echo"}, "spec": {"image": "busybox"}})
    first = await tools.submit(ToolRunSubmission("echo", parameters={"message": "hi"}, delivery_id="x"))
    again = await tools.submit(ToolRunSubmission("echo", parameters={"message": "hi"}, delivery_id="x"))
    assert again.replayed and again.run["metadata"]["name"] == first.run["metadata"]["name"]
    cancelled = await tools.cancel("", first.run["metadata"]["name"])
    assert cancelled["metadata"]["annotations"][ANNOTATION_CANCEL] == "true"
    with pytest.raises(NotFound, match="ToolRun agents/nope not found"):
        await tools.cancel("", "nope")
    listed = await tools.list("agents")
    assert [o["metadata"]["name"] for o in listed.items] == [first.run["metadata"]["name"]]
    assert (await tools.list("agents", phase="running")).items == []


# -- decisions ----------------------------------------------------------------------------------------


def waiting_run(**entry: Any) -> dict[str, Any]:
    gate = {
        "name": "review",
        "kind": "ApprovalGate",
        "phase": "Running",
        "reason": "AwaitingApproval",
        "waitingFor": {"deliveryId": "approval:ship-1:review", "policy": "default-approval"},
    } | entry
    return {
        "metadata": {"name": "ship-1", "uid": "run-uid"},
        "spec": {"orchestrationRef": {"name": "ship"}},
        "status": {
            "phase": "Running",
            "stepStatuses": [{"name": "start", "kind": "Checkpoint", "phase": "Succeeded"}, gate],
        },
    }


def policy(*subjects: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"mode": "manual"}
    if subjects:
        spec["subjects"] = list(subjects)
    return {"metadata": {"name": "default-approval"}, "spec": spec}


def decision_services(
    run: dict[str, Any], pol: dict[str, Any] | None = None
) -> tuple[KindClient, OrchestrationService]:
    client, orch, _ = services()
    client.put("Orchestration", orchestration())
    client.put("OrchestrationRun", run)
    if pol is not None:
        client.put("ApprovalPolicy", pol)
    return client, orch


async def test_approving_creates_the_decision_delivery_of_the_contract() -> None:
    client, orch = decision_services(waiting_run(), policy())
    delivery = await orch.decide("", "ship-1", "review", "approve", decided_by="alice", reason="LGTM")
    assert delivery["metadata"]["name"] == "ship-1-review-decision" == decision_name("ship-1", "review")
    assert delivery["metadata"]["labels"] == {
        LABEL_ORCHESTRATION_RUN: "ship-1",
        LABEL_ORCHESTRATION_STEP: "review",
        LABEL_APPROVAL_DECISION: "approved",
    }
    assert delivery["metadata"]["ownerReferences"][0]["uid"] == "run-uid"
    assert delivery["spec"] == {
        "signalRef": {"name": "default-approval"},
        "deliveryId": "approval:ship-1:review",
        "payload": {"decision": "approved", "decidedBy": "alice", "reason": "LGTM"},
    }
    assert client.created == [("SignalDelivery", "ship-1-review-decision")]


async def test_the_first_decision_wins() -> None:
    _, orch = decision_services(waiting_run(), policy())
    await orch.decide("", "ship-1", "review", "reject", decided_by="bob")
    with pytest.raises(Conflict, match="already decided: rejected by bob") as err:
        await orch.decide("", "ship-1", "review", "approve", decided_by="alice")
    assert err.value.reason == "AlreadyDecided"


async def test_a_decided_gate_is_already_decided() -> None:
    run = waiting_run(
        phase="Succeeded", reason="Approved", approval={"decision": "approved", "decidedBy": "carol"}
    )
    _, orch = decision_services(run, policy())
    with pytest.raises(Conflict, match="approved by carol"):
        await orch.decide("", "ship-1", "review", "reject")


@pytest.mark.parametrize(
    ("run", "step", "error", "message"),
    [
        (waiting_run(phase="Pending", reason=None), "review", Conflict, "not waiting for a decision"),
        (
            {"metadata": {"name": "ship-1"}, "spec": {"orchestrationRef": {"name": "ship"}}},
            "review",
            Conflict,
            "phase Pending",
        ),
        (waiting_run(), "start", InvalidRequest, "is a Checkpoint step, not an ApprovalGate"),
        (waiting_run(), "missing", NotFound, "step agents/ship-1/missing not found"),
    ],
)
async def test_only_a_waiting_approval_gate_can_be_decided(
    run: dict[str, Any], step: str, error: type[Exception], message: str
) -> None:
    client, orch = decision_services(run, policy())
    with pytest.raises(error, match=message):
        await orch.decide("", "ship-1", step, "approved", decided_by="alice")
    assert not [c for c in client.created if c[0] == "SignalDelivery"]


async def test_a_missing_run_or_a_bad_decision_is_refused() -> None:
    _, orch = decision_services(waiting_run(), policy())
    with pytest.raises(NotFound, match="OrchestrationRun agents/other not found"):
        await orch.decide("", "other", "review", "approved")
    with pytest.raises(InvalidRequest, match="approved or rejected"):
        await orch.decide("", "ship-1", "review", "maybe")


async def test_a_missing_policy_cannot_take_a_decision() -> None:
    _, orch = decision_services(waiting_run())
    with pytest.raises(Conflict) as err:
        await orch.decide("", "ship-1", "review", "approved", decided_by="alice")
    assert err.value.reason == "MissingApprovalPolicy"


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [
        (Caller("alice"), True),
        (Caller("mallory"), False),
        (Caller("dave", ("platform-approvers",)), True),
        (Caller("system:serviceaccount:agents:bot"), True),
        (Caller(), False),
    ],
)
async def test_the_policys_subjects_say_who_may_decide(caller: Caller, allowed: bool) -> None:
    pol = policy(
        {"kind": "User", "name": "alice"},
        {"kind": "Group", "name": "platform-approvers"},
        {"kind": "ServiceAccount", "name": "bot"},
    )
    client, orch = decision_services(waiting_run(), pol)
    if allowed:
        delivery = await orch.decide("", "ship-1", "review", "approved", caller=caller, decided_by="ignored")
        assert delivery["spec"]["payload"]["decidedBy"] == caller.user
    else:
        with pytest.raises(Forbidden):
            await orch.decide("", "ship-1", "review", "approved", caller=caller)
        assert not [c for c in client.created if c[0] == "SignalDelivery"]


def test_long_names_give_dns_safe_decision_names() -> None:
    name = decision_name("r" * 200, "Step_With_Caps" * 10)
    assert len(name) <= 253 and name == name.lower() and "_" not in name
    assert decision_name("r" * 200, "a") != decision_name("r" * 200, "b")


def test_the_manifest_of_a_submission() -> None:
    manifest = build_orchestration_run(OrchestrationSubmission("ship", namespace="agents"))
    assert manifest["apiVersion"] == ORCHESTRATIONRUNS.api_version
    assert manifest["metadata"] == {"namespace": "agents", "generateName": "ship-"}
    assert SIGNALDELIVERIES.kind == "SignalDelivery"

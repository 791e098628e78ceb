"""The run's ServiceAccount before its Job (issue 12): created when it is the managed runner ServiceAccount,
otherwise a missing one holds the run Pending at once with MissingServiceAccount (not a 10-minute
PodsNotCreated), and fails it after the reference grace."""

from __future__ import annotations

from typing import Any

import pytest

from jangar.admission import Admit
from jangar.controllers.agentrun.decide import decide
from jangar.controllers.kinds import SERVICEACCOUNTS
from jangar.controllers.runner_sa import (
    LABEL_RUNNER_SERVICE_ACCOUNT,
    ServiceAccountCheck,
    read_service_account_check,
    service_account_manifest,
)
from jangar.runtime.testing import FakeCache
from jangar.settings import Settings
from tests.unit.controllers.agentrun_objects import NOW, conditions, run, snapshot, tuned

ADMIT = Admit(NOW)
MANAGED = Settings.from_env(
    {
        "JANGAR_AGENT_RUNNER_IMAGE": "runner:1",
        "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT": "agents-runner",
        "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE": "true",
        "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_ANNOTATIONS": '{"iam.example/role": "runner"}',
    }
)
UNMANAGED = Settings.from_env(
    {"JANGAR_AGENT_RUNNER_IMAGE": "runner:1", "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT": "agents-runner"}
)


def sa(name: str, ns: str = "agents") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}


def with_sa(obj: dict[str, Any], name: str) -> dict[str, Any]:
    obj["spec"].setdefault("runtime", {}).setdefault("config", {})["serviceAccount"] = name
    return obj


@pytest.mark.parametrize(
    ("settings", "obj", "present", "expected"),
    [
        # the managed runner SA, missing: to create
        (MANAGED, run(), (), ServiceAccountCheck("agents-runner", exists=False, managed=True)),
        # present: nothing to do
        (MANAGED, run(), ("agents-runner",), ServiceAccountCheck("agents-runner", exists=True, managed=True)),
        # the run names another SA: never created by jangar
        (MANAGED, with_sa(run(), "mine"), (), ServiceAccountCheck("mine", exists=False, managed=False)),
        # creation off: the default SA is the user's to create
        (UNMANAGED, run(), (), ServiceAccountCheck("agents-runner", exists=False, managed=False)),
        # no SA named anywhere: `default`, which Kubernetes creates; not checked
        (Settings.from_env({"JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE": "true"}), run(), (), None),
        (MANAGED, with_sa(run(), "default"), (), None),
    ],
    ids=["managed-missing", "managed-present", "other-name", "creation-off", "no-sa", "explicit-default"],
)
def test_the_check_read_from_the_cache(
    settings: Settings, obj: dict[str, Any], present: tuple[str, ...], expected: ServiceAccountCheck | None
) -> None:
    cache = FakeCache(SERVICEACCOUNTS)
    cache.add(SERVICEACCOUNTS, *(sa(n) for n in present))
    cache.add(SERVICEACCOUNTS, sa("agents-runner", "elsewhere"))  # another namespace's does not count
    assert read_service_account_check(cache, obj, settings) == expected


def test_not_checked_when_service_accounts_are_not_watched() -> None:
    assert read_service_account_check(FakeCache(strict=True), run(), MANAGED) is None


def test_a_missing_managed_service_account_is_created_with_the_job() -> None:
    check = ServiceAccountCheck("agents-runner", exists=False, managed=True)
    plan = decide(snapshot(run(), settings=MANAGED, service_account=check), ADMIT)
    assert plan.create is not None and plan.ensure_service_account == "agents-runner"
    assert plan.create.job["spec"]["template"]["spec"]["serviceAccountName"] == "agents-runner"
    assert plan.status is not None and plan.status.phase == "Running"


def test_a_present_service_account_is_left_alone() -> None:
    check = ServiceAccountCheck("agents-runner", exists=True, managed=True)
    plan = decide(snapshot(run(), settings=MANAGED, service_account=check), ADMIT)
    assert plan.create is not None and plan.ensure_service_account is None


def test_a_missing_unmanaged_service_account_holds_the_run_at_once_before_admission() -> None:
    check = ServiceAccountCheck("mine", exists=False, managed=False)
    # no admission verdict yet: the run does not even ask for a place
    plan = decide(snapshot(run(created_ago=10), settings=UNMANAGED, service_account=check))
    assert not plan.needs_admission and plan.create is None
    assert plan.status is not None and plan.status.phase == "Pending"
    assert conditions(plan.status.status)["InvalidSpec"] == ("True", "MissingServiceAccount")
    assert "serviceaccount 'mine' not found in namespace 'agents'" in plan.status.details.message
    assert plan.requeue_after == pytest.approx(290.0)


def test_a_missing_service_account_fails_the_run_after_the_reference_grace() -> None:
    check = ServiceAccountCheck("mine", exists=False, managed=False)
    settings = tuned(reference_grace_seconds=50)
    plan = decide(snapshot(run(created_ago=100), settings=settings, service_account=check), ADMIT)
    assert plan.status is not None and plan.status.phase == "Failed" and plan.create is None
    assert conditions(plan.status.status)["Failed"] == ("True", "MissingServiceAccount")


def test_the_manifest_is_labelled_and_annotated_not_owned() -> None:
    manifest = service_account_manifest("agents-runner", "team-a", MANAGED)
    meta = manifest["metadata"]
    assert (meta["name"], meta["namespace"]) == ("agents-runner", "team-a")
    assert meta["labels"][LABEL_RUNNER_SERVICE_ACCOUNT] == "true"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "jangar"
    assert meta["annotations"] == {"iam.example/role": "runner"}
    assert "ownerReferences" not in meta


async def test_the_role_binding_is_created_before_the_service_account() -> None:
    """The SA's existence is what the next check sees: its binding must already exist by then."""
    from jangar.controllers.kinds import ROLEBINDINGS
    from jangar.controllers.runner_sa import ensure_service_account
    from jangar.runtime import AlreadyExistsError

    class Recording:
        def __init__(self) -> None:
            self.created: list[tuple[str, str]] = []

        async def create(self, ref: Any, body: dict[str, Any]) -> dict[str, Any]:
            self.created.append((ref.kind, body["metadata"]["name"]))
            if ref == ROLEBINDINGS and len(self.created) > 2:
                raise AlreadyExistsError("exists")
            return body

    settings = Settings.from_env(
        {
            "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT": "agents-runner",
            "JANGAR_AGENT_RUNNER_SERVICE_ACCOUNT_CREATE": "true",
            "JANGAR_AGENT_RUNNER_CLUSTER_ROLE": "agents-agents-runner",
        }
    )
    client = Recording()
    await ensure_service_account(client, "agents-runner", "team-a", settings)  # type: ignore[arg-type]
    assert client.created == [("RoleBinding", "agents-runner"), ("ServiceAccount", "agents-runner")]
    await ensure_service_account(client, "agents-runner", "team-a", settings)  # type: ignore[arg-type]
    assert client.created[2:] == [("RoleBinding", "agents-runner"), ("ServiceAccount", "agents-runner")]
    client = Recording()
    await ensure_service_account(client, "agents-runner", "team-a", MANAGED)  # type: ignore[arg-type]
    assert client.created == [("ServiceAccount", "agents-runner")]  # no ClusterRole configured: no binding

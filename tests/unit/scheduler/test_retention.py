"""`plan_retention`: which finished AgentRuns one sweep pass deletes (issue 13, drift-0.9.29.md row 18)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jangar.conditions import format_time
from jangar.scheduler.retention import ObjectKey, RetentionPlan, plan_retention
from jangar.scheduler.ttl import retention_seconds
from jangar.settings import Settings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def settings(**env: str) -> Settings:
    return Settings.from_env({"JANGAR_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE": "2", **env})


def run(
    name: str,
    finished_ago: float | None = 120,
    *,
    ns: str = "a",
    ttl: int | None = 60,
    phase: str = "Succeeded",
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
    uid: str | None = "",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}" if uid == "" else uid}
    if annotations:
        meta["annotations"] = annotations
    if deleting:
        meta["deletionTimestamp"] = format_time(NOW)
    status: dict[str, Any] = {"phase": phase}
    if finished_ago is not None:
        status["finishedAt"] = format_time(NOW - timedelta(seconds=finished_ago))
    spec = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
    return {"metadata": meta, "spec": spec, "status": status}


def key(name: str, ns: str = "a") -> ObjectKey:
    return ObjectKey(ns, name, f"uid-{name}")


CASES: list[tuple[str, list[dict[str, Any]], Settings, RetentionPlan]] = [
    ("nothing", [], settings(), RetentionPlan()),
    (
        "five expired, cap 2: the two most overdue go, three are held",
        [run(f"r{i}", finished_ago=100 + i) for i in range(5)],
        settings(),
        RetentionPlan(deletes=(key("r4"), key("r3")), held={"a": 3}),
    ),
    (
        "the cap is per namespace",
        [run("x", ns="a"), run("y", ns="b"), run("z", ns="b"), run("w", ns="b", finished_ago=500)],
        settings(),
        RetentionPlan(deletes=(key("x"), key("w", "b"), key("y", "b")), held={"b": 1}),
    ),
    (
        "cap 0 is no cap",
        [run(f"r{i}", finished_ago=100 + i) for i in range(3)],
        settings(JANGAR_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE="0"),
        RetentionPlan(deletes=(key("r2"), key("r1"), key("r0"))),
    ),
    (
        "retained under either prefix, template runs: never",
        [
            run("kept", annotations={"agents.proompteng.ai/retain": "true"}),
            run("kept-too", annotations={"jangar.proompteng.ai/retain": "TRUE"}),
            run("template", annotations={"agents.proompteng.ai/template": "true"}),
            run("not-retained", annotations={"agents.proompteng.ai/retain": "false"}),
        ],
        settings(),
        RetentionPlan(deletes=(key("not-retained"),)),
    ),
    (
        "unfinished, no finishedAt, being deleted, no uid: skipped",
        [
            run("running", phase="Running"),
            run("no-finish", finished_ago=None),
            run("going", deleting=True),
            run("unsaved", uid=None),
        ],
        settings(),
        RetentionPlan(),
    ),
    (
        "not due yet: the earliest due time is the next wake-up",
        [run("soon", finished_ago=50), run("later", finished_ago=10)],
        settings(),
        RetentionPlan(next_due=pytest.approx(10.0)),
    ),
    (
        "due and not due together",
        [run("due"), run("soon", finished_ago=55)],
        settings(),
        RetentionPlan(deletes=(key("due"),), next_due=pytest.approx(5.0)),
    ),
    (
        "ttl 0 keeps for ever (0.9.1) without the zero-TTL cap",
        [run("forever", ttl=0, finished_ago=10**7)],
        settings(),
        RetentionPlan(),
    ),
    (
        "ttl 0 with the zero-TTL cap: kept that long, then deleted",
        [run("capped", ttl=0, finished_ago=3601), run("young", ttl=0, finished_ago=3000)],
        settings(JANGAR_AGENTRUN_RETENTION_ZERO_TTL_MAX_SECONDS="3600"),
        RetentionPlan(deletes=(key("capped"),), next_due=pytest.approx(600.0)),
    ),
    (
        "the controller default retention 0 is capped the same way",
        [run("default", ttl=None, finished_ago=7200)],
        settings(
            JANGAR_AGENTS_CONTROLLER_AGENTRUN_RETENTION_SECONDS="0",
            JANGAR_AGENTRUN_RETENTION_ZERO_TTL_MAX_SECONDS="3600",
        ),
        RetentionPlan(deletes=(key("default"),)),
    ),
    (
        "the zero-TTL cap does not shorten a set retention",
        [run("long", ttl=86400, finished_ago=7200)],
        settings(JANGAR_AGENTRUN_RETENTION_ZERO_TTL_MAX_SECONDS="3600"),
        RetentionPlan(next_due=pytest.approx(79200.0)),
    ),
]


@pytest.mark.parametrize(("runs", "config", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan_retention(runs: list[dict[str, Any]], config: Settings, expected: RetentionPlan) -> None:
    assert plan_retention(runs, NOW, config) == expected


def test_the_settings_read_the_0_9_29_names_too() -> None:
    config = Settings.from_env(
        {
            "AGENTS_AGENTRUN_RETENTION_MAX_DELETES_PER_NAMESPACE": "7",
            "AGENTS_AGENTRUN_RETENTION_ZERO_TTL_MAX_SECONDS": "90",
        }
    )
    assert config.retention.max_deletes_per_namespace == 7
    assert retention_seconds(run("z", ttl=0), config) == 90
    assert Settings().retention.max_deletes_per_namespace == 50
    assert Settings().retention.zero_ttl_max_seconds == 0  # 0.9.1 users keep their ttl-0 runs

"""A wrongly typed allow-list restricts to nothing: garbage never widens what an Agent allows (found while
fixing the fuzzer's crashes: reading such a field as absent would have meant "no restriction")."""

from __future__ import annotations

from typing import Any

import pytest

from jangar.api.shape import allow_list
from tests.unit.fuzz.harness import exercise
from tests.unit.fuzz.strategies import base_spec


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ([], None), ("", None), (["a", 1, "b"], ["a", "b"]), (("a",), ["a"]), (5, []), ("a", [])],
)
def test_allow_list(value: Any, expected: list[str] | None) -> None:
    assert allow_list(value) == expected


@pytest.mark.parametrize(
    ("field", "reason"),
    [("allowedSecrets", "SecretNotAllowed"), ("allowedServiceAccounts", "ServiceAccountNotAllowed")],
)
@pytest.mark.parametrize("garbage", [5, "runner", {"a": 1}, True])
def test_a_garbage_allow_list_on_the_agent_rejects_the_run(field: str, reason: str, garbage: Any) -> None:
    spec = base_spec("Agent")
    spec["security"][field] = garbage
    out = exercise("Agent", spec)
    run_status = next(s for owner, s in out.statuses if owner == "AgentRun")
    assert run_status["phase"] == "Failed"
    reasons = {c["reason"] for c in run_status["conditions"] if c["type"] == "InvalidSpec"}
    assert reasons and reasons <= {reason, "SecretNotAllowed", "ServiceAccountNotAllowed"}, run_status

"""The shared test support (tests/support): `eventually`, the CRD manifests, and tiers from folders."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from jangar.api import registry
from tests.support import SERVICE_MONITOR_CRD, crd_manifests, eventually, tier_of
from tests.support.tiers import TESTS_DIR


async def test_eventually_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert await eventually(lambda: next(counter) >= 3 and "done", timeout=2, interval=0.001) == "done"


async def test_eventually_awaits_a_coroutine_function() -> None:
    calls: list[int] = []

    async def check() -> list[int] | None:
        calls.append(1)
        return calls if len(calls) == 2 else None

    assert await eventually(check, timeout=2, interval=0.001) == [1, 1]


async def test_eventually_fails_with_what_and_the_last_value() -> None:
    with pytest.raises(
        AssertionError, match=r"timed out after 0.05s .* waiting for the answer; last value: 0$"
    ):
        await eventually(lambda: 0, timeout=0.05, interval=0.01, what="the answer")


async def test_eventually_names_a_lambda_by_its_source() -> None:
    with pytest.raises(AssertionError, match=r"lambda: \[\]"):
        await eventually(lambda: [], timeout=0.01, interval=0.005)


async def test_eventually_retries_ignored_exceptions_and_reports_the_last() -> None:
    def check() -> bool:
        raise LookupError("not yet")

    with pytest.raises(AssertionError, match=r"last exception: LookupError\('not yet'\)") as caught:
        await eventually(check, timeout=0.05, interval=0.01, ignoring=(LookupError,))
    assert isinstance(caught.value.__cause__, LookupError)


async def test_eventually_propagates_other_exceptions_at_once() -> None:
    attempts: list[int] = []

    def check() -> bool:
        attempts.append(1)
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        await eventually(check, timeout=5, interval=0.01, ignoring=(LookupError,))
    assert len(attempts) == 1


def test_crd_manifests_are_every_kind_and_the_stand_ins() -> None:
    names = [doc["metadata"]["name"] for doc in crd_manifests()]
    assert sorted(names[:-1]) == sorted(info.crd_name for info in registry.KINDS)
    assert names[-1] == SERVICE_MONITOR_CRD["metadata"]["name"]
    assert len(crd_manifests(stand_ins=False)) == len(registry.KINDS)


@pytest.mark.parametrize(
    ("relative", "tier"),
    [
        ("unit/support/test_support.py", "unit"),
        ("unit/test_top.py", "unit"),
        ("db/test_storage_outage.py", "db"),
        ("chart/test_chart_env.py", "chart"),
        ("envtest/test_crds.py", "envtest"),
        ("kwok/test_kwok_job.py", "kwok"),
        ("node/test_node_jobs.py", "node"),
        ("support/test_x.py", None),
        ("test_top_level.py", None),
    ],
)
def test_tier_is_the_folder(relative: str, tier: str | None) -> None:
    assert tier_of(TESTS_DIR / relative) == tier


def test_a_file_outside_tests_has_no_tier(tmp_path: Path) -> None:
    assert tier_of(tmp_path / "unit" / "test_x.py") is None


def test_this_file_is_marked_unit(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("envtest") is None

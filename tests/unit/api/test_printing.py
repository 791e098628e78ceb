"""`jangar.api.printing`: every kind resolves by each of its names, printer columns evaluate on objects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jangar.api.printing import age, header, kind_names, resolve_kind, row
from jangar.api.registry import KINDS

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_every_kind_resolves_by_every_name_in_any_case() -> None:
    assert len(KINDS) == 19
    for info in KINDS:
        for name in (info.kind, *kind_names(info), info.plural.upper()):
            assert resolve_kind(name) is info
    with pytest.raises(KeyError):
        resolve_kind("pods")


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (59, "59s"), (61, "1m"), (7200, "2h"), (3 * 86400 + 5, "3d")]
)
def test_age(seconds: int, shown: str) -> None:
    then = datetime.fromtimestamp(NOW.timestamp() - seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert age(then, NOW) == shown


def test_memory_row_from_its_printer_columns() -> None:
    info = resolve_kind("mem")
    obj = {
        "metadata": {"name": "m", "creationTimestamp": "2026-06-01T11:55:00Z"},
        "spec": {"type": "postgres", "default": True},
        "status": {
            "conditions": [
                {"type": "InvalidSpec", "status": "False", "reason": "Valid"},
                {"type": "Ready", "status": "True", "reason": "SecretResolved", "message": "postgres ..."},
            ]
        },
    }
    assert header(info) == ["NAME", "READY", "TYPE", "DEFAULT", "REASON", "AGE"]
    assert row(info, obj, now=NOW) == ["m", "True", "postgres", "true", "SecretResolved", "5m"]
    assert header(info, wide=True)[-1] == "MESSAGE"
    assert row(info, obj, wide=True, now=NOW)[-1] == "postgres ..."
    # nothing reconciled yet
    bare = {"metadata": {"name": "n"}, "spec": {"type": "redis"}}
    assert row(info, bare, now=NOW) == ["n", "<none>", "redis", "<none>", "<none>", ""]

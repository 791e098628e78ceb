"""A test's tier is the folder it lives in.

| folder | tier | needs |
|---|---|---|
| `tests/unit/**` | unit | nothing but pip |
| `tests/db/` | db | a real Postgres |
| `tests/chart/` | chart | helm |
| `tests/envtest/` | envtest | etcd + kube-apiserver |
| `tests/kwok/` | kwok | + kube-controller-manager, kube-scheduler, kwok |
| `tests/node/` | node | + a real node: kubelet, containerd, runc, CNI plugins, umoci, busybox; root |

`tests/conftest.py` adds the tier's marker to every test it collects (so `-m envtest` selects by folder)
and refuses, at collection, a tier marker that names another tier and a test file outside these folders.
One file has one tier: the most demanding environment it needs. A test of any tier may also use the
Postgres fixtures (`database_url`) and `helm_bin` / `kubectl_bin`; it still belongs to its folder's tier.
"""

from __future__ import annotations

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
# The tiers with a marker of their own besides `unit`, in the order the CI guard reports them.
TIERS: tuple[str, ...] = ("db", "chart", "envtest", "kwok", "node")
TIER_FOLDERS: dict[str, str] = {"unit": "unit", **{tier: tier for tier in TIERS}}
ALL_TIERS: tuple[str, ...] = ("unit", *TIERS)


def tier_of(path: Path) -> str | None:
    """The tier of a test file from its folder under `tests/`, or None when it lies outside them."""
    try:
        parts = path.resolve().relative_to(TESTS_DIR).parts
    except ValueError:
        return None
    return TIER_FOLDERS.get(parts[0]) if len(parts) > 1 else None

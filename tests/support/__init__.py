"""Test support shared by every tier: one way to wait (`eventually`), one CRD installer (`install_crds`),
and the rule that a test's tier is its folder (`tier_of`).

Fixtures live in `tests/conftest.py`; this package holds the plain functions they and the tests use.
"""

from tests.support.crds import CRD_DIR, SERVICE_MONITOR_CRD, crd_manifests, install_crds
from tests.support.tiers import ALL_TIERS, TIER_FOLDERS, TIERS, tier_of
from tests.support.waiting import eventually

__all__ = [
    "ALL_TIERS",
    "CRD_DIR",
    "SERVICE_MONITOR_CRD",
    "TIERS",
    "TIER_FOLDERS",
    "crd_manifests",
    "eventually",
    "install_crds",
    "tier_of",
]

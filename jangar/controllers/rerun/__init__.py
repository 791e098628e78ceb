"""Reruns and system-improvement runs (reference §6.10): `decide` (pure) and the `rerun` controller."""

from jangar.controllers.rerun.decide import BACKOFF_SECONDS, MAX_ATTEMPTS, RerunConfig, RerunPlan, decide
from jangar.controllers.rerun.reconciler import RerunReconciler, install_reruns, rerun_config

__all__ = [
    "BACKOFF_SECONDS",
    "MAX_ATTEMPTS",
    "RerunConfig",
    "RerunPlan",
    "RerunReconciler",
    "decide",
    "install_reruns",
    "rerun_config",
]

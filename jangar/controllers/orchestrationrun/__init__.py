"""The OrchestrationRun controller: `snapshot` (what a decision reads), `decide` (the pure decision), `plan`
(its output), `apply` (the writes, in a crash-safe order) and `reconciler` (the shell tying them together)."""

from jangar.controllers.orchestrationrun.reconciler import OrchestrationRunReconciler

__all__ = ["OrchestrationRunReconciler"]

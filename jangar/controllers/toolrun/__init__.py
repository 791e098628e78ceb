"""The ToolRun controller: `snapshot` (what a decision reads), `decide` (the pure decision), `plan` (its
output), `apply` (the writes, in a crash-safe order), `reconciler` (the shell) and `wiring` (cache scopes,
indexes and watches, called by `jangar.controllers.setup.install`)."""

from jangar.controllers.toolrun.reconciler import ToolRunReconciler

__all__ = ["ToolRunReconciler"]

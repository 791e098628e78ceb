"""The Schedule controller: `snapshot` (what a decision reads), `decide` (the pure decision), `plan` (its
output), `apply` (the writes), `reconciler` (the shell) and `wiring` (cache scopes, indexes and watches,
called by `jangar.controllers.setup.install`). The run a tick creates is made by `jangar schedule fire`
(`jangar.services.schedules`), in the CronJob's pod."""

from jangar.controllers.schedule.reconciler import ScheduleReconciler

__all__ = ["ScheduleReconciler"]

"""What the Schedule controller counts: ticks that fired, failed, were missed or skipped.

A tick fires in the CronJob's short-lived pod (`jangar schedule fire`), whose own metrics nobody scrapes, so
the controller counts what it *observes* (`observe_fires`, pure, table-tested), and the applier's caller
records it once the pass succeeded:

* `created`: a tick's run appeared (`status.lastRun` moves to a newer run). Counted once: the pass that
  sees it writes the new `lastRun`, so the next pass (or another process after a restart) does not see it
  as new;
* `failed`: the CronJob scheduled a tick (`lastScheduleTime`) whose Job is no longer active, did not
  succeed (`lastSuccessfulTime` older) and left no run for that tick. Counted once per tick per process;
* missed ticks: cron ticks strictly between the previous run's tick (or the last resume) and the new run's
  tick, when the new run shows up; nothing created a run for them (the CronJob controller was down or
  late past `startingDeadlineSeconds`, `concurrencyPolicy: Forbid`, a failed fire);
* skipped ticks: cron ticks that passed while the Schedule was suspended, counted when it is resumed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from jangar.conditions import find_condition, parse_time
from jangar.controllers.schedule.decide import PHASE_ACTIVE, PHASE_SUSPENDED, last_run
from jangar.controllers.schedule.snapshot import ScheduleSnapshot
from jangar.scheduler.schedules import next_run_time

__all__ = ["MAX_COUNTED_TICKS", "FireObservation", "ScheduleMetrics", "count_ticks", "observe_fires"]

MAX_COUNTED_TICKS = 10_000
"""A bound on the ticks counted in one gap (a `* * * * *` Schedule suspended for a week is 10080)."""


@dataclass(frozen=True)
class FireObservation:
    #: the newest tick's run, when this pass is the first to see it ({kind, name, namespace, scheduledTime})
    fired: Mapping[str, Any] | None = None
    #: the newest tick that created a run (the last fire time)
    last_fire: datetime | None = None
    #: the CronJob's tick whose Job ended without success and without a run
    failed_tick: datetime | None = None
    missed: int = 0
    skipped: int = 0


def count_ticks(cron: str, tz: str | None, after: datetime, before: datetime, *, inclusive: bool) -> int:
    """Cron ticks t with `after < t < before` (`<= before` when `inclusive`), at most MAX_COUNTED_TICKS."""
    count, moment = 0, after
    while count < MAX_COUNTED_TICKS:
        moment = next_run_time(cron, tz, moment)
        if moment > before or (moment == before and not inclusive):
            break
        count += 1
    return count


def _transition(status: Mapping[str, Any], type_: str, value: str) -> datetime | None:
    cond = find_condition(status.get("conditions"), type_)
    if cond is None or cond.get("status") != value:
        return None
    return parse_time(cond.get("lastTransitionTime"))


def observe_fires(snap: ScheduleSnapshot, new_phase: str | None) -> FireObservation:
    """What this pass sees of the Schedule's ticks (see the module docstring); `new_phase` is the plan's."""
    old = snap.schedule.get("status") or {}
    spec = snap.schedule.get("spec") or {}
    cron, tz = str(spec.get("cron") or ""), spec.get("timezone")
    run = last_run(snap)
    last_fire = parse_time(run["scheduledTime"]) if run else None
    old_run = old.get("lastRun") or {}
    fired = run if run is not None and run["name"] != old_run.get("name") else None
    missed = skipped = 0
    try:
        old_tick = parse_time(old_run.get("scheduledTime"))
        if fired is not None and old_tick is not None and last_fire is not None and last_fire > old_tick:
            resumed = _transition(old, "Suspended", "False")
            start = max(old_tick, resumed) if resumed is not None else old_tick
            missed = count_ticks(cron, tz, start, last_fire, inclusive=False) if start < last_fire else 0
        if old.get("phase") == PHASE_SUSPENDED and new_phase == PHASE_ACTIVE:
            since = _transition(old, "Suspended", "True")
            if since is not None and since < snap.now:
                skipped = count_ticks(cron, tz, since, snap.now, inclusive=True)
    except (ValueError, KeyError, ArithmeticError):  # an expression the cron library rejects
        missed = skipped = 0
    return FireObservation(fired, last_fire, _failed_tick(snap, last_fire), missed, skipped)


def _failed_tick(snap: ScheduleSnapshot, last_fire: datetime | None) -> datetime | None:
    cron_status = (snap.cronjob or {}).get("status") or {}
    scheduled = parse_time(cron_status.get("lastScheduleTime"))
    if scheduled is None or cron_status.get("active"):
        return None
    succeeded = parse_time(cron_status.get("lastSuccessfulTime"))
    if succeeded is not None and succeeded >= scheduled:
        return None
    if last_fire is not None and last_fire >= scheduled.replace(second=0, microsecond=0):
        return None
    return scheduled


class ScheduleMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.fires = Counter(
            "jangar_schedule_fires_total",
            "Schedule ticks observed by the controller, by result (created: the tick's run appeared; "
            "failed: the CronJob's Job ended without creating it).",
            ["namespace", "result"],
            registry=registry,
        )
        self.last_fire = Gauge(
            "jangar_schedule_last_fire_timestamp_seconds",
            "The scheduled time of the newest run a Schedule's tick created (Unix seconds).",
            ["namespace", "schedule"],
            registry=registry,
        )
        self.skipped = Counter(
            "jangar_schedule_skipped_ticks_total",
            "Schedule ticks that created no run, by reason (missed: not fired; suspended: spec.suspend).",
            ["namespace", "reason"],
            registry=registry,
        )
        self._failed: dict[tuple[str, str], datetime] = {}

    def record(self, namespace: str, name: str, obs: FireObservation) -> None:
        if obs.fired is not None:
            self.fires.labels(namespace, "created").inc()
        if obs.failed_tick is not None and self._failed.get((namespace, name)) != obs.failed_tick:
            self._failed[(namespace, name)] = obs.failed_tick
            self.fires.labels(namespace, "failed").inc()
        if obs.missed:
            self.skipped.labels(namespace, "missed").inc(obs.missed)
        if obs.skipped:
            self.skipped.labels(namespace, "suspended").inc(obs.skipped)
        if obs.last_fire is not None:
            self.last_fire.labels(namespace, name).set(obs.last_fire.timestamp())

    def forget(self, namespace: str, name: str) -> None:
        """The Schedule is gone: drop its per-Schedule series."""
        self._failed.pop((namespace, name), None)
        with contextlib.suppress(KeyError):  # never recorded
            self.last_fire.remove(namespace, name)

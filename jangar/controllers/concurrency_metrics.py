"""`jangar_active_concurrency` (0.9.29: `agents_active_concurrency`): the AgentRuns holding capacity now.

Computed at scrape time from the admission gate's own view (the cache snapshot plus this process's
reservations), so the gauge is exactly what admission counts against the concurrency limits: admitted or
Running runs that have not finished. A gauge kept by hand would have to follow every status write,
deletion and relist; this one cannot drift. One series per namespace that has any; `sum()` is the cluster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jangar.admission import RunRecord

__all__ = ["ACTIVE_CONCURRENCY", "ActiveConcurrency", "active_per_namespace"]

ACTIVE_CONCURRENCY = "jangar_active_concurrency"


def active_per_namespace(records: Sequence[RunRecord]) -> dict[str, int]:
    """How many runs hold capacity, per namespace (the records as admission sees them)."""
    return dict(Counter(r.namespace for r in records if r.active))


class ActiveConcurrency(Collector):
    """Yields the gauge from `records()` (the gate's snapshot with reservations) at each scrape."""

    def __init__(self, records: Callable[[], Sequence[RunRecord]], clock: Callable[[], datetime]) -> None:
        self._records = records
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            ACTIVE_CONCURRENCY,
            "AgentRuns holding admission capacity (admitted or Running, not finished), per namespace.",
            labels=["namespace"],
        )
        for namespace, count in sorted(active_per_namespace(self._records()).items()):
            family.add_metric([namespace], count)
        yield family

    def describe(self) -> list[GaugeMetricFamily]:
        return []

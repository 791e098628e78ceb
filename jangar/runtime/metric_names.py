"""The second generation's metric names (`agents_*`) for every `jangar_*` family, computed at scrape time.

Chart 0.9.1 names jangar's metrics `jangar_*`; chart 0.9.29 renamed them `agents_*` and its dashboard queries
those. Rather than registering every metric twice (two counters to keep in step, twice the bookkeeping on
the hot path), :class:`TwinNames` is a read-only view of a registry for the exposition: it yields each
family as registered and, for those whose name starts with ``jangar_``, a copy under ``agents_`` with the
same samples, HELP, TYPE and unit. A counter keeps its ``_total`` suffix because only the prefix changes.
A family already registered under an ``agents_`` name wins over a twin of the same name.

`JANGAR_METRICS_AGENTS_NAMES=false` turns the twins off (half the series, for a cluster whose dashboards
use only the 0.9.1 names).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

__all__ = ["SOURCE_PREFIX", "TWIN_PREFIX", "TwinNames", "twin_name"]

SOURCE_PREFIX = "jangar_"
"""The 0.9.1 prefix jangar registers its own metrics under."""
TWIN_PREFIX = "agents_"
"""The 0.9.29 prefix the twins are exposed under."""


def twin_name(name: str) -> str | None:
    """The 0.9.29 name of a 0.9.1 metric or sample name; None when it is not a `jangar_` name."""
    if not name.startswith(SOURCE_PREFIX):
        return None
    return TWIN_PREFIX + name[len(SOURCE_PREFIX) :]


def _twin(family: Metric, name: str) -> Metric:
    twin = Metric(name, family.documentation, family.type, family.unit)
    twin.samples = [s._replace(name=twin_name(s.name) or s.name) for s in family.samples]
    return twin


class TwinNames:
    """What `/metrics` exposes: `registry`'s families, plus their `agents_` twins when `enabled`."""

    def __init__(self, registry: CollectorRegistry, *, enabled: bool = True) -> None:
        self.registry = registry
        self.enabled = enabled

    def collect(self) -> Iterator[Metric]:
        families = list(self.registry.collect())
        yield from families
        if not self.enabled:
            return
        registered = {f.name for f in families}
        for family in families:
            name = twin_name(family.name)
            if name is not None and name not in registered:
                yield _twin(family, name)

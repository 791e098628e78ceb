"""Cache indexes and event mappers of the orchestration controllers: an event wakes only its dependents.

* children of an OrchestrationRun (AgentRuns, ToolRuns, OrchestrationRuns) by the
  `jangar.proompteng.ai/orchestration-run` label, so a run's snapshot reads its children without a sweep;
* SignalDeliveries by `<namespace>/<signalRef.name>` and by `<namespace>/<deliveryId>`;
* OrchestrationRuns by what a waiting step waits for (`<namespace>/signal/<name>`,
  `<namespace>/delivery/<id>`, `<namespace>/policy/<name>`, from the step statuses' `waitingFor`), so a
  delivery (or an ApprovalPolicy change) wakes exactly the runs waiting for it, never by listing;
* unfinished OrchestrationRuns by their Orchestration, so a run created before its Orchestration starts
  the moment the Orchestration appears;
* Orchestrations by the objects their steps reference (`<Kind>/<namespace>/<name>`), so a definition that
  names a missing Agent or Tool turns Ready once it is created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jangar.api.contract import LABEL_ORCHESTRATION_RUN, is_terminal
from jangar.api.refs import ORCHESTRATIONRUNS, ORCHESTRATIONS, SIGNALDELIVERIES, TOOLRUNS
from jangar.controllers.kinds import AGENTRUNS
from jangar.runtime import CacheReader, JsonObject, Request, ResourceRef
from jangar.runtime.cache import Cache
from jangar.runtime.store import index_by_label
from jangar.scheduler.orchestration import orchestration_steps, referenced_objects

__all__ = [
    "CHILD_KINDS",
    "DELIVERY_ID",
    "DELIVERY_SIGNAL",
    "ORCHESTRATION_REFERENCES",
    "RUN_CHILDREN",
    "RUN_ORCHESTRATION",
    "RUN_WAITING",
    "install_orchestration_indexes",
    "orchestrations_referencing",
    "runs_for_orchestration",
    "runs_waiting_for_delivery",
    "runs_waiting_for_policy",
    "waiting_keys",
]

RUN_CHILDREN = "orchestration-run-children"
DELIVERY_SIGNAL = "signaldelivery-signal"
DELIVERY_ID = "signaldelivery-delivery-id"
RUN_WAITING = "orchestrationrun-waiting"
RUN_ORCHESTRATION = "orchestrationrun-orchestration"
ORCHESTRATION_REFERENCES = "orchestration-references"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _ns(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("namespace") or "")


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


CHILD_KINDS: tuple[ResourceRef, ...] = (AGENTRUNS, TOOLRUNS, ORCHESTRATIONRUNS)
"""The kinds an OrchestrationRun creates as step children."""


def delivery_signal(delivery: JsonObject) -> list[str]:
    ref = _spec(delivery).get("signalRef")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return [f"{_ns(delivery)}/{name}"] if isinstance(name, str) and name else []


def delivery_id(delivery: JsonObject) -> list[str]:
    value = _spec(delivery).get("deliveryId")
    return [f"{_ns(delivery)}/{value}"] if isinstance(value, str) and value else []


def waiting_keys(run: Mapping[str, Any]) -> list[str]:
    """What the run's waiting steps wait for (from `status.stepStatuses[].waitingFor`)."""
    ns = _ns(run)
    status = run.get("status") or {}
    if is_terminal(status.get("phase")):
        return []
    keys: set[str] = set()
    for entry in status.get("stepStatuses") or ():
        if not isinstance(entry, Mapping) or entry.get("phase") != "Running":
            continue
        waiting = entry.get("waitingFor")
        if not isinstance(waiting, Mapping):
            continue
        for field, prefix in (("signal", "signal"), ("deliveryId", "delivery"), ("policy", "policy")):
            value = waiting.get(field)
            if isinstance(value, str) and value:
                keys.add(f"{ns}/{prefix}/{value}")
    return sorted(keys)


def run_orchestration(run: JsonObject) -> list[str]:
    if is_terminal((run.get("status") or {}).get("phase")):
        return []
    ref = _spec(run).get("orchestrationRef")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return [f"{_ns(run)}/{name}"] if isinstance(name, str) and name else []


def orchestration_references(orchestration: JsonObject) -> list[str]:
    ns = _ns(orchestration)
    return sorted(
        {
            f"{kind}/{ns}/{name}"
            for s in orchestration_steps(_spec(orchestration))
            for kind, name in referenced_objects(s)
        }
    )


def install_orchestration_indexes(cache: Cache) -> None:
    """Add the indexes (once per cache, before it starts)."""
    for ref in CHILD_KINDS:
        cache.add_index(ref, RUN_CHILDREN, index_by_label(LABEL_ORCHESTRATION_RUN))
    cache.add_index(SIGNALDELIVERIES, DELIVERY_SIGNAL, delivery_signal)
    cache.add_index(SIGNALDELIVERIES, DELIVERY_ID, delivery_id)
    cache.add_index(ORCHESTRATIONRUNS, RUN_WAITING, waiting_keys)
    cache.add_index(ORCHESTRATIONRUNS, RUN_ORCHESTRATION, run_orchestration)
    cache.add_index(ORCHESTRATIONS, ORCHESTRATION_REFERENCES, orchestration_references)


def _requests(objs: Iterable[Mapping[str, Any]]) -> list[Request]:
    return sorted({Request(_ns(o) or None, str(_meta(o).get("name"))) for o in objs})


def runs_waiting_for_delivery(cache: CacheReader) -> Callable[[JsonObject], list[Request]]:
    """Mapper: a SignalDelivery → the runs with a step waiting for its signal or its deliveryId."""

    def mapper(delivery: JsonObject) -> list[Request]:
        ns = _ns(delivery)
        keys = [f"{ns}/signal/{k.split('/', 1)[1]}" for k in delivery_signal(delivery)]
        keys += [f"{ns}/delivery/{k.split('/', 1)[1]}" for k in delivery_id(delivery)]
        runs: list[Mapping[str, Any]] = []
        for key in keys:
            runs += cache.list(ORCHESTRATIONRUNS, ns, index=(RUN_WAITING, key), copy=False)
        return _requests(runs)

    return mapper


def runs_waiting_for_policy(cache: CacheReader) -> Callable[[JsonObject], list[Request]]:
    """Mapper: an ApprovalPolicy → the runs with a gate waiting under it (a new timeout or default)."""

    def mapper(policy: JsonObject) -> list[Request]:
        ns = _ns(policy)
        key = f"{ns}/policy/{_meta(policy).get('name')}"
        return _requests(cache.list(ORCHESTRATIONRUNS, ns, index=(RUN_WAITING, key), copy=False))

    return mapper


def runs_for_orchestration(cache: CacheReader) -> Callable[[JsonObject], list[Request]]:
    """Mapper: an Orchestration → its unfinished runs (one held for it starts when it appears)."""

    def mapper(orchestration: JsonObject) -> list[Request]:
        ns = _ns(orchestration)
        key = f"{ns}/{_meta(orchestration).get('name')}"
        return _requests(cache.list(ORCHESTRATIONRUNS, ns, index=(RUN_ORCHESTRATION, key), copy=False))

    return mapper


def orchestrations_referencing(cache: CacheReader, kind: str) -> Callable[[JsonObject], list[Request]]:
    """Mapper: an object of `kind` → the Orchestrations whose steps name it."""

    def mapper(obj: JsonObject) -> list[Request]:
        ns = _ns(obj)
        key = f"{kind}/{ns}/{_meta(obj).get('name')}"
        return _requests(cache.list(ORCHESTRATIONS, ns, index=(ORCHESTRATION_REFERENCES, key), copy=False))

    return mapper

#!/usr/bin/env python3
"""Admission pass cost against the number of retained (finished) AgentRuns (issue 12 §3, issue 14 §3).

One "pass" is what a worker does for one run that asks for admission: `AdmissionGate.admit(run)` — the
snapshot (unfinished runs, through the informer-maintained `agentrun-admission` index), the ledger's
reservations, the rate window and `decide()` — on a cache holding:

* `retained` finished runs (Succeeded, admitted long ago; 30 days of them are kept by default),
* 1,000 queued runs spread over 10 namespaces, and 10 Running runs per namespace filling the concurrency limit
  (so every pass decides over the full queue and admits nothing).

The cache is the runtime's real `Store` (via `FakeCache`, which uses it with the same indexes); no API
server. For contrast, the same pass over a full walk of the cache (the snapshot as it was before: every
cached AgentRun, finished ones included) is timed too ("walk"). Wall and CPU milliseconds are printed; on a
shared machine the CPU column is the steadier one.

    PYTHONPATH=. .venv/bin/python scripts/bench/admission_bench.py [--passes 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from jangar.admission import AdmissionLimits, decide
from jangar.admission.snapshot import run_record
from jangar.controllers.admission_gate import AdmissionGate
from jangar.controllers.kinds import AGENTRUNS, JOBS
from jangar.runtime.testing import FakeCache

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NAMESPACES = 10
QUEUED = 1000
RUNNING_PER_NS = 10


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(ns: str, name: str, created: datetime, phase: str, admitted: datetime | None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if admitted is not None:
        status["queue"] = {"admittedAt": _ts(admitted)}
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"{ns}-{name}",
            "resourceVersion": "1",
            "creationTimestamp": _ts(created),
        },
        "spec": {"agentRef": {"name": "coder"}, "parameters": {"repo": f"acme/{name[-1]}"}},
        "status": status,
    }


def build(retained: int) -> tuple[FakeCache, list[dict[str, Any]]]:
    cache = FakeCache()
    cache.register(JOBS)
    old = NOW - timedelta(days=10)
    for i in range(retained):
        ns = f"ns-{i % NAMESPACES}"
        cache.add(AGENTRUNS, _run(ns, f"done-{i}", old, "Succeeded", old + timedelta(seconds=1)))
    for n in range(NAMESPACES):
        for i in range(RUNNING_PER_NS):
            at = NOW - timedelta(hours=2)
            cache.add(AGENTRUNS, _run(f"ns-{n}", f"running-{i}", at, "Running", at))
    queued = []
    for i in range(QUEUED):
        run = _run(f"ns-{i % NAMESPACES}", f"queued-{i}", NOW - timedelta(minutes=30), "Queued", None)
        cache.add(AGENTRUNS, run)
        queued.append(run)
    return cache, queued


LIMITS = AdmissionLimits(per_namespace=RUNNING_PER_NS, per_agent=0, cluster=0, queue_per_namespace=0)


def _timed(fn: Any, passes: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds per call (CPU time is what a loaded machine distorts least)."""
    wall, cpu = [], []
    for i in range(passes):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn(i)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return wall, cpu


def measure(retained: int, passes: int) -> dict[str, Any]:
    cache, queued = build(retained)
    gate = AdmissionGate(cache, LIMITS, clock=lambda: NOW)
    started = time.perf_counter()
    gate.admit(queued[0])  # the one-time prime of the rate window (a walk, once per process)
    prime_ms = (time.perf_counter() - started) * 1000

    def pass_(i: int) -> None:
        verdict = gate.admit(queued[(i * 37) % QUEUED])
        assert verdict is not None and not hasattr(verdict, "admitted_at"), verdict

    def walk(i: int) -> None:  # the previous snapshot: every cached AgentRun, finished ones included
        records = [r for o in cache.list(AGENTRUNS, copy=False) if (r := run_record(cache, o, lambda: NOW))]
        decide(records, LIMITS, NOW)

    now_ms, now_cpu = _timed(pass_, passes)
    walk_ms, walk_cpu = _timed(walk, max(3, passes // 5))
    return {
        "retained": retained,
        "queued": QUEUED,
        "pass_ms_p50": round(statistics.median(now_ms), 2),
        "pass_ms_p95": round(sorted(now_ms)[int(len(now_ms) * 0.95) - 1], 2),
        "pass_cpu_ms_p50": round(statistics.median(now_cpu), 2),
        "walk_ms_p50": round(statistics.median(walk_ms), 2),
        "walk_cpu_ms_p50": round(statistics.median(walk_cpu), 2),
        "prime_ms": round(prime_ms, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--retained", type=int, nargs="*", default=[0, 1000, 10_000])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [measure(r, args.passes) for r in args.retained]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"admission pass cost, {QUEUED} queued + {NAMESPACES * RUNNING_PER_NS} running, {args.passes} passes"
    )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    header = (
        "retained",
        "pass p50 ms",
        "pass p95 ms",
        "pass CPU p50",
        "walk p50 ms",
        "walk CPU p50",
        "prime ms",
    )
    print(" ".join(f"{h:>12}" for h in header))
    for r in rows:
        cells = (
            "retained",
            "pass_ms_p50",
            "pass_ms_p95",
            "pass_cpu_ms_p50",
            "walk_ms_p50",
            "walk_cpu_ms_p50",
        )
        print(" ".join(f"{r[c]:>12}" for c in (*cells, "prime_ms")))


if __name__ == "__main__":
    main()

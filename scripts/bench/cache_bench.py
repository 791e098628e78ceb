#!/usr/bin/env python3
"""Resident memory per 10,000 cached AgentRuns, Jobs and Pods, with jangar's cache transforms (issue 14 §4).

Starts a fresh local API server (no controllers, so the objects stay exactly as created), installs the
CRDs, creates N AgentRuns (job runtime), N runner-shaped Jobs (the pod template of a real runner Job:
env, mounts, volumes, resources; suspended so nothing runs) and N Pods of the same shape, then, in a
fresh process per (kind, transform), syncs one informer and reports the growth of VmRSS after a GC.
Transforms: `none` (everything kept), `managedFields` (the runtime default), `lean` (the Job/Pod
transforms of `jangar.controllers.lean_cache`, what `jangar serve` uses). Page sizes: the reflector's
`ReflectorOptions.page_size`; `0` is the whole list in one response (the reflector before paging), `500`
the default (each page transformed before the next is read). Both are measured on the same server.

Usage::

    .venv/bin/python scripts/bench/cache_bench.py --objects 10000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from jangar.api.contract import LABEL_RUN  # noqa: E402
from jangar.controllers.kinds import AGENTRUNS, JOBS, PODS  # noqa: E402
from jangar.controllers.lean_cache import lean_job, lean_pod  # noqa: E402
from jangar.runtime import Client, SharedInformer, configure_logging, strip_managed_fields  # noqa: E402
from jangar.runtime.reflector import ReflectorOptions  # noqa: E402
from jangar.runtime.resources import NAMESPACES, SERVICE_ACCOUNTS  # noqa: E402

KINDS = {"agentruns": AGENTRUNS, "jobs": JOBS, "pods": PODS}
TRANSFORMS: dict[str, dict[str, Any]] = {
    "none": {"agentruns": None, "jobs": None, "pods": None},
    "managedFields": {
        "agentruns": strip_managed_fields,
        "jobs": strip_managed_fields,
        "pods": strip_managed_fields,
    },
    "lean": {"agentruns": strip_managed_fields, "jobs": lean_job, "pods": lean_pod},
}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes of `obj` and everything it holds (`sys.getsizeof`), each object counted once across calls:
    what caching it costs beyond objects already counted (interned strings, small ints, shared values)."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple):
        size += sum(deep_size(v, seen) for v in obj)
    return size


BREAKDOWN_DEPTH = 4


def breakdown(objects: list[dict[str, Any]]) -> dict[str, float]:
    """Bytes per cached object by field path (down to `BREAKDOWN_DEPTH` keys; deeper content is charged to
    its ancestor at that depth), largest first. `(containers)` = the dicts and lists themselves."""
    seen: set[int] = set()
    totals: dict[str, int] = {}

    def walk(node: dict[str, Any], path: str, depth: int) -> int:
        own = sys.getsizeof(node)
        seen.add(id(node))
        for key, value in node.items():
            own += deep_size(key, seen)
            sub = f"{path}.{key}" if path else key
            if isinstance(value, dict) and depth < BREAKDOWN_DEPTH and id(value) not in seen:
                walk(value, sub, depth + 1)
            else:
                totals[sub] = totals.get(sub, 0) + deep_size(value, seen)
        totals[f"{path or '.'} (container)"] = totals.get(f"{path or '.'} (container)", 0) + own
        return own

    for obj in objects:
        walk(obj, "", 1)
    n = max(len(objects), 1)
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    return {"_total_bytes_per_object": round(sum(totals.values()) / n, 1)} | {
        k: round(v / n, 1) for k, v in ranked if v / n >= 16
    }


def pod_spec(name: str) -> dict[str, Any]:
    """The shape of a runner pod (see `jangar.scheduler.job`): one container, env, mounts, volumes."""
    env = [{"name": f"JANGAR_VAR_{i}", "value": f"value-{i}-{name}"} for i in range(12)]
    env.append({"name": "JANGAR_RUN_SPEC", "value": "/workspace/spec/run.json"})
    return {
        "restartPolicy": "Never",
        "serviceAccountName": "default",
        "containers": [
            {
                "name": "runner",
                "image": "ghcr.io/proompteng/jangar-runner:bench",
                "command": ["/usr/local/bin/jangar-runner"],
                "args": ["--spec", "/workspace/spec/run.json"],
                "env": env,
                "volumeMounts": [
                    {"name": "run-spec", "mountPath": "/workspace/spec", "readOnly": True},
                    {"name": "workspace", "mountPath": "/workspace/repo"},
                ],
                "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 1000,
                    "allowPrivilegeEscalation": False,
                },
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "volumes": [
            {"name": "run-spec", "configMap": {"name": f"{name}-spec"}},
            {"name": "workspace", "emptyDir": {}},
        ],
    }


def agentrun(ns: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "agentRef": {"name": "coder"},
            "implementationSpecRef": {"name": "task"},
            "runtime": {"type": "job"},
            "parameters": {"prompt": "hello " * 20},
        },
    }


def job(ns: str, name: str, finished: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "labels": {LABEL_RUN: name}},
        "spec": {
            "suspend": not finished,
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 3600,
            "template": {"metadata": {"labels": {LABEL_RUN: name}}, "spec": pod_spec(name)},
        },
    }


def finished_job_status(i: int) -> dict[str, Any]:
    """What the Job controller writes when a one-Pod Job succeeds (Kubernetes 1.31+: SuccessCriteriaMet, then
    Complete), so the cached Jobs carry a finished Job's status, which a suspended Job does not have."""
    start, end = (
        f"2026-12-01T10:{i // 600 % 60:02d}:{i // 10 % 60:02d}Z",
        f"2026-12-01T11:{i // 600 % 60:02d}:{i % 60:02d}Z",
    )
    message = "Reached expected number of succeeded pods"
    return {
        "conditions": [
            {
                "type": kind,
                "status": "True",
                "reason": "CompletionsReached",
                "message": message,
                "lastProbeTime": end,
                "lastTransitionTime": end,
            }
            for kind in ("SuccessCriteriaMet", "Complete")
        ],
        "startTime": start,
        "completionTime": end,
        "succeeded": 1,
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }


def pod(ns: str, name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "labels": {LABEL_RUN: name}}, "spec": pod_spec(name)}


async def populate(
    kubeconfig: str, n: int, concurrency: int, kinds: list[str], finished: bool = False
) -> str:
    ns = "cache-bench"
    client = await Client.from_kubeconfig(kubeconfig, timeout=120, field_manager="bench")
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    await client.create(SERVICE_ACCOUNTS, {"metadata": {"name": "default", "namespace": ns}})
    sem = asyncio.Semaphore(concurrency)
    builders = {"agentruns": agentrun, "jobs": job, "pods": pod}

    async def create(kind: str, i: int) -> None:
        async with sem:
            name = f"r-{i:06d}"
            if kind == "jobs" and finished:
                await client.create(JOBS, job(ns, name, finished=True))
                await client.patch_status(JOBS, name, {"status": finished_job_status(i)}, namespace=ns)
                return
            await client.create(KINDS[kind], builders[kind](ns, name))

    for kind in kinds:
        t0 = time.monotonic()
        await asyncio.gather(*(create(kind, i) for i in range(n)))
        print(
            json.dumps({"created": kind, "objects": n, "seconds": round(time.monotonic() - t0, 1)}),
            flush=True,
        )
    await client.close()
    return ns


async def measure(
    kubeconfig: str, ns: str, kind: str, transform: str, page_size: int, with_breakdown: bool = False
) -> dict[str, Any]:
    client = await Client.from_kubeconfig(kubeconfig, timeout=120)
    await client.list_page(KINDS[kind], ns, limit=1)  # warm the connection and lazy imports
    gc.collect()
    before = rss_bytes()
    inf = SharedInformer(
        client,
        KINDS[kind],
        namespace=ns,
        resync_period=None,
        transform=TRANSFORMS[transform][kind],
        options=ReflectorOptions(page_size=page_size),
    )
    inf.start()
    await inf.wait_for_sync(600)
    gc.collect()
    after = rss_bytes()
    cached = len(inf.store)
    pages = inf.reflector.list_pages
    sizes = breakdown(inf.store.values()) if with_breakdown else None
    await inf.stop()
    await client.close()
    delta = after - before
    extra = {"bytes_per_object_by_field": sizes} if sizes is not None else {}
    return extra | {
        "kind": kind,
        "transform": transform,
        "page_size": page_size,
        "list_pages": pages,
        "objects": cached,
        "rss_delta_mib": round(delta / 2**20, 1),
        "rss_mib_per_10k": round(delta / 2**20 / cached * 10_000, 1) if cached else None,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "measure":
        _, _, kubeconfig, ns, kind, transform, page_size, with_breakdown = sys.argv
        configure_logging(json=True, level="warning")
        result = asyncio.run(measure(kubeconfig, ns, kind, transform, int(page_size), with_breakdown == "1"))
        print(json.dumps(result), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--create-concurrency", type=int, default=32)
    parser.add_argument("--transforms", nargs="+", default=list(TRANSFORMS))
    parser.add_argument("--page-sizes", nargs="+", type=int, default=[0, 500])
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    parser.add_argument(
        "--finished-jobs",
        action="store_true",
        help="Jobs not suspended and with a succeeded Job's status written (no Job controller runs here)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also print the bytes per cached object by field path (sys.getsizeof, recursive; "
        "measured after the RSS reading)",
    )
    args = parser.parse_args()
    configure_logging(json=True, level="warning")
    from jangar.dev.cluster import LocalCluster
    from tests.support.crds import install_crds

    print(
        json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(), "loadavg": os.getloadavg()}),
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="cache-bench-"))
    cluster = LocalCluster(workdir, kwok=False).up()
    try:
        install_crds(cluster.kubeconfig)
        ns = asyncio.run(
            populate(
                str(cluster.kubeconfig), args.objects, args.create_concurrency, args.kinds, args.finished_jobs
            )
        )
        for kind in args.kinds:
            for transform in args.transforms:
                if kind == "agentruns" and transform == "lean":
                    continue  # AgentRuns are cached whole (minus managedFields): reconcilers read all of them
                for page_size in args.page_sizes:
                    argv = [sys.executable, __file__, "measure", str(cluster.kubeconfig), ns, kind, transform]
                    out = subprocess.run(
                        [*argv, str(page_size), "1" if args.breakdown else "0"],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                    print(out.strip().splitlines()[-1], flush=True)
                    print(json.dumps({"loadavg": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    finally:
        cluster.down()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"loadavg_after": [round(x, 2) for x in os.getloadavg()]}), flush=True)


if __name__ == "__main__":
    main()

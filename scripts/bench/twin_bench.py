#!/usr/bin/env python3
"""The runtime side by side: jangar.runtime, its Go controller-runtime twin and the raw-client ceiling (issue 14 §5).

Prints numbers; it is not a timed test. For each implementation, in one run of this script, on a FRESH local
API server (kube-apiserver + etcd, no controllers; leftover objects would skew the next measurement):

1. create the `Widget` CRD of `runtime_bench.py` and N Widgets (~1 KiB spec each), with no controller running;
2. start the implementation as its own process and time, from an observer watch in this process, until every
   Widget has `status.observedGeneration == metadata.generation` (one status merge PATCH per object);
3. read the process's CPU (utime+stime) and peak RSS from /proc, then kill it.

Implementations (same reconcile everywhere: read the object from the cache, merge-patch `/status` when
`observedGeneration` is behind; `GenerationChanged` predicate; W concurrent reconciles):

* `jangar`: `jangar.runtime` (Manager + Builder), this script re-run as `jangar-controller`;
* `controller-runtime`: `scripts/bench/go/main.go` with sigs.k8s.io/controller-runtime (version pinned in
  `scripts/bench/go/go.mod`), reading the Widgets from its cache (`CacheOptions.Unstructured`; by default its
  client reads unstructured objects live), client QPS limits raised (jangar's client has none);
* `raw`: the same Go binary with client-go only: one paginated list, then W goroutines patching; no cache,
  no queue, no watch: what the API server accepts, the ceiling any controller can reach.

The Go binary is built from the Go module proxy at benchmark time into `~/.cache/jangar/bench/twin` (needs
`go` on PATH; nothing is committed but the source). The ratios printed at the end are what transfers: all
three ran on the same machine within minutes of each other.

Usage::

    PYTHONPATH=. .venv/bin/python scripts/bench/twin_bench.py --objects 10000 --workers 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from runtime_bench import WIDGETS, create_widgets, ensure_crd  # noqa: E402

from jangar.runtime import (  # noqa: E402
    Builder,
    CacheOptions,
    Client,
    FuncHandler,
    GenerationChanged,
    Manager,
    ManagerOptions,
    Request,
    Result,
    SharedInformer,
    configure_logging,
)
from jangar.runtime.resources import NAMESPACES  # noqa: E402

GO_SOURCE = ROOT / "scripts" / "bench" / "go"
GO_BINARY = Path.home() / ".cache" / "jangar" / "bench" / "twin"
CLK_TCK = os.sysconf("SC_CLK_TCK")
IMPLS = ("jangar", "controller-runtime", "raw", "controller-runtime-http1", "raw-http1")
"""`-http1`: the Go client over a pool of HTTP/1.1 connections (jangar's shape) instead of client-go's one
multiplexed HTTP/2 connection."""


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build_go() -> Path:
    """`go build` the twin from the module proxy (go.sum pins every module) into the cache directory."""
    GO_BINARY.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    subprocess.run(["go", "build", "-o", str(GO_BINARY), "."], cwd=GO_SOURCE, check=True)
    print(
        json.dumps({"go_build_seconds": round(time.monotonic() - t0, 1), "binary": str(GO_BINARY)}),
        flush=True,
    )
    return GO_BINARY


# -- the jangar twin (a child process) ----------------------------------------------------------------


async def jangar_controller(kubeconfig: str, ns: str, workers: int) -> None:
    client = await Client.from_kubeconfig(kubeconfig, timeout=60, field_manager="bench")
    mgr = Manager(
        client, ManagerOptions(bind_address=None, cache=CacheOptions(namespaces=[ns], resync_period=None))
    )

    async def reconcile(req: Request) -> Result:
        obj = mgr.cache.get(WIDGETS, req.name, req.namespace, copy=False)
        if obj is None:
            return Result()
        gen = obj["metadata"].get("generation", 1)
        if (obj.get("status") or {}).get("observedGeneration") == gen:
            return Result()
        await mgr.client.patch_status(
            WIDGETS, req.name, {"status": {"observedGeneration": gen}}, namespace=ns
        )
        return Result()

    Builder(mgr).for_(WIDGETS, GenerationChanged()).with_options(max_concurrent_reconciles=workers).complete(
        reconcile
    )
    await mgr.start()  # until killed


# -- one measurement -----------------------------------------------------------------------------------


def controller_command(
    impl: str, kubeconfig: Path, ns: str, workers: int, profile: Path | None = None
) -> list[str]:
    if impl == "jangar":
        argv = [__file__, "jangar-controller", str(kubeconfig), ns, str(workers)]
        if profile is not None:  # pyinstrument writes the session when the process gets SIGINT
            return [sys.executable, "-m", "pyinstrument", "-r", "pyisession", "-o", str(profile), *argv]
        return [sys.executable, *argv]
    return [
        str(GO_BINARY),
        f"--mode={impl.removesuffix('-http1')}",
        f"--http1={'true' if impl.endswith('-http1') else 'false'}",
        f"--config={kubeconfig}",
        f"--namespace={ns}",
        f"--workers={workers}",
    ]


async def measure(
    impl: str,
    kubeconfig: Path,
    n: int,
    workers: int,
    create_concurrency: int,
    server_pids: dict[str, int] | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:
    ns = "twin"
    client = await Client.from_kubeconfig(str(kubeconfig), timeout=120, field_manager="bench")
    await ensure_crd(client)
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    create_seconds = await create_widgets(client, ns, n, create_concurrency)

    done: dict[str, float] = {}

    def on_update(_old: dict[str, Any], new: dict[str, Any]) -> None:
        meta = new["metadata"]
        if (new.get("status") or {}).get("observedGeneration") == meta.get("generation", 1):
            done.setdefault(meta["name"], time.monotonic())

    observer = SharedInformer(client, WIDGETS, namespace=ns, resync_period=None)
    observer.add_event_handler(FuncHandler(update=on_update))
    observer.start()
    await observer.wait_for_sync(120)

    log = kubeconfig.parent / f"{impl}.log"
    with log.open("wb") as out:
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *controller_command(impl, kubeconfig, ns, workers, profile),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
        )
    rss_peak = 0.0
    cpu = 0.0
    server_pids = server_pids or {}
    server_cpu0 = {name: proc_cpu_seconds(pid) for name, pid in server_pids.items()}
    server_cpu: dict[str, float] = {}
    try:
        deadline = t0 + max(300.0, n / 10)
        while len(done) < n and time.monotonic() < deadline and proc.returncode is None:
            rss_peak = max(rss_peak, proc_rss_mib(proc.pid))
            await asyncio.sleep(0.05)
        exit_code = proc.returncode  # None: still running, as it should be
        server_cpu = {name: proc_cpu_seconds(pid) - server_cpu0[name] for name, pid in server_pids.items()}
        if proc.returncode is None:
            cpu = proc_cpu_seconds(proc.pid)
            rss_peak = max(rss_peak, proc_rss_mib(proc.pid))
    finally:
        if proc.returncode is None:
            if profile is not None:
                proc.send_signal(signal.SIGINT)  # let pyinstrument write its session
                try:
                    await asyncio.wait_for(proc.wait(), 120)
                except TimeoutError:
                    proc.kill()
            else:
                proc.kill()
        await proc.wait()
        await observer.stop()
        await client.close()
    first = min(done.values(), default=t0)
    last = max(done.values(), default=t0)
    return {
        "impl": impl,
        "objects": n,
        "workers": workers,
        "creates_per_second": round(n / create_seconds, 1),
        "statuses_written": len(done),
        "controller_exited_with": exit_code,
        "seconds_start_to_last": round(last - t0, 2),
        "seconds_first_to_last": round(last - first, 2),
        "objects_per_second_from_start": round(len(done) / (last - t0), 1) if last > t0 else None,
        "objects_per_second_drain": round(len(done) / (last - first), 1) if last > first else None,
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_object": round(cpu / len(done) * 1000, 3) if done else None,
        "rss_peak_mib": round(rss_peak, 1),
        # Where the time goes: the controller's CPU seconds per wall second of the drain (1.0 = one core
        # saturated; below that the controller waits on the API server), the API server's and etcd's CPU per
        # object over the same span (their share of the 2 cores), and Little's law: `workers` reconciles in
        # flight at `objects/s` means each one spends workers / (objects/s) of wall time in flight.
        "controller_cpu_per_wall_second": round(cpu / (last - t0), 3) if last > t0 else None,
        "server_cpu_ms_per_object": {
            name: round(sec / len(done) * 1000, 3) for name, sec in server_cpu.items() if done
        },
        "wall_ms_in_flight_per_object": round(workers / (len(done) / (last - first)) * 1000, 1)
        if last > first and done
        else None,
        "profile": str(profile) if profile is not None else None,
        "log": str(log),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "jangar-controller":
        _, _, kubeconfig, ns, workers = sys.argv
        configure_logging(json=True, level="warning")
        asyncio.run(jangar_controller(kubeconfig, ns, int(workers)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--create-concurrency", type=int, default=32)
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS[:3]))
    parser.add_argument("--keep", action="store_true", help="keep the clusters' work directories (logs)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the jangar controller under pyinstrument and write its .pyisession here "
        "(render: python -m pyinstrument --load FILE); its CPU numbers then include the profiler",
    )
    args = parser.parse_args()
    configure_logging(json=True, level="warning")
    from jangar.dev.cluster import LocalCluster

    print(
        json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(), "loadavg": os.getloadavg()}),
        flush=True,
    )
    if any(impl != "jangar" for impl in args.impls):
        build_go()
    results: dict[str, dict[str, Any]] = {}
    for impl in args.impls:
        workdir = Path(tempfile.mkdtemp(prefix=f"twin-bench-{impl}-"))
        cluster = LocalCluster(workdir, kwok=False).up()  # a fresh API server per measurement
        try:
            servers = {name: cluster.group.processes[name].pid for name in ("kube-apiserver", "etcd")}
            profile = args.profile if impl == "jangar" else None
            result = asyncio.run(
                measure(
                    impl,
                    cluster.kubeconfig,
                    args.objects,
                    args.workers,
                    args.create_concurrency,
                    servers,
                    profile,
                )
            )
        finally:
            cluster.down()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        results[impl] = result
        print(json.dumps(result), flush=True)
    ratios: dict[str, Any] = {}
    mine = results.get("jangar")
    for other in IMPLS[1:]:
        theirs = results.get(other)
        if (
            not mine
            or not theirs
            or mine["statuses_written"] < mine["objects"]
            or theirs["statuses_written"] < theirs["objects"]
        ):
            continue  # an incomplete measurement has no meaningful ratio (its line above says why)
        for key in ("objects_per_second_drain", "objects_per_second_from_start"):
            if mine.get(key) and theirs.get(key):
                ratios[f"jangar/{other} {key}"] = round(mine[key] / theirs[key], 2)
        if mine.get("cpu_ms_per_object") and theirs.get("cpu_ms_per_object"):
            ratios[f"jangar/{other} cpu_ms_per_object"] = round(
                mine["cpu_ms_per_object"] / theirs["cpu_ms_per_object"], 2
            )
        if mine.get("rss_peak_mib") and theirs.get("rss_peak_mib"):
            ratios[f"jangar/{other} rss_peak"] = round(mine["rss_peak_mib"] / theirs["rss_peak_mib"], 2)
    print(json.dumps({"ratios": ratios}), flush=True)


if __name__ == "__main__":
    main()

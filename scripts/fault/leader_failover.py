#!/usr/bin/env python3
"""Leader failover with two replicas: handover time, and proof that never two leaders reconcile.

Two replica *processes* (this script with ``replica``), each a Manager with leader election on one
Lease (jangar's defaults: lease 15 s, renew deadline 10 s, retry 2 s) and the fence controller of
``jangar.dev.fence``: every reconcile (each 0.1 s) compare-and-swaps the fence ConfigMap with the
replica's identity, its term (the Lease's ``leaseTransitions`` when it acquired) and a counter; a
reconcile that finds a newer term records itself as stale. The driver watches the fence, and:

* ``--kills N``: kill -9 the leader N times (a fresh standby replaces it each time); the handover time
  is from the kill to the first fence write of the new leader (bound: lease duration + a jittered
  retry, since the standby judges expiry from when it last saw the lease change);
* ``--pauses N``: SIGSTOP the leader for ``lease + 5`` s (a stalled process or a partition), then
  SIGCONT: the resumed replica must not reconcile (its fence is closed by its own clock) and must exit
  (LeaderLost) instead of acting on stale authority.

At the end it checks the whole fence history (``check_history``: terms only go up, a new holder
always has a new term, the counter has no gap, no stale reconcile) and prints the numbers as JSON.
``--unfenced`` runs the replicas with the leader fence removed from their controllers, to show
what the pause does without it.

Usage::

    .venv/bin/python scripts/fault/leader_failover.py --kills 5 --pauses 2     # starts a local cluster
    .venv/bin/python scripts/fault/leader_failover.py --kubeconfig kc --kills 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from jangar.dev.fence import (  # noqa: E402
    FenceObserver,
    add_fence_controller,
    check_history,
    create_fence,
    lease_transitions,
)
from jangar.runtime import (  # noqa: E402
    CacheOptions,
    Client,
    LeaderElectionOptions,
    LeaderLost,
    Manager,
    ManagerOptions,
    configure_logging,
)
from jangar.runtime.controller import Controller  # noqa: E402
from jangar.runtime.resources import NAMESPACES  # noqa: E402

LEASE = "failover-lock"
EXIT_LEADER_LOST = 3


# -- one replica (a child process) ----------------------------------------------------------------


async def replica_main(kubeconfig: str, namespace: str, identity: str, lease: float, unfenced: bool) -> int:
    client = await Client.from_kubeconfig(kubeconfig, field_manager=identity)
    manager = Manager(
        client,
        ManagerOptions(
            bind_address=None,
            leader_election=LeaderElectionOptions(
                LEASE,
                namespace,
                identity=identity,
                lease_duration=lease,
                renew_deadline=lease * 2 / 3,
                retry_period=lease * 2 / 15,
            ),
            cache=CacheOptions(namespaces=[namespace]),
            graceful_shutdown_timeout=5,
        ),
    )
    stats = add_fence_controller(manager, client, namespace, identity)
    manager.install_signal_handlers()

    async def unfence() -> None:  # both the worker's check and, with it, the write fence
        while True:
            for r in manager._leader_runnables:
                if isinstance(r, Controller) and r._leader_check is not None:
                    r.set_leader_check(None)
                    return
            await asyncio.sleep(0.01)

    if unfenced:
        manager.add_func(unfence, name="unfence", need_leader_election=False)
    code = 0
    try:
        await manager.start()
    except LeaderLost:
        code = EXIT_LEADER_LOST
    finally:
        fenced = sum(r.fenced for r in manager._leader_runnables if isinstance(r, Controller))
        print(
            json.dumps(
                {
                    "identity": identity,
                    "writes": stats.writes,
                    "stale": stats.stale,
                    "refused_writes": stats.refused,
                    "fenced": fenced,
                    "exit": code,
                }
            ),
            flush=True,
        )
        await client.close()
    return code


# -- the driver -------------------------------------------------------------------------------------


class Replicas:
    def __init__(self, kubeconfig: str, namespace: str, lease: float, unfenced: bool, logdir: Path) -> None:
        self.kubeconfig, self.namespace, self.lease, self.unfenced = kubeconfig, namespace, lease, unfenced
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.n = 0

    def spawn(self) -> str:
        self.n += 1
        identity = f"replica-{self.n}"
        argv = [sys.executable, __file__, "replica", "--kubeconfig", self.kubeconfig]
        argv += ["--namespace", self.namespace, "--identity", identity, "--lease", str(self.lease)]
        if self.unfenced:
            argv.append("--unfenced")
        log = open(self.logdir / f"{identity}.log", "wb")  # noqa: SIM115 (kept open for the child)
        self.procs[identity] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        return identity

    def signal(self, identity: str, sig: int) -> None:
        self.procs[identity].send_signal(sig)

    def alive(self, identity: str) -> bool:
        return self.procs[identity].poll() is None

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


async def wait_for(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def drive(args: argparse.Namespace, kubeconfig: str, logdir: Path) -> dict[str, Any]:
    client = await Client.from_kubeconfig(kubeconfig, field_manager="failover-driver")
    namespace = f"failover-{uuid.uuid4().hex[:6]}"
    await client.create(NAMESPACES, {"metadata": {"name": namespace}})
    await create_fence(client, namespace)
    observer = FenceObserver(client, namespace)
    watch = asyncio.create_task(observer.run())
    reps = Replicas(kubeconfig, namespace, args.lease, args.unfenced, logdir)
    first = reps.spawn()
    await wait_for(
        lambda: observer.versions and observer.versions[-1].holder == first, 120, "the first leader"
    )
    reps.spawn()
    await asyncio.sleep(5)  # the standby's cache syncs and it starts polling the lease
    handovers: dict[str, list[float]] = {"kill": [], "pause": []}
    resumed_exits: list[int | None] = []
    plan = ["kill"] * args.kills + ["pause"] * args.pauses
    for i, fault in enumerate(plan):
        leader = observer.versions[-1].holder
        seen = len(observer.versions)
        t0 = time.time()
        reps.signal(leader, signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
        new = await wait_for(
            lambda leader=leader, seen=seen: next(
                (v for v in observer.versions[seen:] if v.holder != leader), None
            ),
            args.lease * 3 + 30,
            f"a new leader after {fault} {i + 1}",
        )
        handovers[fault].append(round(new.at - t0, 2))
        print(
            f"{fault} {i + 1}: {leader} -> {new.holder} in {new.at - t0:.2f}s (term {new.term})", flush=True
        )
        if fault == "pause":
            await asyncio.sleep(max(0.0, args.lease + 5 - (time.time() - t0)))
            reps.signal(leader, signal.SIGCONT)
            proc = reps.procs[leader]
            try:
                resumed_exits.append(await asyncio.to_thread(proc.wait, args.lease * 2 + 30))
            except subprocess.TimeoutExpired:
                resumed_exits.append(None)
                proc.kill()
        reps.spawn()  # a fresh standby for the next round
        await asyncio.sleep(5)
    await asyncio.sleep(2)
    holder, transitions = await lease_transitions(client, LEASE, namespace)
    reps.stop_all()
    watch.cancel()
    await asyncio.gather(watch, return_exceptions=True)
    replicas = []
    for identity in reps.procs:
        lines = (logdir / f"{identity}.log").read_text().splitlines()
        summary = next((json.loads(line) for line in reversed(lines) if line.startswith('{"identity"')), None)
        replicas.append(summary or {"identity": identity, "summary": "none (killed)"})
    problems = check_history(observer.versions)
    await client.delete(NAMESPACES, namespace)
    await client.close()
    all_handovers = handovers["kill"] + handovers["pause"]
    return {
        "lease_duration": args.lease,
        "renew_deadline": round(args.lease * 2 / 3, 2),
        "retry_period": round(args.lease * 2 / 15, 2),
        "unfenced": args.unfenced,
        "kills": args.kills,
        "pauses": args.pauses,
        "handover_after_kill_s": handovers["kill"],
        "handover_after_pause_s": handovers["pause"],
        "handover_p50_s": statistics.median(all_handovers) if all_handovers else None,
        "handover_max_s": max(all_handovers) if all_handovers else None,
        "resumed_leader_exit_codes": resumed_exits,
        "fence_versions": len(observer.versions),
        "holders": len({v.holder for v in observer.versions}),
        "lease_transitions": transitions,
        "final_holder": holder,
        "stale_reconciles": observer.versions[-1].stale if observer.versions else 0,
        "violations": problems,
        "replicas": replicas,
        "ok": not problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd")
    rep = sub.add_parser("replica")
    rep.add_argument("--kubeconfig", required=True)
    rep.add_argument("--namespace", required=True)
    rep.add_argument("--identity", required=True)
    rep.add_argument("--lease", type=float, default=15.0)
    rep.add_argument("--unfenced", action="store_true")
    parser.add_argument("--kubeconfig", help="an existing cluster (default: start a local one)")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--pauses", type=int, default=2)
    parser.add_argument(
        "--lease", type=float, default=15.0, help="lease duration (renew 2/3, retry 2/15 of it)"
    )
    parser.add_argument("--unfenced", action="store_true", help="replicas without the leader fence")
    args = parser.parse_args()
    configure_logging(level=os.environ.get("JANGAR_LOG_LEVEL", "info"))
    if args.cmd == "replica":
        sys.exit(
            asyncio.run(
                replica_main(args.kubeconfig, args.namespace, args.identity, args.lease, args.unfenced)
            )
        )
    logdir = Path(tempfile.mkdtemp(prefix="leader-failover-"))
    cluster = None
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        from jangar.dev.cluster import LocalCluster

        cluster = LocalCluster(logdir / "cluster").up()
        kubeconfig = str(cluster.kubeconfig)
    try:
        result = asyncio.run(drive(args, kubeconfig, logdir))
    finally:
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.down()
    result["logs"] = str(logdir)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()

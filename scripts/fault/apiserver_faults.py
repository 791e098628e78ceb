#!/usr/bin/env python3
"""API server restart and a forced 410 (etcd compaction) during a burst of AgentRuns, on kwok.

Starts the kwok stack (`jangar.dev.cluster.LocalCluster(kwok=True)`: etcd, kube-apiserver,
kube-controller-manager with the Job controller and the garbage collector, kube-scheduler, kwok fake
nodes on which Job pods complete), installs the CRDs, and runs the agents controllers in this process
(jangar's production reflector options: backoff 0.8 s doubling to 30 s). The controller reaches the API
server through a TCP proxy owned by this script, so the time its watches are down is under control.
A baseline burst without a fault, then two scenarios, one burst of `--runs` AgentRuns each (created 20 at a time by a client that retries
through outages, like any client would):

* **restart**: after half the burst is created the proxy is cut and kube-apiserver is stopped
  (etcd kept), kept down `--downtime` s and started again; while the controller is still cut off, the
  *gap mutations* are made; then the proxy is restored.
* **compaction**: kube-apiserver is first restarted with `--watch-cache=false` (every watch is served
  by etcd, so a compacted revision answers 410 Gone); after half the burst the proxy is cut, the gap
  mutations are made, etcd is compacted at its current revision, and the proxy is restored: every
  informer's resumed watch gets 410 and relists.

Gap mutations (what the controller cannot see live): `--gap-deletes` runs deleted (their finalizer
`agents.proompteng.ai/runtime-cleanup` is still there, the controller must finish the delete),
`--gap-deletes` runs deleted *and* their finalizer removed (they leave etcd in the gap: the cache must
drop them and the garbage collector their Jobs), and the Jobs of `--gap-deletes` finished runs deleted
(they leave the Job cache; a terminal run must not get a new one).

Checks after each scenario: every surviving run terminal, every deleted run gone, no Job left owned
by a deleted run, no run with two Jobs, the controller's AgentRun and Job caches equal to a fresh
list, and how the informers caught up (lists/watches of their reflectors). Prints the numbers as JSON.

Usage::

    .venv/bin/python scripts/fault/apiserver_faults.py --runs 200 --downtime 10
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from jangar.api.contract import LABEL_RUN, is_terminal  # noqa: E402
from jangar.controllers.kinds import AGENTRUNS, JOBS  # noqa: E402
from jangar.controllers.setup import ControllerDeps, install  # noqa: E402
from jangar.dev.cluster import LocalCluster  # noqa: E402
from jangar.runtime import (  # noqa: E402
    ApiError,
    Client,
    Manager,
    ManagerOptions,
    NotFoundError,
    PropagationPolicy,
    configure_logging,
)
from jangar.runtime.errors import ConflictError  # noqa: E402
from jangar.runtime.resources import NAMESPACES, SERVICE_ACCOUNTS  # noqa: E402
from jangar.settings import ControllerTuning  # noqa: E402
from tests.envtest.controllers_fixtures import apply_basics, run, settings_for  # noqa: E402
from tests.support.crds import install_crds  # noqa: E402

FINALIZER = "agents.proompteng.ai/runtime-cleanup"


# -- a TCP proxy between the controller and the API server ----------------------------------------------


class TcpProxy:
    """Forwards bytes (TLS passes through untouched). `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.open = True
        self.port = 0
        self._conns: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def cut(self) -> None:
        self.open = False
        for w in list(self._conns):
            w.transport.abort()
        self._conns.clear()

    def restore(self) -> None:
        self.open = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._conns.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._conns.discard(writer)
        self._conns.discard(up_writer)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def proxied_kubeconfig(kubeconfig: Path, port: int, dest: Path) -> Path:
    cfg = yaml.safe_load(kubeconfig.read_text())
    for c in cfg["clusters"]:
        c["cluster"]["server"] = f"https://127.0.0.1:{port}"
    dest.write_text(yaml.safe_dump(cfg))
    return dest


async def compact_etcd(etcd_url: str) -> int:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{etcd_url}/v3/kv/range", json={"key": "AA=="}) as r:
            revision = int((await r.json())["header"]["revision"])
        async with s.post(f"{etcd_url}/v3/kv/compaction", json={"revision": revision, "physical": True}) as r:
            if r.status != 200:
                raise RuntimeError(await r.text())
    return revision


# -- the scenario driver ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Env:
    cluster: LocalCluster
    client: Client
    proxy: TcpProxy
    manager: Manager
    namespace: str


def reflector_counters(manager: Manager) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for ref in (AGENTRUNS, JOBS):
        infs = manager.cache.informer(ref).all_informers
        out[ref.plural] = {
            "lists": sum(i.reflector.lists for i in infs),
            "watches": sum(i.reflector.watches for i in infs),
        }
    return out


async def create_retrying(client: Client, body: dict[str, Any]) -> float:
    """Create, retrying through an outage; an AlreadyExists after a lost response counts as created."""
    while True:
        try:
            await client.create(AGENTRUNS, body)
            return time.monotonic()
        except ConflictError:
            return time.monotonic()
        except (TimeoutError, ApiError, OSError, aiohttp.ClientError):
            await asyncio.sleep(0.5)


async def runs_by_name(client: Client, ns: str, prefix: str) -> dict[str, dict[str, Any]]:
    listed = await client.list(AGENTRUNS, ns)
    return {o["metadata"]["name"]: o for o in listed.items if o["metadata"]["name"].startswith(prefix)}


async def gap_mutations(env: Env, prefix: str, k: int) -> dict[str, Any]:
    """Deletes the controller cannot see live (it is cut off while they happen)."""
    c, ns = env.client, env.namespace
    runs = await runs_by_name(c, ns, prefix)
    terminal = sorted(n for n, o in runs.items() if is_terminal((o.get("status") or {}).get("phase")))
    active = sorted(n for n in runs if n not in terminal)
    pool = active + terminal  # prefer runs still in flight for the run deletes
    deleted, vanished = pool[:k], pool[k : 2 * k]
    for name in deleted:
        await c.delete(AGENTRUNS, name, ns)
    for name in vanished:
        await c.delete(AGENTRUNS, name, ns)
        with contextlib.suppress(NotFoundError):
            await c.patch(AGENTRUNS, name, {"metadata": {"finalizers": None}}, namespace=ns)
    jobs_deleted: list[str] = []
    jobs = (await c.list(JOBS, ns, label_selector=LABEL_RUN)).items
    job_by_run = {(j["metadata"].get("labels") or {}).get(LABEL_RUN): j["metadata"]["name"] for j in jobs}
    for name in [n for n in terminal if n not in deleted and n not in vanished][:k]:
        job = job_by_run.get(name)
        if job:
            with contextlib.suppress(NotFoundError):
                await c.delete(JOBS, job, ns, propagation_policy=PropagationPolicy.BACKGROUND)
            jobs_deleted.append(job)
    return {
        "deleted": deleted,
        "vanished": vanished,
        "jobs_deleted": jobs_deleted,
        "terminal_at_gap": terminal,
        "uids_gone": [runs[n]["metadata"]["uid"] for n in deleted + vanished],
    }


def cache_keys(manager: Manager, ref: Any) -> set[str]:
    return {k for inf in manager.cache.informer(ref).all_informers for k in inf.store}


WAITING: dict[str, str] = {}
"""What `settled` is waiting for (printed while a scenario drains and when it times out)."""


async def settled(env: Env, prefix: str, gone: set[str], uids_gone: set[str]) -> dict[str, Any] | None:
    """None until everything is caught up; then the final observations."""
    c, ns = env.client, env.namespace
    runs = await runs_by_name(c, ns, prefix)
    if gone & set(runs):
        WAITING["why"] = f"deleted runs still present: {sorted(gone & set(runs))[:5]}"
        return None
    pending = collections.Counter(
        (o.get("status") or {}).get("phase")
        for o in runs.values()
        if not is_terminal((o.get("status") or {}).get("phase"))
    )
    if pending:
        WAITING["why"] = f"runs not terminal: {dict(pending)}"
        return None
    all_jobs = (await c.list(JOBS, ns, label_selector=LABEL_RUN)).items
    jobs = [
        j for j in all_jobs if str((j["metadata"].get("labels") or {}).get(LABEL_RUN, "")).startswith(prefix)
    ]
    owners = [
        ref["uid"]
        for j in jobs
        for ref in j["metadata"].get("ownerReferences") or []
        if ref.get("kind") == "AgentRun" and ref.get("controller")
    ]
    if uids_gone & set(owners):
        WAITING["why"] = "Jobs of deleted runs still present"
        return None  # the garbage collector / the finalizer has not removed them yet
    all_runs = await c.list(AGENTRUNS, ns)
    fresh_runs = {f"{ns}/{o['metadata']['name']}" for o in all_runs.items}
    fresh_jobs = {f"{ns}/{j['metadata']['name']}" for j in all_jobs}
    cached_runs, cached_jobs = cache_keys(env.manager, AGENTRUNS), cache_keys(env.manager, JOBS)
    if cached_runs != fresh_runs or cached_jobs != fresh_jobs:
        WAITING["why"] = (
            f"cache differs from a fresh list: runs +{sorted(cached_runs - fresh_runs)[:3]}"
            f" -{sorted(fresh_runs - cached_runs)[:3]}, jobs +{sorted(cached_jobs - fresh_jobs)[:3]}"
            f" -{sorted(fresh_jobs - cached_jobs)[:3]}"
        )
        return None
    phases = collections.Counter((o.get("status") or {}).get("phase") for o in runs.values())
    per_owner = collections.Counter(owners)
    return {
        "surviving_runs": len(runs),
        "phases": dict(phases),
        "jobs": len(jobs),
        "runs_with_two_jobs": sum(1 for n in per_owner.values() if n > 1),
        "caches_equal_fresh_list": True,
    }


async def scenario(env: Env, name: str, n: int, k: int, fault: Any) -> dict[str, Any]:
    prefix = f"{name}-"
    sem = asyncio.Semaphore(20)

    async def one(i: int) -> float:
        async with sem:
            return await create_retrying(env.client, run(env.namespace, f"{prefix}{i:04d}"))

    before = reflector_counters(env.manager)
    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n // 2)))
    # Some runs finish before the fault, so that Jobs of terminal runs can be deleted in the gap.
    wait_until = time.monotonic() + 120
    while time.monotonic() < wait_until:
        runs = await runs_by_name(env.client, env.namespace, prefix)
        if sum(is_terminal((o.get("status") or {}).get("phase")) for o in runs.values()) >= 3 * k:
            break
        await asyncio.sleep(0.5)
    second = asyncio.gather(*(one(i) for i in range(n // 2, n)))
    fault_info = await fault()
    restored = time.monotonic()
    gap = fault_info.pop("gap")
    gone = set(gap["deleted"]) | set(gap["vanished"])
    uids_gone = set(gap["uids_gone"])
    ns = env.namespace
    vanished_keys = {f"{ns}/{name}" for name in gap["vanished"]}
    jobs_gone_keys = {f"{ns}/{name}" for name in gap["jobs_deleted"]}

    def cache_caught_up() -> bool:
        """The deletes of the gap are in the controller's caches (the vanished objects left them)."""
        return not (vanished_keys & cache_keys(env.manager, AGENTRUNS)) and not (
            jobs_gone_keys & cache_keys(env.manager, JOBS)
        )

    caught_up_at: float | None = None
    deadline = time.monotonic() + 1200
    next_report = time.monotonic() + 30
    result = None
    while result is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: not caught up after 1200 s: {WAITING.get('why')}")
        if time.monotonic() > next_report:
            next_report += 30
            print(
                f"# {name}: {time.monotonic() - restored:.0f}s after restore, waiting: {WAITING.get('why')}",
                flush=True,
            )
        if caught_up_at is None and cache_caught_up():
            caught_up_at = time.monotonic()
        if second.done():
            result = await settled(env, prefix, gone, uids_gone)
        if result is None:
            await asyncio.sleep(0.5)
    await second
    drained = time.monotonic()
    after = reflector_counters(env.manager)
    return {
        "scenario": name,
        "runs": n,
        **fault_info,
        "gap_deleted_runs": len(gap["deleted"]),
        "gap_vanished_runs": len(gap["vanished"]),
        "gap_deleted_jobs": len(gap["jobs_deleted"]),
        "runs_terminal_at_gap": len(gap["terminal_at_gap"]),
        **result,
        "burst_total_s": round(drained - t0, 1),
        "cache_caught_up_after_restore_s": round((caught_up_at or drained) - restored, 1),
        "drained_after_restore_s": round(drained - restored, 1),
        "reflectors": {r: {k2: after[r][k2] - before[r][k2] for k2 in after[r]} for r in after},
    }


async def main_async(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    cluster = LocalCluster(workdir / "cluster", kwok=True, nodes=2).up()
    results: list[dict[str, Any]] = []
    try:
        install_crds(cluster.kubeconfig)
        client = await Client.from_kubeconfig(
            str(cluster.kubeconfig), timeout=10, field_manager="fault-driver"
        )
        ns = "faults"
        await client.create(NAMESPACES, {"metadata": {"name": ns}})
        deadline = time.monotonic() + 60
        while True:
            try:
                await client.get(SERVICE_ACCOUNTS, "default", ns)
                break
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await apply_basics(client, ns)
        proxy = TcpProxy(cluster.apiserver_port)
        await proxy.start()
        kc = proxied_kubeconfig(cluster.kubeconfig, proxy.port, workdir / "kubeconfig.proxied")
        ctl_client = await Client.from_kubeconfig(str(kc), field_manager="jangar-controller")
        settings = dataclasses.replace(
            settings_for(ns),
            tuning=ControllerTuning(agentrun_workers=args.workers, reference_grace_seconds=5.0),
        )
        manager = Manager(ctl_client, ManagerOptions(bind_address=None, graceful_shutdown_timeout=5))
        install(manager, ControllerDeps(settings=settings, client=ctl_client))
        task = asyncio.create_task(manager.start())
        while not (manager.cache.has_synced() and manager._started):
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        env = Env(cluster, client, proxy, manager, ns)
        k = args.gap_deletes

        async def restart_fault() -> dict[str, Any]:
            proxy.cut()
            t = time.monotonic()
            await asyncio.to_thread(cluster.restart_apiserver, args.downtime)
            back = time.monotonic()
            gap = await gap_mutations(env, "restart-", k)
            proxy.restore()
            return {
                "apiserver_down_s": round(back - t, 1),
                "controller_cut_off_s": round(time.monotonic() - t, 1),
                "gap": gap,
            }

        async def compaction_fault() -> dict[str, Any]:
            proxy.cut()
            t = time.monotonic()
            gap = await gap_mutations(env, "compaction-", k)
            revision = await compact_etcd(cluster.etcd_url)
            proxy.restore()
            return {
                "compacted_at_revision": revision,
                "controller_cut_off_s": round(time.monotonic() - t, 1),
                "gap": gap,
            }

        async def no_fault() -> dict[str, Any]:
            return {
                "gap": {
                    "deleted": [],
                    "vanished": [],
                    "jobs_deleted": [],
                    "terminal_at_gap": [],
                    "uids_gone": [],
                }
            }

        if "baseline" in args.scenarios:
            results.append(await scenario(env, "baseline", args.runs, k, no_fault))
            print(json.dumps(results[-1]), flush=True)
        if "restart" in args.scenarios:
            results.append(await scenario(env, "restart", args.runs, k, restart_fault))
            print(json.dumps(results[-1]), flush=True)
        if "compaction" in args.scenarios:
            cluster.apiserver_extra_args = ("--watch-cache=false",)
            await asyncio.to_thread(cluster.restart_apiserver, 0.0)
            await asyncio.sleep(10)  # the controller reconnects before the burst
            results.append(await scenario(env, "compaction", args.runs, k, compaction_fault))
            print(json.dumps(results[-1]), flush=True)
        manager.request_stop()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 30)
        await proxy.close()
        await ctl_client.close()
        await client.close()
    finally:
        with contextlib.suppress(Exception):
            cluster.down()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--downtime", type=float, default=10.0, help="seconds kube-apiserver stays stopped")
    parser.add_argument("--gap-deletes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=8, help="AgentRun reconcile workers")
    parser.add_argument("--scenarios", nargs="+", default=["baseline", "restart", "compaction"])
    args = parser.parse_args()
    configure_logging(level=os.environ.get("JANGAR_LOG_LEVEL", "warning"))
    workdir = Path(tempfile.mkdtemp(prefix="apiserver-faults-"))
    results = asyncio.run(main_async(args, workdir))
    ok = all(r["runs_with_two_jobs"] == 0 and r["caches_equal_fresh_list"] for r in results)
    print(json.dumps({"results": results, "workdir": str(workdir), "ok": ok}, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

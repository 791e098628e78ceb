#!/usr/bin/env python3
"""Benchmark the AgentRun product path on the local kwok cluster (issue 14 §1).

Prints numbers; it is not a timed test. Per measurement it starts a FRESH local kwok cluster
(kube-apiserver + etcd + kube-controller-manager + kube-scheduler + kwok with fake nodes, so Jobs
really get Pods that really succeed), installs the CRDs, starts `jangar serve` as a separate process
(so its CPU and RSS come from /proc/<pid>), with every admission limit off (concurrency, queue and
rate at 0), creates N job-runtime AgentRuns (flat out or paced) and reports:

* runs/s to Job created and to Succeeded (N / time from the first create to the last Job / last
  Succeeded);
* create→Job and create→Succeeded p50/p99 (client monotonic clock: create sent → an observer
  informer sees the Job / the phase);
* API requests per run by verb and resource, from the API server's own `apiserver_request_total`
  before and after (everything: jangar's, the Job controller's, the scheduler's, kwok's and the
  benchmark's own N AgentRun creates and its two watches);
* jangar's CPU seconds (utime+stime) and peak RSS over the measurement, and reconciles per run
  from jangar's own `/metrics`.

Usage::

    .venv/bin/python scripts/bench/agentrun_bench.py --runs 1000                  # flat out
    .venv/bin/python scripts/bench/agentrun_bench.py --runs 600 --rate 20         # paced
    .venv/bin/python scripts/bench/agentrun_bench.py --runs 300 --profile out.html  # pyinstrument
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from jangar.api.contract import LABEL_RUN  # noqa: E402
from jangar.api.refs import ORCHESTRATIONRUNS, ORCHESTRATIONS  # noqa: E402
from jangar.controllers.kinds import AGENTPROVIDERS, AGENTRUNS, AGENTS, IMPLEMENTATIONSPECS, JOBS  # noqa: E402
from jangar.dev.cluster import LocalCluster  # noqa: E402
from jangar.dev.processes import free_port  # noqa: E402
from jangar.runtime import Client, FuncHandler, NotFoundError, SharedInformer, configure_logging  # noqa: E402
from jangar.runtime.resources import NAMESPACES, SERVICE_ACCOUNTS  # noqa: E402
from tests.support.crds import install_crds  # noqa: E402

RUNNER_IMAGE = "ghcr.io/proompteng/jangar-runner:bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
ADMISSION_OFF = {
    f"JANGAR_AGENTS_CONTROLLER_{k}": "0"
    for k in (
        "CONCURRENCY_NAMESPACE",
        "CONCURRENCY_AGENT",
        "CONCURRENCY_CLUSTER",
        "QUEUE_NAMESPACE",
        "QUEUE_REPO",
        "QUEUE_CLUSTER",
        "RATE_NAMESPACE",
        "RATE_REPO",
        "RATE_CLUSTER",
    )
}


DAG_STEPS = (("a",), ("b", "a"), ("c", "a"), ("d", "b", "c"), ("e", "d"))
"""The OrchestrationRun benchmark's 5-step DAG: a, then b and c in parallel, then d, then e (5 AgentRuns)."""


def dag_orchestration(ns: str) -> dict[str, Any]:
    steps = []
    for name, *deps in DAG_STEPS:
        step: dict[str, Any] = {
            "name": name,
            "kind": "AgentRun",
            "agentRef": {"name": "coder"},
            "implementationSpecRef": {"name": "task"},
            "with": {"prompt": f"step {name}"},
        }
        if deps:
            step["dependsOn"] = deps
        steps.append(step)
    return {"metadata": {"name": "dag5", "namespace": ns}, "spec": {"steps": steps}}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


# -- /proc and /metrics --------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found.append((dict(s.labels), float(s.value)))
    return found


def apiserver_metrics(cluster: LocalCluster) -> str:
    ctx = ssl.create_default_context(cafile=str(cluster.pki.ca_crt))
    ctx.load_cert_chain(str(cluster.pki.client_crt("admin")), str(cluster.pki.client_key("admin")))
    with urllib.request.urlopen(cluster.server + "/metrics", context=ctx, timeout=30) as resp:
        return str(resp.read().decode())


def requests_by_verb_resource(text: str, code: str | None = None) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for labels, value in samples(text, "apiserver_request_total"):
        if code is not None and labels.get("code") != code:
            continue
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        out[f"{labels.get('verb', '')} {resource}"] += value
    return out


def jangar_metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


# -- jangar serve ----------------------------------------------------------------------------------------


def start_jangar(
    kubeconfig: Path, namespace: str, workdir: Path, workers: int, profile: Path | None
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "JANGAR_AGENTS_CONTROLLER_NAMESPACES": namespace,
        "JANGAR_POD_NAMESPACE": namespace,
        "JANGAR_POD_NAME": "jangar-bench-0",
        "JANGAR_HTTP_PORT": str(port),
        "JANGAR_AGENT_RUNNER_IMAGE": RUNNER_IMAGE,
        "JANGAR_AGENTRUN_WORKERS": str(workers),
        **ADMISSION_OFF,
    }
    env.pop("DATABASE_URL", None)
    cmd = [sys.executable, "-m", "jangar.cli", "serve", "--kubeconfig", str(kubeconfig)]
    if profile is not None:
        cmd = [sys.executable, "-m", "pyinstrument", "-r", "pyisession", "-o", str(profile), "-m", *cmd[2:]]
    log = workdir / "jangar.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(ROOT))
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as resp:
                if resp.status == 200:
                    return proc, port, log
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"jangar serve did not get ready:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.3)


# -- one measurement -------------------------------------------------------------------------------------


async def measure(
    cluster: LocalCluster,
    n: int,
    rate: float | None,
    concurrency: int,
    workers: int,
    profile: Path | None,
    orchestration: bool = False,
) -> dict[str, Any]:
    """One measurement; with `orchestration`, N OrchestrationRuns of the 5-step DAG instead of N AgentRuns
    (a Job is then "seen" for a run when the Job of any of its steps appears)."""
    ns = "bench"
    client = await Client.from_kubeconfig(str(cluster.kubeconfig), timeout=60, field_manager="bench")
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    deadline = time.monotonic() + 120
    while True:
        try:
            await client.get(SERVICE_ACCOUNTS, "default", ns)
            break
        except NotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    await client.create(
        AGENTPROVIDERS,
        {
            "metadata": {"name": "codex", "namespace": ns},
            "spec": {"binary": "/usr/local/bin/codex", "argsTemplate": ["exec", "{{ parameters.prompt }}"]},
        },
    )
    await client.create(
        AGENTS, {"metadata": {"name": "coder", "namespace": ns}, "spec": {"providerRef": {"name": "codex"}}}
    )
    await client.create(
        IMPLEMENTATIONSPECS,
        {"metadata": {"name": "task", "namespace": ns}, "spec": {"text": "Do the thing."}},
    )
    if orchestration:
        await client.create(ORCHESTRATIONS, dag_orchestration(ns))
    top = ORCHESTRATIONRUNS if orchestration else AGENTRUNS

    proc, port, log = start_jangar(cluster.kubeconfig, ns, cluster.workdir, workers, profile)
    try:
        sent: dict[str, float] = {}
        job_seen: dict[str, float] = {}
        done_seen: dict[str, float] = {}
        failed: set[str] = set()

        def on_run(new: dict[str, Any]) -> None:
            name = new["metadata"]["name"]
            phase = (new.get("status") or {}).get("phase")
            if phase == "Succeeded" and name not in done_seen:
                done_seen[name] = time.monotonic()
            elif phase == "Failed":
                failed.add(name)

        def on_job(new: dict[str, Any]) -> None:
            run = ((new.get("metadata") or {}).get("labels") or {}).get(LABEL_RUN)
            if run and orchestration:  # a step run `<run>-<step>-<attempt>`: its orchestration run
                run = run.rsplit("-", 2)[0]
            if run and run not in job_seen:
                job_seen[run] = time.monotonic()

        runs_inf = SharedInformer(client, top, namespace=ns, resync_period=None)
        runs_inf.add_event_handler(FuncHandler(add=lambda o, _: on_run(o), update=lambda _, o: on_run(o)))
        jobs_inf = SharedInformer(client, JOBS, namespace=ns, resync_period=None, label_selector=LABEL_RUN)
        jobs_inf.add_event_handler(FuncHandler(add=lambda o, _: on_job(o), update=lambda _, o: on_job(o)))
        runs_inf.start()
        jobs_inf.start()
        await runs_inf.wait_for_sync(60)
        await jobs_inf.wait_for_sync(60)

        text0 = await asyncio.to_thread(apiserver_metrics, cluster)
        api0, c0 = requests_by_verb_resource(text0), requests_by_verb_resource(text0, "409")
        j0 = await asyncio.to_thread(jangar_metrics, port)
        cpu0 = proc_cpu_seconds(proc.pid)
        # The other components' CPU over the same span: who the 2 cores went to (the API server, etcd, the Job
        # controller, the scheduler, kwok), to tell a jangar-bound run from a server-bound one.
        components = {name: mp.pid for name, mp in cluster.group.processes.items() if mp.popen is not None}
        comp0 = {name: proc_cpu_seconds(pid) for name, pid in components.items()}
        rss_peak = proc_rss_mib(proc.pid)
        rss_idle = rss_peak
        sem = asyncio.Semaphore(concurrency)

        async def create(i: int) -> None:
            name = f"r-{i:05d}"
            async with sem:
                sent[name] = time.monotonic()
                if orchestration:
                    body: dict[str, Any] = {
                        "metadata": {"name": name, "namespace": ns},
                        "spec": {"orchestrationRef": {"name": "dag5"}},
                    }
                else:
                    body = {
                        "metadata": {"name": name, "namespace": ns},
                        "spec": {
                            "agentRef": {"name": "coder"},
                            "implementationSpecRef": {"name": "task"},
                            "runtime": {"type": "job"},
                            "parameters": {"prompt": "hello"},
                        },
                    }
                await client.create(top, body)

        t0 = time.monotonic()
        if rate:
            tasks = []
            for i in range(n):
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(create(i)))
            await asyncio.gather(*tasks)
        else:
            await asyncio.gather(*(create(i) for i in range(n)))
        t_created = time.monotonic()
        deadline = t_created + max(300.0, n / 2)
        while len(done_seen) + len(failed) < n and time.monotonic() < deadline:
            rss_peak = max(rss_peak, proc_rss_mib(proc.pid))
            await asyncio.sleep(0.2)
        t_done = time.monotonic()
        cpu = proc_cpu_seconds(proc.pid) - cpu0
        comp_cpu = {name: proc_cpu_seconds(pid) - comp0[name] for name, pid in components.items()}
        rss_peak = max(rss_peak, proc_rss_mib(proc.pid))
        text1 = await asyncio.to_thread(apiserver_metrics, cluster)
        api1, c1 = requests_by_verb_resource(text1), requests_by_verb_resource(text1, "409")
        j1 = await asyncio.to_thread(jangar_metrics, port)
        await runs_inf.stop()
        await jobs_inf.stop()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        await client.close()

    def reconciles(text: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for labels, value in samples(text, "controller_runtime_reconcile_total"):
            out[labels.get("controller", "")] += value
        return out

    def mean_seconds(text0: str, text1: str, metric: str, **match: str) -> dict[str, float]:
        """Mean of a histogram over the measurement, per `group` label value."""
        out: dict[str, float] = {}
        sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for sign, text in ((-1, text0), (1, text1)):
            for labels, value in samples(text, metric + "_sum"):
                if all(labels.get(k) == v for k, v in match.items()):
                    sums[labels.get("verb") or labels.get("controller") or ""][0] += sign * value
            for labels, value in samples(text, metric + "_count"):
                if all(labels.get(k) == v for k, v in match.items()):
                    sums[labels.get("verb") or labels.get("controller") or ""][1] += sign * value
        for key, (total, count) in sums.items():
            if count > 0:
                out[key] = round(total / count * 1000, 1)
        return out

    r0, r1 = reconciles(j0), reconciles(j1)
    rec = {k: round((r1[k] - r0.get(k, 0)) / n, 2) for k in r1 if r1[k] - r0.get(k, 0) > 0}
    api = {k: round((api1[k] - api0.get(k, 0)) / n, 2) for k in api1 if api1[k] - api0.get(k, 0) >= 0.5}
    api = dict(sorted(api.items(), key=lambda kv: -kv[1]))
    writes = {k: v for k, v in api.items() if k.split()[0] in ("POST", "PUT", "PATCH", "DELETE", "APPLY")}
    to_job = [job_seen[k] - sent[k] for k in job_seen if k in sent]
    to_done = [done_seen[k] - sent[k] for k in done_seen if k in sent]
    last_job = max(job_seen.values(), default=t0)
    last_done = max(done_seen.values(), default=t0)
    return {
        "kind": top.kind,
        "runs": n,
        "paced_rate": rate,
        "workers": workers,
        "creates_per_second": round(n / (t_created - t0), 1),
        "jobs_seen": len(job_seen),
        "succeeded": len(done_seen),
        "failed": len(failed),
        "runs_per_second_to_job": round(len(job_seen) / (last_job - t0), 2) if job_seen else None,
        "runs_per_second_to_succeeded": round(len(done_seen) / (last_done - t0), 2) if done_seen else None,
        "create_to_job_p50_ms": ms(percentile(to_job, 0.5)),
        "create_to_job_p99_ms": ms(percentile(to_job, 0.99)),
        "create_to_succeeded_p50_ms": ms(percentile(to_done, 0.5)),
        "create_to_succeeded_p99_ms": ms(percentile(to_done, 0.99)),
        "wall_seconds": round(t_done - t0, 1),
        "jangar_cpu_seconds": round(cpu, 2),
        "jangar_cpu_ms_per_run": round(cpu / n * 1000, 2),
        "component_cpu_ms_per_run": {name: round(sec / n * 1000, 2) for name, sec in comp_cpu.items()},
        "cores_busy_on_the_cluster": round((cpu + sum(comp_cpu.values())) / (t_done - t0), 2),
        "jangar_rss_idle_mib": round(rss_idle, 1),
        "jangar_rss_peak_mib": round(rss_peak, 1),
        "reconciles_per_run": rec,
        "agentrun_reconcile_mean_ms": mean_seconds(
            j0, j1, "controller_runtime_reconcile_time_seconds", controller="agentrun"
        ),
        "agentrun_queue_wait_mean_ms": mean_seconds(
            j0, j1, "workqueue_queue_duration_seconds", name="agentrun"
        ),
        "jangar_request_mean_ms_by_verb": mean_seconds(j0, j1, "rest_client_request_duration_seconds"),
        "api_requests_per_run_total": round(sum(api.values()), 2),
        "api_writes_per_run": writes,
        "api_conflicts_409_per_run": {
            k: round((c1[k] - c0.get(k, 0)) / n, 2) for k in c1 if c1[k] > c0.get(k, 0)
        },
        "api_requests_per_run": api,
        "jangar_log": str(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1000])
    parser.add_argument("--rate", type=float, help="pace creates at this many per second (default: flat out)")
    parser.add_argument("--create-concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4, help="JANGAR_AGENTRUN_WORKERS")
    parser.add_argument("--nodes", type=int, default=2, help="kwok fake nodes")
    parser.add_argument(
        "--profile",
        type=Path,
        help="run jangar under pyinstrument, write a .pyisession here (render: python -m pyinstrument --load FILE)",
    )
    parser.add_argument(
        "--orchestration",
        action="store_true",
        help="N OrchestrationRuns of a 5-step DAG instead of N AgentRuns",
    )
    parser.add_argument("--keep", action="store_true", help="keep the cluster work directory")
    args = parser.parse_args()
    configure_logging(json=True, level="warning")
    print(
        json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(), "loadavg": os.getloadavg()}),
        flush=True,
    )
    for n in args.runs:
        workdir = Path(tempfile.mkdtemp(prefix="agentrun-bench-"))
        cluster = LocalCluster(workdir, kwok=True, nodes=args.nodes).up()  # fresh API server per measurement
        try:
            install_crds(cluster.kubeconfig)
            result = asyncio.run(
                measure(
                    cluster,
                    n,
                    args.rate,
                    args.create_concurrency,
                    args.workers,
                    args.profile,
                    args.orchestration,
                )
            )
        finally:
            cluster.down()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

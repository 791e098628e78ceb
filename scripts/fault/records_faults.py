#!/usr/bin/env python3
"""Fault scenarios for run records (issue 12), on the local kwok stack: prints numbers, not a CI test.

Both start a kwok cluster (real kube-controller-manager: Jobs really complete), a local Postgres, and
`jangar serve` as a separate process (leader election off: one replica), then burst AgentRuns (`job`
runtime) into one namespace and check, at the end:

* every run exists and is terminal (0 lost runs), and at most one Job was ever seen per run (0 duplicate
  Jobs: a sampler lists the Jobs every second during the burst; Jobs have no TTL here);
* every run has its record in Postgres with the run's phase and exit code (0 lost records).

Scenarios::

    kill       kill -9 the controller process --kills times (every --kill-interval s) during a burst of
               --runs runs; report the time to drain (all terminal) and to all records
    db-outage  stop Postgres for --outage-seconds in the middle of a burst of --runs runs: reconciling goes
               on (runs finishing during the outage are counted), /ready shows the outage while it lasts
               (polled every second), and every record is present afterwards

Usage::

    PYTHONPATH=. .venv/bin/python scripts/fault/records_faults.py kill --runs 1000 --kills 20
    PYTHONPATH=. .venv/bin/python scripts/fault/records_faults.py db-outage --runs 200 --outage-seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg  # type: ignore[import-untyped]

from jangar.api.contract import is_terminal
from jangar.controllers.kinds import AGENTRUNS, JOBS
from jangar.dev.cluster import LocalCluster
from jangar.dev.postgres import LocalPostgres
from jangar.runtime import Client, NotFoundError
from jangar.runtime.resources import NAMESPACES, SERVICE_ACCOUNTS
from tests.envtest.controllers_fixtures import RUNNER_IMAGE, apply_basics, run
from tests.support.crds import install_crds

ROOT = Path(__file__).resolve().parents[2]
NS = "fault"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Controller:
    """`jangar serve` in its own process group, so kill -9 is a real crash."""

    def __init__(self, kubeconfig: Path, database_url: str, port: int, logs: Path, env: dict[str, str]):
        self.kubeconfig, self.port, self.logs = kubeconfig, port, logs
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "PGSSLMODE": "disable",
            "JANGAR_AGENTS_CONTROLLER_NAMESPACES": NS,
            "JANGAR_AGENT_RUNNER_IMAGE": RUNNER_IMAGE,
            "JANGAR_AGENT_RUNNER_JOB_TTL_SECONDS": "0",
            "JANGAR_LEADER_ELECTION_ENABLED": "false",
            "JANGAR_LOG_LEVEL": "warning",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        out = (self.logs / f"controller-{self.starts:02d}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from jangar.cli import main; sys.exit(main())",
                "serve",
                "--kubeconfig",
                str(self.kubeconfig),
                "--bind-address",
                f"127.0.0.1:{self.port}",
            ],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def ready(self) -> tuple[int, dict[str, Any]] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=3) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")
        except (OSError, ValueError):
            return None


class JobSampler:
    """Every Job uid ever seen, by the uid of the run that controls it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.by_run: dict[str, set[str]] = defaultdict(set)
        self.task: asyncio.Task[None] | None = None

    async def sample(self) -> None:
        for job in (await self.client.list(JOBS, NS)).items:
            for owner in job["metadata"].get("ownerReferences") or ():
                if owner.get("controller"):
                    self.by_run[owner["uid"]].add(job["metadata"]["uid"])

    async def _loop(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception as err:  # an apiserver hiccup under load: sample again
                print(f"  (job sample failed: {err!r})")
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.sample()


async def wait_for(predicate: Any, timeout: float, what: str, interval: float = 1.0) -> float:
    started = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


async def runs_by_name(client: Client) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in (await client.list(AGENTRUNS, NS)).items}


async def records(database_url: str) -> dict[str, tuple[str | None, int | None, str | None]]:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT run_uid, phase, exit_code, provider FROM agent_run_records")
    finally:
        await conn.close()
    return {r["run_uid"]: (r["phase"], r["exit_code"], r["provider"]) for r in rows}


async def create_burst(client: Client, names: list[str], parallel: int = 16) -> None:
    gate = asyncio.Semaphore(parallel)

    async def one(name: str) -> None:
        async with gate:
            await client.create(AGENTRUNS, run(NS, name))

    await asyncio.gather(*(one(n) for n in names))


def terminal_count(runs: dict[str, dict[str, Any]], names: list[str]) -> int:
    return sum(is_terminal(((runs.get(n) or {}).get("status") or {}).get("phase")) for n in names)


async def verdict(
    client: Client, database_url: str, names: list[str], sampler: JobSampler, record_timeout: float
) -> dict[str, Any]:
    await sampler.stop()
    runs = await runs_by_name(client)
    lost_runs = [n for n in names if n not in runs]
    not_terminal = [
        n for n in names if n in runs and not is_terminal((runs[n].get("status") or {}).get("phase"))
    ]
    uid_of = {n: runs[n]["metadata"]["uid"] for n in names if n in runs}
    duplicates = {uid: len(jobs) for uid, jobs in sampler.by_run.items() if len(jobs) > 1}

    async def records_match() -> bool:
        rows = await records(database_url)
        return all(
            rows.get(uid, (None,))[0] == (runs[n].get("status") or {}).get("phase")
            for n, uid in uid_of.items()
        )

    started = time.monotonic()
    with contextlib.suppress(TimeoutError):  # counted below
        await wait_for(records_match, record_timeout, "every record", interval=1.0)
    record_lag = time.monotonic() - started
    rows = await records(database_url)
    missing = [n for n, uid in uid_of.items() if uid not in rows]
    wrong = [
        n
        for n, uid in uid_of.items()
        if uid in rows and rows[uid][0] != (runs[n].get("status") or {}).get("phase")
    ]
    exit_codes = Counter(rows[uid][1] for uid in uid_of.values() if uid in rows)
    providers = Counter(rows[uid][2] for uid in uid_of.values() if uid in rows)
    phases = Counter((runs[n].get("status") or {}).get("phase") for n in uid_of)
    return {
        "runs": len(names),
        "phases": dict(phases),
        "lost_runs": len(lost_runs),
        "not_terminal": len(not_terminal),
        "runs_with_a_job": sum(1 for uid in uid_of.values() if sampler.by_run.get(uid)),
        "duplicate_jobs": sum(n - 1 for n in duplicates.values()),
        "records": sum(1 for uid in uid_of.values() if uid in rows),
        "lost_records": len(missing),
        "records_with_a_wrong_phase": len(wrong),
        "records_exit_codes": {str(k): v for k, v in exit_codes.items()},
        "records_providers": {str(k): v for k, v in providers.items()},
        "seconds_from_all_terminal_to_all_records": round(record_lag, 1),
    }


async def setup(workdir: Path) -> tuple[LocalCluster, LocalPostgres, str, Client]:
    t0 = time.monotonic()
    cluster = LocalCluster(workdir / "kwok", kwok=True, nodes=2).up()
    try:
        install_crds(cluster.kubeconfig)
        # its own temp dir: initdb runs as an unprivileged user, who cannot enter a mkdtemp (0700) workdir
        pg = LocalPostgres().start()
    except BaseException:
        cluster.down()  # a failed set-up leaves no cluster behind
        raise
    database_url = pg.create_database("jangar")
    client = await Client.from_kubeconfig(str(cluster.kubeconfig), field_manager="fault-script")
    await client.create(NAMESPACES, {"metadata": {"name": NS}})

    async def default_sa() -> bool:
        try:
            await client.get(SERVICE_ACCOUNTS, "default", NS)
        except NotFoundError:
            return False
        return True

    await wait_for(default_sa, 60, "the default ServiceAccount", interval=0.2)
    await apply_basics(client, NS)
    print(f"stack up in {time.monotonic() - t0:.0f}s (kwok cluster, Postgres); workdir {workdir}")
    return cluster, pg, database_url, client


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


async def scenario_kill(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    cluster, pg, database_url, client = await setup(workdir)
    controller = Controller(cluster.kubeconfig, database_url, free_port(), workdir, args.env)
    sampler = JobSampler(client)
    names = [f"k-{i:04d}" for i in range(args.runs)]
    try:
        controller.start()
        await wait_for(lambda: _async(controller.ready() is not None), 120, "the controller's /ready", 0.5)
        sampler.start()
        started = time.monotonic()
        burst = asyncio.create_task(create_burst(client, names))
        kills = 0
        loads = []
        exposed = 0
        rng = random.Random(args.seed)
        while kills < args.kills:
            await wait_for(lambda: _async(_ready_ok(controller)), 180, "the controller ready", 0.2)
            await asyncio.sleep(rng.uniform(0.5, args.kill_interval))  # mid-work: a random moment
            runs = await runs_by_name(client)
            done = terminal_count(runs, names)
            if done == len(names):
                print(f"  all runs terminal after {kills} kills: stopping the kills early")
                break
            controller.kill9()
            kills += 1
            loads.append(os.getloadavg()[0])
            # terminal runs whose terminal record is not in Postgres at the crash: only a re-offer saves them
            rows = await records(database_url)
            runs = await runs_by_name(client)
            unrecorded = sum(
                1
                for r in runs.values()
                if is_terminal((r.get("status") or {}).get("phase"))
                and rows.get(r["metadata"]["uid"], (None,))[0] != (r.get("status") or {}).get("phase")
            )
            exposed += unrecorded
            print(
                f"  kill -9 #{kills} at {time.monotonic() - started:5.1f}s: {len(runs)} created, "
                f"{terminal_count(runs, names)} terminal, {unrecorded} of them without their record"
            )
            controller.start()
        await burst
        drain = await wait_for(
            lambda: _terminal(client, names), args.timeout, "every run terminal", interval=1.0
        )
        drained = time.monotonic() - started
        result = await verdict(client, database_url, names, sampler, args.record_timeout)
        result |= {
            "scenario": "kill",
            "kills": kills,
            "kill_interval_seconds": args.kill_interval,
            "seconds_to_drain": round(drained, 1),
            "seconds_after_last_kill_to_drain": round(drain, 1),
            "controller_starts": controller.starts,
            "terminal_runs_without_their_record_at_a_kill": exposed,
            "load_average_at_kills_max": round(max(loads or [0.0]), 1),
            "machine": load(),
        }
        return result
    finally:
        controller.stop()
        await client.close()
        pg.stop()
        cluster.down()


async def scenario_db_outage(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    cluster, pg, database_url, client = await setup(workdir)
    controller = Controller(cluster.kubeconfig, database_url, free_port(), workdir, args.env)
    sampler = JobSampler(client)
    names = [f"d-{i:04d}" for i in range(args.runs)]
    try:
        controller.start()
        await wait_for(lambda: _async(controller.ready() is not None), 120, "the controller's /ready", 0.5)
        sampler.start()
        started = time.monotonic()
        burst = asyncio.create_task(create_burst(client, names))
        await wait_for(
            lambda: _terminal_at_least(client, names, len(names) // 3), args.timeout, "a third terminal"
        )
        before = terminal_count(await runs_by_name(client), names)
        outage_at = time.monotonic() - started
        # Cut the controller's open connections first: a SIGTERM'd Postgres (smart shutdown) would let
        # them keep writing until it exits, so the outage would start late.
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()")
        pg.pause()
        print(f"  postgres stopped at {outage_at:.1f}s with {before} runs terminal")
        states: Counter[str] = Counter()
        ready_codes: Counter[int] = Counter()
        max_pending = 0
        outage_end = time.monotonic() + args.outage_seconds
        while time.monotonic() < outage_end:
            answer = controller.ready()
            if answer is not None:
                code, body = answer
                ready_codes[code] += 1
                db = body.get("database") or {}
                states[str(db.get("state"))] += 1
                max_pending = max(max_pending, int(db.get("pending") or 0))
            await asyncio.sleep(1.0)
        during = terminal_count(await runs_by_name(client), names)
        pg.resume()
        print(f"  postgres back after {args.outage_seconds:.0f}s with {during} runs terminal")
        await burst
        recovered_at = time.monotonic()
        after_states: Counter[str] = Counter()

        async def ok_again() -> bool:
            answer = controller.ready()
            state = str(((answer or (0, {}))[1].get("database") or {}).get("state"))
            after_states[state] += 1
            return state == "ok"

        ready_ok = await wait_for(ok_again, 120, "/ready's database state ok again", interval=0.5)
        await wait_for(lambda: _terminal(client, names), args.timeout, "every run terminal", interval=1.0)
        drained = time.monotonic() - started
        result = await verdict(client, database_url, names, sampler, args.record_timeout)
        result |= {
            "scenario": "db-outage",
            "outage_seconds": args.outage_seconds,
            "outage_started_at_seconds": round(outage_at, 1),
            "terminal_at_outage_start": before,
            "terminal_at_outage_end": during,
            "runs_finished_during_outage": during - before,
            "ready_polls_during_outage_by_database_state": dict(states),
            "ready_http_codes_during_outage": {str(k): v for k, v in ready_codes.items()},
            "max_pending_records_during_outage": max_pending,
            "seconds_until_ready_reports_ok_after_outage": round(ready_ok, 1),
            "seconds_to_drain": round(drained, 1),
            "seconds_from_postgres_back_to_all_terminal_and_recorded": None,
            "machine": load(),
        }
        result["seconds_from_postgres_back_to_all_terminal_and_recorded"] = round(
            time.monotonic() - recovered_at, 1
        )
        return result
    finally:
        controller.stop()
        await client.close()
        pg.stop()
        cluster.down()


def _ready_ok(controller: Controller) -> bool:
    answer = controller.ready()
    return answer is not None and answer[0] == 200


async def _async(value: bool) -> bool:
    return value


async def _terminal(client: Client, names: list[str]) -> bool:
    return terminal_count(await runs_by_name(client), names) == len(names)


async def _terminal_at_least(client: Client, names: list[str], count: int) -> bool:
    return terminal_count(await runs_by_name(client), names) >= count


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=["kill", "db-outage"])
    parser.add_argument("--runs", type=int, default=None, help="default: 1000 (kill), 200 (db-outage)")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument(
        "--kill-interval",
        type=float,
        default=6.0,
        help="a kill comes 0.5 s to this long after the restart is ready",
    )
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--outage-seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=50, help="running runs per namespace")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the drain")
    parser.add_argument("--record-timeout", type=float, default=300.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.runs is None:
        args.runs = 1000 if args.scenario == "kill" else 200
    args.env = {
        "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE": str(args.concurrency),
        "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_AGENT": str(args.concurrency),
        "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_CLUSTER": str(args.concurrency),
        "JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE": str(args.runs + 10),
        "JANGAR_AGENTS_CONTROLLER_QUEUE_CLUSTER": str(args.runs + 10),
        "JANGAR_AGENTS_CONTROLLER_RATE_NAMESPACE": str(args.runs * 10),
        "JANGAR_AGENTS_CONTROLLER_RATE_CLUSTER": str(args.runs * 10),
    }
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"records-fault-{args.scenario}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"scenario {args.scenario}: {args.runs} runs; {load()}")
    run_scenario = scenario_kill if args.scenario == "kill" else scenario_db_outage
    result = asyncio.run(run_scenario(args, workdir))
    print(json.dumps(result, indent=2))
    ok = (
        result["lost_runs"] == 0
        and result["not_terminal"] == 0
        and result["duplicate_jobs"] == 0
        and result["lost_records"] == 0
        and result["records_with_a_wrong_phase"] == 0
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

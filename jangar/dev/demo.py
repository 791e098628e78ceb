"""The main job, end to end on this machine, with progress printed as it goes.

Two shapes:

* `node` (the default): the local control plane with a real node (containerd + kubelet, cluster DNS,
  kube-proxy), the images built without Docker, Postgres behind the `agents-postgres` Service, the chart
  installed with helm as the seed README says (`--values values-local.yaml`; only the image names differ,
  since nothing can be pulled here) so jangar runs in its own pod, `/health` through
  `kubectl port-forward svc/agents`, `helm test`, the seed's samples applied and the sample AgentRun's agent
  executed for real in containers. The sample names the reference's agent image
  (`registry.ide-newton.ts.net/lab/codex-universal:latest`), which cannot be pulled here either: the node
  has the test-agent image under that name, whose `/usr/local/bin/agent-runner` is a stand-in that reads the
  run's specs and says what it would do (`scripts/build-image.sh`).
* `kwok` (`--kwok`): no container runs; jangar is a local process and kwok completes the Pods. Faster.

`jangar dev demo` leaves everything running and prints how to look at it and how to stop it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from jangar.api.contract import is_terminal
from jangar.dev.assets import find_assets, kubectl_binary, repo_root
from jangar.dev.cluster import LocalCluster, stop_cluster
from jangar.dev.images import build_script_image
from jangar.dev.incluster import ChartRelease, InClusterError
from jangar.dev.postgres import LocalPostgres
from jangar.dev.processes import ProcessGroup, free_port, stop_recorded

NAMESPACE = "agents"
RELEASE = "agents"
SAMPLES = (
    "agentprovider-sample.yaml",
    "agent-sample.yaml",
    "memory-sample.yaml",
    "implementationspec-sample.yaml",
    "agentrun-sample.yaml",
)
RUN_NAME = "codex-run-sample"
SAMPLE_AGENT_IMAGE = "registry.ide-newton.ts.net/lab/codex-universal:latest"
"""The image the chart's runner default and the sample AgentRun name (the reference's agent image)."""


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Demo:
    workdir: Path
    timeout: float = 300.0
    node: bool = True

    @property
    def chart(self) -> Path:
        return repo_root() / "charts" / "agents"

    def _kubectl(self, cluster: LocalCluster, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [str(kubectl_binary()), "--kubeconfig", str(cluster.kubeconfig), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def run(self) -> int:
        return self._run_node() if self.node else self._run_kwok()

    def _fresh_dirs(self) -> tuple[Path, Path, Path]:
        dirs = (self.workdir / "cluster", self.workdir / "postgres", self.workdir / "jangar")
        for d in dirs:
            stop_cluster(d) if d == dirs[0] else stop_recorded(d)
            shutil.rmtree(d, ignore_errors=True)
        return dirs

    def _run_node(self) -> int:
        started = time.monotonic()
        cluster_dir, pg_dir, _ = self._fresh_dirs()
        say("building the images without Docker (cached by content hash): jangar, curl, test-agent")
        built = {flag: build_script_image(flag) for flag in ("--jangar", "--curl", "--test-agent")}
        for flag, (ref, _) in built.items():
            say(f"  {flag[2:]}: {ref}")

        say("starting the local control plane with a real node (containerd, kubelet, DNS, kube-proxy)")
        cluster = LocalCluster(cluster_dir, node=True, nodes=0).up()
        assert cluster.real_node is not None
        node_ip = cluster.real_node.node_ip
        say(f"  up at {cluster.server} in {cluster.timings['total']}s; node {cluster.node_name} ({node_ip})")
        for ref, archive in built.values():
            cluster.import_image(archive, ref.rsplit(":", 1)[0])
        agent_ref = built["--test-agent"][0]
        cluster.alias_image(agent_ref, SAMPLE_AGENT_IMAGE)
        say(f"  images imported; {SAMPLE_AGENT_IMAGE} is the stand-in agent ({agent_ref})")

        say(f"starting Postgres on {node_ip} behind the Service {NAMESPACE}/agents-postgres")
        pg = LocalPostgres(workdir=pg_dir, listen=("127.0.0.1", node_ip)).start()
        release = ChartRelease(cluster, NAMESPACE, RELEASE)
        release.expose_postgres(pg, node_ip)

        values = self.chart / "values-local.yaml"
        sets = {}
        for flag, key in (("--jangar", "image"), ("--curl", "tests.image")):
            repository, tag = built[flag][0].rsplit(":", 1)
            sets[f"{key}.repository"], sets[f"{key}.tag"] = repository, tag
        say(
            f"helm install {RELEASE} charts/agents --namespace {NAMESPACE} --create-namespace "
            f"--values charts/agents/values-local.yaml {' '.join(f'--set-string {k}={v}' for k, v in sets.items())}"
        )
        t = time.monotonic()
        release.install([values], sets)
        say(f"  jangar is running in its pod ({time.monotonic() - t:.0f}s)")
        say(f"kubectl -n {NAMESPACE} port-forward svc/{RELEASE} …:80; curl -sf http://127.0.0.1:…/health")
        say(f"  /health: {release.health().strip()}")
        say(f"helm test {RELEASE}")
        tested = release.test()
        say("  " + " ".join(next((line for line in tested.splitlines() if "Phase:" in line), "").split()))

        for sample in SAMPLES:
            release.kubectl("apply", "-n", NAMESPACE, "-f", str(self.chart / "examples" / sample))
            say(f"applied examples/{sample}")
        say(f"following AgentRun {NAMESPACE}/{RUN_NAME}")
        phase = self._follow(cluster, None)
        print(release.kubectl("get", "agentruns,jobs,pods", "-n", NAMESPACE, "-o", "wide"))
        label = f"agents.proompteng.ai/agent-run={RUN_NAME}"
        with contextlib.suppress(InClusterError):
            for line in release.kubectl("logs", "-n", NAMESPACE, "-l", label, "--tail=20").splitlines():
                if line.startswith("agent-runner:"):
                    say(f"  agent log: {line}")
        if phase:
            say(
                f"run record in Postgres (name|phase|reason|transitions):\n{self._record(pg, phase, 'agents')}"
            )
        elapsed = time.monotonic() - started
        if phase != "Succeeded":
            say(
                f"AgentRun ended as {phase or 'nothing (timed out)'} after {elapsed:.0f}s\n{release.diagnose()}"
            )
            return 1
        say(f"AgentRun {RUN_NAME} Succeeded in real containers; the whole main job took {elapsed:.0f}s")
        print(
            "\nEverything is still running:\n"
            f"  export KUBECONFIG={cluster.kubeconfig}\n"
            f"  kubectl get agentruns,pods -n {NAMESPACE}\n"
            f"  kubectl -n {NAMESPACE} port-forward svc/{RELEASE} 8080:80 & curl -sf http://127.0.0.1:8080/health\n"
            "Stop it with: scripts/run-local.sh down"
        )
        return 0

    def _run_kwok(self) -> int:
        started = time.monotonic()
        cluster_dir, pg_dir, app_dir = self._fresh_dirs()

        say("starting the local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
        cluster = LocalCluster(cluster_dir, kwok=True, nodes=2).up()
        say(f"  up at {cluster.server} in {cluster.timings['total']}s; logs in {cluster.log_dir}")

        say("starting Postgres")
        pg = LocalPostgres(workdir=pg_dir).start()
        pg.psql("CREATE DATABASE jangar")
        database_url = pg.dsn("jangar")
        say(f"  DATABASE_URL={database_url}")

        say(f"helm install {RELEASE} charts/agents (CRDs, RBAC, ServiceAccounts) into namespace {NAMESPACE}")
        helm = find_assets().binary("helm")
        helm_install = subprocess.run(
            [
                str(helm), "install", RELEASE, str(self.chart), "--kubeconfig", str(cluster.kubeconfig),
                "--namespace", NAMESPACE, "--create-namespace", "--wait", "--timeout", "120s",
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if helm_install.returncode != 0:
            raise RuntimeError(f"helm install failed: {helm_install.stderr.strip()}")
        say(
            "  "
            + self._kubectl(cluster, "get", "crd", "-o", "name").count("\n").__str__()
            + " CRDs installed"
        )

        port = free_port()
        say(f"starting jangar (controllers, API, metrics) as a local process on :{port}")
        group = ProcessGroup(app_dir)
        env = {
            "JANGAR_AGENTS_CONTROLLER_NAMESPACES": NAMESPACE,
            "JANGAR_POD_NAMESPACE": NAMESPACE,
            "JANGAR_HTTP_PORT": str(port),
            "DATABASE_URL": database_url,
            "JANGAR_MIGRATIONS": "auto",
        }
        jangar = group.start(
            "jangar",
            [sys.executable, "-m", "jangar.cli", "serve", "--kubeconfig", str(cluster.kubeconfig)],
            env=env,
        )

        def ready() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as resp:
                return int(resp.status) == 200

        group.wait_until(jangar, ready, 120, "jangar /ready")
        say(f"  ready; logs in {jangar.log_path}")

        for sample in SAMPLES:
            self._kubectl(cluster, "apply", "-n", NAMESPACE, "-f", str(self.chart / "examples" / sample))
            say(f"applied examples/{sample}")

        say(f"following AgentRun {NAMESPACE}/{RUN_NAME}")
        phase = self._follow(cluster, jangar.log_path)
        print(
            self._kubectl(cluster, "get", "agentruns,jobs,pods", "-n", NAMESPACE, "-o", "wide", check=False)
        )
        if phase:
            say(
                f"run record in Postgres (name|phase|reason|transitions):\n{self._record(pg, phase, 'jangar')}"
            )
        elapsed = time.monotonic() - started
        if phase != "Succeeded":
            say(
                f"AgentRun ended as {phase or 'nothing (timed out)'} after {elapsed:.0f}s; see {jangar.log_path}"
            )
            return 1
        say(f"AgentRun {RUN_NAME} Succeeded; the whole main job took {elapsed:.0f}s")
        print(
            "\nEverything is still running:\n"
            f"  export KUBECONFIG={cluster.kubeconfig}\n"
            f"  kubectl get agentruns -n {NAMESPACE}\n"
            "  # the API needs a bearer token of an identity allowed to list agentruns (docs/security.md):\n"
            f"  TOKEN=$(kubectl -n {NAMESPACE} create token <serviceaccount>)\n"
            '  curl -s -H "Authorization: Bearer $TOKEN" '
            f"http://127.0.0.1:{port}/v1/agent-runs?namespace={NAMESPACE}\n"
            f"  curl -s http://127.0.0.1:{port}/metrics | grep jangar_\n"
            "Stop it with: scripts/run-local.sh down"
        )
        return 0

    def _record(self, pg: LocalPostgres, phase: str, database: str) -> str:
        """The run's row once the recorder has written its terminal phase (it writes asynchronously)."""
        query = (
            "SELECT r.name, r.phase, coalesce(r.reason, ''), count(t.id) FROM agent_run_records r "
            "LEFT JOIN agent_run_transitions t ON t.run_uid = r.run_uid "
            f"WHERE r.name = '{RUN_NAME}' GROUP BY r.name, r.phase, r.reason"
        )
        row = ""
        for _ in range(60):
            try:
                row = pg.psql(query, database).strip()
            except RuntimeError:
                row = ""  # migrations may still be running
            if row and row.split("|")[1] == phase:
                return row
            time.sleep(1.0)
        return row or "(not written yet)"

    def _follow(self, cluster: LocalCluster, log_path: Path | None) -> str:
        deadline = time.monotonic() + self.timeout
        last = ""
        while time.monotonic() < deadline:
            out = self._kubectl(
                cluster, "get", "agentrun", RUN_NAME, "-n", NAMESPACE, "-o", "json", check=False
            )
            if out:
                status = json.loads(out).get("status") or {}
                phase = status.get("phase", "")
                conditions = ", ".join(
                    f"{c['type']}={c['status']}" + (f"({c.get('reason')})" if c.get("reason") else "")
                    for c in status.get("conditions") or []
                )
                steps = ", ".join(
                    f"{s.get('name')}:{s.get('phase')}"
                    for s in (status.get("workflow") or {}).get("steps") or []
                )
                line = f"  phase={phase or 'Pending'} {conditions}" + (f" steps[{steps}]" if steps else "")
                if line != last:
                    say(line)
                    last = line
                if is_terminal(phase):
                    return str(phase)
            time.sleep(1.0)
        say(f"  timed out after {self.timeout:.0f}s")
        if log_path is not None:
            print("\n".join(log_path.read_text(errors="replace").splitlines()[-20:]))
        return ""


def down(workdir: Path) -> list[str]:
    stopped = []
    for part in ("jangar", "postgres"):
        stopped += stop_recorded(workdir / part)
    # the cluster may be a node shape (`jangar dev cluster up --node`): its teardown undoes host changes
    return stopped + stop_cluster(workdir / "cluster")

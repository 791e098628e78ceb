"""The chart installed for real on the node shape: jangar in its own pod, as a user runs it.

What a cluster gives a release and the node shape must stand in for:

* images: nothing can be pulled here, so the jangar and curl images built by `scripts/build-image.sh` are
  imported into the node and named in `--set image.*` / `tests.image.*` (the only values that differ from
  the seed's `helm install ... --values values-local.yaml`);
* the database: `values-local.yaml` expects Postgres as the Service `agents-postgres` in the release
  namespace. `expose_postgres` creates that Service without a selector and an EndpointSlice pointing at
  the local Postgres on the node address, so the pod reaches it by the same name through the cluster DNS
  and kube-proxy, exactly as it would reach an in-cluster Postgres.

Then `helm install --wait`, `kubectl port-forward svc/agents` + GET /health, and `helm test`.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jangar.dev.assets import find_assets, kubectl_binary, repo_root
from jangar.dev.cluster import LocalCluster
from jangar.dev.postgres import LocalPostgres
from jangar.dev.processes import free_port

POSTGRES_SERVICE = "agents-postgres"
DATABASE = ("agents", "agents", "agents")  # user, password, database of values-local.yaml's URL


class InClusterError(RuntimeError):
    """A step of installing or checking the in-cluster release failed; the message says which."""


def _run(argv: Sequence[str], timeout: float, what: str) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InClusterError(f"{what} timed out after {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise InClusterError(f"{what} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    return done.stdout


@dataclass
class ChartRelease:
    """One helm release of `charts/agents` on a node cluster."""

    cluster: LocalCluster
    namespace: str = "agents"
    name: str = "agents"

    @property
    def chart(self) -> Path:
        return repo_root() / "charts" / "agents"

    def kubectl(self, *args: str, timeout: float = 60.0) -> str:
        argv = [str(kubectl_binary()), "--kubeconfig", str(self.cluster.kubeconfig), *args]
        return _run(argv, timeout, f"kubectl {' '.join(args)}")

    def helm(self, *args: str, timeout: float = 300.0) -> str:
        argv = [str(find_assets().binary("helm")), "--kubeconfig", str(self.cluster.kubeconfig), *args]
        return _run(argv, timeout, f"helm {' '.join(args[:2])}")

    def expose_postgres(self, pg: LocalPostgres, node_ip: str) -> None:
        """`agents-postgres:5432` in the namespace → the local Postgres on the node address."""
        user, password, database = DATABASE
        if pg.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'").strip() != "1":
            pg.psql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        if pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'").strip() != "1":
            pg.psql(f"CREATE DATABASE {database} OWNER {user}")
        manifest = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {self.namespace}}}
---
apiVersion: v1
kind: Service
metadata: {{name: {POSTGRES_SERVICE}, namespace: {self.namespace}}}
spec:
  ports: [{{name: postgres, port: 5432, targetPort: {pg.port}, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {POSTGRES_SERVICE}-local
  namespace: {self.namespace}
  labels: {{kubernetes.io/service-name: {POSTGRES_SERVICE}}}
addressType: IPv4
ports: [{{name: postgres, port: {pg.port}, protocol: TCP}}]
endpoints: [{{addresses: ["{node_ip}"], conditions: {{ready: true}}}}]
"""
        path = self.cluster.workdir / "postgres-service.yaml"
        path.write_text(manifest)
        self.kubectl("apply", "-f", str(path))

    def install(
        self,
        values: Sequence[Path],
        sets: Mapping[str, str],
        timeout: float = 300.0,
        chart: str | None = None,
        extra: Sequence[str] = (),
    ) -> str:
        """`helm upgrade --install --wait` (idempotent: a rerun upgrades the release in place) of the chart
        directory, or of `chart` (e.g. `oci://127.0.0.1:5000/proompteng/agents` with `extra` flags such as
        `--version` and `--plain-http`)."""
        argv = ["upgrade", "--install", self.name, chart or str(self.chart), "--namespace", self.namespace]
        argv += list(extra)
        argv += ["--create-namespace", "--wait", "--timeout", f"{int(timeout)}s"]
        for path in values:
            argv += ["--values", str(path)]
        for key, value in sets.items():
            argv += ["--set-string", f"{key}={value}"]
        try:
            return self.helm(*argv, timeout=timeout + 30)
        except InClusterError as exc:
            raise InClusterError(f"{exc}\n{self.diagnose()}") from exc

    def uninstall(self, timeout: float = 120.0) -> None:
        """`helm uninstall --wait`; a release that was never installed is not an error."""
        try:
            self.helm("uninstall", self.name, "--namespace", self.namespace, "--wait", timeout=timeout)
        except InClusterError as exc:
            if "not found" not in str(exc):
                raise

    def diagnose(self) -> str:
        """What a user would look at when the release does not come up: pods, events, the pod's log."""
        parts = []
        for args in (
            ("get", "pods", "-n", self.namespace, "-o", "wide"),
            ("get", "events", "-n", self.namespace, "--sort-by=.lastTimestamp"),
            ("logs", "-n", self.namespace, f"deployment/{self.name}", "--tail=40"),
        ):
            with contextlib.suppress(InClusterError):
                parts.append(f"$ kubectl {' '.join(args)}\n{self.kubectl(*args)}")
        return "\n".join(parts)

    @contextlib.contextmanager
    def port_forward(self, service: str, remote_port: int = 80) -> Iterator[int]:
        """`kubectl port-forward svc/<service> <local>:<remote>` for the duration of the block."""
        local = free_port()
        argv = [
            str(kubectl_binary()),
            "--kubeconfig",
            str(self.cluster.kubeconfig),
            "-n",
            self.namespace,
            "port-forward",
            f"svc/{service}",
            f"{local}:{remote_port}",
        ]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            yield local
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def health(self, timeout: float = 60.0) -> str:
        """GET /health through `kubectl port-forward svc/<release> …:80`, as the seed's "Try it now" does."""
        with self.port_forward(self.name) as port:
            deadline = time.monotonic() + timeout
            last = ""
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                        return str(resp.read().decode())
                except OSError as exc:
                    last = str(exc)
                    time.sleep(0.5)
        raise InClusterError(f"GET /health through port-forward failed for {timeout:.0f}s: {last}")

    def test(self, timeout: float = 180.0) -> str:
        """`helm test`: the chart's test pod curls the Service by its cluster DNS name."""
        return self.helm("test", self.name, "--namespace", self.namespace, "--timeout", f"{int(timeout)}s")

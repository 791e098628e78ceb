"""`jangar serve` as a real process for kwok-tier tests: started with the test's namespace, waited for
until `/ready`, its log kept for failure messages, killed if the test leaves it running."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from jangar.dev.processes import free_port

__all__ = ["ServeProcess", "serve_process"]


@dataclass
class ServeProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def metric(self, name: str, **labels: str) -> float:
        """One sample of `/metrics` (0 when absent)."""
        with urllib.request.urlopen(f"{self.base}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


@contextlib.asynccontextmanager
async def serve_process(
    kubeconfig: Path, namespace: str, tmp_path: Path, *, ready_timeout: float = 120.0, **env: str
) -> AsyncIterator[ServeProcess]:
    port = free_port()
    full_env = {
        **os.environ,
        "JANGAR_AGENTS_CONTROLLER_NAMESPACES": namespace,
        "JANGAR_POD_NAMESPACE": namespace,
        "JANGAR_POD_NAME": "jangar-test-0",
        "JANGAR_HTTP_PORT": str(port),
        **env,
    }
    full_env.pop("DATABASE_URL", None)
    log_path = tmp_path / "jangar.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jangar.cli", "serve", "--kubeconfig", str(kubeconfig)],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        served = ServeProcess(proc, port, log_path)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + ready_timeout
            while not await asyncio.to_thread(_ready, port):
                assert proc.poll() is None, served.log_tail()
                assert loop.time() < deadline, f"jangar serve not ready: {served.log_tail()}"
                await asyncio.sleep(0.2)
            yield served
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

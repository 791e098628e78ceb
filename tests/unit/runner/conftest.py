"""Run ``python -m jangar.runner`` as a real subprocess against a tiny provider script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]

PROVIDER = textwrap.dedent(
    """\
    #!{python}
    import json, os, signal, sys, time
    args = sys.argv[1:]
    mode = os.environ.get("PROVIDER_MODE", "ok")
    print(json.dumps({{"args": args, "cwd": os.getcwd(), "env": {{k: v for k, v in os.environ.items()
          if k.startswith(("PROVIDER_", "AGENT_", "FROM_"))}}}}), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if mode == "fail":
        sys.exit(int(os.environ.get("PROVIDER_EXIT", "3")))
    if mode == "wait":
        def on_term(signum, frame):
            os.write(1, f"provider got {{signal.Signals(signum).name}}\\n".encode())
            os._exit(42)
        signal.signal(signal.SIGTERM, on_term)
        print("ready", flush=True)
        time.sleep(60)
        sys.exit(5)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "orphan":
        if os.fork() == 0:  # child: start a grandchild, then exit at once so the grandchild is orphaned
            if os.fork() == 0:
                time.sleep(0.2)
                os._exit(0)
            os._exit(0)
        time.sleep(1.0)  # the grandchild has exited by now; is it a zombie of the runner?
        runner = os.getppid()
        zombies = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = open(f"/proc/{{entry}}/stat").read()
                except OSError:
                    continue
                fields = stat.rsplit(")", 1)[1].split()
                if fields[0] == "Z" and int(fields[1]) == runner:
                    zombies.append(int(entry))
        print(f"zombies of the runner: {{zombies}}", flush=True)
    if mode == "outputs":
        with open(os.environ["AGENT_OUTPUTS_PATH"], "w") as handle:
            handle.write(os.environ.get("PROVIDER_OUTPUTS", '{{"branch": "codex/7"}}'))
        with open("out.patch", "w") as handle:
            handle.write("patch content\\n")
    if mode == "cat":
        for path in args:
            print(open(path).read(), flush=True)
    """
)


@dataclass
class Workspace:
    """A workspace with run.json, agent-runner.json and the provider script."""

    root: Path
    provider: Path

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def runner_json(self) -> Path:
        return self.root / "agent-runner.json"

    @property
    def status(self) -> dict[str, Any]:
        return json.loads((self.root / ".agent" / "status.json").read_text())

    @property
    def log(self) -> str:
        return (self.root / ".agent" / "runner.log").read_text()

    def write_specs(self, runner: dict[str, Any] | None = None, run: dict[str, Any] | None = None) -> None:
        run_spec = {
            "provider": "test-provider",
            "agentRun": {"name": "run-1", "uid": "uid-1", "namespace": "agents"},
            "implementation": {"text": "fix the bug", "summary": "bug"},
            "parameters": {"stage": "implement", "issueNumber": "7"},
        }
        runner_spec: dict[str, Any] = {
            "provider": "test-provider",
            "binary": str(self.provider),
            "args": [],
            "env": {},
            "inputs": run_spec["parameters"],
            "payloads": {"eventFilePath": str(self.run_json)},
            "artifacts": {
                "statusPath": str(self.root / ".agent" / "status.json"),
                "logPath": str(self.root / ".agent" / "runner.log"),
                "logRetentionSeconds": 604800,
            },
        }
        run_spec.update(run or {})
        runner_spec.update(runner or {})
        self.run_json.write_text(json.dumps(run_spec))
        self.runner_json.write_text(json.dumps(runner_spec))

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
            "AGENT_RUN_SPEC": str(self.run_json),
            "AGENT_RUNNER_SPEC_PATH": str(self.runner_json),
        }
        env.update(extra)
        return env

    def popen(self, env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "jangar.runner"],
            env=env,
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self, env: dict[str, str] | None = None, *, argv: tuple[str, ...] = (), **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jangar.runner", *argv],
            env=env if env is not None else self.env(**extra),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    provider = tmp_path / "bin" / "provider"
    provider.parent.mkdir()
    provider.write_text(PROVIDER.format(python=sys.executable))
    provider.chmod(0o755)
    root = tmp_path / "workspace"
    root.mkdir()
    ws = Workspace(root=root, provider=provider)
    ws.write_specs()
    return ws

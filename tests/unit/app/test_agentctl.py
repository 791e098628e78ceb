"""agentctl's command line: bad input exits 2 with a message; --dry-run prints the manifest."""

from __future__ import annotations

import json
import subprocess
import sys


def _agentctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jangar.agentctl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dry_run_prints_the_readme_workflow_submission() -> None:
    result = _agentctl(
        "run", "submit", "--agent", "codex-agent", "--impl", "codex-impl-sample", "--runtime", "workflow",
        "--workload-image", "registry.example/codex-universal:latest", "--param", "issue=42", "--dry-run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["kind"] == "AgentRun"
    assert manifest["spec"]["runtime"] == {"type": "workflow"}
    assert manifest["spec"]["parameters"] == {"issue": "42"}
    assert manifest["metadata"]["namespace"] == "agents"


def test_unknown_runtime_exits_2() -> None:
    result = _agentctl("run", "submit", "--agent", "a", "--impl", "b", "--runtime", "lambda")
    assert result.returncode == 2
    assert "invalid choice: 'lambda'" in result.stderr


def test_malformed_param_exits_2() -> None:
    result = _agentctl("run", "submit", "--agent", "a", "--impl", "b", "--param", "novalue")
    assert result.returncode == 2
    assert "expected key=value" in result.stderr


def test_invalid_agent_name_exits_2_with_the_reason() -> None:
    result = _agentctl("run", "submit", "--agent", "Not_Valid", "--impl", "b", "--dry-run")
    assert result.returncode == 2
    assert "not a valid Kubernetes name" in result.stderr


def test_jangar_serve_rejects_bad_settings_with_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jangar.cli", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "JANGAR_AGENTS_CONTROLLER_NAMESPACES": "*"},
    )
    assert result.returncode == 2
    assert "JANGAR_AGENTS_CONTROLLER_NAMESPACES" in result.stderr or "rbac.clusterScoped" in result.stderr


def _agentctl_env(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jangar.agentctl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_grpc_mode_unreachable_server_exits_1() -> None:
    from jangar.dev.processes import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = _agentctl_env("--server", address, "run", "list", env={})
    assert result.returncode == 1
    assert result.stderr.startswith("agentctl: unavailable:")
    # The server address can come from the environment as well (and then gRPC mode is used, not kube mode:
    # kube mode would fail on the missing kubeconfig instead).
    result = _agentctl_env("run", "get", "x", env={"AGENTCTL_SERVER": address, "AGENTCTL_TOKEN": "t0ken"})
    assert result.returncode == 1
    assert result.stderr.startswith("agentctl: unavailable:")
    assert "t0ken" not in result.stderr


def test_grpc_mode_still_checks_input_locally_and_dry_run_stays_local() -> None:
    env = {"JANGAR_GRPC_ADDRESS": "127.0.0.1:1"}
    bad = _agentctl_env("run", "submit", "--agent", "Not_Valid", "--impl", "b", env=env)
    assert bad.returncode == 2
    assert "not a valid Kubernetes name" in bad.stderr
    dry = _agentctl_env("run", "submit", "--agent", "a", "--impl", "b", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["kind"] == "AgentRun"

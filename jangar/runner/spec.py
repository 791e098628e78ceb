"""Read the runner's inputs: the run spec (``AGENT_RUN_SPEC``) and the runner spec (``AGENT_RUNNER_SPEC_PATH``).

Both come from the run-spec ConfigMap the controller mounts at ``/workspace/run.json`` and
``/workspace/agent-runner.json`` (reference §3.3). ``agent-runner.json`` keeps the reference's keys
(``provider``, ``inputs``, ``payloads``, ``artifacts``) and adds what the runner needs to start the
provider: ``binary``, ``args`` and ``env`` (already rendered by the controller), and ``inputFiles``.

Rendering happens in the controller, as in the reference: it alone sees the Agent (``agent.spec.env`` is
template-only there). For hand-written specs, ``argsTemplate``/``envTemplate`` are accepted instead and
rendered here from run.json; a spec that has ``args`` or ``env`` is used verbatim and never rendered
twice.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jangar.runner.errors import EXIT_DATAERR, EXIT_NOINPUT, EXIT_USAGE, RunnerError
from jangar.runner.template import render

RUN_SPEC_ENV = "AGENT_RUN_SPEC"
RUNNER_SPEC_ENV = "AGENT_RUNNER_SPEC_PATH"
WORKSPACE_ENV = "AGENT_WORKSPACE"
STATUS_FILE = ".agent/status.json"
LOG_FILE = ".agent/runner.log"


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file the provider expects before it starts (a config file, a prompt)."""

    path: Path
    content: str


@dataclass(frozen=True, slots=True)
class RunnerSpec:
    """Everything needed to start the provider, resolved and validated."""

    binary: str
    args: list[str]
    env: dict[str, str]
    input_files: list[InputFile]
    workspace: Path
    working_dir: Path
    status_path: Path
    log_path: Path
    provider: str | None = None
    agent_run: dict[str, Any] = field(default_factory=dict)
    artifacts: list[tuple[str, Path]] = field(default_factory=list)


def workspace_dir(environ: Mapping[str, str]) -> Path:
    """``AGENT_WORKSPACE``, else the directory holding agent-runner.json (``/workspace`` in a Job), else cwd."""
    if environ.get(WORKSPACE_ENV):
        return Path(environ[WORKSPACE_ENV])
    if environ.get(RUNNER_SPEC_ENV):
        return Path(environ[RUNNER_SPEC_ENV]).parent
    return Path.cwd()


def default_paths(environ: Mapping[str, str]) -> tuple[Path, Path]:
    """Status and log paths to use when the spec cannot be read (so a failure is still reported)."""
    workspace = workspace_dir(environ)
    return workspace / STATUS_FILE, workspace / LOG_FILE


def _read_json(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunnerError(f"{what} is not valid JSON: {exc}", EXIT_DATAERR, "InvalidSpec") from exc
    if not isinstance(value, dict):
        raise RunnerError(
            f"{what} must be a JSON object, got {type(value).__name__}", EXIT_DATAERR, "InvalidSpec"
        )
    return value


def _read_file(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RunnerError(f"{what} file {path} does not exist", EXIT_NOINPUT, "MissingSpec") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RunnerError(f"{what} file {path} cannot be read: {exc}", EXIT_NOINPUT, "MissingSpec") from exc


def load_run_spec(environ: Mapping[str, str]) -> dict[str, Any]:
    """``AGENT_RUN_SPEC``: inline JSON (starting with ``{``) or a path to run.json."""
    raw = environ.get(RUN_SPEC_ENV, "").strip()
    if not raw:
        raise RunnerError(
            f"{RUN_SPEC_ENV} is not set (a path to run.json or inline JSON)", EXIT_USAGE, "MissingSpec"
        )
    if raw.startswith("{"):
        return _read_json(raw, RUN_SPEC_ENV)
    return _read_json(_read_file(Path(raw), RUN_SPEC_ENV), f"{RUN_SPEC_ENV} ({raw})")


def load_runner_spec(environ: Mapping[str, str], run_spec: Mapping[str, Any]) -> RunnerSpec:
    """Read and validate agent-runner.json, rendering templates from ``run_spec`` if it has no rendered values."""
    raw_path = environ.get(RUNNER_SPEC_ENV, "").strip()
    if not raw_path:
        raise RunnerError(
            f"{RUNNER_SPEC_ENV} is not set (a path to agent-runner.json)", EXIT_USAGE, "MissingSpec"
        )
    what = f"{RUNNER_SPEC_ENV} ({raw_path})"
    data = _read_json(_read_file(Path(raw_path), RUNNER_SPEC_ENV), what)
    workspace = workspace_dir(environ)
    context = template_context(run_spec, data)

    binary = data.get("binary")
    if not isinstance(binary, str) or not binary.strip():
        raise RunnerError(
            f"{what}: 'binary' (the provider's executable) is required", EXIT_DATAERR, "InvalidSpec"
        )

    if "args" in data:
        args = _string_list(data["args"], what, "args")
    else:
        args = [
            render(item, context) for item in _string_list(data.get("argsTemplate", []), what, "argsTemplate")
        ]
    if "env" in data:
        env = _string_map(data["env"], what, "env")
    else:
        env = {
            k: render(v, context)
            for k, v in _string_map(data.get("envTemplate", {}), what, "envTemplate").items()
        }

    artifacts = data.get("artifacts") or {}
    if not isinstance(artifacts, dict):
        raise RunnerError(f"{what}: 'artifacts' must be an object", EXIT_DATAERR, "InvalidSpec")
    status_path = _path(artifacts.get("statusPath"), workspace, STATUS_FILE, what, "artifacts.statusPath")
    log_path = _path(artifacts.get("logPath"), workspace, LOG_FILE, what, "artifacts.logPath")
    working_dir = _path(data.get("workingDir"), workspace, ".", what, "workingDir")

    agent_run = run_spec.get("agentRun")
    return RunnerSpec(
        binary=binary.strip(),
        args=args,
        env=env,
        input_files=_input_files(data.get("inputFiles", []), workspace, what),
        workspace=workspace,
        working_dir=working_dir,
        status_path=status_path,
        log_path=log_path,
        provider=data.get("provider") if isinstance(data.get("provider"), str) else None,
        agent_run=dict(agent_run) if isinstance(agent_run, dict) else {},
        artifacts=_artifacts(run_spec.get("artifacts"), workspace),
    )


def _artifacts(value: Any, workspace: Path) -> list[tuple[str, Path]]:
    """The provider's ``outputArtifacts`` that name a file (run.json ``artifacts``); others are ignored."""
    found = []
    for item in value if isinstance(value, list) else ():
        if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("path"), str):
            path = Path(item["path"])
            found.append((item["name"], path if path.is_absolute() else workspace / path))
    return found


def template_context(run_spec: Mapping[str, Any], runner_data: Mapping[str, Any]) -> dict[str, Any]:
    """The reference's template context, built from run.json; ``inputs`` is the parameters (chart examples)."""
    parameters = run_spec.get("parameters") or runner_data.get("inputs") or {}
    return {
        "agentRun": run_spec.get("agentRun") or {},
        "agent": run_spec.get("agent") or {},
        "implementation": run_spec.get("implementation") or {},
        "parameters": parameters,
        "inputs": runner_data.get("inputs") or parameters,
        "memory": run_spec.get("memory") or {},
        "vcs": run_spec.get("vcs") or {},
    }


def _string_list(value: Any, what: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RunnerError(f"{what}: '{key}' must be a list of strings", EXIT_DATAERR, "InvalidSpec")
    return list(value)


def _string_map(value: Any, what: str, key: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise RunnerError(f"{what}: '{key}' must map names to strings", EXIT_DATAERR, "InvalidSpec")
    return dict(value)


def _path(value: Any, workspace: Path, default: str, what: str, key: str) -> Path:
    if value is None or value == "":
        return workspace / default
    if not isinstance(value, str):
        raise RunnerError(f"{what}: '{key}' must be a string path", EXIT_DATAERR, "InvalidSpec")
    path = Path(value)
    return path if path.is_absolute() else workspace / path


def _input_files(value: Any, workspace: Path, what: str) -> list[InputFile]:
    if not isinstance(value, list):
        raise RunnerError(f"{what}: 'inputFiles' must be a list", EXIT_DATAERR, "InvalidSpec")
    files = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise RunnerError(f"{what}: inputFiles[{index}] must be an object", EXIT_DATAERR, "InvalidSpec")
        path, content = item.get("path"), item.get("content")
        if not isinstance(path, str) or not path.strip() or not isinstance(content, str):
            raise RunnerError(
                f"{what}: inputFiles[{index}] needs a non-empty 'path' and a string 'content'",
                EXIT_DATAERR,
                "InvalidSpec",
            )
        files.append(InputFile(path=_path(path.strip(), workspace, ".", what, "path"), content=content))
    return files


def child_environment(spec: RunnerSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """The runner's own environment (secrets from envFrom, VCS and auth vars) overlaid with the spec's env."""
    env = dict(environ)
    env.update(spec.env)
    env.setdefault(WORKSPACE_ENV, str(spec.workspace))
    return env


def resolve_binary(binary: str, env: Mapping[str, str]) -> str:
    """An absolute or relative path is used as is; a bare name is looked up on the child's PATH."""
    if os.sep in binary:
        return binary
    found = shutil.which(binary, path=env.get("PATH", os.defpath))
    return found or binary

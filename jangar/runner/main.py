"""The Job pod's entrypoint: read the specs, prepare the workspace, run the provider, report, exit.

Order matters for what a failure leaves behind: the log and status paths are known before anything can
fail, so even "the spec is missing" ends with a status.json saying so (when the workspace is writable),
a message on stderr, and an exit code that names the cause (see ``jangar.runner.errors``).

The runner prints plain ``jangar-runner: …`` lines rather than structured logs: its stdout and stderr
are the agent's output stream, which people read with ``kubectl logs``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from jangar.runner.errors import EXIT_CANTCREAT, EXIT_DATAERR, SIGNAL_EXIT_BASE, RunnerError
from jangar.runner.process import LogSink, run_child
from jangar.runner.prompt import verify_system_prompt
from jangar.runner.report import (
    OUTPUTS_ENV,
    OUTPUTS_FILE,
    describe_artifact,
    read_outputs,
    report,
    termination_path,
    write_termination_message,
)
from jangar.runner.spec import (
    RunnerSpec,
    child_environment,
    default_paths,
    load_run_spec,
    load_runner_spec,
    resolve_binary,
)
from jangar.runner.status import RunStatus, now, write_status

USAGE = """usage: jangar-runner [--] [COMMAND [ARG...]]

Runs an agent inside a jangar Job pod: COMMAND when given (an AgentProvider whose binary is jangar-runner
passes the agent's command as its args), else the binary and args of agent-runner.json.
Configuration comes from the environment:
  AGENT_RUN_SPEC          path to run.json, or the run spec as inline JSON (required)
  AGENT_RUNNER_SPEC_PATH  path to agent-runner.json: binary, args, env, inputFiles (required)
  AGENT_WORKSPACE         workspace directory (default: the directory of agent-runner.json)
  AGENT_OUTPUTS_PATH      set for the agent: where it may write a JSON object of outputs
  JANGAR_TERMINATION_MESSAGE_PATH  where to write the outcome (default /dev/termination-log in a pod)
Writes <workspace>/.agent/runner.log and <workspace>/.agent/status.json, reports the outcome in the
termination message, and exits with the agent's code.
"""


def _say(message: str, sink: LogSink | None = None) -> None:
    line = f"jangar-runner: {message}\n"
    sys.stderr.write(line)
    sys.stderr.flush()
    if sink is not None:
        sink.write(line.encode())


def _try_write_status(path: Path, status: RunStatus) -> None:
    try:
        write_status(path, status)
    except OSError as exc:
        _say(f"cannot write {path}: {exc}")


def _open_sink_quietly(path: Path) -> LogSink | None:
    try:
        return LogSink(path)
    except OSError:
        return None


def _finish(status: RunStatus, status_path: Path, environ: Mapping[str, str], outputs: Path | None) -> None:
    """status.json, then the termination message the controller reads (both best effort)."""
    _try_write_status(status_path, status)
    target = termination_path(environ)
    if target is None:
        return
    found, problem = read_outputs(outputs) if outputs is not None else (None, None)
    if problem:
        _say(f"outputs ignored: {problem}")
    problem = write_termination_message(target, report(status, found))
    if problem:
        _say(problem)


def _fail(
    error: RunnerError,
    status: RunStatus,
    status_path: Path,
    sink: LogSink | None,
    environ: Mapping[str, str],
) -> int:
    _say(f"error: {error.message}", sink)
    status.phase, status.reason, status.message = "Failed", error.reason, error.message
    status.exit_code, status.finished_at = error.exit_code, now()
    _finish(status, status_path, environ, None)
    return error.exit_code


def _write_input_files(spec: RunnerSpec) -> None:
    for item in spec.input_files:
        try:
            if item.path.is_file() and item.path.read_text(encoding="utf-8") == item.content:
                continue  # already there, e.g. mounted from the inputs ConfigMap
            item.path.parent.mkdir(parents=True, exist_ok=True)
            item.path.write_text(item.content, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunnerError(
                f"cannot write input file {item.path}: {exc}", EXIT_CANTCREAT, "InputFileFailed"
            ) from exc


def _is_runner(binary: str) -> bool:
    """The spec names this runner as the agent: running it would only start itself again."""
    return Path(binary).name == "jangar-runner"


def run(environ: Mapping[str, str], command: Sequence[str] = ()) -> int:
    """Do one run with ``environ`` as the environment; return the process exit code.

    ``command`` (the runner's own arguments) replaces the spec's binary and args: that is how an
    AgentProvider whose binary is ``jangar-runner`` names the agent it wraps.
    """
    status_path, log_path = default_paths(environ)
    status = RunStatus(phase="Running", started_at=now())
    try:
        run_spec = load_run_spec(environ)
        spec = load_runner_spec(environ, run_spec)
        if command:
            spec = dataclasses.replace(spec, binary=command[0], args=list(command[1:]))
        elif _is_runner(spec.binary):
            raise RunnerError(
                f"agent-runner.json names the runner itself ({spec.binary}) as the binary; give the agent's "
                'command as the runner\'s arguments (AgentProvider argsTemplate: ["--", "my-agent", ...])',
                EXIT_DATAERR,
                "InvalidSpec",
            )
        goal = run_spec.get("goal")
        status.goal = dict(goal) if isinstance(goal, dict) else None
        # issue 13 item 3: never start the agent with a prompt other than the accepted one
        status.system_prompt_sha256 = verify_system_prompt(environ)
    except RunnerError as error:
        sink = _open_sink_quietly(log_path)
        try:
            return _fail(error, status, status_path, sink, environ)
        finally:
            if sink is not None:
                sink.close()

    status.provider, status.agent_run, status.log_path = spec.provider, spec.agent_run, str(spec.log_path)
    try:
        sink = LogSink(spec.log_path)
    except OSError as exc:
        failure = RunnerError(f"cannot open log {spec.log_path}: {exc}", EXIT_CANTCREAT, "LogUnwritable")
        return _fail(failure, status, spec.status_path, None, environ)
    try:
        return _run_provider(spec, environ, status, sink)
    finally:
        sink.close()


def _run_provider(spec: RunnerSpec, environ: Mapping[str, str], status: RunStatus, sink: LogSink) -> int:
    env = child_environment(spec, environ)
    outputs = Path(env.setdefault(OUTPUTS_ENV, str(spec.workspace / OUTPUTS_FILE)))
    binary = resolve_binary(spec.binary, env)
    status.binary = binary
    try:
        _write_input_files(spec)
        write_status(spec.status_path, status)
    except RunnerError as error:
        return _fail(error, status, spec.status_path, sink, environ)
    except OSError as exc:
        failure = RunnerError(f"cannot write {spec.status_path}: {exc}", EXIT_CANTCREAT, "StatusUnwritable")
        return _fail(failure, status, spec.status_path, sink, environ)

    run_name = spec.agent_run.get("name", "?")
    if status.goal and status.goal.get("objective"):
        budget = status.goal.get("tokenBudget")
        suffix = f" (token budget {budget})" if budget else ""
        _say(f"run {run_name}: goal: {status.goal['objective']}{suffix}", sink)
    if status.system_prompt_sha256:
        _say(f"run {run_name}: system prompt verified (sha256 {status.system_prompt_sha256})", sink)
    _say(f"run {run_name}: starting {binary} with {len(spec.args)} argument(s)", sink)
    try:
        result = run_child([binary, *spec.args], env, spec.working_dir, sink)
    except RunnerError as error:
        return _fail(error, status, spec.status_path, sink, environ)

    code = result.returncode if result.returncode >= 0 else SIGNAL_EXIT_BASE - result.returncode
    status.exit_code, status.finished_at = code, now()
    if result.forwarded is not None:
        status.signal = result.forwarded.name
    if code == 0:
        status.phase, status.reason = "Succeeded", "Completed"
    elif result.forwarded is not None:
        status.phase, status.reason = "Failed", "Terminated"
        status.message = f"stopped by {result.forwarded.name}; the agent exited with {code}"
    elif result.returncode < 0:
        status.phase, status.reason = "Failed", "Killed"
        status.message = f"the agent was killed by signal {-result.returncode}"
    else:
        status.phase, status.reason = "Failed", "AgentFailed"
        status.message = f"the agent exited with {code}"
    status.artifacts = [describe_artifact(name, path) for name, path in spec.artifacts]
    _say(f"run {run_name}: {status.phase} (exit code {code})", sink)
    _finish(status, spec.status_path, environ, outputs)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entrypoint (``jangar-runner``, ``python -m jangar.runner``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if args and args[0] == "--":
        args = args[1:]
    return run(os.environ, args)

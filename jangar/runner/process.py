"""Run the provider as a child process: tee its output, forward termination signals, report how it ended.

The child gets its own process group, and SIGTERM/SIGINT/SIGHUP sent to the runner are forwarded to that
whole group. In a Job pod the runner is PID 1 and the kubelet signals only PID 1, so without forwarding
the agent would never hear it is being stopped and would be SIGKILLed at the end of the grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from jangar.runner.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, RunnerError

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_CHUNK = 64 * 1024
PIPE_DRAIN_SECONDS = 5.0
_PR_SET_CHILD_SUBREAPER = 36


class LogSink:
    """``runner.log``: the child's stdout and stderr interleaved as they arrive, plus the runner's notes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """Append ``data`` and flush, so the log is current if the pod dies."""
        with self._lock:
            self._file.write(data)
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


@dataclass(frozen=True, slots=True)
class ChildResult:
    """How the child ended: its return code (negative: killed by that signal) and what we forwarded."""

    returncode: int
    forwarded: signal.Signals | None


def _pump(source: BinaryIO, destination: BinaryIO, sink: LogSink) -> None:
    """Copy ``source`` to ``destination`` and the log until EOF; a closed destination does not stop logging."""
    fd = source.fileno()
    while chunk := os.read(fd, _CHUNK):
        try:
            destination.write(chunk)
            destination.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass
        sink.write(chunk)


def run_child(argv: Sequence[str], env: Mapping[str, str], cwd: Path, sink: LogSink) -> ChildResult:
    """Start ``argv``, stream its output, forward signals, and wait for it to exit."""
    state: dict[str, subprocess.Popen[bytes] | None] = {"proc": None}
    forwarded: list[signal.Signals] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        forwarded.append(signal.Signals(signum))
        proc = state["proc"]
        if proc is not None:
            _signal_group(proc, signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    become_subreaper()
    try:
        try:
            proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            missing = cwd if exc.filename == str(cwd) else argv[0]
            raise RunnerError(f"{missing} does not exist", EXIT_NOT_FOUND, "BinaryNotFound") from exc
        except PermissionError as exc:
            raise RunnerError(
                f"{argv[0]} is not executable: {exc}", EXIT_NOT_EXECUTABLE, "BinaryNotExecutable"
            ) from exc
        except OSError as exc:
            raise RunnerError(
                f"{argv[0]} cannot be executed: {exc}", EXIT_NOT_EXECUTABLE, "BinaryNotExecutable"
            ) from exc
        state["proc"] = proc
        if forwarded:  # a signal arrived while the child was starting
            _signal_group(proc, forwarded[-1])
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, sys.stdout.buffer, sink), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, sys.stderr.buffer, sink), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        returncode = _wait_reaping(proc)
        for pump in pumps:
            # A grandchild that outlives the agent may keep the pipes open; do not wait on it for ever.
            pump.join(timeout=PIPE_DRAIN_SECONDS)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ChildResult(returncode=returncode, forwarded=forwarded[0] if forwarded else None)


def become_subreaper() -> bool:
    """Adopt the agent's orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``), as PID 1 does anyway.

    This makes the runner behave the same in and out of a pod: orphans are re-parented to it and reaped
    by ``_wait_reaping``. Returns False where the call is unavailable (non-Linux), which is harmless.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _wait_reaping(proc: subprocess.Popen[bytes]) -> int:
    """Wait for ``proc`` while reaping any other child that exits meanwhile.

    In a pod the runner is PID 1, so orphaned grandchildren of the agent (a ``git`` whose parent
    died) are re-parented to it and would stay zombies, slowly using up the pod's PID limit, unless
    something reaps them. The runner starts no other children, so reaping everything is safe.
    """
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:  # already reaped elsewhere: let Popen report what it knows
            return proc.wait()
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)

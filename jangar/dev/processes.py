"""Child processes of the local stack: started with a log file each, tracked by PID, stopped reliably.

Every process runs in its own session so a stop signal reaches its children too, and its PID is written to
a state file so a later `jangar dev cluster down` (another Python process) can tear it down.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = "processes.json"


def free_port() -> int:
    """A free loopback port. The kernel picks it; a small race with other binders is accepted."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    # Someone else's zombie (a process started by an earlier `jangar dev ... up`, now a child of PID 1,
    # which may reap late) has exited too.
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def stop_pid(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)


class StartupError(RuntimeError):
    """A component did not become ready; the message names it and points at its log."""


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


@dataclass
class ProcessGroup:
    """The processes of one local stack, recorded in `<workdir>/processes.json`."""

    workdir: Path
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str] | None = None, user: str | None = None
    ) -> ManagedProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        proc = ManagedProcess(name, list(argv), log_path)
        with log_path.open("ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            proc.popen = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                user=user,
            )
        self.processes[name] = proc
        self._save()
        return proc

    def stop(self, name: str, grace: float = 10.0) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.popen is None:
            return
        stop_pid(proc.popen.pid, grace)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=1)
        self._save()

    def stop_all(self, grace: float = 10.0) -> None:
        # Reverse start order: clients of etcd go before etcd.
        for name in reversed(list(self.processes)):
            self.stop(name, grace)

    def wait_until(self, proc: ManagedProcess, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `check` until it is true; fail fast with the component's log if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.popen is not None and proc.popen.poll() is not None:
                raise StartupError(
                    f"{proc.name} exited with {proc.popen.returncode} before {what}; "
                    f"log {proc.log_path}:\n{proc.tail()}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.2)
        raise StartupError(
            f"{proc.name}: timed out after {timeout:.0f}s waiting for {what}; "
            f"log {proc.log_path}:\n{proc.tail()}"
        )

    def _save(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        state = {name: p.pid for name, p in self.processes.items() if p.popen is not None}
        (self.workdir / STATE_FILE).write_text(json.dumps(state, indent=2))


def stop_recorded(workdir: Path, grace: float = 10.0, only: Sequence[str] | None = None) -> list[str]:
    """Stop the processes recorded in a workdir's state file (used by `down` from another process), in
    reverse start order: every one, or only those named in `only` (the others stay recorded)."""
    state_path = workdir / STATE_FILE
    if not state_path.exists():
        return []
    state: dict[str, int] = json.loads(state_path.read_text())
    stopped = []
    for name in reversed(list(state)):
        if only is not None and name not in only:
            continue
        pid = state.pop(name)
        if pid_alive(pid):
            stop_pid(pid, grace)
            stopped.append(name)
    state_path.write_text(json.dumps(state, indent=2))
    return stopped

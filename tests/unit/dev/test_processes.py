"""Local stack processes are tracked by PID and torn down, also from another process and after failures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from jangar.dev.processes import ProcessGroup, StartupError, free_port, pid_alive, stop_recorded


def test_stop_recorded_kills_what_another_group_started(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path)
    proc = group.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    state = json.loads((tmp_path / "processes.json").read_text())
    assert state == {"sleeper": proc.pid}
    assert pid_alive(proc.pid)
    # A different Python process would only have the state file; simulate with a fresh call.
    assert stop_recorded(tmp_path, grace=5) == ["sleeper"]
    proc.popen.wait(timeout=5)  # type: ignore[union-attr]
    assert not pid_alive(proc.pid)
    assert stop_recorded(tmp_path) == []


def test_failed_start_reports_exit_and_log(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path)
    proc = group.start("broken", [sys.executable, "-c", "print('bad flag --nope'); raise SystemExit(3)"])
    with pytest.raises(StartupError) as err:
        group.wait_until(proc, lambda: False, timeout=10, what="ready")
    assert "exited with 3" in str(err.value)
    assert "bad flag --nope" in str(err.value)
    assert (tmp_path / "logs" / "broken.log").exists()


def test_timeout_names_the_component(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path)
    proc = group.start("slow", [sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(StartupError, match="slow: timed out"):
            group.wait_until(proc, lambda: False, timeout=0.5, what="ready")
    finally:
        group.stop_all(grace=2)
    assert not pid_alive(proc.pid)


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))

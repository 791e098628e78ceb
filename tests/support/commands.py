"""Running the project's own commands as real processes (`agentctl`, `jangar`), as a user would."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Completed", "run_command"]


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


async def run_command(module: str, *args: str, env: Mapping[str, str] | None = None) -> Completed:
    """`python -m <module> args...` with this interpreter (so the checkout under test is what runs)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await proc.communicate()
    return Completed(proc.returncode or 0, out.decode(), err.decode())

"""The runner's own failures and the exit codes that tell them apart from the agent's.

The runner exits with the agent's exit code when the agent ran. When it could not start the agent it
exits with one of the codes below (``sysexits.h`` values plus the shell's 126/127), and ``status.json``
says ``reason`` so a consumer never has to guess whether 64 came from the agent or from the runner.
"""

from __future__ import annotations

EXIT_USAGE = 64  # a required environment variable is missing
EXIT_DATAERR = 65  # a spec is not valid JSON or has the wrong shape
EXIT_NOINPUT = 66  # a spec file does not exist or cannot be read
EXIT_CANTCREAT = 73  # the workspace, an input file, the log or the status file cannot be written
EXIT_NOT_EXECUTABLE = 126  # the provider binary exists but cannot be executed
EXIT_NOT_FOUND = 127  # the provider binary does not exist
SIGNAL_EXIT_BASE = 128  # the agent was killed by signal N: exit 128 + N, like a shell


class RunnerError(Exception):
    """A failure of the runner itself (not of the agent), with its exit code and a status reason."""

    def __init__(self, message: str, exit_code: int, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.reason = reason

"""The agent runner: the process a jangar Job pod starts to run one agent provider.

It reads ``AGENT_RUN_SPEC`` (run.json) and ``AGENT_RUNNER_SPEC_PATH`` (agent-runner.json), writes the
provider's input files, runs the provider's binary with its args and env, streams the output to stdout
and ``.agent/runner.log``, writes ``.agent/status.json``, forwards SIGTERM, and exits with the agent's
exit code. See docs/runner.md for the contract.
"""

from jangar.runner.main import main, run

__all__ = ["main", "run"]

"""The resource types the HTTP API reads and writes."""

from jangar.api.groups import AGENTS
from jangar.runtime import ResourceRef

AGENT_RUN = ResourceRef(AGENTS, "v1alpha1", "AgentRun", "agentruns")

PENDING_PHASES = frozenset({"", "Pending", "Queued"})

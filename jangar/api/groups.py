"""The API group names, in one place so the models, the registry and RBAC code agree."""

AGENTS = "agents.proompteng.ai"
ORCHESTRATION = "orchestration.proompteng.ai"
TOOLS = "tools.proompteng.ai"
SIGNALS = "signals.proompteng.ai"
SCHEDULES = "schedules.proompteng.ai"
ARTIFACTS = "artifacts.proompteng.ai"
WORKSPACES = "workspaces.proompteng.ai"
APPROVALS = "approvals.proompteng.ai"
BUDGETS = "budgets.proompteng.ai"
SECURITY = "security.proompteng.ai"

ALL = (AGENTS, ORCHESTRATION, TOOLS, SIGNALS, SCHEDULES, ARTIFACTS, WORKSPACES, APPROVALS, BUDGETS, SECURITY)

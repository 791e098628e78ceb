"""Services: the rules a surface (HTTP, gRPC, agentctl) applies, behind protocol-free calls and typed errors.

Layering: `cli/app > server | grpc > services > controllers > scheduler | admission | validation | vcs |
storage > api | settings > runtime`. The surfaces import these, never the controllers.
"""

from jangar.services.errors import (
    AlreadyExists,
    BudgetExceeded,
    Conflict,
    Forbidden,
    InvalidRequest,
    NamespaceNotManaged,
    NotFound,
    QueueFull,
    ServiceError,
)
from jangar.services.idempotency import Submitted
from jangar.services.orchestration import (
    Caller,
    OrchestrationService,
    OrchestrationSubmission,
    ToolRunService,
    ToolRunSubmission,
)
from jangar.services.runs import RunList, RunsService
from jangar.services.scope import NamespaceScope
from jangar.services.submission import Submission, SubmissionError, build_agent_run

__all__ = [
    "AlreadyExists",
    "BudgetExceeded",
    "Caller",
    "Conflict",
    "Forbidden",
    "InvalidRequest",
    "NamespaceNotManaged",
    "NamespaceScope",
    "NotFound",
    "OrchestrationService",
    "OrchestrationSubmission",
    "QueueFull",
    "RunList",
    "RunsService",
    "ServiceError",
    "Submission",
    "SubmissionError",
    "Submitted",
    "ToolRunService",
    "ToolRunSubmission",
    "build_agent_run",
]

"""Postgres run records: models, migrations, and the buffered recorder the controller writes through.

Kubernetes stays the source of truth; these tables are a history and audit index of AgentRuns,
OrchestrationRuns and ToolRuns. Import the public API from here.
"""

from jangar.storage.engine import create_engine
from jangar.storage.events import JobRef, RecordEvent, RunEvent, TrackedRunEvent, VcsContext, redact_text
from jangar.storage.migrate import (
    MigrationMode,
    apply_migrations,
    current_revision,
    downgrade_migrations,
    migrate_on_start,
    parse_migration_mode,
)
from jangar.storage.models import (
    Base,
    IdempotencyKey,
    OrchestrationRunRecord,
    OrchestrationRunTransition,
    RunRecord,
    RunTransition,
    ToolRunRecord,
    ToolRunTransition,
)
from jangar.storage.queries import (
    RunView,
    TransitionView,
    find_runs,
    find_tracked_runs,
    get_run,
    get_tracked_run,
)
from jangar.storage.recorder import Offer, RecorderStatus, RunRecorder
from jangar.storage.store import ApplyResult, apply_events
from jangar.storage.url import DatabaseTarget, DatabaseUrlError, normalize_database_url, redact_url

__all__ = [
    "ApplyResult",
    "Base",
    "DatabaseTarget",
    "DatabaseUrlError",
    "IdempotencyKey",
    "JobRef",
    "MigrationMode",
    "Offer",
    "OrchestrationRunRecord",
    "OrchestrationRunTransition",
    "RecordEvent",
    "RecorderStatus",
    "RunEvent",
    "RunRecord",
    "RunRecorder",
    "RunTransition",
    "RunView",
    "ToolRunRecord",
    "ToolRunTransition",
    "TrackedRunEvent",
    "TransitionView",
    "VcsContext",
    "apply_events",
    "apply_migrations",
    "create_engine",
    "current_revision",
    "downgrade_migrations",
    "find_runs",
    "find_tracked_runs",
    "get_run",
    "get_tracked_run",
    "migrate_on_start",
    "normalize_database_url",
    "parse_migration_mode",
    "redact_text",
    "redact_url",
]

"""SQLAlchemy models for AgentRun records.

The database is an audit and history index, never a source of truth for reconciling (Kubernetes is): the
controller writes the records and never reads them back to decide anything (the one table read back is
``agent_run_idempotency_keys``, issue 13, at the end). Two tables per kind:

* ``agent_run_records``: one row per AgentRun uid with the latest identity, job, VCS and outcome.
* ``agent_run_transitions``: one row per phase change, unique on ``(run_uid, to_phase, at)`` so that
  recording the same transition again (a retry, a re-reconcile, a controller restart) adds nothing.

OrchestrationRuns and ToolRuns have the same pair each (``orchestration_run_*``, ``tool_run_*``, migration 0002).
Each record row keeps the ``source_version`` (the run's resourceVersion) it was last written from (0003).

The migrations in ``jangar/storage/migrations`` create exactly this schema; a test compares them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations and models agree on constraint names."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RunRecord(Base):
    """The latest known state of one AgentRun."""

    __tablename__ = "agent_run_records"

    run_uid: Mapped[str] = mapped_column(Text, primary_key=True)
    namespace: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    agent: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(Text)
    implementation: Mapped[str | None] = mapped_column(Text)
    runtime_type: Mapped[str | None] = mapped_column(Text)

    phase: Mapped[str | None] = mapped_column(Text)
    phase_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source_version: Mapped[int | None] = mapped_column(BigInteger)
    """metadata.resourceVersion of the snapshot last written: orders snapshots (`jangar.storage.store`)."""

    job_name: Mapped[str | None] = mapped_column(Text)
    job_namespace: Mapped[str | None] = mapped_column(Text)
    job_uid: Mapped[str | None] = mapped_column(Text)

    vcs_provider: Mapped[str | None] = mapped_column(Text)
    vcs_repository: Mapped[str | None] = mapped_column(Text)
    vcs_base_branch: Mapped[str | None] = mapped_column(Text)
    vcs_head_branch: Mapped[str | None] = mapped_column(Text)
    vcs_mode: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index(None, "namespace", "name"),
        Index(None, "namespace", "phase"),
    )


class RunTransition(Base):
    """One phase change of an AgentRun. ``from_phase`` is NULL for the first phase a run is seen in."""

    __tablename__ = "agent_run_transitions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    run_uid: Mapped[str] = mapped_column(Text, ForeignKey("agent_run_records.run_uid", ondelete="CASCADE"))
    from_phase: Mapped[str | None] = mapped_column(Text)
    to_phase: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("run_uid", "to_phase", "at"),)


# -- OrchestrationRuns and ToolRuns (issue 10, migration 0002) ---------------------------------------------


class OrchestrationRunRecord(Base):
    """The latest known state of one OrchestrationRun."""

    __tablename__ = "orchestration_run_records"

    run_uid: Mapped[str] = mapped_column(Text, primary_key=True)
    namespace: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    orchestration: Mapped[str | None] = mapped_column(Text)
    delivery_id: Mapped[str | None] = mapped_column(Text)
    parent_run: Mapped[str | None] = mapped_column(Text)
    parent_step: Mapped[str | None] = mapped_column(Text)

    phase: Mapped[str | None] = mapped_column(Text)
    phase_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source_version: Mapped[int | None] = mapped_column(BigInteger)
    """metadata.resourceVersion of the snapshot last written: orders snapshots (`jangar.storage.store`)."""

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index(None, "namespace", "name"),
        Index(None, "namespace", "phase"),
        Index(None, "delivery_id"),
    )


class OrchestrationRunTransition(Base):
    """One phase change of an OrchestrationRun."""

    __tablename__ = "orchestration_run_transitions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    run_uid: Mapped[str] = mapped_column(
        Text,
        ForeignKey(
            "orchestration_run_records.run_uid",
            ondelete="CASCADE",
            name="fk_orchestration_run_transitions_run_uid",  # the convention's name is over 63 characters
        ),
    )
    from_phase: Mapped[str | None] = mapped_column(Text)
    to_phase: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("run_uid", "to_phase", "at"),)


class ToolRunRecord(Base):
    """The latest known state of one ToolRun."""

    __tablename__ = "tool_run_records"

    run_uid: Mapped[str] = mapped_column(Text, primary_key=True)
    namespace: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    tool: Mapped[str | None] = mapped_column(Text)
    delivery_id: Mapped[str | None] = mapped_column(Text)
    parent_run: Mapped[str | None] = mapped_column(Text)
    parent_step: Mapped[str | None] = mapped_column(Text)

    phase: Mapped[str | None] = mapped_column(Text)
    phase_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source_version: Mapped[int | None] = mapped_column(BigInteger)
    """metadata.resourceVersion of the snapshot last written: orders snapshots (`jangar.storage.store`)."""

    job_name: Mapped[str | None] = mapped_column(Text)
    job_namespace: Mapped[str | None] = mapped_column(Text)
    job_uid: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index(None, "namespace", "name"),
        Index(None, "namespace", "phase"),
        Index(None, "delivery_id"),
    )


class ToolRunTransition(Base):
    """One phase change of a ToolRun."""

    __tablename__ = "tool_run_transitions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    run_uid: Mapped[str] = mapped_column(
        Text,
        ForeignKey("tool_run_records.run_uid", ondelete="CASCADE", name="fk_tool_run_transitions_run_uid"),
    )
    from_phase: Mapped[str | None] = mapped_column(Text)
    to_phase: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("run_uid", "to_phase", "at"),)


TRACKED_TABLES = {
    "OrchestrationRun": (OrchestrationRunRecord, OrchestrationRunTransition, "orchestration"),
    "ToolRun": (ToolRunRecord, ToolRunTransition, "tool"),
}
"""Per kind of `TrackedRunEvent`: its record model, its transition model, and the column `target` fills."""


# -- durable AgentRun idempotency keys (issue 13, migration 0004) --------------------------------------------


class IdempotencyKey(Base):
    """One claimed `spec.idempotencyKey` of an AgentRun, scoped to (namespace, agent, key).

    Unlike the run records this table is read back to decide (`jangar.idempotency`): the first run to
    claim a key owns it, and the row outlives the run (pruned after `JANGAR_AGENTRUN_IDEMPOTENCY_RETENTION_DAYS`
    of no change), so a later run with the key fails even when the first one was deleted. No secret is
    stored: the key is the user's submission id, the rest is run identity and times.
    """

    __tablename__ = "agent_run_idempotency_keys"

    namespace: Mapped[str] = mapped_column(Text, primary_key=True)
    agent: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    run_uid: Mapped[str] = mapped_column(Text)
    run_name: Mapped[str] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the holder was first seen started (admitted: `status.startedAt` or a Job); NULL: never started,
    so a holder that is gone may be reclaimed by another run."""
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index(None, "updated_at"), Index(None, "run_uid"))

"""Run records: one row per AgentRun uid and one row per phase transition.

Revision ID: 0001_run_records
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_run_records"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, **kwargs: object) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


def upgrade() -> None:
    op.create_table(
        "agent_run_records",
        sa.Column("run_uid", sa.Text(), nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("agent", sa.Text(), nullable=True),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("implementation", sa.Text(), nullable=True),
        sa.Column("runtime_type", sa.Text(), nullable=True),
        sa.Column("phase", sa.Text(), nullable=True),
        _ts("phase_at", nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.Column("job_name", sa.Text(), nullable=True),
        sa.Column("job_namespace", sa.Text(), nullable=True),
        sa.Column("job_uid", sa.Text(), nullable=True),
        sa.Column("vcs_provider", sa.Text(), nullable=True),
        sa.Column("vcs_repository", sa.Text(), nullable=True),
        sa.Column("vcs_base_branch", sa.Text(), nullable=True),
        sa.Column("vcs_head_branch", sa.Text(), nullable=True),
        sa.Column("vcs_mode", sa.Text(), nullable=True),
        _ts("created_at", server_default=sa.text("now()"), nullable=False),
        _ts("updated_at", server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("run_uid", name="pk_agent_run_records"),
    )
    op.create_index("ix_agent_run_records_namespace_name", "agent_run_records", ["namespace", "name"])
    op.create_index("ix_agent_run_records_namespace_phase", "agent_run_records", ["namespace", "phase"])
    op.create_table(
        "agent_run_transitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_uid", sa.Text(), nullable=False),
        sa.Column("from_phase", sa.Text(), nullable=True),
        sa.Column("to_phase", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        _ts("at", nullable=False),
        _ts("recorded_at", server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_run_transitions"),
        sa.ForeignKeyConstraint(
            ["run_uid"],
            ["agent_run_records.run_uid"],
            name="fk_agent_run_transitions_run_uid_agent_run_records",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("run_uid", "to_phase", "at", name="uq_agent_run_transitions_run_uid_to_phase_at"),
    )


def downgrade() -> None:
    op.drop_table("agent_run_transitions")
    op.drop_index("ix_agent_run_records_namespace_phase", table_name="agent_run_records")
    op.drop_index("ix_agent_run_records_namespace_name", table_name="agent_run_records")
    op.drop_table("agent_run_records")

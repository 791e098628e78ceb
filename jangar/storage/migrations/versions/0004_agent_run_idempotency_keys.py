"""Durable AgentRun idempotency keys (issue 13): one row per (namespace, agent, spec.idempotencyKey).

The controller claims a key with INSERT ... ON CONFLICT, so the first run to claim it wins; the row outlives
the run and is pruned after the retention (`JANGAR_AGENTRUN_IDEMPOTENCY_RETENTION_DAYS`, by `updated_at`).

Revision ID: 0004_agent_run_idempotency_keys
Revises: 0003_record_source_versions
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_agent_run_idempotency_keys"
down_revision: str | None = "0003_record_source_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "agent_run_idempotency_keys"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("agent", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("run_uid", sa.Text(), nullable=False),
        sa.Column("run_name", sa.Text(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "agent", "key", name=f"pk_{_TABLE}"),
    )
    op.create_index(f"ix_{_TABLE}_updated_at", _TABLE, ["updated_at"])
    op.create_index(f"ix_{_TABLE}_run_uid", _TABLE, ["run_uid"])


def downgrade() -> None:
    op.drop_index(f"ix_{_TABLE}_run_uid", table_name=_TABLE)
    op.drop_index(f"ix_{_TABLE}_updated_at", table_name=_TABLE)
    op.drop_table(_TABLE)

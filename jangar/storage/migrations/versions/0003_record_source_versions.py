"""Run records remember the resourceVersion of the snapshot they were last written from (issue 12).

`source_version` orders two snapshots of one run (a stale buffer flushed after a newer one, status times
that go backwards after a crash): the older resourceVersion never overwrites the newer one's fields.

Revision ID: 0003_record_source_versions
Revises: 0002_tracked_run_records
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_record_source_versions"
down_revision: str | None = "0002_tracked_run_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("agent_run_records", "orchestration_run_records", "tool_run_records")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column("source_version", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        op.drop_column(table, "source_version")

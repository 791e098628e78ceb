"""Run records of OrchestrationRuns and ToolRuns: per kind one row per run uid and one row per transition.

Revision ID: 0002_tracked_run_records
Revises: 0001_run_records
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_tracked_run_records"
down_revision: str | None = "0001_run_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, **kwargs: object) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


def _text(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Text(), nullable=True)


def _create(prefix: str, target: str, extra: Sequence[sa.Column[object]]) -> None:
    records, transitions = f"{prefix}_records", f"{prefix}_transitions"
    op.create_table(
        records,
        sa.Column("run_uid", sa.Text(), nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        _text(target),
        _text("delivery_id"),
        _text("parent_run"),
        _text("parent_step"),
        _text("phase"),
        _ts("phase_at", nullable=True),
        _text("reason"),
        _text("message"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        *extra,
        _ts("created_at", server_default=sa.text("now()"), nullable=False),
        _ts("updated_at", server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("run_uid", name=f"pk_{records}"),
    )
    op.create_index(f"ix_{records}_namespace_name", records, ["namespace", "name"])
    op.create_index(f"ix_{records}_namespace_phase", records, ["namespace", "phase"])
    op.create_index(f"ix_{records}_delivery_id", records, ["delivery_id"])
    op.create_table(
        transitions,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_uid", sa.Text(), nullable=False),
        _text("from_phase"),
        sa.Column("to_phase", sa.Text(), nullable=False),
        _text("reason"),
        _text("message"),
        _ts("at", nullable=False),
        _ts("recorded_at", server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{transitions}"),
        sa.ForeignKeyConstraint(
            ["run_uid"],
            [f"{records}.run_uid"],
            name=f"fk_{transitions}_run_uid",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("run_uid", "to_phase", "at", name=f"uq_{transitions}_run_uid_to_phase_at"),
    )


def _drop(prefix: str) -> None:
    records = f"{prefix}_records"
    op.drop_table(f"{prefix}_transitions")
    for index in ("delivery_id", "namespace_phase", "namespace_name"):
        op.drop_index(f"ix_{records}_{index}", table_name=records)
    op.drop_table(records)


def upgrade() -> None:
    _create("orchestration_run", "orchestration", [])
    _create("tool_run", "tool", [_text("job_name"), _text("job_namespace"), _text("job_uid")])


def downgrade() -> None:
    _drop("tool_run")
    _drop("orchestration_run")

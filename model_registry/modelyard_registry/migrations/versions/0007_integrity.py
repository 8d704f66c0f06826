"""Integrity under faults: an accepted call keeps its answer; budgets hold reservations.

``calls.completion`` holds what an accepted attempt returned, so a node that resumes after its
worker died between the call's commit and the graph's checkpoint reuses that answer instead of
paying for a second one.  ``budget_reservations`` holds the maximum cost of every admitted
request until it settles, so concurrent requests cannot all pass the same budget check.

Revision ID: 0007_integrity
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_integrity"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("completion", sa.JSON(), nullable=True))
    op.create_table(
        "budget_reservations",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), nullable=False),
        sa.Column("amount_usd", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_budget_reservations_team_id", "budget_reservations", ["team_id"])


def downgrade() -> None:
    op.drop_index("ix_budget_reservations_team_id", table_name="budget_reservations")
    op.drop_table("budget_reservations")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("completion")

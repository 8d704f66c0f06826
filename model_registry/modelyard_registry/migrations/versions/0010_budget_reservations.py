"""Budget reservations: what each model call in flight holds against its team's budget.

Held until the call's last usage row lands, or until the reservation expires.

Revision ID: 0010_budget_reservations
Revises: 0009_routing_artefacts
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_budget_reservations"
down_revision = "0009_routing_artefacts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_reservations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("request_id", sa.String(length=255), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("node", sa.String(length=255), nullable=True),
        sa.Column("model_name", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("amount_usd", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_budget_reservations_team_id", "budget_reservations", ["team_id"])


def downgrade() -> None:
    op.drop_index("ix_budget_reservations_team_id", table_name="budget_reservations")
    op.drop_table("budget_reservations")

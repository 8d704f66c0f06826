"""Routing versions keep their cost/quality curve, so a cost budget can be served.

``budget_curve`` holds the cross-validated points (utility-rule lambda, cost ratio, quality
ratio against always-best) measured on the version's own training evidence when it was trained;
``[]`` for versions trained before, or on too little evidence.

Revision ID: 0011_budget_curve
Revises: 0010_budget_reservations
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_budget_curve"
down_revision = "0010_budget_reservations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routing_versions") as batch:
        batch.add_column(sa.Column("budget_curve", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("routing_versions") as batch:
        batch.drop_column("budget_curve")

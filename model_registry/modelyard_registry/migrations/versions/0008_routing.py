"""Trained routing predictors: one row per version (the files live under home/routing); calls
say whether a validator judged them (only judged outcomes are routing evidence).

Revision ID: 0008_routing
Revises: 0007_integrity
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_routing"
down_revision = "0007_integrity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_versions",
        sa.Column("version", sa.String(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("embedder", sa.String(), nullable=False),
        sa.Column("outcomes", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
    )
    op.create_index("ix_routing_versions_created_at", "routing_versions", ["created_at"])
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("validated", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("validated")
    op.drop_index("ix_routing_versions_created_at", table_name="routing_versions")
    op.drop_table("routing_versions")

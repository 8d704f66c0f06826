"""Trained routing predictors stored in the database: one artefact row per version.

API processes and workers on different machines share them without a shared home volume.

Revision ID: 0009_routing_artefacts
Revises: 0008_routing
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_routing_artefacts"
down_revision = "0008_routing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_artefacts",
        sa.Column("version", sa.String(),
                  sa.ForeignKey("routing_versions.version", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("format_version", sa.Integer(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("arrays", sa.LargeBinary(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("routing_artefacts")

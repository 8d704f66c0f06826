"""Replicas: a remote catalogue entry may list several endpoints serving the same model.

Revision ID: 0006_replicas
Revises: 0005_accounts
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_replicas"
down_revision = "0005_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("endpoints", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("endpoints")

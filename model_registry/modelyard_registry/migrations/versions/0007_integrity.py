"""Integrity under faults: an accepted call keeps its answer.

``calls.completion`` holds what an accepted attempt returned, so a node that resumes after its
worker died between the call's commit and the graph's checkpoint reuses that answer instead of
paying for a second one.

Revision ID: 0007_integrity
Revises: 0006_replicas
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_integrity"
down_revision = "0006_replicas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("completion", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("completion")

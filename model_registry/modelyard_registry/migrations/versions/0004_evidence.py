"""Routing evidence (eval items, call inputs, feedback, imported logs) and custom eval suites.

Revision ID: 0004_evidence
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_evidence"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "eval_outcomes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "model_name", sa.String(length=63),
            sa.ForeignKey("models.name", ondelete="CASCADE", onupdate="CASCADE"), nullable=False,
        ),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("suite", sa.String(), nullable=False),
        sa.Column("suite_version", sa.String(), nullable=False),
        sa.Column("item_id", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("judged", sa.Boolean(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("model_name", "suite", "item_id"),
    )
    for column in ("model_name", "kind", "suite", "created_at"):
        op.create_index(f"ix_eval_outcomes_{column}", "eval_outcomes", [column])
    op.create_table(
        "call_inputs",
        sa.Column("request_id", sa.String(length=255), primary_key=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.String(), nullable=True),
        sa.Column("node", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    for column in ("team_id", "job_id", "created_at"):
        op.create_index(f"ix_call_inputs_{column}", "call_inputs", [column])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("subject_type", sa.String(), nullable=False),
        sa.Column("subject_id", sa.String(length=255), nullable=False),
        sa.Column("node", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("comment", sa.String(length=2000), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("subject_type", "subject_id", "node"),
    )
    op.create_index("ix_feedback_team_id", "feedback", ["team_id"])
    op.create_index("ix_feedback_updated_at", "feedback", ["updated_at"])
    op.create_table(
        "imported_items",
        sa.Column("item_id", sa.String(length=255), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_imported_items_kind", "imported_items", ["kind"])
    op.create_table(
        "imported_outcomes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "item_id", sa.String(length=255),
            sa.ForeignKey("imported_items.item_id", ondelete="CASCADE"), nullable=False,
        ),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("item_id", "model"),
    )
    for column in ("item_id", "model", "created_at"):
        op.create_index(f"ix_imported_outcomes_{column}", "imported_outcomes", [column])
    op.create_table(
        "eval_suites",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=63), nullable=False, unique=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_eval_suites_name", "eval_suites", ["name"])
    op.create_index("ix_eval_suites_kind", "eval_suites", ["kind"])


def downgrade() -> None:
    for table in ("eval_suites", "imported_outcomes", "imported_items", "feedback",
                  "call_inputs", "eval_outcomes"):
        op.drop_table(table)

"""The model catalogue.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column(
            "backend",
            sa.Enum("llama_cpp", "openai_compatible", name="backend", native_enum=False),
            nullable=False,
        ),
        sa.Column("gguf_path", sa.String(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("base_url", sa.String(), nullable=True),
        sa.Column("served_name", sa.String(), nullable=True),
        sa.Column("api_key_env", sa.String(), nullable=True),
        sa.Column("response_format", sa.String(), nullable=False, server_default="json_schema"),
        sa.Column("family", sa.String(), nullable=True),
        sa.Column("parameters", sa.BigInteger(), nullable=True),
        sa.Column("quantization", sa.String(), nullable=True),
        sa.Column("context_length", sa.Integer(), nullable=True),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("price_in", sa.Float(), nullable=False, server_default="0"),
        sa.Column("price_out", sa.Float(), nullable=False, server_default="0"),
        sa.Column("ram_bytes", sa.BigInteger(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column(
            "health",
            sa.Enum("unknown", "healthy", "unhealthy", name="health", native_enum=False),
            nullable=False,
            server_default="unknown",
        ),
        sa.Column("health_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("health_error", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_models_name", "models", ["name"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_models_name", table_name="models")
    op.drop_table("models")

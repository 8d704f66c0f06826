"""Job indexes: a claim and a backlog check cost index seeks, not a scan of the backlog.

- ``ix_jobs_fresh`` (status, attempts, team_id, created_at, id): the teams with fresh jobs (a
  loose index scan) and each team's oldest one (``jobs.fair``, whose statements ask for this
  index's order so no planner prefers walking ``ix_jobs_team_id`` through the history).
- ``ix_jobs_team_status`` (team_id, status): a team's running count (fair share) and its
  queued + running count (the per-team cap at submission).
- ``ix_jobs_team_started`` (team_id, started_at): when a team was last served (fair share).

``ix_jobs_status`` and ``ix_jobs_team_id`` (0003) go: each is the leading column of one of these,
so every lookup they served is served as well, and each job write maintained them for nothing.
(``ix_jobs_team_id`` is also what PostgreSQL walked through a team's history for ``min()``.)

Without them each claim read every queued row (15 ms with 4,800 queued, SQLite) and each
submission every job the team ever ran.

Revision ID: 0012_job_claim_indexes
Revises: 0011_budget_curve
Create Date: 2026-12-06
"""

from alembic import op

revision = "0012_job_claim_indexes"
down_revision = "0011_budget_curve"
branch_labels = None
depends_on = None

REPLACED = {"ix_jobs_status": ["status"], "ix_jobs_team_id": ["team_id"]}
INDEXES = {
    "ix_jobs_fresh": ["status", "attempts", "team_id", "created_at", "id"],
    "ix_jobs_team_status": ["team_id", "status"],
    "ix_jobs_team_started": ["team_id", "started_at"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "jobs", columns)
    for name in REPLACED:
        op.drop_index(name, table_name="jobs")


def downgrade() -> None:
    for name, columns in REPLACED.items():
        op.create_index(name, "jobs", columns)
    for name in INDEXES:
        op.drop_index(name, table_name="jobs")

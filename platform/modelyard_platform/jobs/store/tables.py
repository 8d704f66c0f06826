"""The job tables, for statements built once on them (the values go in as parameters).

Built per call through the ORM (statement, cache key, the bulk UPDATE's session
synchronisation), a job's own writes cost a worker more CPU than the database's work on short
jobs (#15, py-spy).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, literal_column

from ...models import Job, JobEvent, JobStatus

JOBS: Table = Job.__table__  # type: ignore[attr-defined]
EVENTS: Table = JobEvent.__table__  # type: ignore[attr-defined]
RUNNING: ColumnElement[str] = literal_column(f"'{JobStatus.running.value}'")

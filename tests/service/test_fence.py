"""A job call's usage row lands only while its worker holds the job's lease (``jobs/fence``).

In process on a real SQLite database; the live SIGSTOP/SIGCONT test (``test_lease_freeze``, soak)
shows the same fence stopping a thawed worker.
"""

from __future__ import annotations

import pytest
from modelyard_platform.jobs.fence import LeaseFence
from modelyard_platform.jobs.runner import LeaseLost
from modelyard_platform.models import Job, JobStatus, Team
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings


def set_job(url: str, *, owner: str | None, status: JobStatus) -> None:
    with session_scope(url) as session:
        job = session.get(Job, "job-1")
        if job is None:
            team = Team(name="fenced")
            session.add(team)
            session.commit()
            assert team.id is not None
            job = Job(id="job-1", team_id=team.id, product="echo", input={})
        job.lease_owner, job.status = owner, status
        session.add(job)
        session.commit()


def test_only_the_lease_holder_writes_usage_rows(settings: Settings) -> None:
    url = settings.effective_database_url
    fence = LeaseFence()
    set_job(url, owner="worker-a", status=JobStatus.running)
    with session_scope(url) as session:
        fence(session, "job-1")  # not run here under a lease (a plain cascade): no fence
        with fence.hold("job-1", "worker-a"):
            fence(session, "job-1")  # the holder writes
            set_job(url, owner="worker-b", status=JobStatus.running)  # taken over
            with pytest.raises(LeaseLost):
                fence(session, "job-1")
            set_job(url, owner=None, status=JobStatus.succeeded)  # and finished by the other
            with pytest.raises(LeaseLost):
                fence(session, "job-1")
            set_job(url, owner=None, status=JobStatus.cancelled)  # cancelled: still billed
            fence(session, "job-1")
        set_job(url, owner="worker-b", status=JobStatus.running)
        fence(session, "job-1")  # no longer held here: not fenced

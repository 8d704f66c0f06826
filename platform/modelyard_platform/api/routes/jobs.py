"""A team's jobs: read, list, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...jobs import store
from ...models import JobStatus
from ..contract import errors
from ..deps import PrincipalDep, ServicesDep, SessionDep
from ..schemas import JobPage, JobPublic
from ..session_route import SessionRoute

router = APIRouter(route_class=SessionRoute, prefix="/v1/jobs", tags=["jobs"])


@router.get("", response_model=JobPage)
def list_jobs(
    session: SessionDep,
    principal: PrincipalDep,
    status: JobStatus | None = None,
    product: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(
        description="next_cursor of the previous page.",
        json_schema_extra={"pattern": store.CURSOR_PATTERN})] = None,
) -> JobPage:
    jobs, next_cursor = store.list_jobs(
        session, team_id=principal.team_id, status=status, product=product, limit=limit,
        cursor=cursor,
    )
    return JobPage(data=[JobPublic.of(j, with_input=False) for j in jobs],
                   next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobPublic, responses=errors(404))
def get_job(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobPublic:
    job = store.get_job(session, team_id=principal.team_id, job_id=job_id)
    return JobPublic.of(job, calls=store.job_calls(session, job.id))


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=errors(404))
def cancel_job(
    job_id: str, session: SessionDep, principal: PrincipalDep, services: ServicesDep
) -> JobPublic:
    """Cancel a queued or running job; a running graph stops at its next step.

    Cancelling a finished job changes nothing and returns it as it is.
    """
    job = store.get_job(session, team_id=principal.team_id, job_id=job_id)
    if store.cancel_job(session, job):
        services.bus.announce(job.id, 0)
    job = store.get_job(session, team_id=principal.team_id, job_id=job_id)
    return JobPublic.of(job, calls=store.job_calls(session, job.id))

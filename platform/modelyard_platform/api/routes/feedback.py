"""``POST /v1/feedback``: a score on a chat call (its ``id``) or a job (or one of its nodes).

A skin over ``modelyard_registry.evidence.record_feedback``, as the job page's good/bad buttons
are: another team's id is the same 404 as an unknown one; a repeat for the same (subject, node)
updates that row and answers 200 with the same ``id`` (201 the first time).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from modelyard_registry.evidence import FeedbackIn, FeedbackPublic, list_feedback, record_feedback

from ..contract import errors
from ..deps import PrincipalDep, SessionDep
from ..schemas import IsoDatetime
from ..session_route import SessionRoute

router = APIRouter(route_class=SessionRoute, prefix="/v1", tags=["feedback"])


@router.post("/feedback", status_code=201, responses=errors(404))
def post_feedback(body: FeedbackIn, session: SessionDep, principal: PrincipalDep,
                  response: Response) -> FeedbackPublic:
    recorded = record_feedback(session, team_id=principal.team_id, feedback_in=body)
    if not recorded.created:
        response.status_code = 200
    return recorded.feedback


@router.get("/feedback")
def get_feedback(
    session: SessionDep, principal: PrincipalDep,
    since: Annotated[IsoDatetime | None, Query(description="Only feedback given since then.")
                     ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[FeedbackPublic]:
    """The team's feedback, newest first."""
    return list_feedback(session, team_id=principal.team_id, since=since, limit=limit)

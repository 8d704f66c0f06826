"""Job pages: history, the live job page (SSE for the browser's session), cancel, feedback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from modelyard_platform.api.deps import ServicesDep, SessionDep
from modelyard_platform.api.routes.events import event_response
from modelyard_platform.api.schemas import CallPublic
from modelyard_platform.api.session_route import SessionRoute
from modelyard_platform.auth import Principal
from modelyard_platform.jobs import store
from modelyard_platform.models import JobStatus
from modelyard_registry.evidence import FeedbackIn, feedback_for_job, record_feedback
from sqlmodel import Session

from .. import jobview
from ..deps import FormDep, UserDep
from ..errors import PageError
from ..render import render

router = APIRouter(route_class=SessionRoute, include_in_schema=False)
PAGE_SIZE = 20


def _status(value: str | None) -> JobStatus | None:
    if not value:
        return None
    try:
        return JobStatus(value)
    except ValueError:
        raise PageError(422, f"Unknown status {value!r}.") from None


@router.get("/jobs")
def history(request: Request, session: SessionDep, user: UserDep, status: str | None = None,
            product: str | None = None, cursor: str | None = None) -> Response:
    wanted = _status(status)
    jobs, next_cursor = store.list_jobs(
        session, team_id=user.team_id, status=wanted, product=product or None,
        limit=PAGE_SIZE, cursor=cursor or None,
    )
    return render(request, "jobs.html", {
        "title": "Jobs", "jobs": jobs, "next_cursor": next_cursor, "status": status or "",
        "product": product or "", "statuses": [s.value for s in JobStatus],
        "paged": bool(cursor),
    })


def _job_context(services: ServicesDep, session: Session, user: Principal, job_id: str
                 ) -> dict[str, Any]:
    job = store.get_job(session, team_id=user.team_id, job_id=job_id)
    calls = [CallPublic.of(c) for c in store.job_calls(session, job.id)]
    product = services.products.get(job.product)
    steps = jobview.steps_of(product.steps if product else (),
                             store.events_after(session, job.id, 0), calls, job.status)
    return {
        "job": job, "calls": calls, "steps": steps, "totals": jobview.totals(calls),
        "terminal": jobview.is_terminal(job), "view": jobview.result_view(job.product),
        "product_title": product.title if product else job.product, "cell": jobview.cell,
        "feedback": feedback_for_job(session, job.id) if job.status == JobStatus.succeeded
        else {},
    }


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str, services: ServicesDep, session: SessionDep,
             user: UserDep) -> Response:
    ctx = _job_context(services, session, user, job_id)
    return render(request, "job.html", {"title": f"{ctx['product_title']} job", **ctx})


@router.get("/jobs/{job_id}/live")
def job_live(request: Request, job_id: str, services: ServicesDep, session: SessionDep,
             user: UserDep) -> Response:
    """The part of the job page that changes: calls, totals, result (fetched by the page)."""
    ctx = _job_context(services, session, user, job_id)
    response = render(request, "_job_live.html", ctx)
    response.headers["X-Job-Status"] = ctx["job"].status.value
    return response


@router.get("/jobs/{job_id}/events")
def job_events(
    request: Request, job_id: str, services: ServicesDep, user: UserDep,
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> StreamingResponse:
    """The API's event stream, authenticated by the session cookie instead of a key.

    No request-scoped database session: the stream may stay open for minutes, and it reads
    with short sessions of its own. It counts against the person's open-stream cap.
    """
    with services.session() as session:
        store.get_job(session, team_id=user.team_id, job_id=job_id)  # 404 for other teams
    return event_response(request, services, job_id, last_event_id, user.rate_subject)


@router.post("/jobs/{job_id}/cancel")
def cancel(job_id: str, _: FormDep, services: ServicesDep, session: SessionDep,
           user: UserDep) -> Response:
    job = store.get_job(session, team_id=user.team_id, job_id=job_id)
    if store.cancel_job(session, job):
        services.bus.announce(job.id, 0)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.post("/jobs/{job_id}/feedback")
def feedback(job_id: str, form: FormDep, session: SessionDep, user: UserDep) -> Response:
    """The good/bad buttons: the same ``record_feedback`` as ``POST /v1/feedback``."""
    job = store.get_job(session, team_id=user.team_id, job_id=job_id)  # 404 for other teams
    score = form.get("score")
    if score not in ("0", "1"):
        raise PageError(422, "Feedback is good (1) or bad (0).")
    node = form.get("node")
    record_feedback(session, team_id=user.team_id, feedback_in=FeedbackIn(
        job_id=job.id, node=node if isinstance(node, str) and node else None,
        score=float(score)))
    return RedirectResponse(f"/jobs/{job.id}#result", status_code=303)

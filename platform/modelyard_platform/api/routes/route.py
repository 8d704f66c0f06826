"""``POST /v1/route/explain``: where a request would go, and why (`yard route explain` over HTTP).

Runs the same decision the cascade runs (``routing.explain``, with this process's active
predictor), without calling any model: each candidate's predicted quality with the evidence and
nearest examples behind it, its per-kind score, expected price, and the verdict.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from modelyard_registry.routing.explain import explain
from modelyard_registry.routing.public import DecisionPublic, ExplainRequest

from ..contract import errors
from ..deps import PrincipalDep, ServicesDep, SessionDep
from ..session_route import SessionRoute

router = APIRouter(route_class=SessionRoute, prefix="/v1/route", tags=["routing"])


@router.post("/explain", response_model=DecisionPublic, responses=errors(404))
async def explain_route(
    body: ExplainRequest, services: ServicesDep, session: SessionDep, _: PrincipalDep
) -> DecisionPublic:
    """The decision for this request, even when no model is adequate (``chosen`` is null)."""
    spec = body.spec()
    predictor = services.cascade.predictor

    def run() -> DecisionPublic:
        decision = explain(session, services.settings, spec, body.text, services.runtimes,
                           predictor=predictor)
        return DecisionPublic.of(decision, predictor.version)

    return await run_in_threadpool(run)

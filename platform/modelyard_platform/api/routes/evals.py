"""``GET /v1/evals`` (any team) and ``POST /v1/evals`` (admins): the eval suites.

A skin over ``modelyard_registry.evals.store``, like ``yard evals list|add``: a bad item is a 422
naming ``items.<index>.<field>``, and nothing is written.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from modelyard_registry.evals.store import SuiteCreate, SuitePublic, add_suite, list_suites

from ..contract import errors
from ..deps import AdminDep, PrincipalDep, SessionDep
from ..session_route import SessionRoute

router = APIRouter(route_class=SessionRoute, prefix="/v1", tags=["evals"])


@router.get("/evals")
def get_evals(session: SessionDep, _: PrincipalDep) -> list[SuitePublic]:
    return list_suites(session)


@router.post("/evals", status_code=201, responses=errors(403))
def post_eval(body: SuiteCreate, session: SessionDep, _: AdminDep,
              response: Response) -> SuitePublic:
    """Add a suite; the same content again answers 200 unchanged, new content replaces (200)."""
    suite, added = add_suite(session, body)
    if added != "created":
        response.status_code = 200
    return suite

"""Every route that takes a request session gives its connection back on the thread that used it.

A request that held a pooled connection while waiting for a worker thread could hang the API
once clients outnumber threads and connections (#15); ``SessionRoute`` closes a sync route's
session before its thread is free.  A new router that forgets it fails here, not under load.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from modelyard_platform.api import create_app
from modelyard_platform.api.deps import get_session
from modelyard_platform.api.session_route import SessionRoute
from modelyard_registry.settings import Settings
from starlette.routing import BaseRoute


def _takes_session(dependant: Dependant) -> bool:
    return dependant.call is get_session or any(
        _takes_session(d) for d in dependant.dependencies)


def _routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """The app's routes, through included routers (FastAPI keeps those as branches)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)


def test_every_route_with_a_request_session_closes_it_on_its_thread(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path))
    routes = [r for r in _routes(app.routes) if _takes_session(r.dependant)]
    assert {r.path for r in routes} >= {"/v1/jobs", "/v1/usage", "/v1/products/{name}/jobs"}
    assert [r.path for r in routes if not isinstance(r, SessionRoute)] == []

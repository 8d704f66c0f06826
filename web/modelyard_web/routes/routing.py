"""The routing explain page: where a request would go and why, as `POST /v1/route/explain` says.

Renders the library's ``DecisionPublic`` (``routing.explain`` + ``routing.public``), the same
object the API returns and `yard route explain --json` prints; nothing is computed here.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from modelyard_platform.api.deps import ServicesDep, SessionDep
from modelyard_platform.api.session_route import SessionRoute
from modelyard_registry.errors import ModelyardError
from modelyard_registry.routing.explain import explain
from modelyard_registry.routing.public import DecisionPublic, ExplainRequest
from pydantic import ValidationError

from ..deps import AdminDep
from ..render import render

router = APIRouter(route_class=SessionRoute, include_in_schema=False)


@router.get("/route")
def route_page(request: Request, session: SessionDep, services: ServicesDep, _: AdminDep,
               text: str = "", kind: str = "chat", min_quality: str = "") -> Response:
    form = {"text": text, "kind": kind, "min_quality": min_quality}
    context: dict[str, object] = {"title": "Route explain", "form": form, "decision": None,
                                  "error": None}
    if text.strip():
        try:
            body = ExplainRequest.model_validate({
                "text": text, "kind": kind,
                "options": {"min_quality": float(min_quality)} if min_quality.strip() else {},
            })
            predictor = services.cascade.predictor
            decision = explain(session, services.settings, body.spec(), body.text,
                               services.runtimes, predictor=predictor)
            context["decision"] = DecisionPublic.of(decision, predictor.version)
        except (ValueError, ValidationError, ModelyardError) as exc:
            message = exc.message if isinstance(exc, ModelyardError) else str(exc).splitlines()[0]
            context["error"] = message
            return render(request, "route.html", context, status=422)
    return render(request, "route.html", context)

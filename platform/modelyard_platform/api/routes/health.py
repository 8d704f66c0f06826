"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Literal

import redis
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import text

from ...errors import Forbidden
from ..contract import errors
from ..deps import ServicesDep, bearer, get_principal
from ..services import Services
from ..session_route import SessionRoute

router = APIRouter(route_class=SessionRoute, tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (no dependencies checked: a restart would not fix them)."""
    return {"status": "ok"}


def _checks(services: Services) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with services.session() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    url = services.settings.redis_url
    if not url:
        checks["broker"] = "error: REDIS_URL not set"
    else:
        try:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            client.ping()
            client.close()
            checks["broker"] = "ok"
        except redis.RedisError as exc:
            checks["broker"] = f"error: {type(exc).__name__}"
    return checks


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]


@router.get("/readyz", response_model=Readiness, responses={
    503: {"model": Readiness, "description": "The database or the broker does not answer."}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when the database and the broker answer."""
    checks = await run_in_threadpool(_checks, services)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response,
            openapi_extra={"security": [{"bearer": []}]}, responses={
    **errors(403),
    200: {"description": "Prometheus text exposition.",
          "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus exposition, for the metrics token or an admin key.

    Metrics aggregate every team's jobs and spend, so a team key may not read them; Prometheus
    gets ``MODELYARD_METRICS_TOKEN``, a credential that opens nothing but this endpoint.
    """
    token = services.settings.metrics_token
    given = bearer(request)
    if not (token and given and hmac.compare_digest(given.encode(),
                                                    token.get_secret_value().encode())):
        principal = await get_principal(request, services)
        if not principal.admin:
            raise Forbidden("/metrics needs the metrics token or an admin key",
                            field="authorization")
    return Response(await run_in_threadpool(services.metrics.render),
                    media_type=CONTENT_TYPE_LATEST)

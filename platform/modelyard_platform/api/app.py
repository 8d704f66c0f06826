"""The FastAPI application factory: routers, error shape, limits, metrics, web pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from modelyard_registry.settings import Settings, get_settings

from . import contract, handlers, unavailable
from .limits import BodyLimit
from .observe import Observe
from .routes import (
    chat,
    embeddings,
    evals,
    events,
    feedback,
    health,
    jobs,
    models,
    products,
    route,
    usage,
)
from .services import Services


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    services = Services(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(
        title="Modelyard",
        version="0.1.0",
        description="Route every task to the cheapest adequate open-weight model.",
        lifespan=lifespan,
        # FastAPI's OpenTelemetry bridge asked three global providers "configured?" on every
        # request (2% of the chat path's CPU, profiled, #15) for nothing: /metrics is ours.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    handlers.install(app)
    unavailable.install(app)
    # Routes are matched in order: the hot path first (matching every route before it showed in
    # the chat path's profile, #15).
    for module in (
        chat, health, products, jobs, events, models, usage, feedback, evals, embeddings, route,
    ):
        app.include_router(module.router)
    _mount_web(app)
    contract.install(app)

    app.add_middleware(Observe, metrics=services.metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       max_depth=settings.max_json_depth)
    return app


def _mount_web(app: FastAPI) -> None:
    """The end-user and operator pages, when the web package provides them."""
    try:
        from modelyard_web import install
    except ImportError:
        return
    install(app)

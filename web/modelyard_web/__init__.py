"""Modelyard's web UI: server-rendered pages for end users and operators, on the API's app.

``install(app)`` adds the pages under ``/`` and their assets under ``/static``; the API keeps
``/v1``.  Pages sign in with an API key exchanged for a signed, HttpOnly session cookie.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import errors
from .deps import WebState
from .render import STATIC_DIR
from .routes import account, jobs, operators, products
from .session import load_secret

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Mount the pages on ``app`` (built by ``modelyard_platform.api.create_app``)."""
    settings = app.state.services.settings
    app.state.web = WebState(secret=load_secret(settings))
    errors.install(app)
    for module in (account, products, jobs, operators):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

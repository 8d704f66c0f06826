"""Modelyard's web UI: server-rendered pages for end users and operators, on the API's app.

``install(app)`` adds the pages under ``/`` and their assets under ``/static``; the API keeps
``/v1``.  People sign in with an email and password (or SSO) and get a server-side session
behind a signed, HttpOnly cookie; API keys stay for programs.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from modelyard_platform.accounts import SignInThrottle
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from . import errors
from .deps import WebState
from .render import STATIC_DIR
from .routes import account, jobs, links, operators, products, routing, sso, team
from .session import load_secret

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Mount the pages on ``app`` (built by ``modelyard_platform.api.create_app``).

    Refuses (``BadConfiguration``) a placeholder or short ``MODELYARD_SESSION_SECRET``.
    """
    settings = app.state.services.settings
    throttle = SignInThrottle(settings.redis_url, per_account=settings.login_max_failures,
                              per_address=settings.login_max_failures_per_address,
                              window_s=settings.login_window_s)
    app.state.web = WebState(secret=load_secret(settings), throttle=throttle)
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    if proxies:
        # Scheme (for Secure cookies) and client address (for throttling) from X-Forwarded-*,
        # believed only when the connection comes from one of these proxies.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    errors.install(app)
    for module in (account, links, sso, team, products, jobs, operators, routing):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
